/**
 * The backward windows in which the inter-node link is free for the dense-gradient all-reduce
 * (SCHEDULING.md §3, "Adaptive gradient partitioning"; fsmoe-digest.md §4.5): walking the
 * backward from the last layer, each MoE block leaves W(r) idle on the inter link, and each
 * dense block (attention, dense FFN, shared experts) leaves the inter link free for its whole
 * duration. A layer's dense gradients exist once its dense backward has finished.
 */
import type { GradPart } from "../graph/moe-block.js";
import type { Pricer } from "../graph/pricing.js";
import { wholeGradient } from "../graph/iteration.js";
import type { DenseSizes } from "../lower/dense.js";
import type { Workload } from "../lower/workload.js";

/** One window, in backward order. */
export interface Window {
  readonly kind: "moe" | "dense";
  readonly layer: number;
  /** Idle inter-link time (µs). */
  readonly capUs: number;
  /** The gradient produced at the end of this window, if any. */
  readonly produces: GradPart | null;
}

/** Backward time of a tensor-parallel dense block: AllGather, GEMMs, ReduceScatter (µs). */
export function denseBackwardUs(pricer: Pricer, kind: "attention" | "dense_ffn" | "shared_expert", z: DenseSizes): number {
  const comm = z.gatherElements > 0 ? pricer.price("all_gather", "bwd", z.gatherElements, 0, "tp") + pricer.price("reduce_scatter", "bwd", z.gatherElements, 0, "tp") : 0;
  return comm + pricer.price(kind, "bwd", 0, z.macs);
}

/** The windows of a backward pass, given each MoE layer's idle time W (µs). */
export function backwardWindows(w: Workload, pricer: Pricer, moeIdle: (layer: number) => number): Window[] {
  const out: Window[] = [];
  for (let l = w.layers.length - 1; l >= 0; l--) {
    const lw = w.layers[l]!;
    const hasDense = lw.attention || lw.ffn || lw.shared;
    const grad = lw.denseParams > 0 ? wholeGradient(w, l) : null;
    if (lw.moe) out.push({ kind: "moe", layer: l, capUs: moeIdle(l), produces: hasDense ? null : grad });
    if (hasDense) {
      let cap = 0;
      if (lw.attention) cap += denseBackwardUs(pricer, "attention", lw.attention);
      if (lw.ffn) cap += denseBackwardUs(pricer, "dense_ffn", lw.ffn);
      if (lw.shared) cap += denseBackwardUs(pricer, "shared_expert", lw.shared);
      out.push({ kind: "dense", layer: l, capUs: cap, produces: grad });
    }
  }
  return out;
}

/** α and β (µs, µs per element) of the dense-gradient all-reduce. */
export function allReduceLine(pricer: Pricer): { alpha: number; beta: number } {
  const one = pricer.price("all_reduce", "bwd", 1, 0, "dp");
  const two = pricer.price("all_reduce", "bwd", 2, 0, "dp");
  return { alpha: one - (two - one), beta: two - one };
}

/** Elements of an all-reduce that fit in `capUs` (0 if not even α fits). */
export function fitting(capUs: number, line: { alpha: number; beta: number }): number {
  if (capUs <= line.alpha) return 0;
  if (line.beta <= 0) return Number.MAX_SAFE_INTEGER;
  return Math.floor((capUs - line.alpha) / line.beta);
}

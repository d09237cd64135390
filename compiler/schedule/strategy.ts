/**
 * The shape of a scheduling strategy (STYLE.md: one file per strategy) and helpers they share.
 */
import type { GradPart, GradPiece } from "../graph/moe-block.js";
import type { Pricer } from "../graph/pricing.js";
import { denseGradients } from "../graph/iteration.js";
import type { Workload } from "../lower/workload.js";
import type { GradientPlan, Schedule, StrategyName } from "./types.js";

/** Options some strategies take (none change the others). */
export interface StrategyOptions {
  /**
   * FSMoE's empirical rule from the authors' code (fsmoe-digest.md §4.3): r = 1 when the whole
   * all-to-all takes under 1 ms, and then r_b = 1 too. Off by default. (Their other fudge, the
   * expert GEMM α × 1.3, is already inside the fsmoe-paper profiles' constants and means
   * nothing under the hardware model, whose GEMM α is 0.)
   */
  readonly fsmoeEmpiricalRules?: boolean;
}

/** A strategy: decides a Schedule for a lowered job under a cost model. */
export interface Strategy {
  readonly name: StrategyName;
  /** One line for `fsmoec explain` and the docs. */
  readonly summary: string;
  readonly plan: (w: Workload, pricer: Pricer, options: StrategyOptions) => Schedule;
}

/** The indices of the MoE layers. */
export function moeLayerIndices(w: Workload): number[] {
  return w.layers.filter((l) => l.moe).map((l) => l.index);
}

/** True when dense gradients need an all-reduce (more than one replica). */
export function needsGradientReduce(w: Workload): boolean {
  return w.groups.dp.size > 1;
}

/** Pack ranges into buckets of at most `max` elements, splitting ranges where a bucket fills. */
export function buckets(parts: readonly GradPart[], max: number): GradPiece[] {
  const out: GradPiece[] = [];
  let cur: GradPart[] = [];
  let size = 0;
  for (const p of parts) {
    let rest = p;
    while (rest.elements > 0) {
      const take = Math.min(rest.elements, max - size);
      cur.push({ ...rest, elements: take });
      size += take;
      rest = { ...rest, offset: rest.offset + take, elements: rest.elements - take };
      if (size === max) {
        out.push({ parts: cur });
        cur = [];
        size = 0;
      }
    }
  }
  if (cur.length > 0) out.push({ parts: cur });
  return out;
}

/** A gradient plan with everything after the backward, one bucket per `bucket` elements. */
export function afterBackward(w: Workload, stream: GradientPlan["stream"], bucket = Number.MAX_SAFE_INTEGER): GradientPlan {
  return { window: new Map(), immediate: new Map(), tail: needsGradientReduce(w) ? buckets(denseGradients(w), bucket) : [], stream };
}

/** Merge the ranges of one window into a single bucket. */
export function oneBucket(parts: readonly GradPart[] | undefined): GradPiece[] {
  return parts && parts.length > 0 ? [{ parts }] : [];
}

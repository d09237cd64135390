/**
 * The lowering stage (ARCHITECTURE.md: Program → Workload): every layer of a train job as the
 * modules of the unified MoE abstraction, with exact per-rank sizes. MoE module sizes depend on
 * the capacity a schedule chooses, so the workload carries the layer's {@link MoeShape} and
 * `moeSizes(shape, C)` gives the sizes at any C.
 */
import type { TrainJob } from "../check/program.js";
import { attentionSizes, expertParams, ffnSizes, headSizes, routerParams, type DenseSizes, type HeadSizes } from "./dense.js";
import { groupsOf, type Groups } from "./groups.js";
import { moeShape, type MoeShape } from "./shapes.js";

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<TrainJob["model"]["dtype"], number>> = { fp32: 4, bf16: 2, fp16: 2, fp8: 1 };

/** One transformer layer (or the standalone MoE layer of a `layer` job). */
export interface LayerWork {
  readonly index: number;
  readonly moe: boolean;
  /** Attention; null for a standalone MoE layer. */
  readonly attention: DenseSizes | null;
  /** The dense FFN of a non-MoE layer. */
  readonly ffn: DenseSizes | null;
  /** Shared experts of an MoE layer (DeepSeek style). */
  readonly shared: DenseSizes | null;
  /** Dense parameters on this rank (attention, norms, router, dense FFN or shared experts): all-reduced over dp. */
  readonly denseParams: number;
  /** The part of the dense parameters whose gradients are also summed over tp under sequence parallelism (norms, router). */
  readonly seqParallelParams: number;
  /**
   * The leading part of the dense gradient all-reduced over tp after the backward when tp > 1:
   * the sequence-parallel parameters, then the attention parameters every tp rank holds whole
   * (MLA's down-projections and lora norms, which start the attention region).
   */
  readonly tpReducedParams: number;
  /** Of those, the norms' (one weight vector of `hidden` per norm) and the router's: the dense gradient is laid out norms, router, attention, dense FFN or shared experts. */
  readonly normParams: number;
  readonly routerParams: number;
  /** Expert parameters on this rank: all-reduced over edp when edp > 1. */
  readonly expertParams: number;
}

/** A lowered train job. */
export interface Workload {
  readonly job: TrainJob;
  readonly groups: Groups;
  /** Bytes per element of activations, weights and gradients. */
  readonly bytes: number;
  readonly shape: MoeShape;
  readonly layers: readonly LayerWork[];
  readonly head: HeadSizes | null;
  /** Parameters per rank. */
  readonly params: { readonly dense: number; readonly expert: number };
}

/** Lower a checked train job. */
export function lower(job: TrainJob): Workload {
  const model = job.model;
  const moeSet = new Set(model.moeLayers);
  const experts = expertParams(job);
  const router = routerParams(job);
  const M = model.hidden;
  const layers: LayerWork[] = [];
  for (let i = 0; i < model.layers; i++) {
    const isMoe = moeSet.has(i);
    const attention = model.attention ? attentionSizes(job, model.attention) : null;
    const ffn = !isMoe && model.ffn ? ffnSizes(job, model.ffn.hidden, model.ffn.activation) : null;
    const shared = isMoe && model.moe.sharedExperts > 0 ? ffnSizes(job, model.moe.sharedHidden, model.moe.activation, model.moe.sharedExperts) : null;
    const norms = attention ? 2 * M : M;
    const seqParallelParams = norms + (isMoe ? router : 0);
    const denseParams = (attention?.params ?? 0) + (ffn?.params ?? 0) + (shared?.params ?? 0) + seqParallelParams;
    const tpReducedParams = seqParallelParams + (attention?.replicatedParams ?? 0);
    layers.push({ index: i, moe: isMoe, attention, ffn, shared, denseParams, seqParallelParams, tpReducedParams, normParams: norms, routerParams: isMoe ? router : 0, expertParams: isMoe ? experts : 0 });
  }
  const head = headSizes(job);
  return {
    job,
    groups: groupsOf(job),
    bytes: DTYPE_BYTES[model.dtype],
    shape: moeShape(job),
    layers,
    head,
    params: {
      dense: layers.reduce((s, l) => s + l.denseParams, 0) + (head?.params ?? 0),
      expert: layers.reduce((s, l) => s + l.expertParams, 0),
    },
  };
}

/**
 * DeepSpeed-MoE, faithfully (baselines.md §1.1; SCHEDULING.md §3): one stream, no pipelining
 * (r = 1), strictly serial gate → dense einsum dispatch GEMM (T·E·C·M MACs) → all-to-all →
 * (expert-tensor-parallel AllGather) → local experts one after another → ReduceScatter →
 * all-to-all → einsum combine. Capacity C = max(C0, min_capacity = 4) (baselines.md §2.3).
 * Gradients are all-reduced after the whole backward in buckets of up to 5e8 elements
 * (`MEMORY_OPT_ALLREDUCE_SIZE`), not overlapped.
 */
import { afterBackward, moeLayerIndices, type Strategy } from "./strategy.js";
import type { LayerPlan } from "./types.js";

/** DeepSpeed's `min_capacity` default. */
export const DEEPSPEED_MIN_CAPACITY = 4;
/** DeepSpeed's all-reduce bucket without ZeRO (elements). */
export const DEEPSPEED_BUCKET = 500_000_000;

export const deepspeed: Strategy = {
  name: "deepspeed",
  summary: "DeepSpeed-MoE: one stream, r = 1, einsum dispatch/combine, experts one by one, gradients after backward",
  plan(w) {
    const capacity = Math.max(w.shape.capacity0, DEEPSPEED_MIN_CAPACITY);
    const layers = new Map<number, LayerPlan>();
    for (const l of moeLayerIndices(w)) {
      layers.set(l, { layer: l, capacity, forward: { degree: 1, style: { kind: "serial" } }, backward: { degree: 1, style: { kind: "serial" } }, gapGrads: [] });
    }
    return {
      strategy: "deepspeed",
      layers,
      gradients: afterBackward(w, "compute", DEEPSPEED_BUCKET),
      candidates: [],
      notes: [`capacity C = max(C0 = ${w.shape.capacity0}, min_capacity = ${DEEPSPEED_MIN_CAPACITY}) = ${capacity}`],
    };
  },
};

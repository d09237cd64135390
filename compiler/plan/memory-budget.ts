/**
 * What a rank holds besides its arena (LANGUAGE.md, "Training semantics": recompute,
 * optimizer_sharding): the weights in the model's dtype, and the optimizer states — for bf16
 * and fp16 models an fp32 master copy plus Adam's two moments (12 bytes per parameter), for
 * fp32 models the two moments (8) — sharded over the replicas of each parameter when
 * `optimizer_sharding` is on (dense parameters over dp, expert shards over edp). Gradients
 * live in the arena's persistent region (the plan's gradient buffers).
 */
import type { Workload } from "../lower/workload.js";

/** Weight and optimizer bytes per rank. */
export interface StaticMemory {
  readonly weightBytes: number;
  readonly optimizerBytes: number;
}

/** The static memory of a lowered job. */
export function staticMemory(w: Workload): StaticMemory {
  const perParam = w.bytes < 4 ? 12 : 8;
  const shard = w.job.optimizerSharding;
  const dense = w.params.dense * perParam / (shard ? w.groups.dp.size : 1);
  const expert = w.params.expert * perParam / (shard ? w.groups.edp.size : 1);
  return {
    weightBytes: (w.params.dense + w.params.expert) * w.bytes,
    optimizerBytes: Math.ceil(dense + expert),
  };
}

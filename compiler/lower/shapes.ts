/**
 * Sizes of the modules of one MoE layer in FSMoE's unified abstraction (SCHEDULING.md §1):
 * Gate, Order, Dispatch (all-to-all over ep), ESP AllGather, Expert FFN on the H/esp slice,
 * ESP ReduceScatter, Combine, I-Order. All counts are per rank and exact integers: elements
 * for data movement, multiply-accumulates (MACs) for GEMMs. The capacity C (slots per expert
 * per rank) is an input, because each schedule pads C0 up to the lcm of the degrees it uses.
 */
import type { TrainJob } from "../check/program.js";

/** The shape of every MoE layer of a job. */
export interface MoeShape {
  /** T: tokens per rank entering the layer (sequence parallel over tp). */
  readonly tokens: number;
  /** M, H, E, k. */
  readonly hidden: number;
  readonly expertHidden: number;
  readonly experts: number;
  readonly topK: number;
  readonly localExperts: number;
  readonly esp: number;
  readonly ep: number;
  /** GEMMs per expert FFN: 2 (relu, gelu) or 3 (swiglu, geglu). */
  readonly gemms: number;
  /** C0: slots per expert per rank before padding. */
  readonly capacity0: number;
  readonly router: TrainJob["model"]["moe"]["router"];
  /** Rows the router scores per token: E, or E · slots for softmoe. */
  readonly routerColumns: number;
  /** Extra projection MACs per token of the router (xmoe's hypersphere). */
  readonly routerProjection: number;
}

/** The sizes of the modules of one MoE block at capacity C (whole layer, before chunking). */
export interface MoeSizes {
  /** Router GEMM and routing function. */
  readonly gateMacs: number;
  readonly gateElements: number;
  /** Order / I-Order: elements scattered into and gathered from the [E, C, M] buffer. */
  readonly orderElements: number;
  /** The [E, C, M] buffer each rank sends in the dispatch all-to-all (and receives in the combine). */
  readonly a2aElements: number;
  /** The gathered size of the ESP AllGather and ReduceScatter (0 when esp = 1). */
  readonly espElements: number;
  /** Expert FFN forward MACs on this rank's H/esp slice. */
  readonly expertMacs: number;
  /** DeepSpeed's dense einsum dispatch and combine GEMMs: T · E · C · M MACs each. */
  readonly einsumMacs: number;
  /**
   * Routing decisions the gate writes for Order, I-Order and the backward: T · k (token choice:
   * expert, slot, combine weight per choice) or E · C (expert choice: token, slot, weight per
   * expert slot); 0 for Soft MoE, whose dispatch and combine weights are the gate's scores.
   */
  readonly routingEntries: number;
}

/** Bytes of one routing decision: a 32-bit expert (or token) index, a 32-bit slot and an fp32 weight. */
export const ROUTING_ENTRY_BYTES = 12;

/** Integer ceiling of a · f / b where f is a decimal factor (exact for factors with ≤ 6 decimals). */
function ceilScaled(a: number, f: number, b: number): number {
  const scale = 1_000_000;
  const num = BigInt(a) * BigInt(Math.round(f * scale));
  const den = BigInt(b) * BigInt(scale);
  return Number((num + den - 1n) / den);
}

/** The MoE shape of a job (LANGUAGE.md, "Training semantics": C0 = ceil(k · f · T / E)). */
export function moeShape(job: TrainJob): MoeShape {
  const moe = job.model.moe;
  const tokens = (job.microBatch * job.seqLen) / job.parallel.tp;
  let capacity0: number;
  let routerColumns = moe.experts;
  if (moe.router === "softmoe") {
    // Soft MoE: each expert has `slots_per_expert` slots per sequence; a rank holds
    // micro_batch / tp sequences' worth of tokens. No token is dropped.
    const slots = moe.slotsPerExpert ?? 1;
    capacity0 = Math.max(1, Math.ceil((slots * job.microBatch) / job.parallel.tp));
    routerColumns = moe.experts * slots;
  } else {
    capacity0 = Math.max(1, ceilScaled(moe.topK * tokens, moe.capacityFactor, moe.experts));
  }
  return {
    tokens,
    hidden: job.model.hidden,
    expertHidden: moe.expertHidden,
    experts: moe.experts,
    topK: moe.topK,
    localExperts: moe.experts / job.parallel.ep,
    esp: job.parallel.esp,
    ep: job.parallel.ep,
    gemms: moe.activation === "swiglu" || moe.activation === "geglu" ? 3 : 2,
    capacity0,
    router: moe.router,
    routerColumns,
    routerProjection: moe.router === "xmoe" ? (moe.routingDim ?? 256) * (job.model.hidden + moe.experts) : 0,
  };
}

/** C rounded up to a multiple of `multiple` (the lcm of the degrees a schedule uses). */
export function padCapacity(capacity0: number, multiple: number): number {
  return Math.ceil(capacity0 / multiple) * multiple;
}

/** Least common multiple. */
export function lcm(a: number, b: number): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return (a / gcd(a, b)) * b;
}

/** Module sizes at capacity C. */
export function moeSizes(s: MoeShape, capacity: number): MoeSizes {
  const a2a = s.experts * capacity * s.hidden;
  const gateMacs = s.tokens * s.hidden * s.routerColumns + s.tokens * s.routerProjection;
  const soft = s.router === "softmoe";
  return {
    gateMacs,
    gateElements: s.tokens * s.routerColumns,
    // Soft MoE mixes every token into every slot: its order is a GEMM, counted in einsumMacs.
    orderElements: soft ? 0 : s.tokens * s.topK * s.hidden,
    a2aElements: a2a,
    espElements: s.esp > 1 ? a2a * s.esp : 0,
    expertMacs: a2a * s.expertHidden * s.gemms,
    einsumMacs: s.tokens * s.experts * capacity * s.hidden,
    routingEntries: soft ? 0 : s.router === "expert_choice" ? s.experts * capacity : s.tokens * s.topK,
  };
}

/**
 * The dense parts of a model, per rank and per micro-batch (SCHEDULING.md §1, "The dense
 * block"): attention with tensor + sequence parallelism (AllGather of the sequence over tp,
 * QKV / core / output GEMMs on heads / tp, ReduceScatter), dense FFN layers and shared experts
 * the same way, embedding, LM head and loss; and every parameter count, which decides the
 * gradient all-reduce volumes and the static memory.
 */
import type { Attention, TrainJob } from "../check/program.js";

/** Sizes of one tensor-parallel dense sub-block (attention, dense FFN or shared experts). */
export interface DenseSizes {
  /** The gathered size of the sequence-parallel AllGather before it and ReduceScatter after it (0 when tp = 1). */
  readonly gatherElements: number;
  /** Forward MACs on this rank. */
  readonly macs: number;
  /** Parameters this rank holds (replicated over dp). */
  readonly params: number;
  /**
   * Of those, the ones every tp rank holds whole although each backpropagates only its own heads
   * (MLA's down-projections and lora norms), laid out first: their gradients are partial sums over
   * tp, all-reduced over tp like the sequence-parallel norms. 0 for everything else.
   */
  readonly replicatedParams: number;
}

function gemms(activation: string): number {
  return activation === "swiglu" || activation === "geglu" ? 3 : 2;
}

/** Heads of one kind a rank holds: split over tp, replicated when fewer than tp (Megatron). */
function perRank(heads: number, tp: number): number {
  return Math.max(1, Math.ceil(heads / tp));
}

/** Attention of one layer. Core attention is causal: half of the L × L score matrix is computed. */
export function attentionSizes(job: TrainJob, a: Attention): DenseSizes {
  const tp = job.parallel.tp;
  const M = job.model.hidden;
  const B = job.microBatch;
  const L = job.seqLen;
  const h = perRank(a.heads, tp);
  const gather = tp > 1 ? B * L * M : 0;
  if (a.kind === "mla") {
    const qLora = a.qLoraRank!;
    const kvLora = a.kvLoraRank!;
    const qk = a.qkNopeDim! + a.ropeDim!;
    const v = a.vHeadDim!;
    // Down-projections are replicated; up-projections and the output projection split heads.
    const proj = M * qLora + qLora * h * qk + M * (kvLora + a.ropeDim!) + kvLora * h * (a.qkNopeDim! + v) + h * v * M;
    const core = (B * h * L * L * (qk + v)) / 2;
    // Laid out [Wdq | Wdkv | q norm | kv norm] (replicated), then [Wuq | Wukv | Wo] (this rank's heads).
    const replicatedParams = M * qLora + M * (kvLora + a.ropeDim!) + qLora + kvLora;
    const params = replicatedParams + qLora * h * qk + kvLora * h * (a.qkNopeDim! + v) + h * v * M;
    return { gatherElements: gather, macs: B * L * proj + core, params, replicatedParams };
  }
  const kv = perRank(a.kvHeads, tp);
  const d = a.headDim;
  const proj = M * (h + 2 * kv) * d + h * d * M;
  const core = (B * h * L * L * d * 2) / 2;
  return { gatherElements: gather, macs: B * L * proj + core, params: proj, replicatedParams: 0 };
}

/** A dense FFN of `hidden` units (dense layers, or `count` shared experts), split over tp. */
export function ffnSizes(job: TrainJob, hidden: number, activation: string, count = 1): DenseSizes {
  const tp = job.parallel.tp;
  const M = job.model.hidden;
  const params = (count * M * hidden * gemms(activation)) / tp;
  return { gatherElements: tp > 1 ? job.microBatch * job.seqLen * M : 0, macs: job.microBatch * job.seqLen * params, params, replicatedParams: 0 };
}

/** Embedding, LM head and loss (vocab-parallel over tp); absent without a vocabulary. */
export interface HeadSizes {
  /** The vocabulary-parallel lookup writes a row (zero outside this rank's shard) for every token of the tensor-parallel group. */
  readonly embedElements: number;
  readonly lmHead: DenseSizes;
  /** Elements of the logits the loss reads: the tensor-parallel group's tokens × this rank's ⌈V/tp⌉ vocabulary entries. */
  readonly lossElements: number;
  /** Vocabulary entries of one rank's shard of the embedding, the LM head and the logits: ⌈V/tp⌉. */
  readonly vocabLocal: number;
  /** Embedding and LM head parameters, plus the final norm; the head's gradient is laid out in that order. */
  readonly params: number;
}

/** The embedding and LM head of a model with a vocabulary. */
export function headSizes(job: TrainJob): HeadSizes | null {
  const V = job.model.vocab;
  if (V === null) return null;
  const tp = job.parallel.tp;
  const M = job.model.hidden;
  const tokens = job.microBatch * job.seqLen;
  const vLocal = Math.ceil(V / tp);
  const lmParams = vLocal * M;
  return {
    embedElements: tokens * M,
    lmHead: { gatherElements: tp > 1 ? tokens * M : 0, macs: tokens * lmParams, params: lmParams, replicatedParams: 0 },
    lossElements: tokens * vLocal,
    vocabLocal: vLocal,
    params: 2 * lmParams + M,
  };
}

/** Parameters of one expert shard on this rank: E_l experts × M × H/esp × GEMMs. */
export function expertParams(job: TrainJob): number {
  const moe = job.model.moe;
  return (moe.experts / job.parallel.ep) * job.model.hidden * (moe.expertHidden / job.parallel.esp) * gemms(moe.activation);
}

/** Router parameters: M × E (× slots for softmoe), an expert bias for sigmoid, a projection for xmoe. */
export function routerParams(job: TrainJob): number {
  const moe = job.model.moe;
  const M = job.model.hidden;
  if (moe.router === "xmoe") return (moe.routingDim ?? 256) * (M + moe.experts);
  if (moe.router === "softmoe") return M * moe.experts * (moe.slotsPerExpert ?? 1);
  return M * moe.experts + (moe.router === "sigmoid" ? moe.experts : 0);
}

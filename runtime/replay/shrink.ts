/**
 * `fsmoec run --shrink` (ARCHITECTURE.md, "Runtime": host backend): a real job scaled to host
 * size while keeping its structure — the layer pattern, router and its group limits, activation,
 * the layout's kind (ESP over the node, EP over the rail, inside the node or over the world,
 * expert replicas), schedule, pipeline degrees and recomputation — on at most 8 ranks with
 * hidden ≤ 256 and a few layers, in fp32 (the host backend computes fp32).
 */
import type { Attention, TrainJob } from "../../compiler/check/program.js";

/** Limits of a shrunk job. */
export interface ShrinkOptions {
  /** Hidden size (default 64, at most 256). */
  readonly hidden?: number;
  /** Tokens per rank entering an MoE layer, roughly (default 32). */
  readonly tokens?: number;
  /** Most ranks (default 8). */
  readonly maxRanks?: number;
}

/** The shrunk job and a line per choice, for the CLI to print. */
export interface Shrunk {
  readonly job: TrainJob;
  readonly notes: readonly string[];
}

function divisors(n: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= n; d++) if (n % d === 0) out.push(d);
  return out;
}

/** The largest divisor of n that is at most x (at least 1). */
function divisorAtMost(n: number, x: number): number {
  return Math.max(1, ...divisors(n).filter((d) => d <= x));
}

function lcm(a: number, b: number): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return (a / gcd(a, b)) * b;
}

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

/** Scale a checked job to host size (see the module comment). */
export function shrink(job: TrainJob, options: ShrinkOptions = {}): Shrunk {
  const notes: string[] = [];
  const maxRanks = Math.min(8, Math.max(1, options.maxRanks ?? 8));
  const N = job.cluster.nodes;
  const G = job.cluster.gpusPerNode;
  const { tp, esp, ep, edp } = job.parallel;
  // Ranks: up to 2 nodes of up to 4 GPUs (8 GPUs when there is one node).
  const n2 = Math.min(N, maxRanks >= 2 ? 2 : 1);
  const g2 = Math.max(1, Math.min(G, Math.floor(maxRanks / n2)));
  const w2 = n2 * g2;
  // An intra-node dimension: the whole node stays the whole node, else the largest divisor of the new node that fits.
  const intra = (x: number) => (x === G ? g2 : divisorAtMost(g2, x));
  const esp2 = intra(esp);
  const tp2 = tp === esp ? esp2 : intra(tp);
  let ep2: number;
  if (ep === N * G) ep2 = w2;
  else if (esp === 1 && ep === G) ep2 = g2;
  else if (ep === N) ep2 = n2;
  else if (ep === G) ep2 = g2;
  else if (ep === 1) ep2 = 1;
  else if (edp === 1) ep2 = w2 / esp2;
  else ep2 = divisorAtMost(w2 / esp2, ep);
  const edp2 = w2 / (esp2 * ep2);
  notes.push(`ranks ${N}×${G} → ${n2}×${g2}; layout tp ${tp}→${tp2}, esp ${esp}→${esp2}, ep ${ep}→${ep2}, edp ${edp}→${edp2}`);

  const moe = job.model.moe;
  const groups = moe.groups !== null && moe.groups > 1 ? Math.min(moe.groups, 4) : moe.groups;
  const unit = lcm(ep2, groups ?? 1);
  let experts = moe.experts <= 16 && moe.experts % unit === 0 ? moe.experts : roundUp(Math.max(ep2, Math.min(moe.experts, 8)), unit);
  const topK = Math.min(moe.topK, experts);
  let topkGroups = moe.topkGroups;
  if (groups !== null && topkGroups !== null) {
    topkGroups = Math.min(topkGroups, groups);
    while (topkGroups * (experts / groups) < topK) topkGroups++;
  }
  if (experts !== moe.experts) notes.push(`experts ${moe.experts} → ${experts}`);
  const hidden = Math.min(job.model.hidden, Math.min(256, options.hidden ?? 64));
  const ratio = moe.expertHidden / job.model.hidden;
  const expertHidden = roundUp(Math.min(256, Math.max(esp2, Math.round(hidden * ratio))), esp2);
  notes.push(`hidden ${job.model.hidden} → ${hidden}, expert hidden ${moe.expertHidden} → ${expertHidden}`);
  const microBatch = Math.min(job.microBatch, 2);
  const perRank = options.tokens ?? 32;
  const seqLen = roundUp(Math.max(1, Math.min(job.seqLen, Math.ceil((perRank * tp2) / microBatch))), tp2);
  notes.push(`micro-batch ${job.microBatch} × seq ${job.seqLen} → ${microBatch} × ${seqLen} (${(microBatch * seqLen) / tp2} tokens per rank)`);
  const microBatches = Math.min(job.microBatches, 2);

  // Layers: a few, keeping which are MoE.
  const layers = job.model.kind === "layer" ? job.model.layers : Math.min(job.model.layers, 4);
  let moeLayers = job.model.moeLayers.filter((l) => l < layers);
  if (moeLayers.length === 0) moeLayers = [layers - 1];
  const attention = job.model.attention ? shrinkAttention(job.model.attention, hidden, tp2) : null;
  const ffn = job.model.ffn ? { ...job.model.ffn, hidden: roundUp(Math.min(256, Math.max(tp2, Math.round(hidden * (job.model.ffn.hidden / job.model.hidden)))), tp2) } : null;
  const degree = (d: number | "auto") => (d === "auto" ? d : Math.min(d, 8));

  const shrunk: TrainJob = {
    ...job,
    model: {
      ...job.model,
      layers,
      hidden,
      vocab: job.model.vocab === null ? null : Math.min(job.model.vocab, 256),
      attention,
      ffn,
      moe: {
        ...moe,
        experts,
        topK,
        expertHidden,
        groups,
        topkGroups,
        // The shared experts run as one FFN split over tp: their units must divide by it.
        sharedHidden: roundUp(Math.min(moe.sharedHidden, expertHidden), tp2),
      },
      moeLayers,
      dtype: "fp32",
    },
    cluster: { ...job.cluster, nodes: n2, gpusPerNode: g2 },
    microBatch,
    seqLen,
    microBatches,
    parallel: { ...job.parallel, tp: tp2, esp: esp2, ep: ep2, edp: edp2 },
    pipeline: { forward: degree(job.pipeline.forward), backward: degree(job.pipeline.backward) },
  };
  return { job: shrunk, notes };
}

/**
 * Attention on tp ranks: two query heads per rank (MHA, and MLA with lora ranks of 32 and head
 * dimensions 16 + 8 rotary, values 16); GQA keeps grouped query heads with one
 * key/value head per rank (query heads per group: the model's, at most what keeps head_dim ≥ 8,
 * at least 2), so key/value heads split over tp as the host backend needs.
 */
function shrinkAttention(a: Attention, hidden: number, tp: number): Attention {
  if (a.kind === "mla") return { ...a, heads: tp * 2, qLoraRank: 32, kvLoraRank: 32, qkNopeDim: 16, ropeDim: 8, vHeadDim: 16 };
  if (a.kind === "mha" || a.kvHeads >= a.heads) {
    const heads = tp * 2;
    return { ...a, heads, kvHeads: heads, headDim: Math.max(1, Math.floor(hidden / heads)) };
  }
  const group = Math.max(2, Math.min(a.heads / a.kvHeads, Math.floor(hidden / (8 * tp))));
  const heads = tp * group;
  return { ...a, heads, kvHeads: tp, headDim: Math.max(1, Math.floor(hidden / heads)) };
}

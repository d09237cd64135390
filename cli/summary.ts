/**
 * The summary `fsmoec FILE` prints for each checked train job: the model, the cluster, the
 * parallel layout and the token and capacity figures the layout implies (LANGUAGE.md,
 * "Training semantics"): T = micro_batch · seq_len / tp tokens per rank entering an MoE layer,
 * C0 = ceil(top_k · capacity_factor · T / experts) slots per expert per rank.
 */
import type { TrainJob } from "../compiler/check/program.js";
import type { JobResult } from "../compiler/compile/index.js";
import type { LayerPlan } from "../compiler/schedule/types.js";
import { STRATEGY_NAMES } from "../compiler/schedule/index.js";

function si(n: number, unit: string): string {
  const steps: [number, string][] = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]];
  for (const [f, p] of steps) if (n >= f) return `${Number((n / f).toPrecision(4))} ${p}${unit}`;
  return `${Number(n.toPrecision(4))} ${unit}`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Tokens per rank entering an MoE layer, and the unpadded capacity per expert per rank. */
export function tokensAndCapacity(job: TrainJob): { tokens: number; capacity: number } {
  const tokens = (job.microBatch * job.seqLen) / job.parallel.tp;
  const { topK, capacityFactor, experts } = job.model.moe;
  // Exact: capacity_factor is a decimal, so scale it to an integer ratio before the ceiling.
  const scale = 1e6;
  const capacity = Math.ceil((topK * Math.round(capacityFactor * scale) * tokens) / (experts * scale));
  return { tokens, capacity };
}

/** A few lines describing one job. */
export function summarize(job: TrainJob): string {
  const m = job.model;
  const c = job.cluster;
  const p = job.parallel;
  const { tokens, capacity } = tokensAndCapacity(job);
  const moe = m.moe;
  const lines = [
    `train ${job.name}${job.sweep ? `  (sweep ${job.sweep.name}: ${job.sweep.point.map(([k, v]) => `${k} = ${v}`).join(", ")})` : ""}`,
    `  model     ${m.name}: ${m.kind === "layer" ? "one MoE layer" : `${m.layers} layers (${m.moeLayers.length} MoE)`}, hidden ${m.hidden}, ` +
      `${moe.experts} experts top-${moe.topK}, expert FFN ${moe.expertHidden} ${moe.activation}, router ${moe.router}, ${m.dtype}`,
    `  cluster   ${c.name}: ${c.nodes} × ${c.gpusPerNode} GPUs (${c.device.name}, ${si(c.device.peakFlops, "FLOP/s")}, ${si(c.device.memory, "B")}), ` +
      `intra ${si(c.intra.bandwidth, "B/s")}, inter ${c.nicsPerNode} × ${si(c.inter.bandwidth, "B/s")}`,
    `  layout    tp ${p.tp}, esp ${p.esp}, ep ${p.ep}, edp ${p.edp}: ${plural(moe.experts / p.ep, "expert")} per rank${p.esp > 1 ? `, each sharded ${p.esp} ways` : ", unsharded"}`,
    `  tokens    ${job.microBatch} × ${job.seqLen} per micro-batch, ${plural(job.microBatches, "micro-batch", "micro-batches")}; ${tokens} tokens per rank per MoE layer, capacity ${capacity} per expert`,
    `  schedule  ${job.schedule}, pipeline ${job.pipeline.forward === job.pipeline.backward ? job.pipeline.forward : `forward ${job.pipeline.forward}, backward ${job.pipeline.backward}`}, gradients ${job.gradients}, recompute ${job.recompute}, seed ${job.seed}`,
  ];
  return lines.join("\n") + "\n";
}


function ms(us: number): string {
  return us >= 1e6 ? `${(us / 1e6).toFixed(3)} s` : `${(us / 1000).toFixed(2)} ms`;
}

function gib(bytes: number): string {
  for (const [unit, f] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) if (bytes >= f) return `${(bytes / f).toFixed(1)} ${unit}`;
  return `${bytes} B`;
}

function orderName(p: LayerPlan["forward"]): string {
  const s = p.style;
  return `r=${p.degree} ${s.kind === "interleaved" ? `interleaved/${s.lookahead}` : s.kind}`;
}

/** Layer indices as text: `L3`, `L0–L24`, `L1–L23 every 2nd`, or a list. */
export function layerSet(indices: readonly number[]): string {
  const a = indices[0]!;
  const b = indices[indices.length - 1]!;
  if (indices.length === 1) return `L${a}`;
  const step = indices[1]! - a;
  if (indices.every((x, i) => x === a + i * step)) return step === 1 ? `L${a}–L${b}` : `L${a}–L${b} every ${step === 2 ? "2nd" : step === 3 ? "3rd" : `${step}th`}`;
  return indices.map((x) => `L${x}`).join(", ");
}

/** Consecutive MoE layers with the same capacity, degrees and orders, as ranges. */
export function layerRuns(layers: readonly LayerPlan[]): string[] {
  const out: string[] = [];
  let start = 0;
  const key = (l: LayerPlan) => `C=${l.capacity}, forward ${orderName(l.forward)}, backward ${orderName(l.backward)}`;
  for (let i = 1; i <= layers.length; i++) {
    if (i < layers.length && key(layers[i]!) === key(layers[start]!)) continue;
    out.push(`${layerSet(layers.slice(start, i).map((l) => l.layer))}: ${key(layers[start]!)}`);
    start = i;
  }
  return out;
}

/** The summary of a compiled job: prediction, degrees, speedups over the other strategies, memory. */
export function summarizeCompiled(r: JobResult): string {
  const c = r.compiled!;
  const t = c.timeline.makespanUs;
  const lines = [summarize(r.job).trimEnd()];
  lines.push(`  predicted ${ms(t)} per iteration with ${r.strategy} (${(t / c.lowerBoundUs).toFixed(2)}× the lower bound ${ms(c.lowerBoundUs)}); cost model ${c.costModel.name}`);
  const layers = [...c.schedule.layers.values()].sort((a, b) => a.layer - b.layer);
  for (const run of layerRuns(layers)) lines.push(`    ${run}`);
  const others = STRATEGY_NAMES.filter((s) => s !== r.strategy && r.others.has(s)).map((s) => {
    const o = r.others.get(s)!.timeline.makespanUs;
    return `${s} ${ms(o)} (${(o / t).toFixed(2)}×)`;
  });
  if (others.length > 0) lines.push(`  speedup of ${r.strategy} over ${others.join(", ")}`);
  const m = c.job.cluster.device.memory;
  lines.push(`  peak memory ${gib(c.peakBytes)} of ${gib(m)} per GPU (weights ${gib(c.staticMemory.weightBytes)}, optimizer ${gib(c.staticMemory.optimizerBytes)}, gradients ${gib(c.memory.persistentBytes)}, activations ${gib(c.memory.arenaBytes)})`);
  return lines.join("\n") + "\n";
}

/** The summary as JSON (`--format json`). */
export function summaryJson(r: JobResult): unknown {
  const c = r.compiled!;
  return {
    job: r.job.name,
    strategy: r.strategy,
    predictedUs: c.timeline.makespanUs,
    lowerBoundUs: c.lowerBoundUs,
    peakBytes: c.peakBytes,
    layers: [...c.schedule.layers.values()].sort((a, b) => a.layer - b.layer).map((l) => ({ layer: l.layer, capacity: l.capacity, forward: l.forward, backward: l.backward })),
    strategies: Object.fromEntries([...r.others].map(([s, o]) => [s, { predictedUs: o.timeline.makespanUs, speedup: o.timeline.makespanUs / c.timeline.makespanUs }])),
  };
}

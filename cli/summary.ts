/**
 * The summary `fsmoec FILE` prints for each checked train job: the model, the cluster, the
 * parallel layout and the token and capacity figures the layout implies (LANGUAGE.md,
 * "Training semantics"): T = micro_batch · seq_len / tp tokens per rank entering an MoE layer,
 * C0 = ceil(top_k · capacity_factor · T / experts) slots per expert per rank.
 */
import type { TrainJob } from "../compiler/check/program.js";

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
    `  layout    tp ${p.tp}, esp ${p.esp}, ep ${p.ep}, edp ${p.edp}: ${plural(moe.experts / p.ep, "expert")} per rank, each sharded ${p.esp} ways`,
    `  tokens    ${job.microBatch} × ${job.seqLen} per micro-batch, ${plural(job.microBatches, "micro-batch", "micro-batches")}; ${tokens} tokens per rank per MoE layer, capacity ${capacity} per expert`,
    `  schedule  ${job.schedule}, pipeline ${job.pipeline.forward === job.pipeline.backward ? job.pipeline.forward : `forward ${job.pipeline.forward}, backward ${job.pipeline.backward}`}, gradients ${job.gradients}, recompute ${job.recompute}, seed ${job.seed}`,
  ];
  return lines.join("\n") + "\n";
}

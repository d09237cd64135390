/**
 * The `listing` target: a plan a person can read — the job, the prediction, each MoE layer's
 * degrees, orders and gradient slots, then every op in issue order with its stream, predicted
 * start and duration, size and the ops it waits for. Golden files of the examples use it.
 */
import { timeline } from "../compiler/graph/timeline.js";
import type { Plan } from "../compiler/plan/schema.js";

function ms(us: number): string {
  return `${(us / 1000).toFixed(3)} ms`;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

function order(o: Plan["layers"][number]["forward"]["order"]): string {
  return o.kind === "interleaved" ? `interleaved/${o.lookahead}` : o.kind;
}

function size(op: Plan["ops"][number]): string {
  if (op.macs > 0) return `${op.macs} MAC`;
  if (op.bytes > 0) return `${op.bytes} B`;
  return op.elements > 0 ? `${op.elements} el` : "-";
}

/** The listing text of a plan; start times are computed from the plan's own ops and waits. */
export function emitListing(plan: Plan): string {
  const starts = timeline(plan).start;
  const j = plan.job;
  const p = plan.predicted;
  const out: string[] = [];
  out.push(`plan ${j.name}: ${plan.strategy} on ${j.cluster.nodes} × ${j.cluster.gpusPerNode} ${j.cluster.device} (${plan.costModel.name})`);
  out.push(`  model ${j.model.name}: ${j.model.layers} layers, ${j.model.moeLayers.length} MoE, hidden ${j.model.hidden}, ${j.model.experts} experts top-${j.model.topK}, ${j.model.dtype}`);
  out.push(`  layout tp ${j.parallel.tp} esp ${j.parallel.esp} ep ${j.parallel.ep} edp ${j.parallel.edp}; ${j.microBatches} × micro-batch ${j.microBatch} × ${j.seqLen}; C0 = ${plan.capacity0}`);
  out.push(`  predicted ${ms(p.iterationUs)} per iteration; lower bound ${ms(p.lowerBoundUs)} (${(p.iterationUs / p.lowerBoundUs).toFixed(3)}×); exposed communication ${ms(p.exposedCommunicationUs)}`);
  out.push(`  busy compute ${ms(p.busyUs.compute)}, intra ${ms(p.busyUs.intra)}, inter ${ms(p.busyUs.inter)}`);
  out.push(`  memory ${gib(plan.memory.peakBytes)} of ${gib(plan.memory.deviceBytes)}: weights ${gib(plan.memory.weightBytes)}, optimizer ${gib(plan.memory.optimizerBytes)}, arena ${gib(plan.memory.arenaBytes)}`);
  out.push("");
  out.push("layers");
  for (const l of plan.layers) {
    const grads = l.gapGradients.reduce((n, b) => n + b.parts.reduce((m, x) => m + x.elements, 0), 0);
    out.push(`  L${l.layer}: C = ${l.capacity}; forward r = ${l.forward.degree} ${order(l.forward.order)}; backward r = ${l.backward.degree} ${order(l.backward.order)}${grads > 0 ? `; carries ${grads} gradient elements` : ""}`);
  }
  const g = plan.gradients;
  const count = (list: { buckets: { parts: { elements: number }[] }[] }[]) => list.reduce((n, w) => n + w.buckets.reduce((m, b) => m + b.parts.reduce((k, x) => k + x.elements, 0), 0), 0);
  const tail = g.tail.reduce((n, b) => n + b.parts.reduce((m, x) => m + x.elements, 0), 0);
  out.push(`gradients on ${g.stream}: ${count(g.window)} elements in dense windows, ${count(g.immediate)} right after production, ${tail} after the backward`);
  out.push("");
  out.push("ops (issue order): id stream start+duration kind role layer dir mb chunk group size waits");
  for (const op of plan.ops) {
    const where = `${op.layer >= 0 ? `L${op.layer}` : "-"} ${op.dir} mb${op.microBatch}${op.chunk >= 0 ? ` c${op.chunk}` : ""}`;
    const waits = op.waits.length > 0 ? ` ← ${op.waits.join(",")}` : "";
    out.push(`${String(op.id).padStart(6)} ${op.stream.padEnd(7)} ${(starts[op.id] ?? 0).toFixed(3).padStart(12)}+${op.predictedUs.toFixed(3)} ${op.kind} ${op.role} ${where}${op.group ? ` @${op.group}` : ""} ${size(op)}${waits}`);
  }
  return out.join("\n") + "\n";
}

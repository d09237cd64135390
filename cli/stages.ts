/**
 * `--print-after STAGE` for the per-job stages (compiler/index.ts lists them): each stage's
 * value as text.
 */
import { emitJson } from "../codegen/json.js";
import { emitListing } from "../codegen/listing.js";
import type { JobResult } from "../compiler/compile/index.js";
import { verifyGraph } from "../compiler/verify/index.js";
import { shapesOf } from "../compiler/compile/index.js";

function stripSpans(key: string, value: unknown): unknown {
  return key === "span" || key === "spans" ? undefined : value;
}

/** The text of one stage's value for one compiled job. */
export function printStage(stage: string, r: JobResult): string {
  const c = r.compiled!;
  switch (stage) {
    case "lower": {
      const { job, ...rest } = c.workload;
      return JSON.stringify({ job: job.name, ...rest }, stripSpans, 2) + "\n";
    }
    case "cost":
      return c.costModel.description.startsWith(`${c.costModel.name}:`) ? `${c.costModel.description}\n` : `${c.costModel.name}: ${c.costModel.description}\n`;
    case "schedule": {
      const s = c.schedule;
      const lines = [`schedule ${r.job.name}: ${s.strategy}`, ...s.notes.map((n) => `  note: ${n}`)];
      for (const l of [...s.layers.values()].sort((a, b) => a.layer - b.layer)) {
        lines.push(`  L${l.layer}: C=${l.capacity} forward r=${l.forward.degree} ${JSON.stringify(l.forward.style)} backward r=${l.backward.degree} ${JSON.stringify(l.backward.style)} gap ${JSON.stringify(l.gapGrads)}`);
      }
      lines.push(`  gradients: ${JSON.stringify({ stream: s.gradients.stream, window: [...s.gradients.window], immediate: [...s.gradients.immediate], tail: s.gradients.tail })}`);
      return lines.join("\n") + "\n";
    }
    case "graph":
      return r.plan ? emitListing(r.plan) : "";
    case "verify": {
      const issues = verifyGraph(c.graph, { shapes: shapesOf(c.workload, c.schedule) });
      return issues.length === 0 ? `${r.job.name}: ${c.graph.ops.length} ops verified: acyclic, race-free, shapes consistent\n` : issues.map((i) => `${i.code}: ${i.message}`).join("\n") + "\n";
    }
    case "memory": {
      const lines = [`memory ${r.job.name}: persistent ${c.memory.persistentBytes} B, arena ${c.memory.arenaBytes} B, weights ${c.staticMemory.weightBytes} B, optimizer ${c.staticMemory.optimizerBytes} B, peak ${c.peakBytes} B`];
      for (const b of c.graph.buffers) {
        const life = c.memory.lifetimes.get(b.id);
        lines.push(`  ${String(b.id).padStart(5)} ${b.name} ${b.bytes} B @ ${c.memory.offsets.get(b.id) ?? 0}${b.persistent ? " persistent" : life ? ` ops ${JSON.stringify(life)}` : ""}`);
      }
      return lines.join("\n") + "\n";
    }
    case "plan":
      return r.plan ? emitJson(r.plan) : "";
    default:
      return "";
  }
}

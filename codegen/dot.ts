/**
 * The `dot` target: the plan's task graph in Graphviz DOT (ARCHITECTURE.md, "TaskGraph / Plan").
 * One cluster per stream holds that stream's ops in issue order, chained by dimmed dotted
 * program-order edges (left to right, so the picture reads like a timeline); every wait is a
 * solid edge from the op waited for to the waiting op. A node shows the op's id, kind, role,
 * layer, direction, micro-batch, chunk, group, size and predicted time, filled with the kind's
 * colour (the SVG timeline's palette). Big plans give big but valid graphs
 * (`dot -Tsvg plan.dot`; for thousands of ops, `sfdp` or a viewer such as xdot is kinder).
 */
import type { Plan, PlanOp } from "../compiler/plan/schema.js";
import { KIND_COLOURS, STREAMS, opName, size } from "./common.js";

/** A DOT double-quoted string. */
function quote(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/** Black or white text, whichever reads better on `hex`. */
function ink(hex: string): string {
  const n = parseInt(hex.slice(1), 16);
  const luma = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
  return luma < 140 ? "#ffffff" : "#000000";
}

function label(op: PlanOp): string {
  const where = `${op.layer >= 0 ? `L${op.layer}` : "-"} ${op.dir} mb${op.microBatch}${op.chunk >= 0 ? ` c${op.chunk}` : ""}`;
  return `#${op.id} ${op.kind}\n${op.role === op.kind ? "" : `${op.role} `}${where}${op.group ? ` @${op.group}` : ""}\n${size(op)} · ${op.predictedUs} µs`;
}

/** The DOT text of a plan's task graph. */
export function emitDot(plan: Plan): string {
  const j = plan.job;
  const out: string[] = [];
  out.push(`digraph ${quote(j.name)} {`);
  const title = `${j.name}: ${plan.strategy}, ${plan.ops.length} ops, predicted ${(plan.predicted.iterationUs / 1000).toFixed(3)} ms`;
  out.push(`  graph [rankdir=LR, fontname="Helvetica", fontsize=14, labelloc=t, label=${quote(title)}, nodesep=0.15, ranksep=0.25];`);
  out.push(`  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=9, margin="0.06,0.03"];`);
  out.push(`  edge [arrowsize=0.5];`);
  for (const stream of STREAMS) {
    const ops = plan.ops.filter((op) => op.stream === stream);
    if (ops.length === 0) continue;
    out.push(`  subgraph ${quote(`cluster_${stream}`)} {`);
    out.push(`    label=${quote(`${stream} stream (${ops.length} ops)`)}; labeljust=l; style="rounded,filled"; fillcolor="#f5f5f5"; color="#cccccc";`);
    for (const op of ops) {
      const fill = KIND_COLOURS[op.kind];
      out.push(`    op${op.id} [label=${quote(label(op))}, fillcolor=${quote(fill)}, fontcolor=${quote(ink(fill))}, tooltip=${quote(opName(op))}];`);
    }
    out.push("  }");
  }
  out.push("  // program order on each stream");
  for (const stream of STREAMS) {
    const ops = plan.ops.filter((op) => op.stream === stream);
    for (let i = 1; i < ops.length; i++) out.push(`  op${ops[i - 1]!.id} -> op${ops[i]!.id} [style=dotted, color="#bbbbbb", arrowhead=none];`);
  }
  out.push("  // waits");
  for (const op of plan.ops) for (const w of op.waits) out.push(`  op${w} -> op${op.id} [color="#333333"];`);
  out.push("}");
  return out.join("\n") + "\n";
}

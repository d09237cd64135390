/**
 * Shapes (SCHEDULING.md §1: capacity C = roundup(C0, lcm(r_fwd, r_bwd)), so every shape is
 * static and the r chunks of a module add up to it exactly). For each expected
 * {@link Shape} given in the options, the collectives with its layer, direction and role —
 * per micro-batch — must move exactly `totalBytes` in all. A role with no collective at all
 * is reported too. FSM4009.
 */
import type { Op } from "../graph/types.js";
import { COLLECTIVES } from "../graph/types.js";
import type { RankCheck } from "./check.js";
import { describeCollective, issue, type VerifyIssue } from "./issue.js";

/** How the sum came about, with the capacity numbers: "4 chunks × 3072" or "3072 + 3072 + 4096". */
function breakdown(ops: readonly Op[]): string {
  if (ops.length === 0) return "no collective has this layer, direction and role";
  if (ops.length === 1) return ops[0]!.chunk >= 0 ? `1 chunk of ${ops[0]!.bytes}` : "one collective";
  const b = ops[0]!.bytes;
  return ops.every((op) => op.bytes === b) ? `${ops.length} chunks × ${b}` : ops.map((op) => op.bytes).join(" + ");
}

/** The collectives of each expected shape add up to its total. */
export const shapesCheck: RankCheck = {
  name: "shapes",
  summary: "the chunks of each collective add up to the size its shape gives",
  check({ ops, where, options }) {
    const out: VerifyIssue[] = [];
    for (const shape of options.shapes ?? []) {
      const byMicroBatch = new Map<number, Op[]>();
      for (const op of ops) {
        if (!COLLECTIVES.has(op.kind) || op.layer !== shape.layer || op.dir !== shape.dir || op.role !== shape.role) continue;
        if (shape.microBatch !== undefined && op.microBatch !== shape.microBatch) continue;
        let list = byMicroBatch.get(op.microBatch);
        if (!list) byMicroBatch.set(op.microBatch, (list = []));
        list.push(op);
      }
      if (byMicroBatch.size === 0) {
        const what = `${shape.role}${shape.layer >= 0 ? ` L${shape.layer}` : ""} ${shape.dir}${shape.microBatch ? ` mb ${shape.microBatch}` : ""}`;
        out.push(issue("FSM4009", { what, sum: 0, detail: breakdown([]), total: shape.totalBytes }, [], where));
        continue;
      }
      for (const family of byMicroBatch.values()) {
        const sum = family.reduce((acc, op) => acc + op.bytes, 0);
        if (sum === shape.totalBytes) continue;
        out.push(
          issue("FSM4009", { what: describeCollective(family[0]!), sum, detail: breakdown(family), total: shape.totalBytes }, family.map((op) => op.id), where),
        );
      }
    }
    return out;
  },
};

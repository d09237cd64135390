/**
 * Well-formedness (ARCHITECTURE.md, "TaskGraph / Plan"): op ids are unique on a rank; every
 * wait names another op of the rank; every access names a buffer; every collective names a
 * known group. The other checks assume this and skip what it reports. FSM4011.
 */
import { COLLECTIVES } from "../graph/types.js";
import type { RankCheck } from "./check.js";
import { describeOp, issue, type VerifyIssue } from "./issue.js";

/** Op ids, waits, buffers and groups all resolve. */
export const structureCheck: RankCheck = {
  name: "structure",
  summary: "op ids are unique and every wait, buffer and group an op names exists",
  check({ ops, hb, buffers, groups, where }) {
    const out: VerifyIssue[] = [];
    const bad = (detail: string, ids: number[]) => out.push(issue("FSM4011", { detail }, ids, where));
    ops.forEach((op, i) => {
      const first = hb.indexOf.get(op.id)!;
      if (first !== i) bad(`${describeOp(op)} reuses the id of ${describeOp(ops[first]!)}`, [op.id]);
      for (const id of op.waits) {
        if (id === op.id) bad(`${describeOp(op)} waits for itself`, [op.id]);
        else if (!hb.indexOf.has(id)) bad(`${describeOp(op)} waits for op ${id}, which does not exist`, [op.id]);
      }
      for (const a of op.accesses) {
        if (!buffers.has(a.buffer)) bad(`${describeOp(op)} accesses buffer ${a.buffer}, which does not exist`, [op.id]);
        else if (!Number.isInteger(a.offset) || !Number.isInteger(a.bytes) || a.bytes < 0) {
          bad(`${describeOp(op)} accesses ${a.bytes} bytes at offset ${a.offset}, not a whole, non-negative byte range`, [op.id]);
        }
      }
      if (COLLECTIVES.has(op.kind)) {
        if (op.group === undefined) bad(`${describeOp(op)} is a collective without a group`, [op.id]);
        else if (!groups.has(op.group)) bad(`${describeOp(op)} runs on group '${op.group}', which does not exist`, [op.id]);
      }
    });
    return out;
  },
};

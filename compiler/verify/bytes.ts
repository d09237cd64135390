/**
 * Collective sizes (ARCHITECTURE.md, "The pipeline": capacity and shapes consistent). A
 * collective's `bytes` is its per-rank buffer size, the size the cost model prices
 * (SCHEDULING.md §1, table, and §2: all-to-all and ring collectives move a fraction of their
 * buffer). With P the group's size, the byte ranges it writes and reads must cover:
 *
 * | kind           | writes   | reads                                          |
 * |----------------|----------|------------------------------------------------|
 * | all_to_all     | bytes    | bytes (send and receive buffers are the same size) |
 * | all_gather     | bytes    | bytes / P (the gathered size is the output)    |
 * | reduce_scatter | bytes / P| bytes (the full, not yet scattered input)      |
 * | all_reduce     | bytes    | bytes, or none when in place (the write access stands for read-modify-write) |
 *
 * So `bytes` is always the larger side: a gather's output, a reduce-scatter's input. The sums
 * are over all of the op's accesses of that direction, whatever buffers they name. FSM4007.
 */
import type { Op, OpKind } from "../graph/types.js";
import { COLLECTIVES } from "../graph/types.js";
import type { RankCheck } from "./check.js";
import { describeOp, issue, type VerifyIssue } from "./issue.js";

interface Rule {
  /** Expected write and read totals for `bytes` and group size P; `inPlace` allows no reads. */
  readonly writes: (bytes: number, p: number) => number;
  readonly reads: (bytes: number, p: number) => number;
  readonly inPlace: boolean;
  readonly text: string;
}

const RULES: Readonly<Partial<Record<OpKind, Rule>>> = {
  all_to_all: { writes: (b) => b, reads: (b) => b, inPlace: false, text: "an all-to-all writes and reads its whole buffer" },
  all_gather: { writes: (b) => b, reads: (b, p) => b / p, inPlace: false, text: "an all-gather writes the gathered size and reads 1/P of it" },
  reduce_scatter: { writes: (b, p) => b / p, reads: (b) => b, inPlace: false, text: "a reduce-scatter reads its full input and writes 1/P of it" },
  all_reduce: { writes: (b) => b, reads: (b) => b, inPlace: true, text: "an all-reduce writes its whole buffer and reads it or works in place" },
};

function total(op: Op, write: boolean): number {
  let sum = 0;
  for (const a of op.accesses) if (a.write === write) sum += a.bytes;
  return sum;
}

/** Every collective's `bytes` agrees with the byte ranges it writes and reads (rule above). */
export const bytesCheck: RankCheck = {
  name: "bytes",
  summary: "every collective's bytes equals what its accesses cover, per the rule of its kind",
  check({ ops, groups, where }) {
    const out: VerifyIssue[] = [];
    for (const op of ops) {
      if (!COLLECTIVES.has(op.kind)) continue;
      const rule = RULES[op.kind];
      const group = op.group === undefined ? undefined : groups.get(op.group);
      if (!rule || !group) continue;
      const p = group.size;
      const report = (side: string, actual: number, expected: number) =>
        out.push(issue("FSM4007", { op: describeOp(op), bytes: op.bytes, side, actual, expected, rule: `${rule.text}, P = ${p}` }, [op.id], where));
      const writes = total(op, true);
      const reads = total(op, false);
      const expectedWrites = rule.writes(op.bytes, p);
      const expectedReads = rule.reads(op.bytes, p);
      if (writes !== expectedWrites) report("writes", writes, expectedWrites);
      if (reads !== expectedReads && !(rule.inPlace && reads === 0)) report("reads", reads, expectedReads);
    }
    return out;
  },
};

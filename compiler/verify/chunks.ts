/**
 * Pipeline chunks (SCHEDULING.md §1: modules 3–7 are split into r chunks along the capacity
 * dimension, every chunk balanced and the same size). The chunked collectives of one
 * (kind, role, layer, direction, micro-batch, group) must be numbered 0 … r−1, each once
 * (FSM4010), and all move the same number of bytes (FSM4008).
 */
import type { Op } from "../graph/types.js";
import { COLLECTIVES } from "../graph/types.js";
import type { RankCheck } from "./check.js";
import { describeCollective, describeOp, issue, type VerifyIssue } from "./issue.js";

/** The chunked collectives of a sequence, grouped by what they are chunks of, in issue order. */
export function chunkFamilies(ops: readonly Op[]): Map<string, Op[]> {
  const families = new Map<string, Op[]>();
  for (const op of ops) {
    if (!COLLECTIVES.has(op.kind) || op.chunk < 0) continue;
    const key = [op.kind, op.role, op.layer, op.dir, op.microBatch, op.group ?? ""].join("\u0000");
    let list = families.get(key);
    if (!list) families.set(key, (list = []));
    list.push(op);
  }
  return families;
}

/** Chunks of one collective are numbered 0 … r−1 and have equal size. */
export const chunksCheck: RankCheck = {
  name: "chunks",
  summary: "the chunks of one collective are numbered 0 … r−1, each once, and are the same size",
  check({ ops, where }) {
    const out: VerifyIssue[] = [];
    for (const family of chunkFamilies(ops).values()) {
      const what = describeCollective(family[0]!);
      const numbers = family.map((op) => op.chunk).sort((a, b) => a - b);
      if (numbers.some((c, i) => c !== i)) {
        out.push(issue("FSM4010", { what, found: numbers.join(", "), last: family.length - 1 }, family.map((op) => op.id), where));
      }
      const first = family.reduce((a, b) => (b.chunk < a.chunk ? b : a));
      const odd = family.find((op) => op.bytes !== first.bytes);
      if (odd) {
        out.push(
          issue(
            "FSM4008",
            { what, chunkA: first.chunk, opA: describeOp(first), bytesA: first.bytes, chunkB: odd.chunk, opB: describeOp(odd), bytesB: odd.bytes },
            [first.id, odd.id],
            where,
          ),
        );
      }
    }
    return out;
  },
};

/**
 * Bounds (ARCHITECTURE.md, "The pipeline": capacity and shapes consistent): every access lies
 * inside its buffer, `0 ≤ offset` and `offset + bytes ≤ buffer.bytes`. The arena packs buffers
 * back to back (compiler/memory/), so an access past the end silently corrupts a neighbour.
 * FSM4006.
 */
import type { RankCheck } from "./check.js";
import { describeOp, issue, type VerifyIssue } from "./issue.js";

/** Every access lies inside its buffer. */
export const boundsCheck: RankCheck = {
  name: "bounds",
  summary: "every access lies inside its buffer",
  check({ ops, buffers, where }) {
    const out: VerifyIssue[] = [];
    for (const op of ops) {
      for (const a of op.accesses) {
        const buffer = buffers.get(a.buffer);
        if (!buffer) continue;
        if (a.offset >= 0 && a.offset + a.bytes <= buffer.bytes) continue;
        out.push(
          issue(
            "FSM4006",
            {
              op: describeOp(op),
              action: a.write ? "writes" : "reads",
              start: a.offset,
              end: a.offset + a.bytes,
              buffer: `'${buffer.name}' (id ${buffer.id})`,
              size: buffer.bytes,
            },
            [op.id],
            where,
          ),
        );
      }
    }
    return out;
  },
};

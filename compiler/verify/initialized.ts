/**
 * Initialized reads (ARCHITECTURE.md, "TaskGraph / Plan"): a transient buffer starts with
 * whatever the arena held (another buffer's old data), so every byte an op reads from it must be
 * written by an op that does not happen after the read. A read whose bytes only later writes
 * cover — a consumer issued ahead of its producer on the same stream — reads garbage in every
 * execution, and no race shows it. (A write that is merely unordered with the read is a race,
 * which the race check reports.) Persistent buffers (weights, gradients, the iteration's inputs)
 * hold data across iterations and are exempt, and so is a transient buffer nothing writes: it
 * is an input the runtime loads. It reports consequences, so verify.ts runs it only on a plan
 * in which every other check found nothing. FSM4013.
 */
import type { RankCheck } from "./check.js";
import { describeOp, issue, type VerifyIssue } from "./issue.js";
import { before } from "./order.js";

interface Span {
  readonly index: number;
  readonly start: number;
  readonly end: number;
}

/** Whether [start, end) is covered by the union of the given intervals. */
function covered(start: number, end: number, intervals: Span[]): boolean {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  let reach = start;
  for (const w of sorted) {
    if (w.start > reach) break;
    if (w.end > reach) reach = w.end;
    if (reach >= end) return true;
  }
  return reach >= end;
}

/** Every read of a transient buffer is covered by writes that happen before it. */
export const initializedCheck: RankCheck = {
  name: "initialized",
  summary: "no byte of a transient buffer is read before every write of it",
  check({ ops, hb, buffers, where }) {
    const writes = new Map<number, Span[]>();
    const reads: { buffer: number; span: Span }[] = [];
    ops.forEach((op, index) => {
      for (const a of op.accesses) {
        const buffer = buffers.get(a.buffer);
        if (!buffer || buffer.persistent || a.bytes <= 0) continue;
        const span = { index, start: a.offset, end: a.offset + a.bytes };
        if (a.write) {
          const list = writes.get(a.buffer) ?? [];
          list.push(span);
          writes.set(a.buffer, list);
        } else reads.push({ buffer: a.buffer, span });
      }
    });
    const out: VerifyIssue[] = [];
    for (const { buffer, span } of reads) {
      const all = writes.get(buffer);
      if (!all) continue;
      // An op that writes the range it reads works in place; its own write counts.
      const notLater = all.filter((w) => w.index === span.index || !before(hb, span.index, w.index));
      if (covered(span.start, span.end, notLater)) continue;
      const b = buffers.get(buffer)!;
      const op = ops[span.index]!;
      out.push(issue("FSM4013", { op: describeOp(op), start: span.start, end: span.end, buffer: `'${b.name}' (id ${b.id})` }, [op.id], where));
    }
    return out;
  },
};

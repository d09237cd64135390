/**
 * Race freedom (ARCHITECTURE.md, "The pipeline": every conflicting buffer access ordered by
 * happens-before). Two accesses conflict when they overlap in bytes of one buffer and at least
 * one writes; ops of one stream are ordered by program order, ops of different streams only
 * through events. FSM4002.
 *
 * The check never looks at all pairs. Per buffer, the access boundaries (sorted offsets) cut
 * the buffer into segments; the ops are then visited in a topological order of happens-before,
 * and each segment remembers its last write and, per stream, its last read since that write
 * (the FastTrack idea: earlier reads on a stream precede the last one by program order, so one
 * per stream is enough). A write must come after the last write and those reads; a read after
 * the last write; each test is one vector-clock lookup (order.ts). The cost is
 * O(ops · streams + accesses · segments each covers), linear for plans whose accesses are
 * whole buffers or chunk slices. At least one race is reported for every racing region.
 */
import { STREAMS } from "../graph/types.js";
import type { RankCheck } from "./check.js";
import { DEFAULT_MAX_ISSUES } from "./check.js";
import { describeOp, issue, type VerifyIssue } from "./issue.js";
import { before } from "./order.js";

const S = STREAMS.length;

/** The first index in sorted `xs` whose value is ≥ x. */
function lowerBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Every pair of conflicting accesses is ordered by happens-before; reports both ops and the buffer. */
export const raceCheck: RankCheck = {
  name: "race",
  summary: "every two overlapping accesses of a buffer, one a write, are ordered by program order or events",
  check({ ops, hb, buffers, where, options }) {
    const limit = options.maxIssues ?? DEFAULT_MAX_ISSUES;
    // Flatten the accesses op by op; opStart[v] .. opStart[v + 1] are op v's.
    const opStart = new Int32Array(ops.length + 1);
    const accOp: number[] = [];
    const accBuffer: number[] = [];
    const accStart: number[] = [];
    const accEnd: number[] = [];
    const accWrite: boolean[] = [];
    const offsets = new Map<number, number[]>();
    ops.forEach((op, v) => {
      opStart[v] = accOp.length;
      for (const a of op.accesses) {
        // Unknown buffers and malformed ranges are reported by the structure check.
        if (!buffers.has(a.buffer) || !(a.bytes > 0) || !Number.isFinite(a.offset) || !Number.isFinite(a.bytes)) continue;
        accOp.push(v);
        accBuffer.push(a.buffer);
        accStart.push(a.offset);
        accEnd.push(a.offset + a.bytes);
        accWrite.push(a.write);
        let list = offsets.get(a.buffer);
        if (!list) offsets.set(a.buffer, (list = []));
        list.push(a.offset, a.offset + a.bytes);
      }
    });
    opStart[ops.length] = accOp.length;

    // Segments: per buffer, the sorted distinct boundaries; segment k of a buffer lies between
    // boundaries k and k + 1 and has global index base + k.
    const bounds = new Map<number, { base: number; cuts: number[] }>();
    let segments = 0;
    for (const [buffer, list] of offsets) {
      const cuts = [...new Set(list)].sort((x, y) => x - y);
      bounds.set(buffer, { base: segments, cuts });
      segments += cuts.length - 1;
    }
    const lastWrite = new Int32Array(segments).fill(-1);
    const lastRead = new Int32Array(segments * S).fill(-1);

    const out: VerifyIssue[] = [];
    const reported = new Set<string>();
    const race = (p: number, q: number) => {
      // Name the op issued first first, whichever the topological order visited first.
      const [x, y] = accOp[p]! <= accOp[q]! ? [p, q] : [q, p];
      const key = `${accBuffer[y]}:${accOp[x]}:${accOp[y]}`;
      if (reported.has(key)) return;
      reported.add(key);
      const buffer = buffers.get(accBuffer[y]!)!;
      const a = ops[accOp[x]!]!;
      const b = ops[accOp[y]!]!;
      out.push(
        issue(
          "FSM4002",
          {
            buffer: `'${buffer.name}' (id ${buffer.id})`,
            first: describeOp(a),
            firstAction: accWrite[x] ? "writes" : "reads",
            second: describeOp(b),
            secondAction: accWrite[y] ? "writes" : "reads",
            start: Math.max(accStart[x]!, accStart[y]!),
            end: Math.min(accEnd[x]!, accEnd[y]!),
          },
          [a.id, b.id],
          where,
        ),
      );
    };
    const ordered = (x: number, y: number) => accOp[x] === accOp[y] || before(hb, accOp[x]!, accOp[y]!);

    for (const v of hb.topology.order) {
      if (out.length >= limit) break;
      const s = hb.stream[v]!;
      // Reads first, so that an op that reads and writes a range leaves its write as the last.
      for (const writes of [false, true]) {
        for (let y = opStart[v]!; y < opStart[v + 1]!; y++) {
          if (accWrite[y] !== writes) continue;
          const { base, cuts } = bounds.get(accBuffer[y]!)!;
          const first = base + lowerBound(cuts, accStart[y]!);
          const end = base + lowerBound(cuts, accEnd[y]!);
          for (let k = first; k < end; k++) {
            const w = lastWrite[k]!;
            if (w >= 0 && !ordered(w, y)) race(w, y);
            if (writes) {
              for (let t = 0; t < S; t++) {
                const r = lastRead[k * S + t]!;
                if (r >= 0 && !ordered(r, y)) race(r, y);
                lastRead[k * S + t] = -1;
              }
              lastWrite[k] = y;
            } else {
              lastRead[k * S + s] = y;
            }
          }
        }
      }
    }
    return out.slice(0, limit);
  },
};

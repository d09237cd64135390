/**
 * When two transient buffers may share memory (ARCHITECTURE.md, "The pipeline":
 * compiler/memory/; happens-before as in compiler/verify/order.ts). Disjoint issue-order
 * lifetimes are not enough on three streams: issue order is only the host's enqueue order, and
 * an op issued later on one stream can run while an op issued earlier on another still runs.
 * In the FSMoE pipeline, the last dispatch D_r (inter) may still read the token buffer while
 * the first expert E_1 (compute), issued after it, writes its output — so those two buffers
 * must not overlap even though their issue-order lifetimes do not. Two buffers may share memory
 * only when their lifetimes are disjoint AND every access of one happens before every access
 * of the other. Sharing is never more than issue order alone would allow.
 *
 * To make the pair test O(1), each buffer X gets, per stream t, `release[t]`: the lowest
 * position on t of an op that happens after all of X's accesses (ops later on t follow it, so
 * the set is a suffix and a binary search over the stream finds it). Every access of Y follows
 * every access of X iff Y's earliest access on each stream t sits at or after `release_X[t]`.
 */
import type { TaskGraph } from "../graph/types.js";
import { happensBefore } from "../verify/order.js";
import { bufferLifetimes, type Lifetime } from "./lifetimes.js";

const S = 3;

/** What the reuse test needs to know about each buffer, by row (the buffer's index in `graph.buffers`). */
export interface Usage {
  readonly lifetimes: ReadonlyMap<number, Lifetime>;
  /** Buffer id → row. */
  readonly row: ReadonlyMap<number, number>;
  readonly first: Int32Array;
  readonly last: Int32Array;
  readonly persistent: Uint8Array;
  /** `firstPos[row · 3 + t]`: the lowest position on stream t of an op accessing the buffer (0: none). */
  readonly firstPos: Int32Array;
  /** `release[row · 3 + t]`: see the module comment (one past the stream's end when no op on t follows). */
  readonly release: Int32Array;
  /** False when the ops have a happens-before cycle: then nothing counts as ordered. */
  readonly acyclic: boolean;
}

/** Gather each buffer's lifetime, first accesses and release points. */
export function bufferUsage(graph: TaskGraph): Usage {
  const hb = happensBefore(graph.ops);
  const lifetimes = bufferLifetimes(graph);
  const n = graph.buffers.length;
  const row = new Map(graph.buffers.map((b, i) => [b.id, i]));
  const first = new Int32Array(n);
  const last = new Int32Array(n);
  const persistent = new Uint8Array(n);
  graph.buffers.forEach((b, i) => {
    const l = lifetimes.get(b.id)!;
    first[i] = l.first;
    last[i] = l.last;
    persistent[i] = l.persistent ? 1 : 0;
  });
  const firstPos = new Int32Array(n * S);
  const lastPos = new Int32Array(n * S);
  const streamOps: number[][] = [[], [], []];
  graph.ops.forEach((op, i) => {
    const s = hb.stream[i]!;
    const p = hb.position[i]!;
    streamOps[s]!.push(i);
    for (const a of op.accesses) {
      const r = row.get(a.buffer);
      if (r === undefined) continue;
      const k = r * S + s;
      if (firstPos[k] === 0 || p < firstPos[k]!) firstPos[k] = p;
      if (p > lastPos[k]!) lastPos[k] = p;
    }
  });
  const release = new Int32Array(n * S);
  for (let r = 0; r < n; r++) {
    for (let t = 0; t < S; t++) {
      const ops = streamOps[t]!;
      const follows = (i: number) => {
        for (let s = 0; s < S; s++) if (hb.clocks[i * S + s]! < lastPos[r * S + s]!) return false;
        return true;
      };
      let lo = 0;
      let hi = ops.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (follows(ops[mid]!)) hi = mid;
        else lo = mid + 1;
      }
      release[r * S + t] = lo + 1;
    }
  }
  return { lifetimes, row, first, last, persistent, firstPos, release, acyclic: hb.topology.acyclic };
}

/** Every access of the buffer in row x happens before every access of the one in row y. */
function allBefore(u: Usage, x: number, y: number): boolean {
  for (let t = 0; t < S; t++) {
    const p = u.firstPos[y * S + t]!;
    if (p > 0 && p < u.release[x * S + t]!) return false;
  }
  return true;
}

/**
 * True when the buffers in rows x and y must not overlap in memory: both persistent, or both
 * live at one issue index, or not ordered by happens-before (see the module comment). A
 * persistent buffer and a transient one live in different regions and never conflict here.
 */
export function rowsConflict(u: Usage, x: number, y: number): boolean {
  if (x === y) return false;
  if (u.persistent[x] || u.persistent[y]) return u.persistent[x] === 1 && u.persistent[y] === 1;
  if (u.first[x]! < 0 || u.first[y]! < 0) return false;
  if (u.first[x]! <= u.last[y]! && u.first[y]! <= u.last[x]!) return true;
  if (!u.acyclic) return true;
  return !(allBefore(u, x, y) || allBefore(u, y, x));
}

/** {@link rowsConflict} by buffer id. */
export function mustNotShare(u: Usage, a: number, b: number): boolean {
  return rowsConflict(u, u.row.get(a)!, u.row.get(b)!);
}

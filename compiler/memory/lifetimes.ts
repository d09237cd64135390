/**
 * Buffer lifetimes (ARCHITECTURE.md, "The pipeline": compiler/memory/, buffer lifetimes →
 * arena offsets). A persistent buffer (weights, gradients) lives the whole iteration; any other
 * from the first to the last op, in issue order, that accesses it.
 */
import type { TaskGraph } from "../graph/types.js";

/** When a buffer is live, as issue-order indices into `graph.ops` (inclusive). */
export interface Lifetime {
  /** -1 for a transient buffer no op accesses (it needs no memory). */
  readonly first: number;
  readonly last: number;
  readonly persistent: boolean;
}

/** The lifetime of every buffer of the graph, by buffer id. */
export function bufferLifetimes(graph: TaskGraph): Map<number, Lifetime> {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  graph.ops.forEach((op, i) => {
    for (const a of op.accesses) {
      if (!first.has(a.buffer)) first.set(a.buffer, i);
      last.set(a.buffer, i);
    }
  });
  const out = new Map<number, Lifetime>();
  for (const b of graph.buffers) {
    if (b.persistent) out.set(b.id, { first: 0, last: Math.max(graph.ops.length - 1, 0), persistent: true });
    else out.set(b.id, { first: first.get(b.id) ?? -1, last: last.get(b.id) ?? -1, persistent: false });
  }
  return out;
}

/** True when two lifetimes share an issue index (a never-used buffer overlaps nothing). */
export function lifetimesOverlap(a: Lifetime, b: Lifetime): boolean {
  if (a.first < 0 || b.first < 0) return false;
  return a.first <= b.last && b.first <= a.last;
}

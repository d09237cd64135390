/**
 * The memory planner (ARCHITECTURE.md, "The pipeline": compiler/memory/, buffer lifetimes →
 * arena offsets, peak bytes; "plan.json carries … buffers and the arena (offsets, peak)").
 *
 * One device allocation per rank: persistent buffers first, in id order, each at the next
 * 256-byte boundary (`persistentBytes` is that region's size, rounded up to 256); then the
 * arena, where transient buffers are placed by a deterministic greedy: sort by size descending,
 * then id ascending; place each at the lowest 256-aligned offset where it overlaps no placed
 * buffer it must not share memory with (reuse.ts: lifetimes overlapping in issue order, or not
 * ordered by happens-before). `arenaBytes` is the arena's peak — the highest end of a placed
 * buffer, rounded up to 256. Offsets are absolute: a transient buffer's offset is at least
 * `persistentBytes`. A transient buffer no op accesses gets the arena's first byte and no space.
 * Cost: O(buffers²) pair tests of O(1) each, after O(ops · streams) to order the ops.
 */
import type { TaskGraph } from "../graph/types.js";
import type { Lifetime } from "./lifetimes.js";
import { bufferUsage, rowsConflict } from "./reuse.js";

/** Every offset and region size is a multiple of this many bytes. */
export const ALIGNMENT = 256;

/** Where every buffer of a rank lives. */
export interface MemoryPlan {
  /** Buffer id → byte offset in the rank's allocation. */
  readonly offsets: ReadonlyMap<number, number>;
  /** Size of the persistent region at the start of the allocation. */
  readonly persistentBytes: number;
  /** Peak of the arena that follows it. */
  readonly arenaBytes: number;
  /** persistentBytes + arenaBytes: what the rank allocates. */
  readonly totalBytes: number;
  readonly lifetimes: ReadonlyMap<number, Lifetime>;
}

/** Round up to the alignment. */
export function align(bytes: number): number {
  return Math.ceil(bytes / ALIGNMENT) * ALIGNMENT;
}

/** Lay out every buffer of the graph (see the module comment). */
export function planMemory(graph: TaskGraph): MemoryPlan {
  const usage = bufferUsage(graph);
  const offsets = new Map<number, number>();
  let cursor = 0;
  for (const b of [...graph.buffers].filter((x) => x.persistent).sort((x, y) => x.id - y.id)) {
    offsets.set(b.id, cursor);
    cursor = align(cursor + b.bytes);
  }
  const persistentBytes = cursor;

  const transient = graph.buffers.filter((b) => !b.persistent).sort((x, y) => y.bytes - x.bytes || x.id - y.id);
  const placed: { row: number; offset: number; end: number }[] = [];
  let peak = 0;
  for (const b of transient) {
    const row = usage.row.get(b.id)!;
    if (usage.first[row]! < 0) {
      offsets.set(b.id, persistentBytes);
      continue;
    }
    const blocking = placed.filter((p) => rowsConflict(usage, p.row, row)).sort((x, y) => x.offset - y.offset);
    let offset = 0;
    for (const p of blocking) {
      if (offset + b.bytes <= p.offset) break;
      offset = Math.max(offset, align(p.end));
    }
    placed.push({ row, offset, end: offset + b.bytes });
    offsets.set(b.id, persistentBytes + offset);
    peak = Math.max(peak, offset + b.bytes);
  }
  const arenaBytes = align(peak);
  return { offsets, persistentBytes, arenaBytes, totalBytes: persistentBytes + arenaBytes, lifetimes: usage.lifetimes };
}

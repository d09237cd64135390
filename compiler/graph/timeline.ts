/**
 * The predicted timeline of a task graph (SCHEDULING.md §2): each stream runs its ops in issue
 * order; an op starts when its stream is free and every op it waits for has finished, and
 * takes its predicted time. Ranks are symmetric, so a collective starts when the local rank
 * reaches it. The makespan is the predicted iteration time; `busy` sums each stream's work.
 */
import type { Stream } from "./types.js";

/** What timing needs of an op (a graph's ops and a plan's ops both qualify). */
export interface TimedOp {
  readonly id: number;
  readonly stream: Stream;
  readonly waits: readonly number[];
  readonly predictedUs: number;
}

/** Start and end (µs) of every op, the makespan and each stream's busy time. */
export interface Timeline {
  readonly start: Float64Array;
  readonly end: Float64Array;
  readonly makespanUs: number;
  readonly busyUs: Readonly<Record<Stream, number>>;
}

/** Evaluate a graph whose ops are in a valid issue order (every wait points to an earlier op). */
export function timeline(graph: { readonly ops: readonly TimedOp[] }): Timeline {
  const n = graph.ops.length;
  const start = new Float64Array(n);
  const end = new Float64Array(n);
  const free: Record<Stream, number> = { compute: 0, intra: 0, inter: 0 };
  const busy: Record<Stream, number> = { compute: 0, intra: 0, inter: 0 };
  let makespan = 0;
  for (const op of graph.ops) {
    let t = free[op.stream];
    for (const w of op.waits) if (end[w]! > t) t = end[w]!;
    start[op.id] = t;
    end[op.id] = t + op.predictedUs;
    free[op.stream] = end[op.id]!;
    busy[op.stream] += op.predictedUs;
    if (end[op.id]! > makespan) makespan = end[op.id]!;
  }
  return { start, end, makespanUs: makespan, busyUs: busy };
}

/**
 * Happens-before on one rank (ARCHITECTURE.md, "TaskGraph / Plan"; SCHEDULING.md §3): each
 * stream is a FIFO, so an op runs after the op issued before it on the same stream, and after
 * every op it `waits` for (an event each). This module builds that graph once per op sequence,
 * orders it topologically and gives every op a vector clock over the three streams:
 * `clock(b)[s]` is the highest position on stream s of an op that happens before b (or is b).
 * Then op a happens before op b iff `clock(b)[stream(a)] ≥ position(a)`, an O(1) test after
 * O(ops · streams + waits) work. The cycle, race and memory checks share it.
 */
import { STREAMS, type Op, type Stream } from "../graph/types.js";
import { DigraphBuilder, findCycle, topologicalOrder, type Digraph, type Topology } from "./digraph.js";

const STREAM_INDEX: Readonly<Record<Stream, number>> = { compute: 0, intra: 1, inter: 2 };
const S = STREAMS.length;

/** Why an edge of the happens-before graph exists. */
export type EdgeKind = "stream" | "wait";

/** The happens-before relation of one op sequence (indices are positions in `ops`). */
export interface HappensBefore {
  readonly ops: readonly Op[];
  /** Op id → index in `ops` (the first op with that id, when ids repeat). */
  readonly indexOf: ReadonlyMap<number, number>;
  /** The stream of each op, as an index into STREAMS. */
  readonly stream: Uint8Array;
  /** Each op's 1-based position on its stream. */
  readonly position: Int32Array;
  readonly graph: Digraph;
  /** What each edge stands for, by the edge's builder index. */
  readonly edgeKind: readonly EdgeKind[];
  readonly topology: Topology;
  /** `clocks[i · 3 + s]`: see the module comment; zero for ops caught in a cycle. */
  readonly clocks: Int32Array;
}

/** The stream index of a stream name. */
export function streamIndex(stream: Stream): number {
  return STREAM_INDEX[stream];
}

/** Build the happens-before relation of an op sequence in issue order. */
export function happensBefore(ops: readonly Op[]): HappensBefore {
  const n = ops.length;
  const indexOf = new Map<number, number>();
  ops.forEach((op, i) => {
    if (!indexOf.has(op.id)) indexOf.set(op.id, i);
  });
  const stream = new Uint8Array(n);
  const position = new Int32Array(n);
  const last = new Int32Array(S).fill(-1);
  const count = new Int32Array(S);
  const builder = new DigraphBuilder(n);
  const edgeKind: EdgeKind[] = [];
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    const s = STREAM_INDEX[op.stream];
    stream[i] = s;
    position[i] = ++count[s]!;
    if (last[s]! >= 0) {
      builder.edge(last[s]!, i);
      edgeKind.push("stream");
    }
    last[s] = i;
    for (const id of op.waits) {
      const j = indexOf.get(id);
      // A wait may name an op issued later (the cycle check judges it). A wait on an unknown
      // op or on itself is reported by the structure check.
      if (j === undefined || j === i) continue;
      builder.edge(j, i);
      edgeKind.push("wait");
    }
  }
  const graph = builder.build();
  const topology = topologicalOrder(graph);
  const clocks = new Int32Array(n * S);
  for (const v of topology.order) {
    const row = v * S;
    for (let e = graph.predStart[v]!; e < graph.predStart[v + 1]!; e++) {
      const p = graph.preds[e]! * S;
      for (let s = 0; s < S; s++) if (clocks[p + s]! > clocks[row + s]!) clocks[row + s] = clocks[p + s]!;
    }
    clocks[row + stream[v]!] = position[v]!;
  }
  return { ops, indexOf, stream, position, graph, edgeKind, topology, clocks };
}

/**
 * True when op a happens strictly before op b (indices into the sequence). False for a = b, for
 * unordered pairs, and conservatively for ops caught in a cycle (they have no order).
 */
export function before(hb: HappensBefore, a: number, b: number): boolean {
  if (a === b || !hb.topology.done[a] || !hb.topology.done[b]) return false;
  return hb.clocks[b * S + hb.stream[a]!]! >= hb.position[a]!;
}

/** One cycle of the relation, if any (see {@link findCycle}); edges are builder indices. */
export function cycleOf(hb: HappensBefore): { nodes: number[]; edges: number[] } | undefined {
  return findCycle(hb.graph, hb.topology);
}

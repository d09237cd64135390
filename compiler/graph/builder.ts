/**
 * Building a task graph: ops are created with their data dependencies and placed on stream
 * lanes in each stream's FIFO order (which need not be the creation order: interleaved issue
 * orders place chunks out of creation order). `finish` turns the lanes into one issue order —
 * a topological order of stream order and dependencies, preferring earlier lanes' heads — and
 * numbers ops in that order. When no such order exists the lanes deadlock, and `finish`
 * reports the ops that are stuck at the lane heads instead.
 */
import type { Buffer, Group, Op, Stream, TaskGraph } from "./types.js";
import { STREAMS } from "./types.js";

/** An op before it has its final id: its dependencies (draft ids) instead of its waits. */
export type OpSpec = Omit<Op, "id" | "waits"> & {
  /** Ops that must complete first: producers of what this op reads, and so on. */
  readonly deps: readonly number[];
};

/** What `finish` returns: the graph, or the lane heads that wait on each other. */
export type Finished = { readonly ok: true; readonly graph: TaskGraph } | { readonly ok: false; readonly stuck: readonly OpSpec[] };

/** Accumulates ops, buffers and lanes. */
export class GraphBuilder {
  private readonly specs: OpSpec[] = [];
  private readonly buffers: Buffer[] = [];
  private readonly lanes = new Map<Stream, number[]>(STREAMS.map((s) => [s, []]));

  constructor(private readonly groups: readonly Group[]) {}

  /** A new buffer of the arena (or a persistent one: weights, gradients). */
  buffer(name: string, bytes: number, persistent = false): number {
    const id = this.buffers.length;
    this.buffers.push({ id, name, bytes: Math.max(0, Math.ceil(bytes)), persistent });
    return id;
  }

  /** The size of a buffer made by {@link buffer}. */
  bufferBytes(id: number): number {
    return this.buffers[id]!.bytes;
  }

  /** Create an op without placing it on its lane (the caller places it with {@link place}). */
  create(spec: OpSpec): number {
    this.specs.push(spec);
    return this.specs.length - 1;
  }

  /** Append an op to its stream's lane. */
  place(id: number): void {
    this.lanes.get(this.specs[id]!.stream)!.push(id);
  }

  /** Create an op and append it to its lane. */
  add(spec: OpSpec): number {
    const id = this.create(spec);
    this.place(id);
    return id;
  }

  /** The spec of a draft op. */
  spec(id: number): OpSpec {
    return this.specs[id]!;
  }

  /** Resolve the lanes into one issue order and number the ops in it. */
  finish(): Finished {
    const lanes = STREAMS.map((s) => this.lanes.get(s)!);
    const heads = lanes.map(() => 0);
    const done = new Uint8Array(this.specs.length);
    const order: number[] = [];
    const placed = lanes.reduce((n, l) => n + l.length, 0);
    while (order.length < placed) {
      let progressed = false;
      for (let s = 0; s < lanes.length; s++) {
        const lane = lanes[s]!;
        while (heads[s]! < lane.length) {
          const id = lane[heads[s]!]!;
          if (!this.specs[id]!.deps.every((d) => done[d])) break;
          done[id] = 1;
          order.push(id);
          heads[s]!++;
          progressed = true;
        }
      }
      if (!progressed) {
        const stuck = lanes.flatMap((lane, s) => (heads[s]! < lane.length ? [this.specs[lane[heads[s]!]!]!] : []));
        return { ok: false, stuck };
      }
    }
    const newId = new Int32Array(this.specs.length).fill(-1);
    order.forEach((draft, i) => (newId[draft] = i));
    const ops: Op[] = order.map((draft, i) => {
      const spec = this.specs[draft]!;
      // Keep one wait per other stream: the latest dependency on it (earlier ones are implied by FIFO order).
      const latest = [-1, -1, -1];
      for (const d of spec.deps) {
        const s = this.specs[d]!.stream;
        if (s === spec.stream) continue;
        const k = STREAMS.indexOf(s);
        if (latest[k]! < newId[d]!) latest[k] = newId[d]!;
      }
      return {
        id: i,
        kind: spec.kind,
        stream: spec.stream,
        layer: spec.layer,
        dir: spec.dir,
        microBatch: spec.microBatch,
        chunk: spec.chunk,
        role: spec.role,
        waits: latest.filter((x) => x >= 0).sort((a, b) => a - b),
        accesses: spec.accesses,
        elements: spec.elements,
        macs: spec.macs,
        bytes: spec.bytes,
        group: spec.group,
        ...(spec.reduce !== undefined && { reduce: spec.reduce }),
        ...(spec.expert !== undefined && { expert: spec.expert }),
        predictedUs: spec.predictedUs,
      };
    });
    return { ok: true, graph: { groups: this.groups, buffers: this.buffers, ops } };
  }
}

/**
 * Hand-made task graphs for the verifier's and memory planner's tests (ARCHITECTURE.md,
 * "TaskGraph / Plan"): a small builder, and the chunked MoE pipeline of SCHEDULING.md §3 on
 * three streams (D_i on inter → AG_i on intra → E_i on compute → RS_i on intra → C_i on inter)
 * with a choice of issue orders on the two communication streams.
 */
import type { Access, Buffer, Direction, Group, Op, OpKind, Stream, TaskGraph } from "../graph/types.js";

/** An access as tests write it: the whole buffer unless offset/bytes say otherwise. */
export interface AccessSpec {
  readonly buffer: number;
  readonly offset?: number;
  readonly bytes?: number;
}

/** An op as tests write it; everything but kind, stream and role has a default. */
export interface OpSpec {
  readonly kind: OpKind;
  readonly stream: Stream;
  readonly role: string;
  readonly layer?: number;
  readonly dir?: Direction;
  readonly microBatch?: number;
  readonly chunk?: number;
  readonly waits?: readonly number[];
  readonly reads?: readonly AccessSpec[];
  readonly writes?: readonly AccessSpec[];
  readonly bytes?: number;
  readonly group?: string;
}

/** Builds a TaskGraph; op ids start at 1 so that ids and indices differ. */
export class GraphBuilder {
  readonly groups: Group[] = [];
  readonly buffers: Buffer[] = [];
  readonly ops: Op[] = [];

  /** Add a group; returns its name. */
  group(name: string, size: number, stride: number, span: Group["span"] = "intra"): string {
    this.groups.push({ name, size, stride, span, membersPerNode: span === "inter" ? 1 : size, nodes: span === "inter" ? size : 1 });
    return name;
  }

  /** Add a buffer; returns its id. */
  buffer(name: string, bytes: number, persistent = false): number {
    const id = this.buffers.length;
    this.buffers.push({ id, name, bytes, persistent });
    return id;
  }

  /** The op an OpSpec describes, with the next free id (not yet added). */
  make(spec: OpSpec, id = this.ops.length + 1): Op {
    const access = (a: AccessSpec, write: boolean): Access => ({
      buffer: a.buffer,
      offset: a.offset ?? 0,
      bytes: a.bytes ?? this.buffers[a.buffer]!.bytes - (a.offset ?? 0),
      write,
    });
    const op: Op = {
      id,
      kind: spec.kind,
      stream: spec.stream,
      layer: spec.layer ?? 0,
      dir: spec.dir ?? "fwd",
      microBatch: spec.microBatch ?? 0,
      chunk: spec.chunk ?? -1,
      role: spec.role,
      waits: spec.waits ?? [],
      accesses: [...(spec.reads ?? []).map((a) => access(a, false)), ...(spec.writes ?? []).map((a) => access(a, true))],
      elements: 0,
      macs: 0,
      bytes: spec.bytes ?? 0,
      predictedUs: 1,
    };
    return spec.group === undefined ? op : { ...op, group: spec.group };
  }

  /** Add an op in issue order; returns its id. */
  op(spec: OpSpec): number {
    const op = this.make(spec);
    this.ops.push(op);
    return op.id;
  }

  /** The graph built so far. */
  build(): TaskGraph {
    return { groups: [...this.groups], buffers: [...this.buffers], ops: [...this.ops] };
  }
}

/** The pipeline's ops of one layer, by stage and chunk (ids). */
export interface PipelineLayer {
  readonly order: number;
  readonly D: number[];
  readonly AG: number[];
  readonly E: number[];
  readonly RS: number[];
  readonly C: number[];
  readonly iorder: number;
}

/** Options of {@link moePipeline}. */
export interface PipelineOptions {
  /** Pipeline degree r (chunks per MoE block). */
  readonly degree: number;
  /** Bytes of one all-to-all chunk per rank. */
  readonly chunkBytes?: number;
  /** GPUs per node (the `node` group, stride 1) and nodes (the `rail` group, stride = gpus). */
  readonly gpus?: number;
  readonly nodes?: number;
  /** MoE layers, one after another on the same streams. */
  readonly layers?: number;
  /**
   * Issue order on inter and intra. "fsmoe": D1…Dr C1…Cr and AG1…AGr RS1…RSr. "interleaved":
   * D1 D2 C1 D3 C2 … Dr C(r−1) Cr (lookahead 1), and the same shape for AG/RS.
   */
  readonly inter?: "fsmoe" | "interleaved";
  readonly intra?: "fsmoe" | "interleaved";
  /** End with a gradient all-reduce over the `world` group on inter, after the last combine. */
  readonly gradAllReduce?: boolean;
}

/** The issue order of r "first" and r "second" ops on one stream: F/S indices 0-based. */
function streamOrder(r: number, how: "fsmoe" | "interleaved"): ["F" | "S", number][] {
  const out: ["F" | "S", number][] = [];
  if (how === "fsmoe" || r === 1) {
    for (let i = 0; i < r; i++) out.push(["F", i]);
    for (let i = 0; i < r; i++) out.push(["S", i]);
    return out;
  }
  out.push(["F", 0]);
  for (let i = 1; i < r; i++) out.push(["F", i], ["S", i - 1]);
  out.push(["S", r - 1]);
  return out;
}

/**
 * The chunked MoE pipeline of SCHEDULING.md §3 (fsmoe strategy), one block per layer, with
 * buffers per stage: `tokens` (order writes, D_i reads slice i), `dispatched`, `gathered`
 * (P × larger), `expert_out`, `reduced`, `combined`, `output` (iorder writes after waiting for
 * every C_i), and a persistent `weights` read by every E_i. Ops are issued stream by stream in
 * an order where every wait points back when the orders allow it (a round robin that takes the
 * next op of a stream once what it waits for is issued).
 */
export function moePipeline(options: PipelineOptions): { graph: TaskGraph; layers: PipelineLayer[]; allReduce?: number } {
  const r = options.degree;
  const c = options.chunkBytes ?? 1024;
  const gpus = options.gpus ?? 2;
  const nodes = options.nodes ?? 2;
  const b = new GraphBuilder();
  const node = b.group("node", gpus, 1, "intra");
  const rail = b.group("rail", nodes, gpus, "inter");
  const world = b.group("world", gpus * nodes, 1, "both");
  const weights = b.buffer("weights", 4096, true);
  const grads = options.gradAllReduce ? b.buffer("grads", 2048, true) : -1;
  const layers: PipelineLayer[] = [];
  let gradOp = -1;
  let allReduce: number | undefined;
  let nextId = 1;
  // Each stream's ops in stream order; the loop at the end interleaves them into one issue order.
  const queues: Record<Stream, Op[]> = { compute: [], intra: [], inter: [] };
  const plan = (spec: OpSpec): number => {
    const op = b.make(spec, nextId++);
    queues[op.stream].push(op);
    return op.id;
  };
  if (options.gradAllReduce) {
    gradOp = plan({ kind: "attention", stream: "compute", role: "attention_wgrad", layer: 0, dir: "bwd", writes: [{ buffer: grads }] });
  }
  for (let l = 0; l < (options.layers ?? 1); l++) {
    const tokens = b.buffer(`L${l}.tokens`, r * c);
    const dispatched = b.buffer(`L${l}.dispatched`, r * c);
    const gathered = b.buffer(`L${l}.gathered`, r * c * gpus);
    const expertOut = b.buffer(`L${l}.expert_out`, r * c * gpus);
    const reduced = b.buffer(`L${l}.reduced`, r * c);
    const combined = b.buffer(`L${l}.combined`, r * c);
    const output = b.buffer(`L${l}.output`, r * c);
    const slice = (buffer: number, size: number, i: number): AccessSpec => ({ buffer, offset: i * size, bytes: size });
    const order = plan({ kind: "order", stream: "compute", role: "order", layer: l, writes: [{ buffer: tokens }] });
    const ids = { D: [] as number[], AG: [] as number[], E: [] as number[], RS: [] as number[], C: [] as number[] };
    // Ids are fixed up front so that waits may point at ops planned later on another stream.
    const idOf = { D: [] as number[], AG: [] as number[], E: [] as number[], RS: [] as number[], C: [] as number[] };
    for (const stage of ["D", "AG", "E", "RS", "C"] as const) for (let i = 0; i < r; i++) idOf[stage].push(nextId++);
    const at = (stage: keyof typeof idOf, i: number, spec: OpSpec) => {
      const op = b.make(spec, idOf[stage][i]!);
      queues[op.stream].push(op);
      ids[stage][i] = op.id;
    };
    const D = (i: number) =>
      at("D", i, { kind: "all_to_all", stream: "inter", role: "dispatch", layer: l, chunk: i, group: rail, bytes: c, waits: [order], reads: [slice(tokens, c, i)], writes: [slice(dispatched, c, i)] });
    const C = (i: number) =>
      at("C", i, { kind: "all_to_all", stream: "inter", role: "combine", layer: l, chunk: i, group: rail, bytes: c, waits: [idOf.RS[i]!], reads: [slice(reduced, c, i)], writes: [slice(combined, c, i)] });
    const AG = (i: number) =>
      at("AG", i, { kind: "all_gather", stream: "intra", role: "esp_allgather", layer: l, chunk: i, group: node, bytes: c * gpus, waits: [idOf.D[i]!], reads: [slice(dispatched, c, i)], writes: [slice(gathered, c * gpus, i)] });
    const RS = (i: number) =>
      at("RS", i, { kind: "reduce_scatter", stream: "intra", role: "esp_reducescatter", layer: l, chunk: i, group: node, bytes: c * gpus, waits: [idOf.E[i]!], reads: [slice(expertOut, c * gpus, i)], writes: [slice(reduced, c, i)] });
    for (const [which, i] of streamOrder(r, options.inter ?? "fsmoe")) (which === "F" ? D : C)(i);
    for (const [which, i] of streamOrder(r, options.intra ?? "fsmoe")) (which === "F" ? AG : RS)(i);
    for (let i = 0; i < r; i++) {
      at("E", i, { kind: "expert", stream: "compute", role: "expert", layer: l, chunk: i, waits: [idOf.AG[i]!], reads: [slice(gathered, c * gpus, i), { buffer: weights }], writes: [slice(expertOut, c * gpus, i)] });
    }
    const iorder = plan({ kind: "iorder", stream: "compute", role: "iorder", layer: l, waits: idOf.C, reads: [{ buffer: combined }], writes: [{ buffer: output }] });
    layers.push({ order, ...ids, iorder });
  }
  if (options.gradAllReduce) {
    allReduce = plan({ kind: "all_reduce", stream: "inter", role: "grad_allreduce", layer: -1, dir: "bwd", group: world, bytes: 2048, waits: [gradOp], writes: [{ buffer: grads }] });
  }
  // Issue: round robin over the streams, taking an op once everything it waits for is issued;
  // when nothing can go (a cyclic order), the first stream with ops left goes anyway.
  const issued = new Set<number>();
  const heads: Record<Stream, number> = { compute: 0, intra: 0, inter: 0 };
  const streams: Stream[] = ["compute", "inter", "intra"];
  const left = () => streams.some((s) => heads[s] < queues[s].length);
  while (left()) {
    let progressed = false;
    for (const s of streams) {
      while (heads[s] < queues[s].length && queues[s][heads[s]]!.waits.every((w) => issued.has(w))) {
        const op = queues[s][heads[s]++]!;
        b.ops.push(op);
        issued.add(op.id);
        progressed = true;
      }
    }
    if (!progressed) {
      const s = streams.find((x) => heads[x] < queues[x].length)!;
      const op = queues[s][heads[s]++]!;
      b.ops.push(op);
      issued.add(op.id);
    }
  }
  return allReduce === undefined ? { graph: b.build(), layers } : { graph: b.build(), layers, allReduce };
}

/** A copy of `ops` with the ops of ids a and b swapped in issue order. */
export function swapOps(ops: readonly Op[], a: number, b: number): Op[] {
  const out = [...ops];
  const i = out.findIndex((op) => op.id === a);
  const j = out.findIndex((op) => op.id === b);
  [out[i], out[j]] = [out[j]!, out[i]!];
  return out;
}

/** A copy of `ops` with op `id` replaced by `edit(op)`. */
export function editOp(ops: readonly Op[], id: number, edit: (op: Op) => Op): Op[] {
  return ops.map((op) => (op.id === id ? edit(op) : op));
}

/**
 * One MoE block (one layer, one direction, one micro-batch) as ops on streams: Gate, Order,
 * then r chunks of Dispatch all-to-all → ESP AllGather → Expert → ESP ReduceScatter → Combine
 * all-to-all, then I-Order (SCHEDULING.md §1); backward mirrors it. Chunk i holds C/r slots of
 * every expert; buffers are laid out chunk-major ([r, E, C/r, M]) so a chunk is one contiguous
 * range. The issue order on each stream is the strategy's:
 *
 * - `serial` (DeepSpeed-MoE): one stream; einsum dispatch/combine GEMMs; local experts one by one.
 * - `single-comm` (Tutel): one communication stream carries every chunk's dispatch (with its
 *   ESP AllGather) and then every chunk's combine (with its ReduceScatter).
 * - `phased` (FSMoE): inter D1…Dr, [gradient all-reduce], C1…Cr; intra AG1…AGr, RS1…RSr.
 * - `interleaved` (ours): inter D1…Dℓ, C1, Dℓ+1, C2, …; intra AG1…AGℓ, RS1, AGℓ+1, RS2, … —
 *   the same interleaving on both links, which is what keeps it free of FIFO deadlocks.
 */
import type { Workload } from "../lower/workload.js";
import { moeSizes, ROUTING_ENTRY_BYTES } from "../lower/shapes.js";
import type { GraphBuilder, OpSpec } from "./builder.js";
import type { Pricer } from "./pricing.js";
import type { Access, Direction, OpKind, Stream } from "./types.js";

/** How a block's ops are laid on streams. */
export type BlockStyle =
  | { readonly kind: "serial" }
  | { readonly kind: "single-comm" }
  | { readonly kind: "phased" }
  | { readonly kind: "interleaved"; readonly lookahead: number };

/** A range of one layer's dense gradients (-1: embedding and LM head), in elements. */
export interface GradPart {
  readonly source: number;
  readonly offset: number;
  readonly elements: number;
}

/** One gradient all-reduce over dp: one or more ranges reduced together as one bucket. */
export interface GradPiece {
  readonly parts: readonly GradPart[];
}

/** The elements of a gradient piece. */
export function pieceElements(p: GradPiece): number {
  return p.parts.reduce((n, x) => n + x.elements, 0);
}

/** Where the block reads its input and what it leaves for later blocks. */
export interface BlockIo {
  /** The op that produced the block's input (tokens in forward, output gradient in backward), or -1. */
  readonly inputOp: number;
  readonly inputBuffer: number;
  /**
   * In a model (pre-norm, native/README.md "The model") the block's input is the residual stream, the gate
   * normalizes it, and the block adds its output to `residual`: forward, what I-Order adds the
   * combined output to (the stream, or the shared experts' output, which already holds it);
   * backward, the stream's gradient the gate backward adds the norm's to (the output gradient, or
   * what the shared experts' backward made of it). Absent in a `layer` job (no norm, no residual).
   */
  readonly residual?: { readonly op: number; readonly buffer: number };
}

/**
 * Buffers a forward block keeps for its backward. A block priced alone (the schedulers'
 * `blockTime`) has no forward and gives only what its timing needs; the block then uses
 * stand-ins for the rest.
 */
export interface SavedForward {
  readonly logits: number;
  readonly gathered: number;
  readonly hidden: number;
  readonly orderOp: number;
  /** The block's input (the gate backward's router-weight gradient reads it; in a model, its norm's backward). */
  readonly input?: number;
  /** In a model: the normalized input the gate wrote (what Order dispatched and the router weight's gradient reads). */
  readonly normed?: number;
  /** The routing decisions (-1 for Soft MoE: its logits carry the dispatch and combine weights). */
  readonly routing?: number;
  /** The expert outputs as combined (the combine weights' gradient reads them). */
  readonly combined?: number;
  /** The forward's degree: saved buffers are laid out in its chunks. */
  readonly degree?: number;
}

/** Everything a block needs from the iteration being built. */
export interface BlockContext {
  readonly b: GraphBuilder;
  readonly pricer: Pricer;
  readonly w: Workload;
  readonly layer: number;
  readonly microBatch: number;
  /** Dense-gradient buffers by source layer, and the ops that finished writing them. */
  readonly gradBuffer: (layer: number) => number;
  readonly gradReady: (layer: number) => number;
  /** The expert-gradient buffer of this layer. */
  readonly expertGrad: number;
  /** The router's part of the layer's dense-gradient buffer. */
  readonly routerGrad: Access;
  /** In a model: the gradient of the norm before the block (the gate's backward adds to it). */
  readonly normGrad?: Access;
  /** Prefixed to every role: "recompute." for the forward that full recomputation repeats in the backward. */
  readonly rolePrefix: string;
}

/** What a block returns: its output and, for forward, what backward needs. */
export interface BlockResult {
  readonly outputOp: number;
  readonly outputBuffer: number;
  readonly saved?: SavedForward;
  /** The gate backward op (it writes the router gradient). */
  readonly gateGradOp?: number;
}

const whole = (buffer: number, bytes: number, write: boolean): Access => ({ buffer, offset: 0, bytes, write });
const slice = (buffer: number, bytes: number, i: number, r: number, write: boolean): Access => ({
  buffer,
  offset: (bytes / r) * i,
  bytes: bytes / r,
  write,
});

/** Build one MoE block. `saved` is required in backward. */
export function moeBlock(
  ctx: BlockContext,
  dir: Direction,
  style: BlockStyle,
  degree: number,
  capacity: number,
  io: BlockIo,
  grads: readonly GradPiece[],
  saved?: SavedForward,
): BlockResult {
  const { b, pricer, w, layer, microBatch } = ctx;
  const s = w.shape;
  const z = moeSizes(s, capacity);
  const bytes = w.bytes;
  const r = degree;
  const tag = `L${layer}.${ctx.rolePrefix}${dir}.mb${microBatch}`;
  const soft = s.router === "softmoe";
  const serial = style.kind === "serial";
  const commStream: Stream = serial ? "compute" : "inter";
  const intraStream: Stream = serial ? "compute" : style.kind === "single-comm" ? "inter" : "intra";
  // Plain object literals with one shape: spreads here made graph building several times slower.
  const mk = (kind: OpKind, stream: Stream, role: string, chunk: number, deps: number[], accesses: Access[], elements: number, macs: number, group?: string): OpSpec => ({
    kind,
    stream,
    layer,
    dir,
    microBatch,
    chunk,
    role: ctx.rolePrefix + role,
    deps: deps.filter((d) => d >= 0),
    accesses,
    elements,
    macs,
    bytes: group ? elements * bytes : 0,
    group,
    predictedUs: pricer.price(kind, dir, elements, macs, group),
  });

  const a2aBytes = z.a2aElements * bytes;
  const espBytes = z.espElements * bytes;
  const tokenBytes = s.tokens * s.hidden * bytes;
  const hiddenBytes = s.experts * capacity * s.expertHidden * (s.gemms - 1) * bytes;
  const buf = (name: string, n: number) => b.buffer(`${tag}.${name}`, n);
  const esp = s.esp > 1;
  const einsum = serial || soft;

  // Per-chunk op drafts, created in stage order and placed on lanes by the style.
  const first: number[] = [];
  const gather: number[] = [];
  const expert: number[][] = [];
  const scatter: number[] = [];
  const last: number[] = [];

  const logitBytes = s.tokens * s.routerColumns * 4;
  const routingBytes = z.routingEntries * ROUTING_ENTRY_BYTES;
  const expertIn = esp ? espBytes : a2aBytes;
  if (dir === "fwd") {
    const logits = buf("logits", logitBytes);
    const routing = routingBytes > 0 ? buf("routing", routingBytes) : -1;
    // A model's block works on the normalized stream, which the gate writes for Order and the backward.
    const normed = io.residual ? buf("normed", tokenBytes) : io.inputBuffer;
    // What Order and I-Order read to place each token: the decisions, or Soft MoE's scores.
    const decisions = routing >= 0 ? whole(routing, routingBytes, false) : whole(logits, logitBytes, false);
    const orderBuf = buf("order", a2aBytes);
    const recv = buf("recv", a2aBytes);
    const gathered = esp ? buf("gathered", espBytes) : recv;
    const hidden = buf("hidden", hiddenBytes);
    const expertOut = esp ? buf("expert_out", espBytes) : buf("expert_out", a2aBytes);
    const rsOut = esp ? buf("rs_out", a2aBytes) : expertOut;
    const comb = buf("combined", a2aBytes);
    const out = buf("out", tokenBytes);
    const gateWrites = [whole(logits, logitBytes, true), ...(routing >= 0 ? [whole(routing, routingBytes, true)] : []), ...(io.residual ? [whole(normed, tokenBytes, true)] : [])];
    const gate = b.add(mk("gate", "compute", "gate", -1, [io.inputOp], [whole(io.inputBuffer, tokenBytes, false), ...gateWrites], z.gateElements, z.gateMacs));
    const order = einsum
      ? b.add(mk("dispatch_gemm", "compute", "order", -1, [gate], [whole(normed, tokenBytes, false), decisions, whole(orderBuf, a2aBytes, true)], 0, z.einsumMacs))
      : b.add(mk("order", "compute", "order", -1, [gate], [whole(normed, tokenBytes, false), decisions, whole(orderBuf, a2aBytes, true)], z.orderElements, 0));
    for (let i = 0; i < r; i++) {
      const d = b.create(mk("all_to_all", commStream, "dispatch", i, [order], [slice(orderBuf, a2aBytes, i, r, false), slice(recv, a2aBytes, i, r, true)], z.a2aElements / r, 0, "ep"));
      first.push(d);
      let prev = d;
      if (esp) {
        prev = b.create(mk("all_gather", intraStream, "esp_allgather", i, [d], [slice(recv, a2aBytes, i, r, false), slice(gathered, espBytes, i, r, true)], z.espElements / r, 0, "esp"));
        gather.push(prev);
      }
      expert.push(expertOps(ctx, mk, serial, i, prev, [slice(gathered, expertIn, i, r, false), slice(hidden, hiddenBytes, i, r, true), slice(expertOut, expertIn, i, r, true)], undefined, z.expertMacs / r));
      const e = expert[i]![expert[i]!.length - 1]!;
      let tail = e;
      if (esp) {
        tail = b.create(mk("reduce_scatter", intraStream, "esp_reducescatter", i, [e], [slice(expertOut, espBytes, i, r, false), slice(rsOut, a2aBytes, i, r, true)], z.espElements / r, 0, "esp"));
        scatter.push(tail);
      }
      last.push(b.create(mk("all_to_all", commStream, "combine", i, [tail], [slice(rsOut, a2aBytes, i, r, false), slice(comb, a2aBytes, i, r, true)], z.a2aElements / r, 0, "ep")));
    }
    layLanes(ctx, style, first, gather, expert, scatter, last, grads);
    const iorderAccesses = [whole(comb, a2aBytes, false), decisions, ...(io.residual ? [whole(io.residual.buffer, tokenBytes, false)] : []), whole(out, tokenBytes, true)];
    const iorderDeps = io.residual ? [...last, io.residual.op] : last;
    const iorder = einsum
      ? b.add(mk("combine_gemm", "compute", "iorder", -1, iorderDeps, iorderAccesses, 0, z.einsumMacs))
      : b.add(mk("iorder", "compute", "iorder", -1, iorderDeps, iorderAccesses, z.orderElements, 0));
    return { outputOp: iorder, outputBuffer: out, saved: { input: io.inputBuffer, normed, logits, routing, combined: comb, gathered, hidden, degree: r, orderOp: order } };
  }

  const given = saved!;
  const sv: Required<SavedForward> = {
    ...given,
    input: given.input ?? buf("saved_input", tokenBytes),
    routing: given.routing ?? (routingBytes > 0 ? buf("saved_routing", routingBytes) : -1),
    combined: given.combined ?? buf("saved_combined", a2aBytes),
    degree: given.degree ?? r,
    normed: given.normed ?? given.input ?? -1,
  };
  const decisions = sv.routing >= 0 ? whole(sv.routing, routingBytes, false) : whole(sv.logits, logitBytes, false);
  // dL/d(combine weight): one per routing decision (Soft MoE: one per token and slot).
  const gweightBytes = (sv.routing >= 0 ? z.routingEntries : s.tokens * s.routerColumns) * 4;
  const gcomb = buf("grad_combined", a2aBytes);
  const gweight = buf("grad_weight", gweightBytes);
  const grecv = buf("grad_recv", a2aBytes);
  const ggathered = esp ? buf("grad_gathered", espBytes) : grecv;
  const gexpert = esp ? buf("grad_expert_in", espBytes) : buf("grad_expert_in", a2aBytes);
  const grs = esp ? buf("grad_rs", a2aBytes) : gexpert;
  const gorder = buf("grad_order", a2aBytes);
  const gx = buf("grad_in", tokenBytes);
  const iorderAccesses = [whole(io.inputBuffer, tokenBytes, false), decisions, whole(sv.combined, a2aBytes, false), whole(gcomb, a2aBytes, true), whole(gweight, gweightBytes, true)];
  const iorder = einsum
    ? b.add(mk("combine_gemm", "compute", "iorder", -1, [io.inputOp], iorderAccesses, 0, z.einsumMacs))
    : b.add(mk("iorder", "compute", "iorder", -1, [io.inputOp], iorderAccesses, z.orderElements, 0));
  const expertParamBytes = w.layers[layer]!.expertParams * bytes;
  /** The forward chunks that hold the slots of backward chunk i (saved buffers keep the forward's layout). */
  const savedRange = (buffer: number, total: number, i: number): Access => {
    if (sv.degree === r) return slice(buffer, total, i, r, false);
    const perFwd = capacity / sv.degree;
    const perBwd = capacity / r;
    const j0 = Math.floor((i * perBwd) / perFwd);
    const j1 = Math.floor(((i + 1) * perBwd - 1) / perFwd);
    return { buffer, offset: (total / sv.degree) * j0, bytes: (total / sv.degree) * (j1 - j0 + 1), write: false };
  };
  for (let i = 0; i < r; i++) {
    const c = b.create(mk("all_to_all", commStream, "combine", i, [iorder], [slice(gcomb, a2aBytes, i, r, false), slice(grecv, a2aBytes, i, r, true)], z.a2aElements / r, 0, "ep"));
    first.push(c);
    let prev = c;
    if (esp) {
      prev = b.create(mk("all_gather", intraStream, "esp_reducescatter", i, [c], [slice(grecv, a2aBytes, i, r, false), slice(ggathered, espBytes, i, r, true)], z.espElements / r, 0, "esp"));
      gather.push(prev);
    }
    const accesses = [slice(ggathered, expertIn, i, r, false), savedRange(sv.gathered, expertIn, i), savedRange(sv.hidden, hiddenBytes, i), slice(gexpert, expertIn, i, r, true)];
    expert.push(expertOps(ctx, mk, serial, i, prev, accesses, whole(ctx.expertGrad, expertParamBytes, true), z.expertMacs / r));
    const e = expert[i]![expert[i]!.length - 1]!;
    let tail = e;
    if (esp) {
      tail = b.create(mk("reduce_scatter", intraStream, "esp_allgather", i, [e], [slice(gexpert, espBytes, i, r, false), slice(grs, a2aBytes, i, r, true)], z.espElements / r, 0, "esp"));
      scatter.push(tail);
    }
    last.push(b.create(mk("all_to_all", commStream, "dispatch", i, [tail], [slice(grs, a2aBytes, i, r, false), slice(gorder, a2aBytes, i, r, true)], z.a2aElements / r, 0, "ep")));
  }
  layLanes(ctx, style, first, gather, expert, scatter, last, grads);
  const order = einsum
    ? b.add(mk("dispatch_gemm", "compute", "order", -1, last, [whole(gorder, a2aBytes, false), decisions, whole(gx, tokenBytes, true)], 0, z.einsumMacs))
    : b.add(mk("order", "compute", "order", -1, last, [whole(gorder, a2aBytes, false), decisions, whole(gx, tokenBytes, true)], z.orderElements, 0));
  // The gate backward: dlogits from the combine weights' gradient through the routing function,
  // then gx += dlogits · Wᵀ (on top of Order's gradient) and the router weight gradient xᵀ · dlogits.
  // In a model the gate backward then takes the sum through the norm and adds the stream's gradient:
  // gx = residual + norm'ᵀ(gx), and the norm weight's gradient.
  const model = io.residual !== undefined;
  const gateReads = [
    whole(sv.logits, logitBytes, false),
    ...(sv.routing >= 0 ? [decisions] : []),
    whole(model ? sv.normed : sv.input, tokenBytes, false),
    ...(model ? [whole(sv.input, tokenBytes, false)] : []),
    whole(gweight, gweightBytes, false),
    ...(model ? [whole(io.residual!.buffer, tokenBytes, false)] : []),
  ];
  const gateWrites = [whole(gx, tokenBytes, true), ctx.routerGrad, ...(model && ctx.normGrad ? [ctx.normGrad] : [])];
  const gate = b.add(mk("gate", "compute", "gate", -1, model ? [order, io.residual!.op] : [order], [...gateReads, ...gateWrites], z.gateElements, 2 * z.gateMacs));
  return { outputOp: gate, outputBuffer: gx, gateGradOp: gate };
}

type Mk = (kind: OpKind, stream: Stream, role: string, chunk: number, deps: number[], accesses: Access[], elements: number, macs: number, group?: string) => OpSpec;

/**
 * The expert GEMMs of one chunk: one op, or one per local expert one after another (DeepSpeed).
 * A local expert's rows are strided through the chunk (a block per source rank), so each
 * per-expert op declares the whole chunk and names its expert; its part of the expert gradient
 * (`grad`, backward only) is contiguous and declared exactly.
 */
function expertOps(ctx: BlockContext, mk: Mk, perExpert: boolean, chunk: number, dep: number, accesses: Access[], grad: Access | undefined, macs: number): number[] {
  const n = perExpert ? ctx.w.shape.localExperts : 1;
  const out: number[] = [];
  for (let e = 0; e < n; e++) {
    const part = grad === undefined ? [] : [n === 1 ? grad : { ...grad, offset: grad.offset + (grad.bytes / n) * e, bytes: grad.bytes / n }];
    const spec = mk("expert", "compute", "expert", chunk, [out[e - 1] ?? dep], [...accesses, ...part], 0, macs / n);
    out.push(ctx.b.create(n === 1 ? spec : { ...spec, expert: e }));
  }
  return out;
}

/** Place a block's chunk ops on their lanes in the style's issue order. */
function layLanes(
  ctx: BlockContext,
  style: BlockStyle,
  first: number[],
  gather: number[],
  expert: number[][],
  scatter: number[],
  last: number[],
  grads: readonly GradPiece[],
): void {
  const { b } = ctx;
  const r = first.length;
  const placeGrads = () => {
    for (const g of grads) placeGradPiece(ctx, g, "inter");
  };
  if (style.kind === "serial") {
    for (let i = 0; i < r; i++) {
      b.place(first[i]!);
      if (gather[i] !== undefined) b.place(gather[i]!);
      for (const e of expert[i]!) b.place(e);
      if (scatter[i] !== undefined) b.place(scatter[i]!);
      b.place(last[i]!);
    }
    for (const g of grads) placeGradPiece(ctx, g, "compute");
    return;
  }
  for (const e of expert) for (const x of e) b.place(x);
  if (style.kind === "single-comm") {
    for (let i = 0; i < r; i++) {
      b.place(first[i]!);
      if (gather[i] !== undefined) b.place(gather[i]!);
    }
    placeGrads();
    for (let i = 0; i < r; i++) {
      if (scatter[i] !== undefined) b.place(scatter[i]!);
      b.place(last[i]!);
    }
    return;
  }
  const lookahead = style.kind === "phased" ? r : Math.max(1, Math.min(r, style.lookahead));
  // The same interleaving on both links: first ℓ dispatches (gathers), then alternate.
  const seq: ("first" | "last")[] = [];
  for (let i = 0; i < lookahead; i++) seq.push("first");
  for (let i = lookahead; i < r; i++) seq.push("last", "first");
  for (let i = 0; i < lookahead; i++) seq.push("last");
  let f = 0;
  let l = 0;
  let gradsPlaced = false;
  for (const step of seq) {
    if (step === "first") {
      b.place(first[f]!);
      if (gather[f] !== undefined) b.place(gather[f]!);
      f++;
    } else {
      if (!gradsPlaced && f === r) {
        placeGrads();
        gradsPlaced = true;
      }
      if (scatter[l] !== undefined) b.place(scatter[l]!);
      b.place(last[l]!);
      l++;
    }
  }
  if (!gradsPlaced) placeGrads();
}

/** A dense-gradient all-reduce piece over dp, on the given stream. */
export function placeGradPiece(ctx: BlockContext, g: GradPiece, stream: Stream): number {
  const { b, pricer, w } = ctx;
  const bytes = w.bytes;
  const elements = pieceElements(g);
  return b.add({
    kind: "all_reduce",
    stream,
    layer: g.parts[0]!.source,
    dir: "bwd",
    microBatch: ctx.microBatch,
    chunk: -1,
    role: "grad_allreduce",
    deps: g.parts.map((p) => ctx.gradReady(p.source)).filter((d) => d >= 0),
    accesses: g.parts.map((p) => ({ buffer: ctx.gradBuffer(p.source), offset: p.offset * bytes, bytes: p.elements * bytes, write: true })),
    elements,
    macs: 0,
    bytes: elements * bytes,
    group: "dp",
    predictedUs: pricer.price("all_reduce", "bwd", elements, 0, "dp"),
  });
}

/**
 * One training iteration as a task graph (ARCHITECTURE.md, "plan.json": the iteration covers
 * forward and backward of every micro-batch through every layer — embedding, LM head and loss
 * included — plus the gradient all-reduces). Dense blocks are the same for every strategy:
 * sequence-parallel AllGather over tp on the intra stream, the GEMMs on compute, ReduceScatter
 * back. MoE blocks, the gradient all-reduce placement and the padded capacity come from the
 * strategy's Schedule. Micro-batches run one after another; gradient all-reduces belong to the
 * last one.
 */
import type { DenseSizes } from "../lower/dense.js";
import type { Workload } from "../lower/workload.js";
import type { Schedule } from "../schedule/types.js";
import { GraphBuilder, type Finished, type OpSpec } from "./builder.js";
import { moeBlock, placeGradPiece, type BlockContext, type GradPart, type GradPiece, type SavedForward } from "./moe-block.js";
import type { Pricer } from "./pricing.js";
import type { Access, Direction, OpKind, Stream } from "./types.js";

/** A value flowing between blocks: the op that produced it and its buffer (-1: given). */
interface Flow {
  readonly op: number;
  readonly buffer: number;
}

/** The whole dense gradient of a layer (-1: embedding and LM head) as one range. */
export function wholeGradient(w: Workload, layer: number): GradPart {
  return { source: layer, offset: 0, elements: layer < 0 ? (w.head?.params ?? 0) : w.layers[layer]!.denseParams };
}

/** Build the iteration graph of a workload under a schedule. */
export function buildIteration(w: Workload, schedule: Schedule, pricer: Pricer): Finished {
  const job = w.job;
  const groups = Object.values(w.groups);
  const b = new GraphBuilder(groups);
  const bytes = w.bytes;
  const B = job.microBatch;
  const L = job.seqLen;
  const M = job.model.hidden;
  const tp = job.parallel.tp;
  const localTokens = (B * L) / tp;
  const tokenBytes = localTokens * M * bytes;
  const fullBytes = B * L * M * bytes;
  const lastLayer = w.layers.length - 1;

  const gradBuf = w.layers.map((l) => b.buffer(`L${l.index}.dense_grad`, l.denseParams * bytes, true));
  const expertGrad = w.layers.map((l) => (l.moe ? b.buffer(`L${l.index}.expert_grad`, l.expertParams * bytes, true) : -1));
  const headGrad = w.head ? b.buffer("head.grad", w.head.params * bytes, true) : -1;
  const gradReady: number[] = w.layers.map(() => -1);
  let headReady = -1;
  const gradBufferOf = (layer: number) => (layer < 0 ? headGrad : gradBuf[layer]!);
  const readyOf = (layer: number) => (layer < 0 ? headReady : gradReady[layer]!);

  const op = (spec: Omit<OpSpec, "predictedUs" | "bytes" | "group"> & { group?: string }): number =>
    b.add({
      kind: spec.kind,
      stream: spec.stream,
      layer: spec.layer,
      dir: spec.dir,
      microBatch: spec.microBatch,
      chunk: spec.chunk,
      role: spec.role,
      deps: spec.deps.filter((d) => d >= 0),
      accesses: spec.accesses,
      elements: spec.elements,
      macs: spec.macs,
      bytes: spec.group !== undefined ? spec.elements * bytes : 0,
      group: spec.group,
      predictedUs: pricer.price(spec.kind, spec.dir, spec.elements, spec.macs, spec.group),
    });
  const acc = (buffer: number, n: number, write: boolean, offset = 0): Access => ({ buffer, offset, bytes: n, write });

  /** A tensor-parallel dense block (attention, dense FFN, shared experts): AG → GEMM → RS. */
  const denseFwd = (layer: number, mb: number, kind: OpKind, z: DenseSizes, input: Flow, role: string): { out: Flow; saved: number; scores: number } => {
    const name = role.replace(/^recompute\./, "");
    const tag = `L${layer}.fwd.mb${mb}.${role}`;
    let x = input;
    let gathered = input.buffer;
    if (tp > 1) {
      gathered = b.buffer(`${tag}.gathered`, fullBytes);
      x = { op: op({ kind: "all_gather", stream: "intra", layer, dir: "fwd", microBatch: mb, chunk: -1, role: `${role}_sp_allgather`, deps: [input.op], accesses: [acc(input.buffer, tokenBytes, false), acc(gathered, fullBytes, true)], elements: z.gatherElements, macs: 0, group: "tp" }), buffer: gathered };
    }
    const outFull = b.buffer(`${tag}.out_full`, fullBytes);
    const scores = kind === "attention" && job.recompute === "none" && job.model.attention ? b.buffer(`${tag}.scores`, B * Math.ceil(job.model.attention.heads / tp) * L * L * bytes) : -1;
    const gemm = op({ kind, stream: "compute", layer, dir: "fwd", microBatch: mb, chunk: -1, role, deps: [x.op], accesses: [acc(x.buffer, fullBytes, false), acc(outFull, fullBytes, true), ...(scores >= 0 ? [acc(scores, 1, true)] : [])], elements: 0, macs: z.macs });
    if (tp === 1) return { out: { op: gemm, buffer: outFull }, saved: gathered, scores };
    const out = b.buffer(`${tag}.out`, tokenBytes);
    const rs = op({ kind: "reduce_scatter", stream: "intra", layer, dir: "fwd", microBatch: mb, chunk: -1, role: `${role}_sp_reducescatter`, deps: [gemm], accesses: [acc(outFull, fullBytes, false), acc(out, tokenBytes, true)], elements: z.gatherElements, macs: 0, group: "tp" });
    return { out: { op: rs, buffer: out }, saved: gathered, scores };
  };

  const denseBwd = (layer: number, mb: number, kind: OpKind, z: DenseSizes, grad: Flow, saved: number, scores: number, gradSlice: Access, name: string): Flow => {
    const tag = `L${layer}.bwd.mb${mb}.${name}`;
    let g = grad;
    if (tp > 1) {
      const gFull = b.buffer(`${tag}.grad_full`, fullBytes);
      g = { op: op({ kind: "all_gather", stream: "intra", layer, dir: "bwd", microBatch: mb, chunk: -1, role: `${name}_sp_reducescatter`, deps: [grad.op], accesses: [acc(grad.buffer, tokenBytes, false), acc(gFull, fullBytes, true)], elements: z.gatherElements, macs: 0, group: "tp" }), buffer: gFull };
    }
    const gIn = b.buffer(`${tag}.grad_in_full`, fullBytes);
    const gemm = op({ kind, stream: "compute", layer, dir: "bwd", microBatch: mb, chunk: -1, role: name, deps: [g.op], accesses: [acc(g.buffer, fullBytes, false), acc(saved, fullBytes, false), ...(scores >= 0 ? [acc(scores, 1, false)] : []), acc(gIn, fullBytes, true), gradSlice], elements: 0, macs: z.macs });
    if (tp === 1) return { op: gemm, buffer: gIn };
    const gx = b.buffer(`${tag}.grad_in`, tokenBytes);
    return { op: op({ kind: "reduce_scatter", stream: "intra", layer, dir: "bwd", microBatch: mb, chunk: -1, role: `${name}_sp_allgather`, deps: [gemm], accesses: [acc(gIn, fullBytes, false), acc(gx, tokenBytes, true)], elements: z.gatherElements, macs: 0, group: "tp" }), buffer: gx };
  };

  const placeGrads = (pieces: readonly GradPiece[] | undefined, ctx: BlockContext) => {
    for (const p of pieces ?? []) placeGradPiece(ctx, p, schedule.gradients.stream);
  };

  const blockContext = (layer: number, mb: number, rolePrefix = ""): BlockContext => ({
    b,
    pricer,
    w,
    layer,
    microBatch: mb,
    gradBuffer: gradBufferOf,
    gradReady: readyOf,
    expertGrad: expertGrad[layer] ?? -1,
    routerGrad: acc(gradBuf[layer]!, w.layers[layer]!.seqParallelParams * bytes, true),
    rolePrefix,
  });

  interface LayerState {
    input: Flow;
    attention?: { saved: number; scores: number };
    ffn?: { saved: number; scores: number };
    shared?: { saved: number; scores: number };
    moe?: SavedForward;
  }

  /** The forward of one layer; `prefix` is "recompute." when full recomputation repeats it in the backward. */
  const forwardLayer = (layer: number, mb: number, input: Flow, state: LayerState, prefix = ""): Flow => {
    const lw = w.layers[layer]!;
    let x = input;
    if (lw.attention) {
      const a = denseFwd(layer, mb, "attention", lw.attention, x, `${prefix}attention`);
      state.attention = { saved: a.saved, scores: a.scores };
      x = a.out;
    }
    if (lw.shared) {
      const s = denseFwd(layer, mb, "shared_expert", lw.shared, x, `${prefix}shared_expert`);
      state.shared = { saved: s.saved, scores: -1 };
      x = s.out;
    }
    if (lw.moe) {
      const plan = schedule.layers.get(layer)!;
      const r = moeBlock(blockContext(layer, mb, prefix), "fwd", plan.forward.style, plan.forward.degree, plan.capacity, { inputOp: x.op, inputBuffer: x.buffer }, []);
      state.moe = r.saved!;
      return { op: r.outputOp, buffer: r.outputBuffer };
    }
    if (lw.ffn) {
      const f = denseFwd(layer, mb, "dense_ffn", lw.ffn, x, `${prefix}dense_ffn`);
      state.ffn = { saved: f.saved, scores: -1 };
      x = f.out;
    }
    return x;
  };

  for (let mb = 0; mb < job.microBatches; mb++) {
    const last = mb === job.microBatches - 1;
    // ── forward
    // The iteration's inputs are loaded before it runs: persistent, like the weights.
    let x: Flow = { op: -1, buffer: b.buffer(`mb${mb}.tokens`, localTokens * 4, true) };
    if (w.head) {
      const embedded = b.buffer(`mb${mb}.embedded`, tokenBytes);
      x = { op: op({ kind: "embed", stream: "compute", layer: -1, dir: "fwd", microBatch: mb, chunk: -1, role: "embedding", deps: [], accesses: [acc(x.buffer, localTokens * 4, false), acc(embedded, tokenBytes, true)], elements: w.head.embedElements, macs: 0 }), buffer: embedded };
    } else {
      x = { op: -1, buffer: b.buffer(`mb${mb}.input`, tokenBytes, true) };
    }
    const states: LayerState[] = [];
    for (let l = 0; l <= lastLayer; l++) {
      const state: LayerState = { input: x };
      x = forwardLayer(l, mb, x, state);
      states.push(state);
    }
    let g: Flow;
    if (w.head) {
      const h = denseFwd(-1, mb, "lm_head", w.head.lmHead, x, "lm_head");
      const logits = h.out;
      const loss = op({ kind: "loss", stream: "compute", layer: -1, dir: "fwd", microBatch: mb, chunk: -1, role: "loss", deps: [logits.op], accesses: [acc(logits.buffer, 1, false)], elements: w.head.lossElements, macs: 0 });
      // ── backward of the head
      const gLogits = b.buffer(`mb${mb}.grad_logits`, fullBytes);
      const lossBwd = op({ kind: "loss", stream: "compute", layer: -1, dir: "bwd", microBatch: mb, chunk: -1, role: "loss", deps: [loss], accesses: [acc(gLogits, fullBytes, true)], elements: w.head.lossElements, macs: 0 });
      g = denseBwd(-1, mb, "lm_head", w.head.lmHead, { op: lossBwd, buffer: gLogits }, h.saved, -1, acc(headGrad, w.head.lmHead.params * bytes, true), "lm_head");
    } else {
      g = { op: -1, buffer: b.buffer(`mb${mb}.grad_out`, tokenBytes, true) };
    }
    // ── backward of the layers
    for (let l = lastLayer; l >= 0; l--) {
      const lw = w.layers[l]!;
      let st = states[l]!;
      if (job.recompute === "full") {
        st = { input: st.input };
        forwardLayer(l, mb, st.input, st, "recompute.");
      }
      const ctx = blockContext(l, mb);
      const gradOffset = lw.seqParallelParams;
      if (lw.moe) {
        const plan = schedule.layers.get(l)!;
        const r = moeBlock(ctx, "bwd", plan.backward.style, plan.backward.degree, plan.capacity, { inputOp: g.op, inputBuffer: g.buffer }, last ? plan.gapGrads : [], st.moe);
        g = { op: r.outputOp, buffer: r.outputBuffer };
        gradReady[l] = r.outputOp;
      }
      let offset = gradOffset + (lw.attention?.params ?? 0);
      if (lw.ffn && st.ffn) {
        g = denseBwd(l, mb, "dense_ffn", lw.ffn, g, st.ffn.saved, -1, acc(gradBuf[l]!, lw.ffn.params * bytes, true, offset * bytes), "dense_ffn");
        offset += lw.ffn.params;
      }
      if (lw.shared && st.shared) {
        g = denseBwd(l, mb, "shared_expert", lw.shared, g, st.shared.saved, -1, acc(gradBuf[l]!, lw.shared.params * bytes, true, offset * bytes), "shared_expert");
      }
      if (last) placeGrads(schedule.gradients.window.get(l), ctx);
      if (lw.attention && st.attention) {
        g = denseBwd(l, mb, "attention", lw.attention, g, st.attention.saved, st.attention.scores, acc(gradBuf[l]!, (lw.seqParallelParams + lw.attention.params) * bytes, true), "attention");
      }
      gradReady[l] = g.op;
      if (last && tp > 1) {
        // Sequence parallelism: norm and router gradients are partial sums over tp.
        gradReady[l] = op({ kind: "all_reduce", stream: "intra", layer: l, dir: "bwd", microBatch: mb, chunk: -1, role: "sp_grad_allreduce", deps: [gradReady[l]!], accesses: [acc(gradBuf[l]!, lw.seqParallelParams * bytes, true)], elements: lw.seqParallelParams, macs: 0, group: "tp" });
      }
      if (last) placeGrads(schedule.gradients.immediate.get(l), ctx);
    }
    if (w.head) {
      headReady = op({ kind: "embed", stream: "compute", layer: -1, dir: "bwd", microBatch: mb, chunk: -1, role: "embedding", deps: [g.op], accesses: [acc(g.buffer, tokenBytes, false), acc(headGrad, w.head.params * bytes, true)], elements: w.head.embedElements, macs: 0 });
    }
  }
  // ── after the backward: what is left of the dense gradients, then expert replicas
  const tailCtx = blockContext(0, job.microBatches - 1);
  placeGrads(schedule.gradients.tail, tailCtx);
  if (w.groups.edp.size > 1) {
    for (const lw of w.layers) {
      if (!lw.moe) continue;
      op({ kind: "all_reduce", stream: schedule.gradients.stream, layer: lw.index, dir: "bwd", microBatch: job.microBatches - 1, chunk: -1, role: "expert_grad_allreduce", deps: [gradReady[lw.index]!], accesses: [acc(expertGrad[lw.index]!, lw.expertParams * bytes, true)], elements: lw.expertParams, macs: 0, group: "edp" });
    }
  }
  return b.finish();
}

/** Every dense gradient in production order (last layer first, the head last). */
export function denseGradients(w: Workload): GradPart[] {
  const out: GradPart[] = [];
  for (let l = w.layers.length - 1; l >= 0; l--) if (w.layers[l]!.denseParams > 0) out.push(wholeGradient(w, l));
  if (w.head) out.push(wholeGradient(w, -1));
  return out;
}

export type { Direction, Stream };

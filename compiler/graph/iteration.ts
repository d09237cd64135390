/**
 * One training iteration as a task graph (ARCHITECTURE.md, "plan.json": the iteration covers
 * forward and backward of every micro-batch through every layer — embedding, LM head and loss
 * included — plus the gradient all-reduces). Dense blocks are the same for every strategy:
 * sequence-parallel AllGather over tp on the intra stream, the GEMMs on compute, ReduceScatter
 * back. MoE blocks, the gradient all-reduce placement and the padded capacity come from the
 * strategy's Schedule. Micro-batches run one after another; gradient all-reduces belong to the
 * last one.
 *
 * A model is a pre-norm transformer with a residual stream (native/README.md, "The model"). The stream is
 * what flows between blocks: a dense block gathers it, normalizes it (RMS norm) inside its op and
 * adds its output to it through the ReduceScatter (the first rank of the tp group adds the
 * stream to its partial sum); the MoE gate normalizes its input and I-Order adds the output to
 * the stream. The embedding is a vocabulary-parallel lookup summed and scattered over tp; the
 * LM head (with the final norm) writes vocabulary-parallel logits, V/tp per rank, and the
 * cross-entropy gathers each token's maximum logit, then its Σ exp and target logit, over tp. A
 * `layer` job is the MoE block alone: no norm, no residual.
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

/** Bytes per element of the loss's statistics (fp32 whatever the model's dtype). */
const STAT_BYTES = 4;

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
  const groupTokens = B * L;
  const localTokens = groupTokens / tp;
  const tokenBytes = localTokens * M * bytes;
  const fullBytes = groupTokens * M * bytes;
  const lastLayer = w.layers.length - 1;
  const model = job.model.kind === "model";

  const gradBuf = w.layers.map((l) => b.buffer(`L${l.index}.dense_grad`, l.denseParams * bytes, true));
  const expertGrad = w.layers.map((l) => (l.moe ? b.buffer(`L${l.index}.expert_grad`, l.expertParams * bytes, true) : -1));
  const headGrad = w.head ? b.buffer("head.grad", w.head.params * bytes, true) : -1;
  const gradReady: number[] = w.layers.map(() => -1);
  let headReady = -1;
  const gradBufferOf = (layer: number) => (layer < 0 ? headGrad : gradBuf[layer]!);
  const readyOf = (layer: number) => (layer < 0 ? headReady : gradReady[layer]!);

  /** An op; a collective moves `elements` of the model's dtype, or of `elementBytes` (the loss's fp32 statistics). */
  const op = (spec: Omit<OpSpec, "predictedUs" | "bytes" | "group"> & { group?: string; elementBytes?: number }): number =>
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
      bytes: spec.group !== undefined ? spec.elements * (spec.elementBytes ?? bytes) : 0,
      group: spec.group,
      predictedUs: pricer.price(spec.kind, spec.dir, spec.elements, spec.macs, spec.group),
    });
  const acc = (buffer: number, n: number, write: boolean, offset = 0): Access => ({ buffer, offset, bytes: n, write });

  /**
   * A tensor-parallel dense block (attention, dense FFN, shared experts): AG → GEMM → RS. In a
   * model the GEMM op normalizes the gathered stream first and the first rank of the tp group adds
   * the stream to its partial output, so the ReduceScatter leaves the next stream.
   */
  const denseFwd = (layer: number, mb: number, kind: OpKind, z: DenseSizes, input: Flow, role: string): { out: Flow; saved: number; scores: number } => {
    const tag = `L${layer}.fwd.mb${mb}.${role}`;
    let x = input;
    let gathered = input.buffer;
    if (tp > 1) {
      gathered = b.buffer(`${tag}.gathered`, fullBytes);
      x = { op: op({ kind: "all_gather", stream: "intra", layer, dir: "fwd", microBatch: mb, chunk: -1, role: `${role}_sp_allgather`, deps: [input.op], accesses: [acc(input.buffer, tokenBytes, false), acc(gathered, fullBytes, true)], elements: z.gatherElements, macs: 0, group: "tp" }), buffer: gathered };
    }
    const outFull = b.buffer(`${tag}.out_full`, fullBytes);
    // Attention probabilities kept for the backward (recompute = none); else the backward recomputes them.
    const scoreBytes = kind === "attention" && job.recompute === "none" && job.model.attention ? B * Math.ceil(job.model.attention.heads / tp) * L * L * bytes : 0;
    const scores = scoreBytes > 0 ? b.buffer(`${tag}.scores`, scoreBytes) : -1;
    const gemm = op({ kind, stream: "compute", layer, dir: "fwd", microBatch: mb, chunk: -1, role, deps: [x.op], accesses: [acc(x.buffer, fullBytes, false), acc(outFull, fullBytes, true), ...(scores >= 0 ? [acc(scores, scoreBytes, true)] : [])], elements: 0, macs: z.macs });
    if (tp === 1) return { out: { op: gemm, buffer: outFull }, saved: gathered, scores };
    const out = b.buffer(`${tag}.out`, tokenBytes);
    const rs = op({ kind: "reduce_scatter", stream: "intra", layer, dir: "fwd", microBatch: mb, chunk: -1, role: `${role}_sp_reducescatter`, deps: [gemm], accesses: [acc(outFull, fullBytes, false), acc(out, tokenBytes, true)], elements: z.gatherElements, macs: 0, group: "tp" });
    return { out: { op: rs, buffer: out }, saved: gathered, scores };
  };

  /** The backward of a dense block: AG of the stream's gradient → GEMMs (the block's and, in a model, its norm's gradient) → RS. */
  const denseBwd = (layer: number, mb: number, kind: OpKind, z: DenseSizes, grad: Flow, saved: number, scores: number, gradSlices: readonly Access[], name: string): Flow => {
    const tag = `L${layer}.bwd.mb${mb}.${name}`;
    let g = grad;
    if (tp > 1) {
      const gFull = b.buffer(`${tag}.grad_full`, fullBytes);
      g = { op: op({ kind: "all_gather", stream: "intra", layer, dir: "bwd", microBatch: mb, chunk: -1, role: `${name}_sp_reducescatter`, deps: [grad.op], accesses: [acc(grad.buffer, tokenBytes, false), acc(gFull, fullBytes, true)], elements: z.gatherElements, macs: 0, group: "tp" }), buffer: gFull };
    }
    const gIn = b.buffer(`${tag}.grad_in_full`, fullBytes);
    const scoreAccess = scores >= 0 ? [acc(scores, b.bufferBytes(scores), false)] : [];
    const gemm = op({ kind, stream: "compute", layer, dir: "bwd", microBatch: mb, chunk: -1, role: name, deps: [g.op], accesses: [acc(g.buffer, fullBytes, false), acc(saved, fullBytes, false), ...scoreAccess, acc(gIn, fullBytes, true), ...gradSlices], elements: 0, macs: z.macs });
    if (tp === 1) return { op: gemm, buffer: gIn };
    const gx = b.buffer(`${tag}.grad_in`, tokenBytes);
    return { op: op({ kind: "reduce_scatter", stream: "intra", layer, dir: "bwd", microBatch: mb, chunk: -1, role: `${name}_sp_allgather`, deps: [gemm], accesses: [acc(gIn, fullBytes, false), acc(gx, tokenBytes, true)], elements: z.gatherElements, macs: 0, group: "tp" }), buffer: gx };
  };

  const placeGrads = (pieces: readonly GradPiece[] | undefined, ctx: BlockContext) => {
    for (const p of pieces ?? []) placeGradPiece(ctx, p, schedule.gradients.stream);
  };

  /** A norm weight's gradient: the layer's dense gradient starts with one vector of `hidden` per norm (attention's, then the FFN's). */
  const normGrad = (layer: number, which: "attention" | "ffn"): Access | undefined => {
    if (!model) return undefined;
    const i = which === "ffn" && w.layers[layer]!.attention ? 1 : 0;
    return acc(gradBuf[layer]!, M * bytes, true, i * M * bytes);
  };

  const blockContext = (layer: number, mb: number, rolePrefix = ""): BlockContext => {
    const ng = normGrad(layer, "ffn");
    return {
      b,
      pricer,
      w,
      layer,
      microBatch: mb,
      gradBuffer: gradBufferOf,
      gradReady: readyOf,
      expertGrad: expertGrad[layer] ?? -1,
      // The dense gradient is laid out norms, router, attention, dense FFN or shared experts.
      routerGrad: acc(gradBuf[layer]!, w.layers[layer]!.routerParams * bytes, true, w.layers[layer]!.normParams * bytes),
      ...(ng && { normGrad: ng }),
      rolePrefix,
    };
  };

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
    if (lw.moe) {
      // Shared experts and the routed experts both read the normalized stream x; the shared
      // experts' output (x + shared) is what I-Order adds the routed output to.
      let residual: Flow | undefined = model ? x : undefined;
      if (lw.shared) {
        const s = denseFwd(layer, mb, "shared_expert", lw.shared, x, `${prefix}shared_expert`);
        state.shared = { saved: s.saved, scores: -1 };
        residual = s.out;
      }
      const plan = schedule.layers.get(layer)!;
      const r = moeBlock(blockContext(layer, mb, prefix), "fwd", plan.forward.style, plan.forward.degree, plan.capacity, { inputOp: x.op, inputBuffer: x.buffer, ...(residual && { residual }) }, []);
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

  const head = w.head;
  const vocabLocal = head?.vocabLocal ?? 0;
  const logitBytes = groupTokens * vocabLocal * bytes;
  const statBytes = groupTokens * STAT_BYTES;
  // The head's gradient: embedding shard, LM head shard, final norm.
  const lmParams = head?.lmHead.params ?? 0;
  const embedGrad = acc(headGrad, lmParams * bytes, true);
  const lmHeadGrad = acc(headGrad, lmParams * bytes, true, lmParams * bytes);
  const finalNormGrad = acc(headGrad, M * bytes, true, 2 * lmParams * bytes);
  const loss = (mb: number, dir: Direction, role: string, deps: number[], accesses: Access[], elements: number) =>
    op({ kind: "loss", stream: "compute", layer: -1, dir, microBatch: mb, chunk: -1, role, deps, accesses, elements, macs: 0 });

  for (let mb = 0; mb < job.microBatches; mb++) {
    const last = mb === job.microBatches - 1;
    // ── forward
    // The iteration's inputs are loaded before it runs: persistent, like the weights.
    let tokens = -1;
    let targets = -1;
    let x: Flow;
    if (head) {
      // Token ids and next-token targets of the tensor-parallel group's sequences.
      tokens = b.buffer(`mb${mb}.tokens`, groupTokens * 4, true);
      targets = b.buffer(`mb${mb}.targets`, groupTokens * 4, true);
      const embedded = b.buffer(`mb${mb}.embedded`, tokenBytes);
      // Vocabulary-parallel lookup: this rank's rows (zero for the others' tokens), summed and scattered over tp.
      const full = tp > 1 ? b.buffer(`mb${mb}.embedded_full`, fullBytes) : embedded;
      const lookup = op({ kind: "embed", stream: "compute", layer: -1, dir: "fwd", microBatch: mb, chunk: -1, role: "embedding", deps: [], accesses: [acc(tokens, groupTokens * 4, false), acc(full, fullBytes, true)], elements: head.embedElements, macs: 0 });
      x = { op: lookup, buffer: embedded };
      if (tp > 1) {
        x = { op: op({ kind: "reduce_scatter", stream: "intra", layer: -1, dir: "fwd", microBatch: mb, chunk: -1, role: "embedding_sp_reducescatter", deps: [lookup], accesses: [acc(full, fullBytes, false), acc(embedded, tokenBytes, true)], elements: head.lmHead.gatherElements, macs: 0, group: "tp" }), buffer: embedded };
      }
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
    if (head) {
      // The final norm and the LM head in one op, on the gathered stream: every token of the
      // group, this rank's V/tp vocabulary entries.
      let n = x;
      if (tp > 1) {
        const gathered = b.buffer(`mb${mb}.lm_head.gathered`, fullBytes);
        n = { op: op({ kind: "all_gather", stream: "intra", layer: -1, dir: "fwd", microBatch: mb, chunk: -1, role: "lm_head_sp_allgather", deps: [x.op], accesses: [acc(x.buffer, tokenBytes, false), acc(gathered, fullBytes, true)], elements: head.lmHead.gatherElements, macs: 0, group: "tp" }), buffer: gathered };
      }
      const logits = b.buffer(`mb${mb}.logits`, logitBytes);
      const lm = op({ kind: "lm_head", stream: "compute", layer: -1, dir: "fwd", microBatch: mb, chunk: -1, role: "lm_head", deps: [n.op], accesses: [acc(n.buffer, fullBytes, false), acc(logits, logitBytes, true)], elements: 0, macs: head.lmHead.macs });
      // Cross-entropy over the vocabulary shards: each token's maximum logit on this shard,
      // gathered over tp (every rank then takes the largest); Σ exp(logit − max) and the target's
      // logit on this shard, gathered over tp (every rank then sums them); each token's loss.
      // The statistics are fp32 whatever the model's dtype, and all-gathers only move bytes.
      const maxLocal = b.buffer(`mb${mb}.logit_max`, statBytes);
      const max = tp > 1 ? b.buffer(`mb${mb}.logit_max_all`, tp * statBytes) : maxLocal;
      const statsLocal = b.buffer(`mb${mb}.loss_stats`, 2 * statBytes);
      const stats = tp > 1 ? b.buffer(`mb${mb}.loss_stats_all`, 2 * tp * statBytes) : statsLocal;
      const lossOut = b.buffer(`mb${mb}.loss`, statBytes, true);
      let maxReady = loss(mb, "fwd", "loss_max", [lm], [acc(logits, logitBytes, false), acc(maxLocal, statBytes, true)], head.lossElements);
      if (tp > 1) maxReady = op({ kind: "all_gather", stream: "intra", layer: -1, dir: "fwd", microBatch: mb, chunk: -1, role: "loss_max_allgather", deps: [maxReady], accesses: [acc(maxLocal, statBytes, false), acc(max, tp * statBytes, true)], elements: tp * groupTokens, macs: 0, group: "tp", elementBytes: STAT_BYTES });
      let statsReady = loss(mb, "fwd", "loss_sumexp", [maxReady], [acc(logits, logitBytes, false), acc(max, tp * statBytes, false), acc(targets, groupTokens * 4, false), acc(statsLocal, 2 * statBytes, true)], head.lossElements);
      if (tp > 1) statsReady = op({ kind: "all_gather", stream: "intra", layer: -1, dir: "fwd", microBatch: mb, chunk: -1, role: "loss_stats_allgather", deps: [statsReady], accesses: [acc(statsLocal, 2 * statBytes, false), acc(stats, 2 * tp * statBytes, true)], elements: 2 * tp * groupTokens, macs: 0, group: "tp", elementBytes: STAT_BYTES });
      loss(mb, "fwd", "loss", [statsReady], [acc(max, tp * statBytes, false), acc(stats, 2 * tp * statBytes, false), acc(lossOut, statBytes, true)], groupTokens);
      // ── backward of the head
      const gLogits = b.buffer(`mb${mb}.grad_logits`, logitBytes);
      const lossBwd = loss(mb, "bwd", "loss", [statsReady], [acc(logits, logitBytes, false), acc(max, tp * statBytes, false), acc(stats, 2 * tp * statBytes, false), acc(targets, groupTokens * 4, false), acc(gLogits, logitBytes, true)], head.lossElements);
      const gnFull = b.buffer(`mb${mb}.lm_head.grad_in_full`, fullBytes);
      const lmBwd = op({ kind: "lm_head", stream: "compute", layer: -1, dir: "bwd", microBatch: mb, chunk: -1, role: "lm_head", deps: [lossBwd], accesses: [acc(gLogits, logitBytes, false), acc(n.buffer, fullBytes, false), acc(gnFull, fullBytes, true), lmHeadGrad, finalNormGrad], elements: 0, macs: head.lmHead.macs });
      g = { op: lmBwd, buffer: gnFull };
      if (tp > 1) {
        const gn = b.buffer(`mb${mb}.lm_head.grad_in`, tokenBytes);
        g = { op: op({ kind: "reduce_scatter", stream: "intra", layer: -1, dir: "bwd", microBatch: mb, chunk: -1, role: "lm_head_sp_allgather", deps: [lmBwd], accesses: [acc(gnFull, fullBytes, false), acc(gn, tokenBytes, true)], elements: head.lmHead.gatherElements, macs: 0, group: "tp" }), buffer: gn };
      }
    } else {
      // No vocabulary: the output's gradient is given.
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
      const ffnNorm = normGrad(l, "ffn");
      if (lw.moe) {
        // Shared experts first: the gate backward adds the norm's gradient to what they leave.
        let residual: Flow | undefined = model ? g : undefined;
        if (lw.shared && st.shared) {
          const offset = gradOffset + (lw.attention?.params ?? 0);
          residual = denseBwd(l, mb, "shared_expert", lw.shared, g, st.shared.saved, -1, [acc(gradBuf[l]!, lw.shared.params * bytes, true, offset * bytes), ...(ffnNorm ? [ffnNorm] : [])], "shared_expert");
        }
        const plan = schedule.layers.get(l)!;
        const r = moeBlock(ctx, "bwd", plan.backward.style, plan.backward.degree, plan.capacity, { inputOp: g.op, inputBuffer: g.buffer, ...(residual && { residual }) }, last ? plan.gapGrads : [], st.moe);
        g = { op: r.outputOp, buffer: r.outputBuffer };
        gradReady[l] = r.outputOp;
      }
      if (lw.ffn && st.ffn) {
        const offset = gradOffset + (lw.attention?.params ?? 0);
        g = denseBwd(l, mb, "dense_ffn", lw.ffn, g, st.ffn.saved, -1, [acc(gradBuf[l]!, lw.ffn.params * bytes, true, offset * bytes), ...(ffnNorm ? [ffnNorm] : [])], "dense_ffn");
      }
      if (last) placeGrads(schedule.gradients.window.get(l), ctx);
      if (lw.attention && st.attention) {
        const attentionNorm = normGrad(l, "attention");
        g = denseBwd(l, mb, "attention", lw.attention, g, st.attention.saved, st.attention.scores, [acc(gradBuf[l]!, lw.attention.params * bytes, true, gradOffset * bytes), ...(attentionNorm ? [attentionNorm] : [])], "attention");
      }
      gradReady[l] = g.op;
      if (last && tp > 1) {
        // Sequence parallelism: norm and router gradients are partial sums over tp, and so are
        // those of attention parameters every tp rank holds whole (MLA's down-projections), which
        // follow them: the attention region starts at gradOffset with them.
        gradReady[l] = op({ kind: "all_reduce", stream: "intra", layer: l, dir: "bwd", microBatch: mb, chunk: -1, role: "sp_grad_allreduce", deps: [gradReady[l]!], accesses: [acc(gradBuf[l]!, lw.tpReducedParams * bytes, true)], elements: lw.tpReducedParams, macs: 0, group: "tp" });
      }
      if (last) placeGrads(schedule.gradients.immediate.get(l), ctx);
    }
    if (head) {
      let gFull = g;
      if (tp > 1) {
        const full = b.buffer(`mb${mb}.embedding.grad_full`, fullBytes);
        gFull = { op: op({ kind: "all_gather", stream: "intra", layer: -1, dir: "bwd", microBatch: mb, chunk: -1, role: "embedding_sp_reducescatter", deps: [g.op], accesses: [acc(g.buffer, tokenBytes, false), acc(full, fullBytes, true)], elements: head.lmHead.gatherElements, macs: 0, group: "tp" }), buffer: full };
      }
      headReady = op({ kind: "embed", stream: "compute", layer: -1, dir: "bwd", microBatch: mb, chunk: -1, role: "embedding", deps: [gFull.op], accesses: [acc(gFull.buffer, fullBytes, false), acc(tokens, groupTokens * 4, false), embedGrad], elements: head.embedElements, macs: 0 });
      if (last && tp > 1) {
        // The final norm's gradient is a partial sum over tp, like the layers' norms.
        headReady = op({ kind: "all_reduce", stream: "intra", layer: -1, dir: "bwd", microBatch: mb, chunk: -1, role: "sp_grad_allreduce", deps: [headReady], accesses: [finalNormGrad], elements: M, macs: 0, group: "tp" });
      }
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

/**
 * The ranges of the dense gradients that no gradient piece of the schedule all-reduces over dp
 * (none when dp = 1). Every replica's gradient must be summed exactly once, so for a correct
 * strategy this is empty; compiler/schedule's tests hold every strategy to it.
 */
export function unreducedGradients(w: Workload, schedule: Schedule): GradPart[] {
  if (w.groups.dp.size <= 1) return [];
  const covered = new Map<number, [number, number][]>();
  const add = (pieces: readonly GradPiece[] | undefined) => {
    for (const piece of pieces ?? [])
      for (const p of piece.parts) {
        const list = covered.get(p.source) ?? [];
        list.push([p.offset, p.offset + p.elements]);
        covered.set(p.source, list);
      }
  };
  for (const list of schedule.gradients.window.values()) add(list);
  for (const list of schedule.gradients.immediate.values()) add(list);
  add(schedule.gradients.tail);
  for (const plan of schedule.layers.values()) add(plan.gapGrads);
  const out: GradPart[] = [];
  for (const whole of denseGradients(w)) {
    const spans = (covered.get(whole.source) ?? []).sort((a, b) => a[0] - b[0]);
    let at = whole.offset;
    const end = whole.offset + whole.elements;
    for (const [from, to] of spans) {
      if (from > at) out.push({ source: whole.source, offset: at, elements: Math.min(from, end) - at });
      at = Math.max(at, to);
      if (at >= end) break;
    }
    if (at < end) out.push({ source: whole.source, offset: at, elements: end - at });
  }
  return out;
}

/** Every dense gradient in production order (last layer first, the head last). */
export function denseGradients(w: Workload): GradPart[] {
  const out: GradPart[] = [];
  for (let l = w.layers.length - 1; l >= 0; l--) if (w.layers[l]!.denseParams > 0) out.push(wholeGradient(w, l));
  if (w.head) out.push(wholeGradient(w, -1));
  return out;
}

export type { Direction, Stream };

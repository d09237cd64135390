/**
 * The simulator against FSMoE's closed form (SCHEDULING.md §3; fsmoe-digest.md §4.3 and
 * Appendix A), block by block. For every MoE block (layer, direction, micro-batch) it reads the
 * scheduler's per-chunk times off the plan — a (all-to-all), g (AllGather), s (ReduceScatter),
 * e (expert GEMMs), and G, the gradient all-reduce the plan put in the block's inter-link gap —
 * evaluates T(r, G) = max{2r·a + max(g + s, G), 2a + r(g + s), 2a + g + s + r·e}, and sets it
 * against the simulated span from the first chunk's all-to-all to the last one's. Where they
 * differ by more than 2% it says which of the closed form's assumptions the block breaks.
 */
import type { Plan } from "../../compiler/plan/schema.js";
import { closedForm } from "../../compiler/schedule/evaluate.js";
import type { EngineResult } from "./engine.js";
import type { Prepared } from "./input.js";
import type { LayerSkew } from "./skew.js";

/** The agreement the closed form is held to (Appendix A: within 2% for FSMoE's symmetric blocks). */
export const AGREEMENT = 0.02;

/** One MoE block set against the closed form. */
export interface BlockCheck {
  readonly layer: number;
  readonly dir: "fwd" | "bwd";
  readonly microBatch: number;
  /** The forward that full recomputation repeats in the backward. */
  readonly recompute: boolean;
  /** The block's issue order (phased is FSMoE's, the one the closed form describes). */
  readonly order: string;
  readonly degree: number;
  /** Per-chunk times (µs) and the gradient all-reduce in the gap, as the plan prices them. */
  readonly a: number;
  readonly g: number;
  readonly s: number;
  readonly e: number;
  readonly gradUs: number;
  readonly closedFormUs: number;
  /** Simulated: first all-to-all start to last all-to-all end. */
  readonly simulatedUs: number;
  /** Simulated: the whole block, gate to restore. */
  readonly blockUs: number;
  /** simulated / closed form − 1. */
  readonly disagreement: number;
  /** Why they differ, when they differ by more than {@link AGREEMENT}. */
  readonly reasons: readonly string[];
}

const ROLES = new Set(["gate", "order", "iorder", "dispatch", "combine", "esp_allgather", "esp_reducescatter", "expert"]);

interface Draft {
  id: number;
  layer: number;
  dir: "fwd" | "bwd";
  microBatch: number;
  recompute: boolean;
  members: number[];
  a2a: number[];
  gather: number[];
  scatter: number[];
  expert: number[];
}

function us(x: number): string {
  return x >= 1000 ? `${(x / 1000).toFixed(3)} ms` : `${x.toFixed(1)} µs`;
}

/** Compare every MoE block of a simulated plan with the closed form. */
export function checkBlocks(plan: Plan, p: Prepared, r: EngineResult, skew: readonly LayerSkew[]): BlockCheck[] {
  const drafts = new Map<number, Draft>();
  const ops = plan.ops;
  // Op index → the block it belongs to (-1: none), to tell waits inside a block from waits outside.
  const blockOf = new Int32Array(ops.length).fill(-1);
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.layer < 0) continue;
    const recompute = op.role.startsWith("recompute.");
    if (!ROLES.has(recompute ? op.role.slice(10) : op.role)) continue;
    const key = ((op.microBatch * 2 + (op.dir === "fwd" ? 0 : 1)) * 2 + (recompute ? 1 : 0)) * 1_000_000 + op.layer;
    let d = drafts.get(key);
    if (!d) {
      d = { id: drafts.size, layer: op.layer, dir: op.dir, microBatch: op.microBatch, recompute, members: [], a2a: [], gather: [], scatter: [], expert: [] };
      drafts.set(key, d);
    }
    d.members.push(i);
    blockOf[i] = d.id;
    if (op.kind === "all_to_all") d.a2a.push(i);
    else if (op.kind === "all_gather") d.gather.push(i);
    else if (op.kind === "reduce_scatter") d.scatter.push(i);
    else if (op.kind === "expert") d.expert.push(i);
  }
  const layers = new Map(plan.layers.map((l) => [l.layer, l]));
  const skewOf = new Map(skew.map((s) => [s.layer, s]));
  const out: BlockCheck[] = [];
  for (const d of drafts.values()) {
    if (d.a2a.length === 0) continue;
    // Every chunk has two all-to-alls (dispatch and combine).
    const degree = Math.max(1, d.a2a.length >> 1);
    const mean = (list: number[]) => (list.length === 0 ? 0 : list.reduce((x, i) => x + ops[i]!.predictedUs, 0) / list.length);
    const a = mean(d.a2a);
    const g = mean(d.gather);
    const s = mean(d.scatter);
    const e = d.expert.reduce((x, i) => x + ops[i]!.predictedUs, 0) / degree;
    // Indices were pushed in issue order.
    const firstA2a = d.a2a[0]!;
    const lastA2a = d.a2a[d.a2a.length - 1]!;
    let gradUs = 0;
    for (let i = firstA2a + 1; i < lastA2a; i++) if (ops[i]!.kind === "all_reduce" && ops[i]!.stream === ops[firstA2a]!.stream) gradUs += ops[i]!.predictedUs;
    const cf = closedForm({ a, g, s, e }, degree, gradUs).T;
    let s0 = Infinity;
    let s1 = 0;
    for (const i of d.a2a) {
      s0 = Math.min(s0, r.start[i]!);
      s1 = Math.max(s1, r.end[i]!);
    }
    let b0 = Infinity;
    let b1 = 0;
    for (const i of d.members) {
      b0 = Math.min(b0, r.start[i]!);
      b1 = Math.max(b1, r.end[i]!);
    }
    const simulatedUs = s1 - s0;
    const disagreement = cf > 0 ? simulatedUs / cf - 1 : 0;
    const lp = layers.get(d.layer);
    const orderKind = lp ? (d.dir === "fwd" ? lp.forward.order : lp.backward.order) : { kind: "phased" as const };
    const order = orderKind.kind === "interleaved" ? `interleaved/${orderKind.lookahead}` : orderKind.kind;
    const reasons: string[] = [];
    if (Math.abs(disagreement) > AGREEMENT) {
      if (orderKind.kind !== "phased") reasons.push(`the issue order is ${order}, not FSMoE's phased order the closed form describes`);
      if (Math.max(g, s) > 0 && Math.abs(g - s) > 0.1 * Math.max(g, s)) {
        reasons.push(`AG and RS times differ (g ${us(g)}, s ${us(s)}): the closed form assumes they are equal, and is then a lower bound`);
      }
      if (gradUs > 0) reasons.push(`a gradient all-reduce of ${us(gradUs)} is placed in the gap (G in the formula)`);
      const sk = skewOf.get(d.layer);
      if (sk && sk.factor > 1) reasons.push(`skew: the slowest rank carries ${sk.factor.toFixed(2)}× the balanced volume (ranks are not symmetric)`);
      let nicAdded = 0;
      let intraAdded = 0;
      let slowCompute = 0;
      const chunkOps = [...d.a2a, ...d.gather, ...d.scatter, ...d.expert];
      for (const i of chunkOps) {
        const extra = r.end[i]! - r.start[i]! - p.base[i]!;
        if (extra <= 1e-9) continue;
        if (p.comm[i]) {
          if (p.nicUse[i]! > 0) nicAdded += extra;
          else intraAdded += extra;
        } else slowCompute += extra;
      }
      if (nicAdded > 0) reasons.push(`contention on the NIC added ${us(nicAdded)} to its collectives`);
      if (intraAdded > 0) reasons.push(`contention on the intra-node links added ${us(intraAdded)} to its collectives`);
      if (slowCompute > 0) reasons.push(`interference from communication kernels added ${us(slowCompute)} to its expert GEMMs`);
      const outside = chunkOps.find((i) => r.cause[i]! >= 0 && blockOf[r.cause[i]!] !== d.id && r.start[i]! > s0);
      if (outside !== undefined) {
        const c = ops[r.cause[outside]!]!;
        reasons.push(`the block waited for op ${c.id} (${c.kind} ${c.role}${c.layer >= 0 ? ` L${c.layer}` : ""} ${c.dir}) outside it`);
      }
      if (reasons.length === 0) reasons.push("pipeline fill and drain the max-formula does not capture");
    }
    out.push({
      layer: d.layer,
      dir: d.dir,
      microBatch: d.microBatch,
      recompute: d.recompute,
      order,
      degree,
      a,
      g,
      s,
      e,
      gradUs,
      closedFormUs: cf,
      simulatedUs,
      blockUs: b1 - b0,
      disagreement,
      reasons,
    });
  }
  return out;
}

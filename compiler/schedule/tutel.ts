/**
 * Tutel, faithfully (baselines.md §1.2; SCHEDULING.md §3): chunked with a degree d — the job's
 * `pipeline` when it fixes one, else the best of {1, 2, 4, 8} under the same cost model (a
 * generous baseline). One communication stream carries every chunk's dispatch, then every
 * chunk's combine (FIFO, so dispatch never overlaps combine); expert sharding folds into that
 * stream (each chunk's ESP AllGather follows its dispatch, its ReduceScatter precedes its
 * combine). Capacity C = k · floor(f · ceil(T / E)), aligned up to a multiple of d (Tutel's
 * alignment with sharded_count = 1). Gradients: DDP-style, each layer's all-reduce issued as
 * soon as its gradients exist, overlapping the rest of the backward on the communication stream.
 */
import type { BlockStyle } from "../graph/moe-block.js";
import { padCapacity } from "../lower/shapes.js";
import { fastBlockTime } from "./block-sim.js";
import { moeLayerIndices, needsGradientReduce, type Strategy } from "./strategy.js";
import type { Candidate, LayerPlan } from "./types.js";
import { wholeGradient } from "../graph/iteration.js";
import type { GradPiece } from "../graph/moe-block.js";

/** Tutel's capacity before alignment: k · floor(f · ceil(T / E)). */
export function tutelCapacity(tokens: number, experts: number, topK: number, factor: number): number {
  const perExpert = Math.ceil(tokens / experts);
  const scale = 1_000_000;
  return topK * Math.floor((Math.round(factor * scale) * perExpert) / scale);
}

export const tutel: Strategy = {
  name: "tutel",
  summary: "Tutel: degree d ∈ {1, 2, 4, 8}, one FIFO communication stream (all dispatches, then all combines), DDP-style gradients",
  plan(w, pricer) {
    const s = w.shape;
    const moe = w.job.model.moe;
    const native = moe.router !== "softmoe" && moe.router !== "expert_choice";
    const base = native ? Math.max(1, tutelCapacity(s.tokens, s.experts, s.topK, moe.capacityFactor)) : s.capacity0;
    const style: BlockStyle = { kind: "single-comm" };
    const fixed = w.job.pipeline.forward;
    const candidates: Candidate[] = [];
    let degree = typeof fixed === "number" ? fixed : 1;
    if (typeof fixed !== "number") {
      let best = Infinity;
      for (const d of [1, 2, 4, 8]) {
        const c = padCapacity(base, d);
        const t = fastBlockTime(w, pricer, "fwd", style, d, c) + fastBlockTime(w, pricer, "bwd", style, d, c);
        candidates.push({ scope: "every MoE layer", description: `d = ${d}, C = ${c}`, predictedUs: t, chosen: false });
        if (t < best) {
          best = t;
          degree = d;
        }
      }
    }
    const capacity = padCapacity(base, degree);
    const layers = new Map<number, LayerPlan>();
    for (const l of moeLayerIndices(w)) layers.set(l, { layer: l, capacity, forward: { degree, style }, backward: { degree, style }, gapGrads: [] });
    const immediate = new Map<number, GradPiece[]>();
    if (needsGradientReduce(w)) for (const lw of w.layers) if (lw.denseParams > 0) immediate.set(lw.index, [{ parts: [wholeGradient(w, lw.index)] }]);
    return {
      strategy: "tutel",
      layers,
      gradients: { window: new Map(), immediate, tail: needsGradientReduce(w) && w.head ? [{ parts: [wholeGradient(w, -1)] }] : [], stream: "inter" },
      candidates: candidates.map((c) => ({ ...c, chosen: c.description.startsWith(`d = ${degree},`) })),
      notes: [
        typeof fixed === "number" ? `d = ${fixed} from the job's pipeline` : `d = ${degree}: the best of {1, 2, 4, 8} for forward + backward of one MoE block`,
        native ? `C = k · floor(f · ceil(T / E)) = ${base}, aligned to d: ${capacity}` : `Tutel has no ${moe.router} router; C0 = ${base} is used, aligned to d: ${capacity}`,
      ],
    };
  },
};

/**
 * The per-resource lower bound of an iteration (SCHEDULING.md §3): no schedule can beat the
 * busiest resource's total work. Priced at the cheapest shapes — every MoE block unchunked
 * (one α per collective and GEMM) at the unpadded capacity C0, gradients reduced once after
 * the backward — on three resources: compute, the intra-node links, the inter-node links.
 */
import type { Pricer } from "../graph/pricing.js";
import { timeline } from "../graph/timeline.js";
import { buildIteration } from "../graph/iteration.js";
import type { Workload } from "../lower/workload.js";
import { afterBackward, moeLayerIndices } from "../schedule/strategy.js";
import type { LayerPlan, Schedule } from "../schedule/types.js";
import { lowerBoundOf } from "../schedule/evaluate.js";

/** The lower bound (µs) of a workload's iteration. */
export function lowerBound(w: Workload, pricer: Pricer): number {
  const layers = new Map<number, LayerPlan>();
  for (const l of moeLayerIndices(w)) {
    layers.set(l, { layer: l, capacity: w.shape.capacity0, forward: { degree: 1, style: { kind: "phased" } }, backward: { degree: 1, style: { kind: "phased" } }, gapGrads: [] });
  }
  const schedule: Schedule = { strategy: "fsmoe", layers, gradients: afterBackward(w, "inter"), candidates: [], notes: [] };
  const f = buildIteration(w, schedule, pricer);
  if (!f.ok) throw new Error("the lower-bound schedule cannot deadlock");
  return lowerBoundOf(timeline(f.graph));
}

/**
 * FSMoE, faithfully (SCHEDULING.md §3; fsmoe-digest.md §4): three streams (compute, intra,
 * inter); issue order inter D1…Dr then C1…Cr, intra AG1…AGr then RS1…RSr, compute E1…Er.
 * The forward degree r_f and, per layer, the backward degree r_b are chosen from {1, 2, 4, 8}
 * by the closed form T(r, G) (a job's fixed `pipeline` overrides). Dense gradients are packed
 * into the backward's idle inter-link windows with the authors' stack rule; what is left is
 * given to the MoE layer right after it is produced (the assignment the authors' differential
 * evolution must beat, and keeps when it does not — we keep it always, deterministically) with
 * that layer's r_b re-chosen under the extra load; anything produced after the last MoE layer
 * goes after the backward. Capacity is C0 padded to lcm(r_f, r_b) per layer.
 */
import type { GradPart } from "../graph/moe-block.js";
import { wholeGradient } from "../graph/iteration.js";
import type { Pricer } from "../graph/pricing.js";
import { lcm, padCapacity } from "../lower/shapes.js";
import type { Workload } from "../lower/workload.js";
import { chunkTimes, closedForm } from "./evaluate.js";
import { stackPacking } from "./stack-packing.js";
import { moeLayerIndices, needsGradientReduce, oneBucket, type Strategy } from "./strategy.js";
import type { Candidate, LayerPlan } from "./types.js";
import { allReduceLine, backwardWindows } from "./windows.js";
import type { Direction } from "../graph/types.js";

/** FSMoE's degrees. */
export const FSMOE_DEGREES = [1, 2, 4, 8] as const;

/** The degree minimizing the closed form, with the priced table (ties go to the smaller r). */
export function bestDegree(w: Workload, pricer: Pricer, dir: Direction, degrees: readonly number[], gradUs: number): { r: number; table: { r: number; T: number }[] } {
  const table = degrees.map((r) => ({ r, T: closedForm(chunkTimes(w, pricer, dir, r, w.shape.capacity0), r, gradUs).T }));
  const best = table.reduce((a, b) => (b.T < a.T ? b : a));
  return { r: best.r, table };
}

export const fsmoe: Strategy = {
  name: "fsmoe",
  summary: "FSMoE: three streams, r ∈ {1, 2, 4, 8} per direction and layer by the closed form, stack-packed gradient all-reduce",
  plan(w, pricer, options) {
    const rules = options.fsmoeEmpiricalRules === true;
    const notes: string[] = [];
    const candidates: Candidate[] = [];
    const fixed = w.job.pipeline;
    const fwd = bestDegree(w, pricer, "fwd", FSMOE_DEGREES, 0);
    let rf = typeof fixed.forward === "number" ? fixed.forward : fwd.r;
    const wholeA2a = pricer.price("all_to_all", "fwd", w.shape.experts * w.shape.capacity0 * w.shape.hidden, 0, "ep");
    if (rules && typeof fixed.forward !== "number" && wholeA2a < 1000) {
      rf = 1;
      notes.push(`empirical rule: the whole all-to-all takes ${wholeA2a.toFixed(0)} µs < 1 ms, so r_f = 1`);
    }
    for (const row of fwd.table) candidates.push({ scope: "forward, every MoE layer", description: `r = ${row.r}`, predictedUs: row.T, chosen: row.r === rf });
    const bwd0 = bestDegree(w, pricer, "bwd", FSMOE_DEGREES, 0);
    let d1 = typeof fixed.backward === "number" ? fixed.backward : bwd0.r;
    if (rules && rf === 1 && typeof fixed.backward !== "number") d1 = 1;

    const line = allReduceLine(pricer);
    const idle = closedForm(chunkTimes(w, pricer, "bwd", d1, w.shape.capacity0), d1).W;
    const windows = needsGradientReduce(w) ? backwardWindows(w, pricer, () => idle) : [];
    const packing = stackPacking(windows, line);
    const moeParts = new Map<number, GradPart[]>();
    const denseParts = new Map<number, GradPart[]>();
    windows.forEach((win, i) => {
      const parts = packing.placed.get(i);
      if (!parts) return;
      (win.kind === "moe" ? moeParts : denseParts).set(win.layer, [...parts]);
    });
    const tail: GradPart[] = [];
    for (const { part, producedAfter } of packing.leftover) {
      const next = windows.findIndex((win, j) => j > producedAfter && win.kind === "moe");
      if (next < 0) tail.push(part);
      else moeParts.set(windows[next]!.layer, [...(moeParts.get(windows[next]!.layer) ?? []), part]);
    }
    // The embedding and LM head's gradient exists only once the backward is over.
    if (w.head && needsGradientReduce(w)) tail.push(wholeGradient(w, -1));
    if (packing.leftover.length > 0) notes.push(`${packing.leftover.length} gradient piece(s) did not fit a window; each went to the next MoE layer's backward, or after the backward`);

    const layers = new Map<number, LayerPlan>();
    for (const l of moeLayerIndices(w)) {
      const parts = moeParts.get(l) ?? [];
      const elements = parts.reduce((n, p) => n + p.elements, 0);
      const gradUs = elements > 0 ? line.alpha + line.beta * elements : 0;
      const bwd = bestDegree(w, pricer, "bwd", FSMOE_DEGREES, gradUs);
      const rb = typeof fixed.backward === "number" ? fixed.backward : rules && rf === 1 ? 1 : bwd.r;
      for (const row of bwd.table) candidates.push({ scope: `backward, layer ${l}`, description: `r = ${row.r}${gradUs > 0 ? `, carrying a ${elements}-element all-reduce` : ""}`, predictedUs: row.T, chosen: row.r === rb });
      layers.set(l, {
        layer: l,
        capacity: padCapacity(w.shape.capacity0, lcm(rf, rb)),
        forward: { degree: rf, style: { kind: "phased" } },
        backward: { degree: rb, style: { kind: "phased" } },
        gapGrads: oneBucket(parts),
      });
    }
    const window = new Map([...denseParts].map(([l, parts]) => [l, oneBucket(parts)] as const));
    return {
      strategy: "fsmoe",
      layers,
      gradients: { window, immediate: new Map(), tail: oneBucket(tail), stream: "inter" },
      candidates,
      notes,
    };
  },
};

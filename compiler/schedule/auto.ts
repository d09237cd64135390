/**
 * auto (ours; SCHEDULING.md §3): never predicted slower than fsmoe, because fsmoe's schedule is
 * one of its candidates and every candidate is priced by the same whole-iteration evaluator.
 * Its own search:
 * 1. any degree r in 1 … 16, with the padding each choice causes charged (C0 padded to r);
 * 2. the issue order: FSMoE's phased order or an interleaving with lookahead ℓ (inter D1…Dℓ,
 *    C1, Dℓ+1, …; the intra stream interleaved the same way, which keeps it deadlock-free),
 *    each block priced by simulating its three streams;
 * 3. deterministic gradient slotting: windows are filled in production order (earliest window
 *    first, no stack), and each piece that does not fit goes to the MoE layer, among the next
 *    few after it is produced, whose backward grows least when it carries it;
 * then every MoE layer's backward degree and order are re-chosen under their final load.
 * Candidates: fsmoe's schedule, the searched one, and the searched degrees with all gradients
 * after the backward. The cheapest whole iteration wins.
 */
import type { BlockStyle, GradPart } from "../graph/moe-block.js";
import { wholeGradient } from "../graph/iteration.js";
import type { Pricer } from "../graph/pricing.js";
import type { Direction } from "../graph/types.js";
import { lcm, padCapacity } from "../lower/shapes.js";
import type { Workload } from "../lower/workload.js";
import { fastBlockTime } from "./block-sim.js";
import { chunkTimes, predict } from "./evaluate.js";
import { fsmoe } from "./fsmoe.js";
import { afterBackward, moeLayerIndices, needsGradientReduce, oneBucket, type Strategy } from "./strategy.js";
import type { Candidate, LayerPlan, Schedule } from "./types.js";
import { allReduceLine, backwardWindows, fitting } from "./windows.js";

/** The largest degree auto considers. */
export const AUTO_MAX_DEGREE = 16;
/** How many MoE layers after a gradient is produced auto considers for carrying it. */
const CARRY_CANDIDATES = 4;

function styles(r: number): BlockStyle[] {
  const out: BlockStyle[] = [{ kind: "phased" }];
  for (const l of new Set([1, 2, Math.floor(r / 2)])) if (l >= 1 && l < r) out.push({ kind: "interleaved", lookahead: l });
  return out;
}

function describe(s: BlockStyle): string {
  return s.kind === "interleaved" ? `interleaved (lookahead ${s.lookahead})` : s.kind;
}

interface Choice {
  readonly r: number;
  readonly style: BlockStyle;
  readonly T: number;
}

/**
 * The best (degree, order) of one block, charging each degree its own padding. Every MoE layer
 * has the same shape and a gradient load is one bucket, so the answer depends only on the
 * direction and the load's size: it is memoized per plan.
 */
function blockSearch(w: Workload, pricer: Pricer, table?: (dir: Direction, elements: number, r: number, style: BlockStyle, T: number) => void): (dir: Direction, fixed: number | "auto", gradParts: readonly GradPart[]) => Choice {
  const memo = new Map<string, Choice>();
  return (dir, fixed, gradParts) => {
    const elements = gradParts.reduce((n, p) => n + p.elements, 0);
    const key = `${dir}/${fixed}/${elements}`;
    const hit = memo.get(key);
    if (hit) return hit;
    const degrees = typeof fixed === "number" ? [fixed] : Array.from({ length: AUTO_MAX_DEGREE }, (_, i) => i + 1);
    let best: Choice | null = null;
    for (const r of degrees) {
      let bestOfR: Choice | null = null;
      for (const style of styles(r)) {
        const T = fastBlockTime(w, pricer, dir, style, r, padCapacity(w.shape.capacity0, r), elements);
        if (bestOfR === null || T < bestOfR.T - 1e-9) bestOfR = { r, style, T };
      }
      if (bestOfR && table) table(dir, elements, r, bestOfR.style, bestOfR.T);
      if (bestOfR && (best === null || bestOfR.T < best.T - 1e-9)) best = bestOfR;
    }
    memo.set(key, best!);
    return best!;
  };
}

function searched(w: Workload, pricer: Pricer, candidates: Candidate[]): { layers: Map<number, LayerPlan>; window: Map<number, GradPart[]>; tail: GradPart[]; fwd: Choice } {
  const fixed = w.job.pipeline;
  const fwdTable: { r: number; style: BlockStyle; T: number }[] = [];
  const bestBlock = blockSearch(w, pricer, (dir, elements, r, style, T) => {
    if (dir === "fwd" && elements === 0) fwdTable.push({ r, style, T });
  });
  const fwd = bestBlock("fwd", fixed.forward, []);
  const bwd0 = bestBlock("bwd", fixed.backward, []);
  const line = allReduceLine(pricer);
  const idle = bwd0.T - 2 * bwd0.r * chunkTimes(w, pricer, "bwd", bwd0.r, padCapacity(w.shape.capacity0, bwd0.r)).a;
  const windows = needsGradientReduce(w) ? backwardWindows(w, pricer, () => Math.max(0, idle)) : [];
  // Fill windows in production order, earliest window first.
  const free = windows.map((win) => win.capUs);
  const placed = windows.map((): GradPart[] => []);
  const leftover: { part: GradPart; after: number }[] = [];
  windows.forEach((win, i) => {
    if (!win.produces) return;
    let rest = win.produces;
    for (let j = i + 1; j < windows.length && rest.elements > 0; j++) {
      const fit = Math.min(rest.elements, fitting(free[j]!, line));
      if (fit <= 0) continue;
      placed[j]!.push({ ...rest, elements: fit });
      free[j]! -= line.alpha + line.beta * fit;
      rest = { ...rest, offset: rest.offset + fit, elements: rest.elements - fit };
    }
    if (rest.elements > 0) leftover.push({ part: rest, after: i });
  });
  const moeParts = new Map<number, GradPart[]>();
  const window = new Map<number, GradPart[]>();
  windows.forEach((win, i) => {
    if (placed[i]!.length > 0) (win.kind === "moe" ? moeParts : window).set(win.layer, placed[i]!);
  });
  const tail: GradPart[] = [];
  const load = (l: number) => moeParts.get(l) ?? [];
  for (const { part, after } of leftover) {
    const options = windows.map((win, j) => ({ win, j })).filter(({ win, j }) => j > after && win.kind === "moe").slice(0, CARRY_CANDIDATES);
    let best: { layer: number; extra: number } | null = null;
    for (const { win } of options) {
      // The marginal cost at the layer's current best degree and order; the layer's final
      // degree and order are searched again under its whole load below.
      const current = bestBlock("bwd", fixed.backward, load(win.layer));
      const elements = load(win.layer).reduce((n, p) => n + p.elements, 0) + part.elements;
      const afterT = fastBlockTime(w, pricer, "bwd", current.style, current.r, padCapacity(w.shape.capacity0, current.r), elements);
      if (best === null || afterT - current.T < best.extra) best = { layer: win.layer, extra: afterT - current.T };
    }
    const exposed = line.alpha + line.beta * part.elements;
    if (best === null || best.extra >= exposed) tail.push(part);
    else moeParts.set(best.layer, [...load(best.layer), part]);
  }
  // The embedding and LM head's gradient exists only once the backward is over.
  if (w.head && needsGradientReduce(w)) tail.push(wholeGradient(w, -1));
  const layers = new Map<number, LayerPlan>();
  for (const l of moeLayerIndices(w)) {
    const parts = load(l);
    const b = bestBlock("bwd", fixed.backward, parts);
    candidates.push({ scope: `search: backward, layer ${l}`, description: `r = ${b.r}, ${describe(b.style)}${parts.length ? `, carrying ${parts.reduce((n, p) => n + p.elements, 0)} gradient elements` : ""}`, predictedUs: b.T, chosen: true });
    layers.set(l, {
      layer: l,
      capacity: padCapacity(w.shape.capacity0, lcm(fwd.r, b.r)),
      forward: { degree: fwd.r, style: fwd.style },
      backward: { degree: b.r, style: b.style },
      gapGrads: oneBucket(parts),
    });
  }
  for (const row of fwdTable) candidates.push({ scope: "search: forward, every MoE layer", description: `r = ${row.r}, ${describe(row.style)}, C = ${padCapacity(w.shape.capacity0, row.r)}`, predictedUs: row.T, chosen: row.r === fwd.r });
  return { layers, window, tail, fwd };
}

export const auto: Strategy = {
  name: "auto",
  summary: "ours: r up to 16, interleaved issue orders, deterministic gradient slotting; never slower than fsmoe",
  plan(w, pricer, options) {
    const candidates: Candidate[] = [];
    const base = fsmoe.plan(w, pricer, options);
    const s = searched(w, pricer, candidates);
    const slotted: Schedule = {
      strategy: "auto",
      layers: s.layers,
      gradients: { window: new Map([...s.window].map(([l, p]) => [l, oneBucket(p)] as const)), immediate: new Map(), tail: oneBucket(s.tail), stream: "inter" },
      candidates: [],
      notes: [],
    };
    const deferred: Schedule = { ...slotted, layers: new Map([...s.layers].map(([l, p]) => [l, { ...p, gapGrads: [] }] as const)), gradients: afterBackward(w, "inter") };
    const options3: [string, Schedule][] = [
      ["fsmoe's schedule", { ...base, strategy: "auto" }],
      ["searched degrees and orders, slotted gradients", slotted],
      ["searched degrees and orders, gradients after the backward", deferred],
    ];
    let best: { name: string; schedule: Schedule; us: number } | null = null;
    const priced = options3.map(([name, schedule]) => {
      const p = predict(w, schedule, pricer);
      const us = p.ok ? p.timeline.makespanUs : Infinity;
      if (best === null || us < best.us - 1e-6) best = { name, schedule, us };
      return { name, us, note: p.ok ? undefined : `deadlocks: ${p.stuck}` };
    });
    const chosen = best!;
    const searchWon = chosen.name !== "fsmoe's schedule";
    const whole: Candidate[] = priced.map((c) => ({ scope: "whole iteration", description: c.name, predictedUs: c.us, chosen: c.name === chosen.name, ...(c.note && { note: c.note }) }));
    return {
      ...chosen.schedule,
      strategy: "auto",
      candidates: [
        ...whole,
        ...candidates.map((c) => ({ ...c, chosen: c.chosen && searchWon })),
        ...base.candidates.map((c) => ({ ...c, scope: `fsmoe: ${c.scope}`, chosen: c.chosen && !searchWon })),
      ],
      notes: [`chose ${chosen.name}`, ...(chosen.name === "fsmoe's schedule" ? base.notes : [])],
    };
  },
};

/**
 * Pricing schedules. Every strategy prices its candidates here, with the same cost model and
 * the same graph construction, so their predictions compare: a whole iteration through
 * {@link predict}, one MoE block through {@link blockTime}, and FSMoE's closed form
 * (SCHEDULING.md §3) through {@link closedForm}.
 */
import { GraphBuilder } from "../graph/builder.js";
import { buildIteration } from "../graph/iteration.js";
import { moeBlock, type BlockContext, type BlockStyle, type GradPiece } from "../graph/moe-block.js";
import type { Pricer } from "../graph/pricing.js";
import { timeline, type Timeline } from "../graph/timeline.js";
import type { Direction, TaskGraph } from "../graph/types.js";
import { moeSizes } from "../lower/shapes.js";
import type { Workload } from "../lower/workload.js";
import type { Schedule } from "./types.js";

/** A priced iteration, or the lane heads that deadlock. */
export type Prediction =
  | { readonly ok: true; readonly graph: TaskGraph; readonly timeline: Timeline }
  | { readonly ok: false; readonly stuck: string };

/** Build and time the whole iteration of a schedule. */
export function predict(w: Workload, schedule: Schedule, pricer: Pricer): Prediction {
  const f = buildIteration(w, schedule, pricer);
  if (!f.ok) return { ok: false, stuck: f.stuck.map((s) => `${s.role} ${s.kind} L${s.layer} ${s.dir} chunk ${s.chunk} (${s.stream})`).join("; ") };
  return { ok: true, graph: f.graph, timeline: timeline(f.graph) };
}

/** The time of one MoE block alone (µs), with gradient all-reduce pieces in its gap; null if its order deadlocks. */
export function blockTime(w: Workload, pricer: Pricer, dir: Direction, style: BlockStyle, degree: number, capacity: number, grads: readonly GradPiece[] = []): number | null {
  const b = new GraphBuilder(Object.values(w.groups));
  const layer = w.layers.find((l) => l.moe)?.index ?? 0;
  const grad = b.buffer("grad", 1e12, true);
  const ctx: BlockContext = {
    b,
    pricer,
    w,
    layer,
    microBatch: 0,
    gradBuffer: () => grad,
    gradReady: () => -1,
    expertGrad: b.buffer("expert_grad", 1, true),
    routerGrad: { buffer: grad, offset: 0, bytes: 1, write: true },
    rolePrefix: "",
  };
  const input = b.buffer("input", 1);
  const saved = dir === "bwd" ? { logits: b.buffer("logits", 1), gathered: b.buffer("gathered", 1e12), hidden: b.buffer("hidden", 1e12), orderOp: -1 } : undefined;
  moeBlock(ctx, dir, style, degree, capacity, { inputOp: -1, inputBuffer: input }, grads, saved);
  const f = b.finish();
  return f.ok ? timeline(f.graph).makespanUs : null;
}

/** Per-chunk times of one MoE block at degree r (µs): all-to-all, AllGather, ReduceScatter, expert. */
export interface ChunkTimes {
  readonly a: number;
  readonly g: number;
  readonly s: number;
  readonly e: number;
}

/** FSMoE's per-chunk times a, g, s, e at degree r and capacity C. */
export function chunkTimes(w: Workload, pricer: Pricer, dir: Direction, degree: number, capacity: number): ChunkTimes {
  const z = moeSizes(w.shape, capacity);
  const r = degree;
  return {
    a: pricer.price("all_to_all", dir, z.a2aElements / r, 0, "ep"),
    g: z.espElements > 0 ? pricer.price("all_gather", dir, z.espElements / r, 0, "esp") : 0,
    s: z.espElements > 0 ? pricer.price("reduce_scatter", dir, z.espElements / r, 0, "esp") : 0,
    e: pricer.price("expert", dir, 0, z.expertMacs / r),
  };
}

/**
 * FSMoE's closed form (SCHEDULING.md §3; fsmoe-digest.md §4.3):
 * T(r, G) = max{2r·a + max(g + s, G), 2a + r(g + s), 2a + g + s + r·e}, and the inter-link
 * idle time W = T − 2r·a.
 */
export function closedForm(t: ChunkTimes, r: number, gradUs = 0): { readonly T: number; readonly W: number } {
  const T = Math.max(2 * r * t.a + Math.max(t.g + t.s, gradUs), 2 * t.a + r * (t.g + t.s), 2 * t.a + t.g + t.s + r * t.e);
  return { T, W: T - 2 * r * t.a };
}

/** The per-resource lower bound of a timeline (SCHEDULING.md §3): the busiest stream's total work. */
export function lowerBoundOf(t: Timeline): number {
  return Math.max(t.busyUs.compute, t.busyUs.intra, t.busyUs.inter);
}

/**
 * What several emitters share (ARCHITECTURE.md, "codegen/"): the order of streams and op kinds,
 * one colour per op kind (the SVG timeline and the DOT graph use the same palette), a short
 * label for an op, the cross-stream events a plan needs, and time rounding. Everything here is
 * a pure function of the plan, so every target stays byte-identical across runs.
 */
import type { Plan, PlanOp } from "../compiler/plan/schema.js";

/** A stream of the plan. */
export type StreamName = PlanOp["stream"];
/** An op kind of the plan. */
export type OpKind = PlanOp["kind"];

/** Streams in display order: compute first, then the intra-node and the inter-node links. */
export const STREAMS: readonly StreamName[] = ["compute", "intra", "inter"];

/** Every op kind, compute kinds first (in model order), then the collectives; fixes legend order. */
export const KINDS: readonly OpKind[] = [
  "embed", "norm", "attention", "dense_ffn", "shared_expert", "gate", "order",
  "dispatch_gemm", "expert", "combine_gemm", "iorder", "lm_head", "loss",
  "all_to_all", "all_gather", "reduce_scatter", "all_reduce",
];

/** Collective kinds (they run on a communicator of the op's group). */
export const COLLECTIVES: ReadonlySet<OpKind> = new Set<OpKind>(["all_to_all", "all_gather", "reduce_scatter", "all_reduce"]);

/**
 * One colour per kind: blues for the dense transformer blocks, greens for the experts, warm
 * yellows for routing, greys for embedding and head; collectives in saturated reds and purples
 * so that communication stands out against compute.
 */
export const KIND_COLOURS: Readonly<Record<OpKind, string>> = {
  embed: "#9e9e9e",
  norm: "#b0bec5",
  attention: "#1f77b4",
  dense_ffn: "#6baed6",
  shared_expert: "#17becf",
  gate: "#e6b800",
  order: "#f0a030",
  dispatch_gemm: "#74c476",
  expert: "#2ca02c",
  combine_gemm: "#a1d99b",
  iorder: "#c8864a",
  lm_head: "#757575",
  loss: "#424242",
  all_to_all: "#d62728",
  all_gather: "#9467bd",
  reduce_scatter: "#e377c2",
  all_reduce: "#8c564b",
};

/** Round microseconds to nanoseconds (the plan's own precision) so sums print stably. */
export function ns(us: number): number {
  return Math.round(us * 1000) / 1000;
}

/** `L3 fwd mb0 c1` (layer, direction, micro-batch, chunk), or `- bwd mb1` outside any layer. */
export function where(op: PlanOp): string {
  return `${op.layer >= 0 ? `L${op.layer}` : "-"} ${op.dir} mb${op.microBatch}${op.chunk >= 0 ? ` c${op.chunk}` : ""}`;
}

/** `kind` when the role says nothing more, else `kind role` (`all_gather esp_reducescatter`). */
export function opName(op: PlanOp): string {
  return op.role === op.kind ? op.kind : `${op.kind} ${op.role}`;
}

/** The size of an op in its natural unit: MACs for compute, bytes for communication, else elements. */
export function size(op: PlanOp): string {
  if (op.macs > 0) return `${op.macs} MAC`;
  if (op.bytes > 0) return `${op.bytes} B`;
  return op.elements > 0 ? `${op.elements} el` : "-";
}

/**
 * The events a plan needs on a device: an op that some op on another stream waits for records
 * one event after it; the waiting op waits for that event before it starts. A wait on an earlier
 * op of the same stream is already implied by stream order and needs no event. Events are
 * numbered in the order of the ops that record them.
 */
export interface Events {
  /** Number of events. */
  readonly count: number;
  /** For each op id, the event it records after it, or -1. */
  readonly recordOf: Int32Array;
  /** For each op id, the events it waits for before it starts (ascending). */
  readonly waitsOf: readonly (readonly number[])[];
}

/** The cross-stream events of a plan (see {@link Events}). */
export function events(plan: Plan): Events {
  const n = plan.ops.length;
  const byId = new Map(plan.ops.map((op) => [op.id, op]));
  const needed = new Set<number>();
  for (const op of plan.ops) for (const w of op.waits) if (byId.get(w)?.stream !== op.stream) needed.add(w);
  const recordOf = new Int32Array(n).fill(-1);
  let count = 0;
  for (const op of plan.ops) if (needed.has(op.id)) recordOf[op.id] = count++;
  const waitsOf = plan.ops.map((op) =>
    op.waits.filter((w) => byId.get(w)?.stream !== op.stream).map((w) => recordOf[w]!).sort((a, b) => a - b),
  );
  return { count, recordOf, waitsOf };
}

/** Half-open time intervals [start, end) in µs. */
export type Interval = readonly [number, number];

/** The union of intervals, sorted and merged (touching intervals merge). */
export function union(list: readonly Interval[]): Interval[] {
  const sorted = list.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** `a` minus `b`, both sorted unions. */
export function subtract(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let j = 0;
  for (const [s0, e] of a) {
    let s = s0;
    while (j < b.length && b[j]![1] <= s) j++;
    let k = j;
    while (k < b.length && b[k]![0] < e) {
      const [bs, be] = b[k]!;
      if (bs > s) out.push([s, bs]);
      s = Math.max(s, be);
      if (s >= e) break;
      k++;
    }
    if (s < e) out.push([s, e]);
  }
  return out;
}

/** A C identifier made of a name: letters, digits and `_`, not starting with a digit. */
export function identifier(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_]/g, "_");
  return /^[0-9]/.test(s) ? `_${s}` : s;
}

/**
 * A stretch of the iteration spent on one layer (or on the embedding, or on the LM head and
 * loss) in one direction for one micro-batch, or recomputing a layer's forward during the
 * backward. Consecutive ops in issue order with the same key
 * form one span (gradient all-reduces are left out: they belong to no step of the pass, they
 * overlap whatever comes next). A span runs from its first op's start to its last op's end,
 * clipped to start where the previous span ended, so spans tile the time axis in order.
 */
export interface LayerSpan {
  /** `L3`, `embed` or `head`. */
  readonly label: string;
  readonly layer: number;
  readonly dir: PlanOp["dir"];
  readonly microBatch: number;
  /** Forward work redone during the backward (roles `recompute.*`). */
  readonly recompute: boolean;
  /** µs */
  readonly start: number;
  /** µs */
  readonly end: number;
}

/** The layer spans of a plan in time order; `start`/`end` are per op id, from its timeline. */
export function layerSpans(plan: Plan, start: ArrayLike<number>, end: ArrayLike<number>): LayerSpan[] {
  const spans: LayerSpan[] = [];
  let cur: { label: string; layer: number; dir: PlanOp["dir"]; microBatch: number; recompute: boolean; start: number; end: number } | undefined;
  let prevEnd = 0;
  const close = () => {
    if (!cur) return;
    cur.start = Math.max(cur.start, prevEnd);
    cur.end = Math.max(cur.end, cur.start);
    prevEnd = cur.end;
    spans.push(cur);
  };
  for (const op of plan.ops) {
    if (op.kind === "all_reduce") continue;
    const label = op.layer >= 0 ? `L${op.layer}` : op.kind === "embed" ? "embed" : "head";
    const recompute = op.role.startsWith("recompute.");
    const s = start[op.id]!;
    const e = end[op.id]!;
    if (cur && cur.label === label && cur.dir === op.dir && cur.microBatch === op.microBatch && cur.recompute === recompute) {
      cur.start = Math.min(cur.start, s);
      cur.end = Math.max(cur.end, e);
    } else {
      close();
      cur = { label, layer: op.layer, dir: op.dir, microBatch: op.microBatch, recompute, start: s, end: e };
    }
  }
  close();
  return spans;
}

/**
 * The ranks of `rank`'s instance of a group (LANGUAGE.md, "Training semantics"): `size` ranks
 * `stride` apart, counted from the first rank of the block that holds `rank`.
 */
export function groupRanks(group: Plan["groups"][number], rank: number): number[] {
  const base = rank - (Math.floor(rank / group.stride) % group.size) * group.stride;
  return Array.from({ length: group.size }, (_, i) => base + i * group.stride);
}

/**
 * `fsmoec profile --backend host` (ARCHITECTURE.md, "Runtime": profiling, the paper's online
 * profiling): time every op class on the host backend over a sweep of sizes, fit t = α + β·n by
 * least squares per class (and per group for collectives, per direction and GEMM count for the
 * expert FFN, per kind and direction for dense GEMMs and memory-bound kernels) on each op's
 * thread CPU time, measure the executor's own cost per op and the cores the ranks share, and
 * return a profile (`fsmoe-profile/1`, compiler/cost/profiles.ts) that a
 * cluster's `profile` field can name, so that predicted and measured times can be compared on
 * the same machine.
 */
import { availableParallelism } from "node:os";
import type { Profile, ProfileEntry } from "../../compiler/cost/profiles.js";
import { opClass } from "../../compiler/graph/pricing.js";
import { COLLECTIVES, type OpKind } from "../../compiler/graph/types.js";
import type { Plan } from "../../compiler/plan/schema.js";
import { checkedJob, layerJobSource, modelJobSource, type LayerJobSpec, type ModelJobSpec } from "./fixtures.js";
import { planFor, replay } from "./index.js";

/** One measured op: its class key, size (elements or MACs) and median CPU time over ranks. */
export interface Sample {
  readonly op: ProfileEntry["op"];
  /** The op kind, for classes that hold several (dense GEMMs, memory-bound kernels). */
  readonly kind?: OpKind;
  readonly group?: string;
  readonly dir?: "fwd" | "bwd";
  readonly gemms?: number;
  readonly n: number;
  readonly us: number;
}

/** A fitted line with its quality. */
export interface Fit {
  readonly alphaUs: number;
  readonly betaUs: number;
  /** Coefficient of determination of the fit (1: exact). */
  readonly r2: number;
  readonly samples: number;
}

/**
 * Least squares t = α + β·n on relative errors — each point weighted by 1/t², so that a small op
 * is fitted as closely as a large one (a host profile prices ops from a few µs to many ms) — with
 * α, β ≥ 0: a negative intercept refits through the origin, a negative slope gives the weighted
 * mean. R² is that of the weighted fit.
 */
export function fitLine(points: readonly { n: number; us: number }[]): Fit {
  const k = points.length;
  const w = points.map((p) => 1 / Math.max(p.us, 1e-3) ** 2);
  const sw = w.reduce((s, x) => s + x, 0);
  const mean = (f: (p: { n: number; us: number }) => number) => (sw > 0 ? points.reduce((s, p, i) => s + w[i]! * f(p), 0) / sw : 0);
  const mn = mean((p) => p.n);
  const mt = mean((p) => p.us);
  const sxx = points.reduce((s, p, i) => s + w[i]! * (p.n - mn) ** 2, 0);
  const sxy = points.reduce((s, p, i) => s + w[i]! * (p.n - mn) * (p.us - mt), 0);
  let beta = sxx > 0 ? sxy / sxx : 0;
  let alpha = mt - beta * mn;
  if (beta < 0) {
    beta = 0;
    alpha = mt;
  } else if (alpha < 0) {
    alpha = 0;
    const snn = points.reduce((s, p, i) => s + w[i]! * p.n * p.n, 0);
    beta = snn > 0 ? points.reduce((s, p, i) => s + w[i]! * p.n * p.us, 0) / snn : 0;
  }
  const ssTot = points.reduce((s, p, i) => s + w[i]! * (p.us - mt) ** 2, 0);
  const ssRes = points.reduce((s, p, i) => s + w[i]! * (p.us - alpha - beta * p.n) ** 2, 0);
  return { alphaUs: alpha, betaUs: beta, r2: ssTot > 0 ? 1 - ssRes / ssTot : 1, samples: k };
}

/**
 * The samples of one replayed plan: per op, the median over ranks of the CPU time of the thread
 * that ran it — its cost on a core of its own. Wall times on this machine also hold the time
 * slices other ranks' threads took and, for collectives, the wait for peers; the simulator
 * adds both back (shared cores, the schedule's dependencies). Ops of size 0 cost nothing and
 * are left out.
 */
export function samplesOf(plan: Plan, cpuUs: readonly Float64Array[]): Sample[] {
  const gemms = plan.job.model.activation === "swiglu" || plan.job.model.activation === "geglu" ? 3 : 2;
  const out: Sample[] = [];
  for (const op of plan.ops) {
    const times = cpuUs.map((r) => r[op.id]!).sort((a, b) => a - b);
    const us = times[times.length >> 1]!;
    const kind = op.kind as OpKind;
    if (COLLECTIVES.has(kind)) {
      if (op.group !== undefined && plan.groups.find((g) => g.name === op.group)!.size > 1 && op.elements > 0) out.push({ op: op.kind as ProfileEntry["op"], group: op.group, n: op.elements, us });
    } else if (kind === "expert") {
      if (op.macs > 0) out.push({ op: "expert_gemm", dir: op.dir, gemms, n: op.macs, us });
    } else if (kind === "gate") {
      // The router GEMM and the routing function: one line by MACs (the cost model adds the memory line of kind gate, fitted as zero).
      if (op.macs > 0) out.push({ op: "dense_gemm", kind, dir: op.dir, n: op.macs, us });
    } else {
      const cls = opClass(kind);
      const n = cls === "dense_gemm" ? op.macs : op.elements;
      if (n > 0) out.push({ op: cls as ProfileEntry["op"], kind, dir: op.dir, n, us });
    }
  }
  return out;
}

/** A fitted entry with its quality. */
export type FittedEntry = ProfileEntry & { readonly r2: number; readonly samples: number };

/**
 * Group samples by class key and fit each: per kind where a class holds several, and per class
 * over all its kinds (what a query without a kind gets). The gate's line covers its routing,
 * so the memory line of kind gate is zero.
 */
export function fitSamples(samples: readonly Sample[]): FittedEntry[] {
  const groups = new Map<string, Sample[]>();
  const add = (key: readonly unknown[], s: Sample) => {
    const k = JSON.stringify(key);
    const list = groups.get(k);
    if (list) list.push(s);
    else groups.set(k, [s]);
  };
  for (const s of samples) {
    add([s.op, s.kind ?? null, s.group ?? null, s.dir ?? null, s.gemms ?? null], s);
    if (s.kind !== undefined && s.kind !== "gate") add([s.op, null, s.group ?? null, s.dir ?? null, s.gemms ?? null], { ...s, kind: undefined });
  }
  const out: FittedEntry[] = [];
  for (const list of groups.values()) {
    const s = list[0]!;
    const f = fitLine(list);
    out.push({
      op: s.op,
      ...(s.kind !== undefined && { kind: s.kind }),
      ...(s.group !== undefined && { group: s.group }),
      ...(s.dir !== undefined && { dir: s.dir }),
      ...(s.gemms !== undefined && { gemms: s.gemms }),
      alphaUs: Math.round(f.alphaUs * 1000) / 1000,
      betaUs: f.betaUs,
      r2: f.r2,
      samples: f.samples,
    });
  }
  if (samples.some((s) => s.kind === "gate")) out.push({ op: "memory", kind: "gate", alphaUs: 0, betaUs: 0, r2: 1, samples: 0 });
  return out.sort(
    (a, b) =>
      a.op.localeCompare(b.op) || (a.kind ?? "").localeCompare(b.kind ?? "") || (a.group ?? "").localeCompare(b.group ?? "") || (a.dir ?? "").localeCompare(b.dir ?? "") || (a.gemms ?? 0) - (b.gemms ?? 0),
  );
}

/**
 * The executor's own CPU time per rank in one replay: the process's CPU time in an iteration
 * (median over the timed ones) less what the ops' threads spent inside the ops and what the
 * ranks spent before them (generating inputs, zeroing gradients: outside the measured
 * iteration), over the ranks. It covers issuing, queues, events and waking sleeping threads.
 */
export function overheadOf(result: { readonly iterationCpuUs: readonly number[]; readonly ranks: readonly { readonly cpuUs: Float64Array; readonly prologueUs: number }[] }, warmup: number): number {
  const iters = result.iterationCpuUs.slice(warmup).sort((a, b) => a - b);
  if (iters.length === 0 || result.ranks.length === 0) return 0;
  const process = iters[iters.length >> 1]!;
  let inOps = 0;
  for (const r of result.ranks) {
    inOps += r.prologueUs;
    for (const x of r.cpuUs) inOps += x;
  }
  return Math.max(0, (process - inOps) / result.ranks.length);
}

/** Hand-offs between threads in one rank's iteration: every wait on another stream's op, and every collective's rendezvous. */
export function handoffsOf(plan: Plan): number {
  const streamOf = new Map(plan.ops.map((o) => [o.id, o.stream]));
  let n = 0;
  for (const op of plan.ops) {
    if (COLLECTIVES.has(op.kind as OpKind)) n++;
    for (const w of op.waits) if (streamOf.get(w) !== op.stream) n++;
  }
  return n;
}

/**
 * The executor's cost per op and per hand-off (µs of CPU): least squares through the origin of
 * each job's overhead per rank on its ops and hand-offs, both non-negative (when one comes out
 * negative, the other alone).
 */
export function fitOverhead(jobs: readonly { readonly ops: number; readonly handoffs: number; readonly overheadUs: number }[]): { dispatchUs: number; handoffUs: number } {
  const s = (f: (j: (typeof jobs)[number]) => number) => jobs.reduce((t, j) => t + f(j), 0);
  const aa = s((j) => j.ops * j.ops), bb = s((j) => j.handoffs * j.handoffs), ab = s((j) => j.ops * j.handoffs);
  const ay = s((j) => j.ops * j.overheadUs), by = s((j) => j.handoffs * j.overheadUs);
  const det = aa * bb - ab * ab;
  if (det > 1e-9 * aa * bb) {
    const d = (ay * bb - by * ab) / det, h = (by * aa - ay * ab) / det;
    if (d >= 0 && h >= 0) return { dispatchUs: d, handoffUs: h };
  }
  const onOps = aa > 0 ? ay / aa : 0, onHandoffs = bb > 0 ? by / bb : 0;
  const residual = (d: number, h: number) => s((j) => (d * j.ops + h * j.handoffs - j.overheadUs) ** 2);
  return residual(onOps, 0) <= residual(0, onHandoffs) ? { dispatchUs: Math.max(0, onOps), handoffUs: 0 } : { dispatchUs: 0, handoffUs: Math.max(0, onHandoffs) };
}

/** One job of the sweep: a layer job (the MoE block alone) or a model job (attention, dense FFN, embedding, LM head and loss too). */
export type SweepSpec = ({ readonly model?: false } & LayerJobSpec) | ({ readonly model: true } & ModelJobSpec);

/**
 * The sweep, 4 ranks (2 nodes × 2) throughout: layer jobs (ESP over the node, EP over the rail)
 * of hidden 32 … 256, 32 or 128 tokens per rank, 2- and 3-GEMM experts; and model jobs with tp 2,
 * esp 2, ep 2 (the layout of examples/tiny.moe) of hidden 32 … 128, under fsmoe's schedule and
 * DeepSpeed's (whose dispatch and combine are GEMMs).
 */
export function sweepSpecs(): SweepSpec[] {
  const out: SweepSpec[] = [];
  for (const activation of ["gelu", "swiglu"] as const)
    for (const hidden of [32, 64, 128, 256])
      for (const seqLen of [32, 128]) out.push({ nodes: 2, gpus: 2, hidden, expertHidden: 2 * hidden, seqLen, microBatch: 2, activation, pipeline: "2", schedule: "fsmoe" });
  for (const schedule of ["fsmoe", "deepspeed"] as const)
    for (const hidden of [32, 64, 128])
      for (const seqLen of [16, 32])
        out.push({ model: true, nodes: 2, gpus: 2, layers: 2, hidden, expertHidden: 2 * hidden, ffnHidden: 2 * hidden, vocab: 256, seqLen, microBatch: 2, parallel: "tp = 2, esp = 2, ep = 2, edp = 1", pipeline: "2", schedule });
  return out;
}

/** Profile the host backend: replay the sweep, fit, and return the profile with each fit's quality and the executor's cost per op. */
export async function profileHost(
  options: { iterations?: number; name?: string; specs?: readonly SweepSpec[]; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ profile: Profile; fits: FittedEntry[]; dispatchUs: number; handoffUs: number }> {
  const specs = options.specs ?? sweepSpecs();
  const iterations = options.iterations ?? 8;
  const warmup = iterations > 1 ? 1 : 0;
  const samples: Sample[] = [];
  const overhead: { ops: number; handoffs: number; overheadUs: number }[] = [];
  for (const [i, spec] of specs.entries()) {
    const job = checkedJob(spec.model ? modelJobSource(spec) : layerJobSource(spec));
    const { plan, diagnostics } = planFor(job, spec.schedule ?? "fsmoe");
    if (!plan) throw new Error(`the profiling job does not compile: ${diagnostics.map((d) => d.message).join("; ")}`);
    const r = await replay(plan, { iterations, warmup, timeoutMs: 60_000, capture: false });
    if (!r.ok) throw new Error(r.error);
    samples.push(...samplesOf(plan, r.ranks.map((x) => x.cpuUs)));
    overhead.push({ ops: plan.ops.length, handoffs: handoffsOf(plan), overheadUs: overheadOf(r, warmup) });
    options.onProgress?.(i + 1, specs.length);
  }
  const fits = fitSamples(samples);
  const fitted = fitOverhead(overhead);
  const dispatchUs = Math.round(fitted.dispatchUs * 1000) / 1000;
  const handoffUs = Math.round(fitted.handoffUs * 1000) / 1000;
  const cores = availableParallelism();
  const profile: Profile = {
    format: "fsmoe-profile/1",
    name: options.name ?? "host",
    description:
      `Fitted on the host backend (fp32 kernels, ranks as threads, in-process collectives) by fsmoec profile: ${specs.length} jobs on 4 ranks, ` +
      `α in µs, β in µs per element or MAC, from each op's thread CPU time (its cost on a core of its own); the ranks share ${cores} core${cores === 1 ? "" : "s"} and the executor costs ${dispatchUs} µs of CPU per op and ${handoffUs} µs per hand-off between threads.`,
    entries: fits.map(({ r2: _r2, samples: _n, ...e }) => e),
    host: { cores, dispatchUs, handoffUs },
  };
  return { profile, fits, dispatchUs, handoffUs };
}

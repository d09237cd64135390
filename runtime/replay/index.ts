/**
 * The TS side of the native runtime (ARCHITECTURE.md, "Runtime": runtime/replay/ + native/):
 * compile a job into a plan for the host, validate and replay it on the addon, run the
 * reference, and judge the replay against it. `fsmoec run` (cli/run.ts) is a thin shell over
 * these functions.
 */
import type { TrainJob } from "../../compiler/check/program.js";
import { compileJob } from "../../compiler/compile/index.js";
import type { Diagnostic } from "../../compiler/diagnostics/diagnostic.js";
import { buildPlan } from "../../compiler/plan/build.js";
import type { Plan } from "../../compiler/plan/schema.js";
import type { StrategyName } from "../../compiler/schedule/index.js";
import { requireAddon, type NativeRank, type NativeResult } from "./addon.js";
import { compare, type Comparison } from "./compare.js";

export { ADDON_PATH, BUILD_COMMAND, loadAddon, requireAddon, type NativeAddon, type NativeCudaDevice, type NativeCudaResult, type NativeRank, type NativeResult } from "./addon.js";
export { compare, relativeError, TOLERANCE, type Comparison, type RoutingCheck, type TensorCheck } from "./compare.js";
export { shrink, type ShrinkOptions, type Shrunk } from "./shrink.js";
export { CUDA_TOLERANCE, isNoDevice, replayCuda, verifyCuda, type CudaReplayOptions, type CudaVerification } from "./cuda.js";

/** A job's router fields, as plan.json carries them in job.model (defaults applied). */
export interface RouterOptions {
  readonly normalize: boolean;
  readonly groups: number;
  readonly topkGroups: number;
  readonly routeScale: number;
}

/** Options of a host replay. */
export interface ReplayOptions {
  readonly iterations?: number;
  /** Iterations left out of the per-op means (opUs, workUs, cpuUs), fewer than `iterations` (default 0). */
  readonly warmup?: number;
  /** How long a collective or an event may wait before the run fails (ms, default 10 000). */
  readonly timeoutMs?: number;
  /** Return the last iteration's tensors and routing (default true; verification needs them, timing runs can save the memory). */
  readonly capture?: boolean;
  /** Skip every kernel and collective (measures the executor's cost per op). */
  readonly emptyKernels?: boolean;
  /** Seeded faults: ops that one rank skips. */
  readonly skip?: readonly { readonly rank: number; readonly op: number }[];
  /** @deprecated Ignored: plan.json carries the router fields (job.model), and the runtime reads them there. */
  readonly router?: RouterOptions;
  /** Busy-wait before sleeping (µs; default: automatic, by threads and cores). */
  readonly spinUs?: number;
}

/** The router fields of a checked job, with the language's defaults. */
export function routerOptions(job: TrainJob): RouterOptions {
  const m = job.model.moe;
  const groups = m.groups ?? 1;
  return { normalize: m.normalize ?? true, groups, topkGroups: m.topkGroups ?? groups, routeScale: m.routeScale ?? 1 };
}

/** Compile one job with one strategy into plan.json's value; diagnostics when it does not compile. */
export function planFor(job: TrainJob, strategy: StrategyName, version = "0.0.0", file = "<job>", text = ""): { plan?: Plan; diagnostics: readonly Diagnostic[] } {
  const r = compileJob(job, { strategy });
  if (!r.compiled || r.diagnostics.some((d) => d.severity === "error")) return { diagnostics: r.diagnostics };
  return { plan: buildPlan(r.compiled, file, text, version), diagnostics: r.diagnostics };
}

function optionsJson(o: ReplayOptions): string {
  return JSON.stringify({
    iterations: o.iterations ?? 1,
    ...(o.warmup !== undefined && { warmup: o.warmup }),
    timeoutMs: o.timeoutMs ?? 10_000,
    emptyKernels: o.emptyKernels ?? false,
    ...(o.capture === false && { capture: false }),
    ...(o.skip && { skip: o.skip }),
    ...(o.spinUs !== undefined && { spinUs: o.spinUs }),
  });
}

/** Validate a plan completely in the native loader (nothing runs). */
export function validatePlan(plan: Plan | string): { ok: boolean; error?: string } {
  return requireAddon().validate(typeof plan === "string" ? plan : JSON.stringify(plan));
}

/** Replay a plan on the host backend (validated first by the addon). */
export function replay(plan: Plan | string, options: ReplayOptions = {}): Promise<NativeResult> {
  return requireAddon().run(typeof plan === "string" ? plan : JSON.stringify(plan), optionsJson(options));
}

/** Run the plan's model unscheduled in one process (the reference). */
export function reference(plan: Plan | string): Promise<NativeResult> {
  return requireAddon().reference(typeof plan === "string" ? plan : JSON.stringify(plan));
}

/** The outcome of `verify`: the replay, the reference and the verdict (or the error that stopped it). */
export type Verification =
  | { readonly ok: boolean; readonly comparison: Comparison; readonly replay: { readonly iterationUs: readonly number[]; readonly ranks: readonly NativeRank[] } }
  | { readonly ok: false; readonly error: string };

/** Replay a plan, run its reference, and compare (ARCHITECTURE.md: `fsmoec run --verify`). */
export async function verify(plan: Plan | string, options: ReplayOptions = {}): Promise<Verification> {
  const text = typeof plan === "string" ? plan : JSON.stringify(plan);
  const [run, ref] = await Promise.all([replay(text, options), reference(text)]);
  if (!run.ok) return { ok: false, error: run.error };
  if (!ref.ok) return { ok: false, error: ref.error };
  const comparison = compare(run.ranks, ref.ranks);
  return { ok: comparison.ok, comparison, replay: { iterationUs: run.iterationUs, ranks: run.ranks } };
}

/** A Chrome trace (chrome://tracing, Perfetto) of a replay's last iteration: one process per rank, one thread per stream. */
export function chromeTrace(plan: Plan, ranks: readonly NativeRank[]): { traceEvents: object[] } {
  const streams = ["compute", "intra", "inter"];
  const events: object[] = [];
  ranks.forEach((r, rank) => {
    events.push({ name: "process_name", ph: "M", pid: rank, args: { name: `rank ${rank}` } });
    streams.forEach((s, tid) => events.push({ name: "thread_name", ph: "M", pid: rank, tid, args: { name: s } }));
    for (const op of plan.ops) {
      const start = r.startUs[op.id] ?? 0;
      const end = r.endUs[op.id] ?? start;
      events.push({
        name: op.role,
        cat: op.kind,
        ph: "X",
        pid: rank,
        tid: streams.indexOf(op.stream),
        ts: Math.round(start * 1000) / 1000,
        dur: Math.round((end - start) * 1000) / 1000,
        args: { op: op.id, layer: op.layer, dir: op.dir, microBatch: op.microBatch, chunk: op.chunk, predictedUs: op.predictedUs },
      });
    }
  });
  return { traceEvents: events };
}

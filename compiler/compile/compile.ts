/**
 * Compiling one checked train job into a verified plan (ARCHITECTURE.md, "The pipeline"):
 * lower → cost model → strategy → task graph → verify → memory → plan. Every stage's value is
 * kept so that `--print-after` can show it. Problems the input causes (an unreadable profile,
 * a plan that does not fit in device memory, a plan the verifier rejects) are diagnostics at
 * the job; nothing throws.
 */
import type { CheckHost } from "../check/host.js";
import type { TrainJob } from "../check/program.js";
import { costModelFor } from "../cost/index.js";
import type { CostModel } from "../cost/model.js";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import { Pricer } from "../graph/pricing.js";
import type { Timeline } from "../graph/timeline.js";
import type { TaskGraph } from "../graph/types.js";
import { moeSizes } from "../lower/shapes.js";
import { lower, type Workload } from "../lower/workload.js";
import { planMemory, type MemoryPlan } from "../memory/index.js";
import { staticMemory, type StaticMemory } from "../plan/memory-budget.js";
import { lowerBound } from "./lower-bound.js";
import { predict } from "../schedule/evaluate.js";
import { strategies, type Schedule, type StrategyName, type StrategyOptions } from "../schedule/index.js";
import { verifyGraph, type Shape } from "../verify/index.js";

/** Verification issues reported per plan before the rest are summarized in one line. */
export const MAX_SHOWN_ISSUES = 10;

/** What compiling one job under one strategy produces. */
export interface Compiled {
  readonly job: TrainJob;
  readonly workload: Workload;
  readonly costModel: CostModel;
  readonly pricer: Pricer;
  readonly schedule: Schedule;
  readonly graph: TaskGraph;
  readonly timeline: Timeline;
  readonly memory: MemoryPlan;
  readonly staticMemory: StaticMemory;
  readonly peakBytes: number;
  readonly lowerBoundUs: number;
}

/** Options of a compile. */
export interface CompileOptions {
  readonly strategy: StrategyName;
  readonly strategyOptions?: StrategyOptions;
  readonly host?: CheckHost;
  /** The job's lower bound when the caller already has it (it is the same for every strategy). */
  readonly lowerBoundUs?: number;
}

/** The result: the compiled job, or the diagnostics that stopped it (some diagnostics may come with a result). */
export interface CompileResult {
  readonly compiled?: Compiled;
  readonly diagnostics: readonly Diagnostic[];
}

/** Bytes in the largest binary unit that keeps the number at least 1 (so small devices read right). */
export function formatBytes(bytes: number): string {
  for (const [unit, f] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) if (bytes >= f) return `${(bytes / f).toFixed(2)} ${unit}`;
  return `${bytes} B`;
}

/** The expected sizes of the chunked collectives, for the verifier's shape check. */
export function shapesOf(w: Workload, schedule: Schedule): Shape[] {
  const out: Shape[] = [];
  for (const plan of schedule.layers.values()) {
    const z = moeSizes(w.shape, plan.capacity);
    for (const dir of ["fwd", "bwd"] as const) {
      for (const role of ["dispatch", "combine"]) out.push({ layer: plan.layer, dir, role, totalBytes: z.a2aElements * w.bytes, microBatch: 0 });
      if (z.espElements > 0) for (const role of ["esp_allgather", "esp_reducescatter"]) out.push({ layer: plan.layer, dir, role, totalBytes: z.espElements * w.bytes, microBatch: 0 });
    }
  }
  return out;
}

/** Compile one job with one strategy. */
export function compileJob(job: TrainJob, options: CompileOptions): CompileResult {
  const workload = lower(job);
  const cost = costModelFor(job, workload.bytes, options.host);
  if (!cost.model) return { diagnostics: cost.diagnostics };
  const pricer = new Pricer(cost.model, new Map(Object.values(workload.groups).map((g) => [g.name, g])), workload.shape.gemms);
  const schedule = strategies[options.strategy].plan(workload, pricer, options.strategyOptions ?? {});
  const p = predict(workload, schedule, pricer);
  const at = job.span;
  if (!p.ok) {
    return { diagnostics: [diagnostic("FSM4001", at, { where: ` in job '${job.name}' (${options.strategy})`, cycle: `the stream orders cannot all make progress: ${p.stuck}` })] };
  }
  const issues = verifyGraph(p.graph, { shapes: shapesOf(workload, schedule) });
  if (issues.length > 0) {
    const shown = issues.slice(0, MAX_SHOWN_ISSUES).map((i) => ({ ...diagnostic(i.code, at), message: `${options.strategy} plan of '${job.name}': ${i.message}` }));
    if (issues.length > MAX_SHOWN_ISSUES) shown.push({ ...shown[0]!, message: `${options.strategy} plan of '${job.name}': ${issues.length - MAX_SHOWN_ISSUES} more verification issues (run fsmoec compile --print-after verify to see them all)` });
    return { diagnostics: shown };
  }
  const memory = planMemory(p.graph);
  const fixed = staticMemory(workload);
  const peakBytes = memory.totalBytes + fixed.weightBytes + fixed.optimizerBytes;
  const compiled: Compiled = {
    job,
    workload,
    costModel: cost.model,
    pricer,
    schedule,
    graph: p.graph,
    timeline: p.timeline,
    memory,
    staticMemory: fixed,
    peakBytes,
    lowerBoundUs: options.lowerBoundUs ?? lowerBound(workload, pricer),
  };
  const device = job.cluster.device;
  if (peakBytes > device.memory) {
    const breakdown = `weights ${formatBytes(fixed.weightBytes)}, optimizer states ${formatBytes(fixed.optimizerBytes)}, gradients ${formatBytes(memory.persistentBytes)}, activations and workspace ${formatBytes(memory.arenaBytes)} (peak of the ${options.strategy} plan)`;
    return { compiled, diagnostics: [diagnostic("FSM3011", job.cluster.device.span, { job: job.name, needed: formatBytes(peakBytes), device: device.name, memory: formatBytes(device.memory), breakdown }, [{ message: `job '${job.name}' is defined here`, span: at }])] };
  }
  return { compiled, diagnostics: [] };
}

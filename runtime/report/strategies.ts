/**
 * One job under every strategy (SCHEDULING.md §3–4): compile it with deepspeed, tutel, fsmoe
 * and auto (the lower bound computed once and reused), and keep for each what the reports
 * show. A plan that needs more memory than the device (FSM3011) still has a prediction and is
 * marked "does not fit" rather than failing; any other error marks the strategy failed with
 * the diagnostic's message.
 */
import type { TrainJob } from "../../compiler/check/program.js";
import { compileJob, type Compiled } from "../../compiler/compile/index.js";
import { STRATEGY_NAMES, type StrategyName, type StrategyOptions } from "../../compiler/schedule/index.js";

/** How one strategy fared on one job. */
export type Outcome =
  | { readonly status: "ok" | "does not fit"; readonly compiled: Compiled; readonly iterationUs: number; readonly peakBytes: number }
  | { readonly status: "failed"; readonly message: string };

/** One job under every strategy. */
export interface JobStrategies {
  readonly job: TrainJob;
  readonly lowerBoundUs: number;
  readonly outcomes: ReadonlyMap<StrategyName, Outcome>;
}

/** Compile a job under every strategy (fsmoe first, so its lower bound is reused by the others). */
export function compileStrategies(job: TrainJob, strategyOptions: StrategyOptions = {}): JobStrategies {
  const outcomes = new Map<StrategyName, Outcome>();
  let lowerBoundUs = NaN;
  const order: StrategyName[] = ["fsmoe", ...STRATEGY_NAMES.filter((s) => s !== "fsmoe")];
  for (const s of order) {
    const r = compileJob(job, { strategy: s, strategyOptions, ...(Number.isFinite(lowerBoundUs) && { lowerBoundUs }) });
    const errors = r.diagnostics.filter((d) => d.severity === "error");
    if (r.compiled) {
      if (!Number.isFinite(lowerBoundUs)) lowerBoundUs = r.compiled.lowerBoundUs;
      const fits = !errors.some((d) => d.code === "FSM3011");
      if (errors.every((d) => d.code === "FSM3011")) {
        outcomes.set(s, { status: fits ? "ok" : "does not fit", compiled: r.compiled, iterationUs: r.compiled.timeline.makespanUs, peakBytes: r.compiled.peakBytes });
        continue;
      }
    }
    outcomes.set(s, { status: "failed", message: errors.map((d) => `${d.code}: ${d.message}`).join("; ") || "no plan" });
  }
  return { job, lowerBoundUs, outcomes: new Map(STRATEGY_NAMES.map((s) => [s, outcomes.get(s)!])) };
}

/** The time of a strategy that produced a runnable plan (NaN otherwise). */
export function timeOf(js: JobStrategies, s: StrategyName): number {
  const o = js.outcomes.get(s);
  return o && o.status === "ok" ? o.iterationUs : NaN;
}

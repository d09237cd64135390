/**
 * Compiling every job of a checked file (ARCHITECTURE.md, "The CLI": `fsmoec FILE`,
 * `fsmoec compile`): each job with its strategy (or an override), optionally with every
 * strategy for comparison, and plan.json for each.
 */
import type { CheckResult } from "../check/check.js";
import type { CheckHost } from "../check/host.js";
import type { TrainJob } from "../check/program.js";
import type { Diagnostic } from "../diagnostics/diagnostic.js";
import { buildPlan } from "../plan/build.js";
import type { Plan } from "../plan/schema.js";
import { STRATEGY_NAMES, type StrategyName, type StrategyOptions } from "../schedule/index.js";
import { compileJob, type Compiled } from "./compile.js";

export { compileJob, formatBytes, shapesOf, type Compiled, type CompileOptions, type CompileResult } from "./compile.js";

/** One job compiled under its chosen strategy (and, when asked, under the others). */
export interface JobResult {
  readonly job: TrainJob;
  readonly strategy: StrategyName;
  readonly compiled?: Compiled;
  readonly plan?: Plan;
  /** Every strategy's compile, when comparing. */
  readonly others: ReadonlyMap<StrategyName, Compiled>;
}

/** Options of {@link compileProgram}. */
export interface ProgramOptions {
  readonly strategy?: StrategyName;
  readonly compare?: boolean;
  readonly jobs?: (job: TrainJob) => boolean;
  readonly strategyOptions?: StrategyOptions;
  readonly host?: CheckHost;
  readonly version: string;
}

/** The text the source hash covers: every file of the program, in load order. */
export function programText(r: CheckResult): string {
  return r.program.files.map((f) => r.sources.get(f)?.text ?? "").join("\u0000");
}

/** Compile the jobs of a checked program. */
export function compileProgram(r: CheckResult, options: ProgramOptions): { results: JobResult[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const results: JobResult[] = [];
  const text = programText(r);
  const root = r.program.files[0] ?? "<input>";
  for (const job of r.program.jobs) {
    if (options.jobs && !options.jobs(job)) continue;
    const strategy = options.strategy ?? job.schedule;
    const base = { ...(options.strategyOptions && { strategyOptions: options.strategyOptions }), ...(options.host && { host: options.host }) };
    const main = compileJob(job, { strategy, ...base });
    diagnostics.push(...main.diagnostics);
    const others = new Map<StrategyName, Compiled>();
    if (options.compare && main.compiled) {
      for (const s of STRATEGY_NAMES) {
        if (s === strategy) {
          others.set(s, main.compiled);
          continue;
        }
        const o = compileJob(job, { strategy: s, ...base, lowerBoundUs: main.compiled.lowerBoundUs });
        if (o.compiled) others.set(s, o.compiled);
      }
    }
    const ok = main.compiled && main.diagnostics.every((d) => d.severity !== "error");
    results.push({
      job,
      strategy,
      ...(main.compiled && { compiled: main.compiled }),
      ...(ok && main.compiled && { plan: buildPlan(main.compiled, root, text, options.version) }),
      others,
    });
  }
  return { results, diagnostics };
}

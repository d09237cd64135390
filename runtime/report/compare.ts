/**
 * `fsmoec compare FILE` (ARCHITECTURE.md, "The CLI"): every strategy side by side for each
 * train job — predicted iteration time, speedup over the two baselines, the simulated time
 * with link contention, exposed communication, ratio to the lower bound, peak memory per GPU.
 */
import type { CheckResult } from "../../compiler/check/check.js";
import type { TrainJob } from "../../compiler/check/program.js";
import { programText } from "../../compiler/compile/index.js";
import { buildPlan } from "../../compiler/plan/build.js";
import { STRATEGY_NAMES, type StrategyName, type StrategyOptions } from "../../compiler/schedule/index.js";
import { inputFromCompiled, simulate } from "../simulate/index.js";
import { gib, ms, pct, textTable, times } from "./format.js";
import { compileStrategies, timeOf, type JobStrategies } from "./strategies.js";

/** One strategy's line of the comparison. */
export interface CompareRow {
  readonly strategy: StrategyName;
  readonly status: "ok" | "does not fit" | "failed";
  readonly message?: string;
  readonly iterationUs: number;
  readonly overDeepspeed: number;
  readonly overTutel: number;
  /** Simulated with the NICs and intra links shared between concurrent ops. */
  readonly simulatedUs: number;
  readonly exposedCommunicationUs: number;
  readonly boundRatio: number;
  readonly peakBytes: number;
}

/** One job's comparison. */
export interface Comparison {
  readonly job: TrainJob;
  readonly lowerBoundUs: number;
  readonly deviceBytes: number;
  readonly costModel: string;
  readonly rows: readonly CompareRow[];
}

/** Compare every strategy on one job; `sourceText` is hashed into the plans the simulator reads. */
export function compareJob(job: TrainJob, root: string, sourceText: string, version: string, strategyOptions: StrategyOptions = {}): Comparison {
  const js: JobStrategies = compileStrategies(job, strategyOptions);
  const ds = timeOf(js, "deepspeed");
  const tu = timeOf(js, "tutel");
  let costModel = "";
  const rows = STRATEGY_NAMES.map((s): CompareRow => {
    const o = js.outcomes.get(s)!;
    if (o.status === "failed") {
      return { strategy: s, status: "failed", message: o.message, iterationUs: NaN, overDeepspeed: NaN, overTutel: NaN, simulatedUs: NaN, exposedCommunicationUs: NaN, boundRatio: NaN, peakBytes: NaN };
    }
    costModel = o.compiled.costModel.name;
    const plan = buildPlan(o.compiled, root, sourceText, version);
    const sim = simulate(inputFromCompiled(o.compiled, plan), { contention: true });
    const t = o.iterationUs;
    return {
      strategy: s,
      status: o.status,
      iterationUs: t,
      overDeepspeed: ds / t,
      overTutel: tu / t,
      simulatedUs: sim.run.makespanUs,
      exposedCommunicationUs: sim.run.exposedCommunicationUs,
      boundRatio: t / js.lowerBoundUs,
      peakBytes: o.peakBytes,
    };
  });
  return { job, lowerBoundUs: js.lowerBoundUs, deviceBytes: job.cluster.device.memory, costModel, rows };
}

/** Compare every job of a checked file (optionally one job). */
export function compareProgram(r: CheckResult, version: string, options: { job?: string; strategyOptions?: StrategyOptions } = {}): Comparison[] {
  const text = programText(r);
  const root = r.program.files[0] ?? "<input>";
  return r.program.jobs.filter((j) => options.job === undefined || j.name === options.job).map((j) => compareJob(j, root, text, version, options.strategyOptions));
}

/** The text of one comparison. */
export function renderComparison(c: Comparison): string {
  const j = c.job;
  const head = `train ${j.name} — ${j.cluster.nodes} × ${j.cluster.gpusPerNode} ${j.cluster.device.name}, cost model ${c.costModel || "—"}, lower bound ${ms(c.lowerBoundUs)}`;
  const rows: string[][] = [["strategy", "iteration", "× deepspeed", "× tutel", "simulated", "exposed comm", "/ bound", "peak memory"]];
  const notes: string[] = [];
  for (const r of c.rows) {
    if (r.status === "failed") {
      rows.push([r.strategy, "failed", "", "", "", "", "", ""]);
      notes.push(`  ${r.strategy}: ${r.message}`);
      continue;
    }
    rows.push([
      r.strategy,
      ms(r.iterationUs),
      times(r.overDeepspeed),
      times(r.overTutel),
      ms(r.simulatedUs),
      `${ms(r.exposedCommunicationUs)} (${pct(r.exposedCommunicationUs / r.simulatedUs)})`,
      times(r.boundRatio, 2),
      `${gib(r.peakBytes)}${r.status === "does not fit" ? ` of ${gib(c.deviceBytes)}: does not fit` : ""}`,
    ]);
  }
  return head + "\n" + textTable(rows, [false, true, true, true, true, true, true, false]) + notes.map((n) => n + "\n").join("");
}

/** The JSON of comparisons. */
export function comparisonJson(list: readonly Comparison[]): unknown {
  const num = (x: number) => (Number.isFinite(x) ? x : null);
  return list.map((c) => ({
    job: c.job.name,
    costModel: c.costModel,
    lowerBoundUs: c.lowerBoundUs,
    deviceBytes: c.deviceBytes,
    strategies: Object.fromEntries(
      c.rows.map((r) => [
        r.strategy,
        {
          status: r.status,
          ...(r.message !== undefined && { message: r.message }),
          iterationUs: num(r.iterationUs),
          speedupOverDeepspeed: num(r.overDeepspeed),
          speedupOverTutel: num(r.overTutel),
          simulatedUs: num(r.simulatedUs),
          exposedCommunicationUs: num(r.exposedCommunicationUs),
          boundRatio: num(r.boundRatio),
          peakBytes: num(r.peakBytes),
        },
      ]),
    ),
  }));
}

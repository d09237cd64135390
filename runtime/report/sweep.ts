/**
 * `fsmoec sweep FILE` (ARCHITECTURE.md, "The CLI"; SCHEDULING.md §4): every job a `sweep`
 * block expands to, compiled under the four strategies, then summarised — geometric-mean
 * speedups (fsmoe over tutel and deepspeed, auto over fsmoe), each strategy's median ratio to
 * the lower bound, how often fsmoe's forward and backward degrees differ, the simulator
 * against FSMoE's closed form, and the same figures split by each varied parameter — as CSV,
 * Markdown and an SVG of the distributions. Jobs whose plan needs more memory than the device
 * are marked "does not fit" and left out of the statistics.
 */
import type { CheckResult } from "../../compiler/check/check.js";
import { programText } from "../../compiler/compile/index.js";
import { buildPlan } from "../../compiler/plan/build.js";
import { STRATEGY_NAMES, type StrategyName, type StrategyOptions } from "../../compiler/schedule/index.js";
import { inputFromCompiled, simulate } from "../simulate/index.js";
import { csv, markdownTable } from "./format.js";
import { distribution, geomean, median, type Distribution } from "./stats.js";
import { compileStrategies, timeOf } from "./strategies.js";

/** One job of a sweep. */
export interface SweepRow {
  readonly job: string;
  /** The varied paths and their values, as written. */
  readonly point: readonly (readonly [string, string])[];
  readonly lowerBoundUs: number;
  /** Per strategy: "ok", "does not fit" or "failed: …". */
  readonly status: Readonly<Record<StrategyName, string>>;
  /** Per strategy: predicted iteration time, NaN unless the plan is runnable. */
  readonly us: Readonly<Record<StrategyName, number>>;
  /** The first MoE layer's forward and backward degrees per strategy. */
  readonly degrees: Readonly<Record<StrategyName, readonly [number, number] | null>>;
  /** The largest |simulated / closed form − 1| over the fsmoe plan's MoE blocks (NaN without one). */
  readonly closedFormDisagreement: number;
  /** Peak memory per GPU of the auto plan (bytes). */
  readonly peakBytes: number;
}

/** A whole sweep. */
export interface SweepResult {
  readonly name: string;
  /** The varied paths, in the sweep's order. */
  readonly parameters: readonly string[];
  readonly rows: readonly SweepRow[];
  readonly wallMs: number;
}

/** Called after each job with the count done and the total. */
export type Progress = (done: number, total: number) => void;

/** Options of {@link runSweeps}. */
export interface SweepOptions {
  /** Only this sweep. */
  readonly sweep?: string;
  readonly strategyOptions?: StrategyOptions;
  readonly progress?: Progress;
  /** Every n-th job only (1: all). */
  readonly every?: number;
  readonly version?: string;
}

/** Run every sweep of a checked program. */
export function runSweeps(r: CheckResult, options: SweepOptions = {}): SweepResult[] {
  const jobs = r.program.jobs.filter((j) => j.sweep !== null && (options.sweep === undefined || j.sweep.name === options.sweep)).filter((_, i) => i % (options.every ?? 1) === 0);
  const text = programText(r);
  const root = r.program.files[0] ?? "<input>";
  const bySweep = new Map<string, { parameters: string[]; rows: SweepRow[]; ms: number }>();
  let done = 0;
  for (const job of jobs) {
    const t0 = performance.now();
    const sw = job.sweep!;
    let entry = bySweep.get(sw.name);
    if (!entry) {
      entry = { parameters: sw.point.map(([p]) => p), rows: [], ms: 0 };
      bySweep.set(sw.name, entry);
    }
    const js = compileStrategies(job, options.strategyOptions ?? {});
    const status = {} as Record<StrategyName, string>;
    const us = {} as Record<StrategyName, number>;
    const degrees = {} as Record<StrategyName, readonly [number, number] | null>;
    for (const s of STRATEGY_NAMES) {
      const o = js.outcomes.get(s)!;
      status[s] = o.status === "failed" ? `failed: ${o.message}` : o.status;
      us[s] = timeOf(js, s);
      const first = o.status === "failed" ? undefined : [...o.compiled.schedule.layers.values()].sort((a, b) => a.layer - b.layer)[0];
      degrees[s] = first ? [first.forward.degree, first.backward.degree] : null;
    }
    let disagreement = NaN;
    const fs = js.outcomes.get("fsmoe")!;
    if (fs.status !== "failed") {
      const sim = simulate(inputFromCompiled(fs.compiled, buildPlan(fs.compiled, root, text, options.version ?? "")), { contention: false });
      const ds = sim.blocks.map((b) => Math.abs(b.disagreement));
      if (ds.length > 0) disagreement = Math.max(...ds);
    }
    const auto = js.outcomes.get("auto")!;
    entry.rows.push({
      job: job.name,
      point: sw.point,
      lowerBoundUs: js.lowerBoundUs,
      status,
      us,
      degrees,
      closedFormDisagreement: disagreement,
      peakBytes: auto.status === "failed" ? NaN : auto.peakBytes,
    });
    entry.ms += performance.now() - t0;
    options.progress?.(++done, jobs.length);
  }
  return [...bySweep].map(([name, e]) => ({ name, parameters: e.parameters, rows: e.rows, wallMs: e.ms }));
}

/** Speedup of strategy `a` over `b` on a row (b's time over a's); NaN if either did not run. */
export function speedup(row: SweepRow, a: StrategyName, b: StrategyName): number {
  return row.us[b] / row.us[a];
}

const finite = (xs: number[]) => xs.filter((x) => Number.isFinite(x));

/** The headline figures of a set of rows. */
export interface SweepSummary {
  readonly jobs: number;
  readonly runnable: number;
  readonly doesNotFit: number;
  readonly failed: number;
  readonly fsmoeOverTutel: number;
  readonly fsmoeOverDeepspeed: number;
  readonly autoOverFsmoe: number;
  readonly boundRatio: Readonly<Record<StrategyName, number>>;
  /** fsmoe's forward and backward degrees differ. */
  readonly degreesDiffer: number;
  /** Jobs where fsmoe is slower than tutel / deepspeed. */
  readonly fsmoeSlower: { readonly tutel: number; readonly deepspeed: number };
  /** Simulator vs closed form: median and largest disagreement, and blocks beyond 2%. */
  readonly disagreement: { readonly median: number; readonly max: number; readonly beyond2: number; readonly n: number };
}

/** Summarise rows (jobs where every strategy ran enter the speedups; each strategy's own ratio uses its runnable jobs). */
export function summarize(rows: readonly SweepRow[]): SweepSummary {
  const all = rows.filter((r) => STRATEGY_NAMES.every((s) => Number.isFinite(r.us[s])));
  const ratio = {} as Record<StrategyName, number>;
  for (const s of STRATEGY_NAMES) ratio[s] = median(finite(rows.map((r) => r.us[s] / r.lowerBoundUs)));
  const dis = finite(rows.map((r) => r.closedFormDisagreement));
  return {
    jobs: rows.length,
    runnable: all.length,
    doesNotFit: rows.filter((r) => STRATEGY_NAMES.some((s) => r.status[s] === "does not fit")).length,
    failed: rows.filter((r) => STRATEGY_NAMES.some((s) => r.status[s].startsWith("failed"))).length,
    fsmoeOverTutel: geomean(all.map((r) => speedup(r, "fsmoe", "tutel"))),
    fsmoeOverDeepspeed: geomean(all.map((r) => speedup(r, "fsmoe", "deepspeed"))),
    autoOverFsmoe: geomean(all.map((r) => speedup(r, "auto", "fsmoe"))),
    boundRatio: ratio,
    degreesDiffer: rows.filter((r) => r.degrees.fsmoe && r.degrees.fsmoe[0] !== r.degrees.fsmoe[1]).length,
    fsmoeSlower: {
      tutel: all.filter((r) => r.us.fsmoe > r.us.tutel * (1 + 1e-9)).length,
      deepspeed: all.filter((r) => r.us.fsmoe > r.us.deepspeed * (1 + 1e-9)).length,
    },
    disagreement: { median: median(dis), max: dis.length ? Math.max(...dis) : NaN, beyond2: dis.filter((x) => x > 0.02).length, n: dis.length },
  };
}

/** Each strategy's speedup over deepspeed, and its ratio to the lower bound, as distributions. */
export function distributions(rows: readonly SweepRow[]): { speedup: Map<StrategyName, Distribution>; bound: Map<StrategyName, Distribution> } {
  const all = rows.filter((r) => STRATEGY_NAMES.every((s) => Number.isFinite(r.us[s])));
  return {
    speedup: new Map(STRATEGY_NAMES.map((s) => [s, distribution(all.map((r) => speedup(r, s, "deepspeed")))])),
    bound: new Map(STRATEGY_NAMES.map((s) => [s, distribution(finite(rows.map((r) => r.us[s] / r.lowerBoundUs)))])),
  };
}

/** The summary split by each value of each varied parameter. */
export function byParameter(result: SweepResult): { parameter: string; value: string; summary: SweepSummary }[] {
  const out: { parameter: string; value: string; summary: SweepSummary }[] = [];
  result.parameters.forEach((p, k) => {
    const values: string[] = [];
    for (const r of result.rows) if (!values.includes(r.point[k]![1])) values.push(r.point[k]![1]);
    for (const v of values) out.push({ parameter: p, value: v, summary: summarize(result.rows.filter((r) => r.point[k]![1] === v)) });
  });
  return out;
}

const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : "");
const f4 = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : "");
const usText = (x: number) => (Number.isFinite(x) ? (Math.round(x * 1000) / 1000).toFixed(3) : "");

/** The rows as CSV: one line per job. */
export function sweepCsv(result: SweepResult): string {
  const header = [
    "job",
    ...result.parameters,
    "lower_bound_us",
    ...STRATEGY_NAMES.map((s) => `${s}_us`),
    "fsmoe_over_tutel",
    "fsmoe_over_deepspeed",
    "auto_over_fsmoe",
    ...STRATEGY_NAMES.map((s) => `${s}_bound_ratio`),
    "fsmoe_degree_fwd",
    "fsmoe_degree_bwd",
    "auto_degree_fwd",
    "auto_degree_bwd",
    "closed_form_disagreement",
    "auto_peak_bytes",
    "status",
  ];
  const rows: (string | number)[][] = [header];
  for (const r of result.rows) {
    const notes = STRATEGY_NAMES.filter((s) => r.status[s] !== "ok").map((s) => `${s} ${r.status[s]}`);
    rows.push([
      r.job,
      ...r.point.map(([, v]) => v),
      usText(r.lowerBoundUs),
      ...STRATEGY_NAMES.map((s) => usText(r.us[s])),
      f4(speedup(r, "fsmoe", "tutel")),
      f4(speedup(r, "fsmoe", "deepspeed")),
      f4(speedup(r, "auto", "fsmoe")),
      ...STRATEGY_NAMES.map((s) => f4(r.us[s] / r.lowerBoundUs)),
      r.degrees.fsmoe?.[0] ?? "",
      r.degrees.fsmoe?.[1] ?? "",
      r.degrees.auto?.[0] ?? "",
      r.degrees.auto?.[1] ?? "",
      f4(r.closedFormDisagreement),
      Number.isFinite(r.peakBytes) ? r.peakBytes : "",
      notes.length === 0 ? "ok" : notes.join("; "),
    ]);
  }
  return csv(rows);
}

/** The headline table of a summary (figure, value), shared by the sweep's Markdown and EVALUATION.md. */
export function summaryRows(s: SweepSummary): string[][] {
  return [
    ["jobs (all four strategies runnable)", `${s.jobs} (${s.runnable})`],
    ["does not fit / failed", `${s.doesNotFit} / ${s.failed}`],
    ["geomean speedup fsmoe over tutel", f3(s.fsmoeOverTutel)],
    ["geomean speedup fsmoe over deepspeed", f3(s.fsmoeOverDeepspeed)],
    ["geomean speedup auto over fsmoe", f3(s.autoOverFsmoe)],
    ...STRATEGY_NAMES.map((k) => [`median ratio to the lower bound, ${k}`, f3(s.boundRatio[k])]),
    ["fsmoe forward and backward degrees differ", `${s.degreesDiffer} of ${s.jobs}`],
    ["jobs where fsmoe is slower than tutel / deepspeed", `${s.fsmoeSlower.tutel} / ${s.fsmoeSlower.deepspeed}`],
    ["simulator vs closed form, fsmoe blocks: median / largest |Δ|", `${(100 * s.disagreement.median).toFixed(2)}% / ${(100 * s.disagreement.max).toFixed(2)}%`],
    ["jobs with a block beyond 2%", `${s.disagreement.beyond2} of ${s.disagreement.n}`],
  ];
}

/** The by-parameter table. */
export function parameterRows(result: SweepResult): string[][] {
  const rows: string[][] = [["parameter", "value", "jobs", "fsmoe / tutel", "fsmoe / deepspeed", "auto / fsmoe", "fsmoe / bound (median)", "degrees differ"]];
  for (const { parameter, value, summary: s } of byParameter(result)) {
    rows.push([parameter, value, String(s.jobs), f3(s.fsmoeOverTutel), f3(s.fsmoeOverDeepspeed), f3(s.autoOverFsmoe), f3(s.boundRatio.fsmoe), String(s.degreesDiffer)]);
  }
  return rows;
}

/** The distribution table: each strategy's speedup over deepspeed and ratio to the bound. */
export function distributionRows(rows: readonly SweepRow[]): string[][] {
  const d = distributions(rows);
  const out: string[][] = [["strategy", "speedup over deepspeed: min", "q1", "median", "q3", "max", "geomean", "ratio to bound: median", "max"]];
  for (const s of STRATEGY_NAMES) {
    const x = d.speedup.get(s)!;
    const b = d.bound.get(s)!;
    out.push([s, f3(x.min), f3(x.q1), f3(x.median), f3(x.q3), f3(x.max), f3(x.geomean), f3(b.median), f3(b.max)]);
  }
  return out;
}

/** The sweep as Markdown: summary, distributions, the split by parameter, then every job. */
export function sweepMarkdown(result: SweepResult): string {
  const s = summarize(result.rows);
  const parts = [
    `# Sweep ${result.name}\n`,
    `${result.rows.length} jobs × ${STRATEGY_NAMES.length} strategies (${STRATEGY_NAMES.join(", ")}). Predicted times under each job's cost model; speedups are geometric means over the jobs where all four strategies produced a plan that fits.\n`,
    "## Summary\n",
    markdownTable([["figure", "value"], ...summaryRows(s)], [false, true]),
    "\n## Distributions\n",
    markdownTable(distributionRows(result.rows), [false, true, true, true, true, true, true, true, true]),
    "\n## By parameter\n",
    markdownTable(parameterRows(result), [false, false, true, true, true, true, true, true]),
    "\n## Jobs\n",
  ];
  const header = ["job", ...result.parameters, ...STRATEGY_NAMES.map((k) => `${k} (ms)`), "fsmoe / tutel", "fsmoe / deepspeed", "auto / fsmoe", "fsmoe r fwd/bwd", "status"];
  const table: string[][] = [header];
  const msText = (x: number) => (Number.isFinite(x) ? (x / 1000).toFixed(3) : "—");
  for (const r of result.rows) {
    const notes = STRATEGY_NAMES.filter((k) => r.status[k] !== "ok").map((k) => `${k} ${r.status[k]}`);
    table.push([
      r.job,
      ...r.point.map(([, v]) => v),
      ...STRATEGY_NAMES.map((k) => msText(r.us[k])),
      f3(speedup(r, "fsmoe", "tutel")),
      f3(speedup(r, "fsmoe", "deepspeed")),
      f3(speedup(r, "auto", "fsmoe")),
      r.degrees.fsmoe ? `${r.degrees.fsmoe[0]}/${r.degrees.fsmoe[1]}` : "—",
      notes.length === 0 ? "ok" : notes.join("; "),
    ]);
  }
  parts.push(markdownTable(table, header.map((_, i) => i > result.parameters.length && i < header.length - 2)));
  return parts.join("\n");
}

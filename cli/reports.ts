/**
 * The reporting commands of the CLI (ARCHITECTURE.md, "The CLI"): `fsmoec simulate
 * FILE|plan.json`, `fsmoec compare FILE` and `fsmoec sweep FILE`. Thin shells over
 * runtime/simulate and runtime/report: they read or compile, call the library, print, write
 * files atomically and set the exit code (0 ok, 1 errors in the input — diagnostics, or a
 * plan.json that is malformed, of another format version or fails verification —, 2 usage,
 * 3 a file could not be written). No input makes them print a stack trace.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Command, Option } from "commander";
import { check, type CheckResult } from "../compiler/check/check.js";
import { compileJob, programText } from "../compiler/compile/index.js";
import { hasErrors, sortDiagnostics, type Diagnostic } from "../compiler/diagnostics/diagnostic.js";
import { renderText, toJson } from "../compiler/diagnostics/render.js";
import { buildPlan } from "../compiler/plan/build.js";
import { readPlan, renderPlanProblems } from "../compiler/plan/read.js";
import { STRATEGY_NAMES, type StrategyName } from "../compiler/schedule/index.js";
import { comparisonJson, compareProgram, renderComparison } from "../runtime/report/compare.js";
import { renderSimulation, simulationJson } from "../runtime/report/simulate.js";
import { distributions, runSweeps, summarize, summaryRows, sweepCsv, sweepMarkdown, type Progress, type SweepResult } from "../runtime/report/sweep.js";
import { sweepSvg } from "../runtime/report/svg.js";
import { textTable } from "../runtime/report/format.js";
import { inputFromCompiled, inputFromPlan, parseSkew, simulate, type Simulation, type SimulationOptions } from "../runtime/simulate/index.js";
import type { Io } from "./compile.js";
import { Exit } from "./exit.js";
import { writeFileAtomic } from "./io.js";

/** Sweeps with fewer jobs than this print no progress unless asked. */
export const PROGRESS_MIN_JOBS = 50;

interface CommonFlags {
  readonly format: string;
  readonly job?: string;
  readonly fsmoeEmpiricalRules?: boolean;
}

/** Diagnostics of a checked file: text on stderr, or (JSON) returned to go into the output object. */
function diagnosticsOut(r: CheckResult, diagnostics: readonly Diagnostic[], format: string, io: Io): unknown[] {
  const sorted = sortDiagnostics([...diagnostics]);
  if (format === "json") return toJson(sorted, (n) => r.sources.get(n));
  if (sorted.length > 0) io.err(renderText(sorted, (n) => r.sources.get(n)));
  return [];
}

/** Check a .moe file; undefined (after reporting) when it has errors or the --job is unknown. */
function checked(file: string, flags: CommonFlags, io: Io, setExit: (code: number) => void): CheckResult | undefined {
  const r = check(file);
  if (hasErrors(r.diagnostics)) {
    const json = diagnosticsOut(r, r.diagnostics, flags.format, io);
    if (flags.format === "json") io.out(JSON.stringify({ diagnostics: json }, null, 2) + "\n");
    setExit(Exit.inputErrors);
    return undefined;
  }
  if (flags.job !== undefined && !r.program.jobs.some((j) => j.name === flags.job)) {
    io.err(`fsmoec: error: no train job named '${flags.job}' in ${file}\n`);
    setExit(Exit.usage);
    return undefined;
  }
  return r;
}

/** Parse the simulation flags; a string says what is wrong with them. */
function simulationOptions(flags: { contention: boolean; interference?: string; skew?: string }): SimulationOptions | string {
  let interference: number | undefined;
  if (flags.interference !== undefined) {
    interference = Number(flags.interference);
    if (!Number.isFinite(interference) || interference < 1) return `--interference expects a factor ≥ 1, got '${flags.interference}'`;
  }
  let skew = null;
  if (flags.skew !== undefined) {
    const s = parseSkew(flags.skew);
    if (typeof s === "string") return `--skew: ${s}`;
    skew = s;
  }
  return { contention: flags.contention, interference, skew };
}

/** A progress reporter on stderr: one updating line on a terminal, else a line every 10%. */
export function progressReporter(mode: string, label: string, io: Io, total: number, tty: boolean): Progress | undefined {
  const chosen = mode === "auto" ? (total < PROGRESS_MIN_JOBS ? "none" : tty ? "tty" : "lines") : mode;
  if (chosen === "none") return undefined;
  if (chosen === "tty") {
    let shown = -1;
    return (done, all) => {
      const p = Math.floor((100 * done) / all);
      if (p === shown && done !== all) return;
      shown = p;
      io.err(`\r${label}: ${done}/${all} jobs (${p}%)${done === all ? "\n" : ""}`);
    };
  }
  let decile = 0;
  return (done, all) => {
    const d = Math.floor((10 * done) / all);
    if (d <= decile && done !== all) return;
    if (done === all && decile === 10) return;
    decile = d;
    io.err(`${label}: ${done}/${all} jobs (${Math.floor((100 * done) / all)}%)\n`);
  };
}

/** Add `simulate`, `compare` and `sweep` to the program. */
export function registerReportCommands(cli: Command, io: Io, setExit: (code: number) => void, version: string): void {
  const formatOption = () => new Option("--format <format>", "how to report").choices(["text", "json"]).default("text");
  const jobOption = () => new Option("--job <name>", "only this train job");
  const rulesOption = () => new Option("--fsmoe-empirical-rules", "apply the FSMoE authors' empirical rule (r = 1 when the all-to-all takes under 1 ms)");

  cli
    .command("simulate <input>")
    .description("simulate a plan (a .moe file's jobs, or a plan.json) on its cluster: iteration time, busy and idle time per resource, exposed communication, critical path, lower bound")
    .addOption(formatOption())
    .addOption(new Option("--schedule <strategy>", "override the file's schedule (.moe input)").choices([...STRATEGY_NAMES]))
    .addOption(jobOption())
    .addOption(rulesOption())
    .option("--no-contention", "give every op its planned time (no sharing of NICs and intra-node links)")
    .option("--interference <factor>", "compute kernels run this many times slower while a communication kernel runs (default 1: none)")
    .option("--skew <spec>", "per-expert load skew: zipf:S, loads:a,b,… or none (collectives wait for the slowest rank)")
    .action((input: string, opts: CommonFlags & { schedule?: StrategyName; contention: boolean; interference?: string; skew?: string }) => {
      const so = simulationOptions(opts);
      if (typeof so === "string") {
        io.err(`fsmoec: error: ${so}\n`);
        return setExit(Exit.usage);
      }
      const sims: Simulation[] = [];
      let diagnostics: unknown[] = [];
      let code: number = Exit.ok;
      if (input.endsWith(".json")) {
        const read = readPlan(input);
        if (!read.ok) {
          io.err(renderPlanProblems(input, read.problems));
          return setExit(Exit.inputErrors);
        }
        if (opts.job !== undefined && read.plan.job.name !== opts.job) {
          io.err(`fsmoec: error: ${input} is the plan of job '${read.plan.job.name}', not '${opts.job}'\n`);
          return setExit(Exit.usage);
        }
        sims.push(simulate(inputFromPlan(read.plan), so));
      } else {
        const r = checked(input, opts, io, setExit);
        if (!r) return;
        const all: Diagnostic[] = [...r.diagnostics];
        const text = programText(r);
        const root = r.program.files[0] ?? input;
        for (const job of r.program.jobs) {
          if (opts.job !== undefined && job.name !== opts.job) continue;
          const c = compileJob(job, { strategy: opts.schedule ?? job.schedule, strategyOptions: { fsmoeEmpiricalRules: opts.fsmoeEmpiricalRules === true } });
          all.push(...c.diagnostics);
          if (c.compiled) sims.push(simulate(inputFromCompiled(c.compiled, buildPlan(c.compiled, root, text, version)), so));
        }
        diagnostics = diagnosticsOut(r, all, opts.format, io);
        if (hasErrors(all)) code = Exit.inputErrors;
      }
      if (sims.some((s) => !s.run.ok)) code = Exit.inputErrors;
      if (opts.format === "json") io.out(JSON.stringify({ diagnostics, simulations: sims.map(simulationJson) }, null, 2) + "\n");
      else for (const s of sims) io.out(renderSimulation(s));
      setExit(code);
    });

  cli
    .command("compare <file>")
    .description("every strategy side by side: iteration time, speedup, simulated time, exposed communication, ratio to the lower bound, peak memory")
    .addOption(formatOption())
    .addOption(jobOption())
    .addOption(rulesOption())
    .action((file: string, opts: CommonFlags) => {
      const r = checked(file, opts, io, setExit);
      if (!r) return;
      const list = compareProgram(r, version, { ...(opts.job !== undefined && { job: opts.job }), strategyOptions: { fsmoeEmpiricalRules: opts.fsmoeEmpiricalRules === true } });
      const diagnostics = diagnosticsOut(r, r.diagnostics, opts.format, io);
      if (opts.format === "json") io.out(JSON.stringify({ diagnostics, jobs: comparisonJson(list) }, null, 2) + "\n");
      else io.out(list.map(renderComparison).join("\n"));
      setExit(list.every((c) => c.rows.every((x) => x.status === "failed")) && list.length > 0 ? Exit.inputErrors : Exit.ok);
    });

  cli
    .command("sweep <file>")
    .description("compile every job of the file's sweep blocks under every strategy; write CSV, Markdown and an SVG of the speedups")
    .addOption(formatOption())
    .addOption(rulesOption())
    .option("--sweep <name>", "only this sweep")
    .option("-o, --out <dir>", "output folder", join("out", "sweep"))
    .addOption(new Option("--progress <mode>", "progress on stderr").choices(["auto", "tty", "lines", "none"]).default("auto"))
    .addOption(new Option("--every <n>", "only every n-th job (a quick look at a large sweep)").default("1").hideHelp())
    .action((file: string, opts: CommonFlags & { sweep?: string; out: string; progress: string; every: string }) => {
      const every = Number(opts.every);
      if (!Number.isInteger(every) || every < 1) {
        io.err(`fsmoec: error: --every expects a positive integer, got '${opts.every}'\n`);
        return setExit(Exit.usage);
      }
      const r = checked(file, opts, io, setExit);
      if (!r) return;
      const names = [...new Set(r.program.jobs.filter((j) => j.sweep !== null).map((j) => j.sweep!.name))];
      if (names.length === 0) {
        diagnosticsOut(r, r.diagnostics, "text", io);
        io.err(`${file}: error: no sweep block expands to a train job here (sweep needs a 'sweep' block)\n`);
        return setExit(Exit.inputErrors);
      }
      if (opts.sweep !== undefined && !names.includes(opts.sweep)) {
        io.err(`fsmoec: error: no sweep named '${opts.sweep}' in ${file}; sweeps: ${names.join(", ")}\n`);
        return setExit(Exit.usage);
      }
      const total = Math.ceil(r.program.jobs.filter((j) => j.sweep !== null && (opts.sweep === undefined || j.sweep.name === opts.sweep)).length / every);
      const progress = progressReporter(opts.progress, `sweep ${opts.sweep ?? names.join(", ")}`, io, total, process.stderr.isTTY === true);
      const results = runSweeps(r, {
        ...(opts.sweep !== undefined && { sweep: opts.sweep }),
        strategyOptions: { fsmoeEmpiricalRules: opts.fsmoeEmpiricalRules === true },
        ...(progress && { progress }),
        every,
        version,
      });
      const diagnostics = diagnosticsOut(r, r.diagnostics, opts.format, io);
      const written: string[] = [];
      try {
        mkdirSync(opts.out, { recursive: true });
        for (const s of results) {
          const base = join(opts.out, s.name);
          const d = distributions(s.rows);
          writeFileAtomic(`${base}.csv`, sweepCsv(s));
          writeFileAtomic(`${base}.md`, sweepMarkdown(s));
          writeFileAtomic(`${base}.svg`, sweepSvg(s.name, s.rows.length, d.speedup, d.bound));
          written.push(`${base}.{csv,md,svg}`);
        }
      } catch (e) {
        io.err(`fsmoec: error: cannot write ${opts.out}: ${(e as Error).message}\n`);
        return setExit(Exit.runtime);
      }
      if (opts.format === "json") io.out(JSON.stringify({ diagnostics, sweeps: results.map(sweepJson) }, null, 2) + "\n");
      else {
        for (const s of results) io.out(renderSweep(s));
        for (const w of written) io.err(`wrote ${w}\n`);
      }
      setExit(Exit.ok);
    });
}

/** The text summary of a sweep on stdout. */
function renderSweep(s: SweepResult): string {
  const summary = summarize(s.rows);
  return `sweep ${s.name}: ${s.rows.length} jobs × ${STRATEGY_NAMES.length} strategies in ${(s.wallMs / 1000).toFixed(1)} s\n` + textTable(summaryRows(summary), [false, true]);
}

/** The JSON summary of a sweep. */
function sweepJson(s: SweepResult): unknown {
  const x = summarize(s.rows);
  const num = (v: number) => (Number.isFinite(v) ? v : null);
  return {
    sweep: s.name,
    jobs: x.jobs,
    runnable: x.runnable,
    doesNotFit: x.doesNotFit,
    failed: x.failed,
    geomean: { fsmoeOverTutel: num(x.fsmoeOverTutel), fsmoeOverDeepspeed: num(x.fsmoeOverDeepspeed), autoOverFsmoe: num(x.autoOverFsmoe) },
    medianBoundRatio: Object.fromEntries(STRATEGY_NAMES.map((k) => [k, num(x.boundRatio[k])])),
    degreesDiffer: x.degreesDiffer,
    closedForm: { median: num(x.disagreement.median), max: num(x.disagreement.max), jobsBeyond2Percent: x.disagreement.beyond2 },
  };
}

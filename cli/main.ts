/**
 * `fsmoec`, the command line (ARCHITECTURE.md, "The CLI"): a thin shell over the library that
 * turns results into printed text and exit codes. It never prints a stack trace for any input.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { readPlan, renderPlanProblems } from "../compiler/plan/read.js";
import { Command, CommanderError, Option } from "commander";
import { check, type CheckResult } from "../compiler/check/check.js";
import { hasErrors, type Diagnostic } from "../compiler/diagnostics/diagnostic.js";
import { renderText, toJson, type JsonDiagnostic } from "../compiler/diagnostics/render.js";
import { stages, compileStageNames } from "../compiler/index.js";
import { printStage } from "./stages.js";
import { DEFAULT_TARGETS, targets } from "../codegen/index.js";
import { STRATEGY_NAMES } from "../compiler/schedule/index.js";
import { join } from "node:path";
import { compileFile, parseEmit, printExplain, printSummaries, writeOutputs, type CompileFlags } from "./compile.js";
import { summaryJson } from "./summary.js";
import { format } from "../grammar/print.js";
import { Exit } from "./exit.js";
import { writeFileAtomic } from "./io.js";
import { registerReportCommands } from "./reports.js";
import { registerProfileCommand } from "./profile.js";
import { registerRunCommands } from "./run.js";

const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** Collects diagnostics as JSON for commands that print one JSON document at the end. */
function jsonCollector(): { report: (r: CheckResult, d: readonly Diagnostic[]) => void; diagnostics: JsonDiagnostic[] } {
  const diagnostics: JsonDiagnostic[] = [];
  return { diagnostics, report: (r, d) => diagnostics.push(...toJson(d, (n) => r.sources.get(n))) };
}

function report(results: readonly CheckResult[], fmt: string, io: Io): void {
  if (fmt === "json") {
    const all: JsonDiagnostic[] = results.flatMap((r) => toJson(r.diagnostics, (n) => r.sources.get(n)));
    io.out(JSON.stringify(all, null, 2) + "\n");
    return;
  }
  for (const r of results) io.err(renderText(r.diagnostics, (n) => r.sources.get(n)));
}

function countLine(diagnostics: readonly Diagnostic[], files: number): string {
  const errors = diagnostics.filter((d) => d.severity === "error").length;
  const warnings = diagnostics.length - errors;
  const parts = [`${files} file${files === 1 ? "" : "s"} checked`];
  parts.push(errors === 0 ? "no errors" : `${errors} error${errors === 1 ? "" : "s"}`);
  if (warnings > 0) parts.push(`${warnings} warning${warnings === 1 ? "" : "s"}`);
  return parts.join(", ") + "\n";
}

const formatOption = () => new Option("--format <format>", "how to report diagnostics").choices(["text", "json"]).default("text");
const stageNames = [...stages.map((s) => s.name), ...compileStageNames];

/** Build the program; `io` and `exit` are injectable so tests can run the CLI in-process. */
export function program(io: Io, setExit: (code: number) => void): Command {
  const cli = new Command("fsmoec")
    .description("Compile the training schedule of a Mixture-of-Experts model for its GPU cluster.")
    .version(version, "-V, --version")
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride()
    .showHelpAfterError("(run fsmoec --help for usage)");

  const scheduleOption = () => new Option("--schedule <strategy>", "override the file's schedule").choices([...STRATEGY_NAMES]);
  const jobOption = () => new Option("--job <name>", "only this train job");
  const rulesOption = () => new Option("--fsmoe-empirical-rules", "apply the FSMoE authors' empirical rule (r = 1 when the all-to-all takes under 1 ms)");

  cli
    .command("summary <file>", { isDefault: true, hidden: true })
    .description("compile every train job, compare the strategies, print a summary and write out/")
    .addOption(formatOption())
    .addOption(new Option("--print-after <stage>", "print a stage's value and stop").choices(stageNames))
    .addOption(scheduleOption())
    .addOption(jobOption())
    .addOption(rulesOption())
    .option("-o, --out <dir>", "output folder", "out")
    .action((file: string, opts: { format: string; printAfter?: string; out: string } & CompileFlags) => {
      if (!file.includes(".") && !file.includes("/") && !existsSync(file)) {
        // A bare word that is no file is a mistyped command, not a missing input.
        io.err(`fsmoec: error: unknown command '${file}' (commands: ${cli.commands.filter((c) => c.name() !== "summary").map((c) => c.name()).join(", ")}; or give a .moe file)\n`);
        return setExit(Exit.usage);
      }
      if (opts.printAfter) return setExit(printAfter(file, opts.printAfter, opts, io));
      const json = jsonCollector();
      const sink = opts.format === "json" ? json.report : (r: CheckResult, d: readonly Diagnostic[]) => report([{ ...r, diagnostics: d }], "text", io);
      const { results, code } = compileFile(file, opts, true, version, sink);
      if (code === Exit.usage) io.err(`fsmoec: error: no train job named '${opts.job}' in ${file}\n`);
      if (opts.format === "text") printSummaries(results, io);
      else io.out(JSON.stringify({ diagnostics: json.diagnostics, jobs: results.filter((x) => x.plan).map((x) => summaryJson(x)) }, null, 2) + "\n");
      if (!writeOutputs(results, opts.out, DEFAULT_TARGETS, io)) return setExit(Exit.runtime);
      setExit(code);
    });

  cli
    .command("compile <file>")
    .description("compile every train job into a verified plan in DIR/<job>/")
    .addOption(formatOption())
    .addOption(scheduleOption())
    .addOption(jobOption())
    .addOption(rulesOption())
    .option("-o, --out <dir>", "output folder", "out")
    .option("--emit <targets>", `comma-separated targets (${targets.map((t) => t.name).join(", ")})`, DEFAULT_TARGETS.join(","))
    .addOption(new Option("--print-after <stage>", "print a stage's value and stop").choices(stageNames))
    .action((file: string, opts: { format: string; out: string; emit: string; printAfter?: string } & CompileFlags) => {
      if (opts.printAfter) return setExit(printAfter(file, opts.printAfter, opts, io));
      const emit = parseEmit(opts.emit, io);
      if (!emit) return setExit(Exit.usage);
      const json = jsonCollector();
      const sink = opts.format === "json" ? json.report : (r: CheckResult, d: readonly Diagnostic[]) => report([{ ...r, diagnostics: d }], "text", io);
      const { results, code } = compileFile(file, opts, false, version, sink);
      if (code === Exit.usage) io.err(`fsmoec: error: no train job named '${opts.job}' in ${file}\n`);
      if (!writeOutputs(results, opts.out, emit, io)) return setExit(Exit.runtime);
      const written = results.filter((r) => r.plan).map((r) => ({ job: r.job.name, strategy: r.strategy, folder: join(opts.out, r.job.name), predictedUs: r.plan!.predicted.iterationUs }));
      if (opts.format === "json") io.out(JSON.stringify({ diagnostics: json.diagnostics, written }, null, 2) + "\n");
      else for (const w of written) io.err(`wrote ${w.folder}/ (${w.strategy}, predicted ${(w.predictedUs / 1000).toFixed(2)} ms)\n`);
      setExit(code);
    });

  cli
    .command("emit <plan>")
    .description("write emitter targets from an existing plan.json (validated and verified first)")
    .option("-o, --out <dir>", "output folder", "out")
    .option("--emit <targets>", `comma-separated targets (${targets.map((t) => t.name).join(", ")})`, DEFAULT_TARGETS.join(","))
    .action((planFile: string, opts: { out: string; emit: string }) => {
      const emit = parseEmit(opts.emit, io);
      if (!emit) return setExit(Exit.usage);
      const read = readPlan(planFile);
      if (!read.ok) {
        io.err(renderPlanProblems(planFile, read.problems));
        return setExit(Exit.inputErrors);
      }
      const folder = join(opts.out, read.plan.job.name);
      try {
        mkdirSync(folder, { recursive: true });
        for (const name of emit) {
          const t = targets.find((x) => x.name === name)!;
          writeFileAtomic(join(folder, t.file), t.emit(read.plan));
        }
      } catch (e) {
        io.err(`fsmoec: error: cannot write ${folder}: ${(e as Error).message}\n`);
        return setExit(Exit.runtime);
      }
      io.err(`wrote ${folder}/ (${emit.join(", ")})\n`);
      setExit(Exit.ok);
    });

  cli
    .command("explain <file>")
    .description("print the candidates behind each choice of the schedule")
    .addOption(formatOption())
    .addOption(scheduleOption())
    .addOption(jobOption())
    .addOption(rulesOption())
    .option("--layer <n>", "only this layer's choices")
    .action((file: string, opts: { format: string; layer?: string } & CompileFlags) => {
      const layer = opts.layer === undefined ? undefined : Number(opts.layer);
      if (layer !== undefined && (!Number.isInteger(layer) || layer < 0)) {
        io.err(`fsmoec: error: --layer expects a layer index, got '${opts.layer}'\n`);
        return setExit(Exit.usage);
      }
      const json = jsonCollector();
      const sink = opts.format === "json" ? json.report : (r: CheckResult, d: readonly Diagnostic[]) => report([{ ...r, diagnostics: d }], "text", io);
      const { results, code } = compileFile(file, opts, false, version, sink);
      if (code === Exit.usage) io.err(`fsmoec: error: no train job named '${opts.job}' in ${file}\n`);
      if (opts.format === "json") {
        const jobs = results.filter((r) => r.compiled).map((r) => ({ job: r.job.name, strategy: r.strategy, notes: r.compiled!.schedule.notes, candidates: r.compiled!.schedule.candidates }));
        io.out(JSON.stringify({ diagnostics: json.diagnostics, jobs }, null, 2) + "\n");
      } else printExplain(results, layer, io);
      setExit(code);
    });
  registerReportCommands(cli, io, setExit, version);
  registerProfileCommand(cli, io, setExit);
  registerRunCommands(cli, io, setExit, version);

  cli
    .command("check <files...>")
    .description("check .moe files and report diagnostics (exit 1 on errors)")
    .addOption(formatOption())
    .action((files: string[], opts: { format: string }) => {
      const results = files.map((f) => check(f));
      report(results, opts.format, io);
      const all = results.flatMap((r) => r.diagnostics);
      if (opts.format === "text") io.err(countLine(all, files.length));
      setExit(hasErrors(all) ? Exit.inputErrors : Exit.ok);
    });

  cli
    .command("fmt <files...>")
    .description("format .moe files canonically, in place")
    .option("--check", "only report files that are not formatted (exit 1 if any)")
    .option("--stdout", "print the formatted text instead of writing files")
    .addOption(formatOption())
    .action((files: string[], opts: { check?: boolean; stdout?: boolean; format: string }) => setExit(fmt(files, opts, io)));

  return cli;
}

function printAfter(file: string, stage: string, opts: { format: string } & CompileFlags, io: Io): number {
  const loaded = stages[0].run({ file });
  if (stage === "parse") {
    io.out(stages[0].print(loaded));
    return hasErrors(loaded.diagnostics) ? Exit.inputErrors : Exit.ok;
  }
  const r = stages[1].run(loaded);
  if (stage === "check" || hasErrors(r.diagnostics)) {
    if (opts.format === "text" || hasErrors(r.diagnostics)) report([r], opts.format, io);
    if (!hasErrors(r.diagnostics)) io.out(stages[1].print(r));
    return hasErrors(r.diagnostics) ? Exit.inputErrors : Exit.ok;
  }
  const { results, code } = compileFile(file, opts, false, version, (c, d) => report([{ ...c, diagnostics: d }], opts.format, io));
  for (const res of results) if (res.compiled) io.out(printStage(stage, res));
  return code;
}

function fmt(files: string[], opts: { check?: boolean; stdout?: boolean; format: string }, io: Io): number {
  let code: number = Exit.ok;
  const unformatted: string[] = [];
  for (const file of files) {
    let original: Buffer;
    try {
      original = readFileSync(file);
    } catch (e) {
      io.err(`${file}: error: cannot read: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}\n`);
      code = Math.max(code, Exit.inputErrors);
      continue;
    }
    const r = format(original, file);
    if (r.text === null) {
      const source = check(file, { text: original });
      report([{ ...source, diagnostics: r.diagnostics }], opts.format, io);
      code = Math.max(code, Exit.inputErrors);
      continue;
    }
    if (opts.stdout) {
      io.out(r.text);
      continue;
    }
    if (r.text === original.toString("utf8")) continue;
    if (opts.check) {
      unformatted.push(file);
      continue;
    }
    try {
      writeFileAtomic(file, r.text);
      io.err(`formatted ${file}\n`);
    } catch (e) {
      io.err(`${file}: error: cannot write: ${(e as Error).message}\n`);
      code = Exit.runtime;
    }
  }
  if (opts.check && unformatted.length > 0) {
    for (const f of unformatted) io.err(`${f}: not formatted (run fsmoec fmt ${f})\n`);
    code = Math.max(code, Exit.inputErrors);
  }
  return code;
}

/** Run the CLI with arguments (without `node` and the script); returns the exit code. */
export function run(argv: readonly string[], io: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): number {
  let code: number = Exit.ok;
  const cli = program(io, (c) => (code = c));
  if (argv.length === 0) {
    cli.outputHelp({ error: true });
    return Exit.usage;
  }
  try {
    cli.parse([...argv], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return Exit.ok;
      return Exit.usage;
    }
    io.err(`fsmoec: internal error: ${(e as Error).message}\n`);
    return Exit.runtime;
  }
  return code;
}

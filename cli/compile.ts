/**
 * The compiling commands of the CLI (ARCHITECTURE.md, "The CLI"): `fsmoec FILE` (compile every
 * job with its strategy, compare with the others, print a summary, write out/), `fsmoec
 * compile FILE -o DIR`, and `fsmoec explain FILE`. Output files are written atomically.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_TARGETS, targets } from "../codegen/index.js";
import { check, type CheckResult } from "../compiler/check/check.js";
import { compileProgram, type JobResult } from "../compiler/compile/index.js";
import { hasErrors, sortDiagnostics, type Diagnostic } from "../compiler/diagnostics/diagnostic.js";
import { STRATEGY_NAMES, type StrategyName } from "../compiler/schedule/index.js";
import { Exit } from "./exit.js";
import { writeFileAtomic } from "./io.js";
import { summarizeCompiled } from "./summary.js";

/** Output channels of a command. */
export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** Options shared by the compiling commands. */
export interface CompileFlags {
  readonly schedule?: string;
  readonly job?: string;
  readonly fsmoeEmpiricalRules?: boolean;
}

/** Check and compile a file; diagnostics are reported through `report`. */
export function compileFile(
  file: string,
  flags: CompileFlags,
  compare: boolean,
  version: string,
  report: (r: CheckResult, diagnostics: readonly Diagnostic[]) => void,
): { results: JobResult[]; code: number } {
  const r = check(file);
  if (hasErrors(r.diagnostics)) {
    report(r, r.diagnostics);
    return { results: [], code: Exit.inputErrors };
  }
  const known = new Set(r.program.jobs.map((j) => j.name));
  if (flags.job !== undefined && !known.has(flags.job)) {
    report(r, r.diagnostics);
    return { results: [], code: Exit.usage };
  }
  const { results, diagnostics } = compileProgram(r, {
    ...(flags.schedule !== undefined && { strategy: flags.schedule as StrategyName }),
    compare,
    ...(flags.job !== undefined && { jobs: (j) => j.name === flags.job }),
    strategyOptions: { fsmoeEmpiricalRules: flags.fsmoeEmpiricalRules === true },
    version,
  });
  const all = sortDiagnostics([...r.diagnostics, ...diagnostics]);
  report(r, all);
  return { results, code: hasErrors(all) ? Exit.inputErrors : Exit.ok };
}

/** Write each job's targets to DIR/<job>/. Returns false (after saying why) when a write fails. */
export function writeOutputs(results: readonly JobResult[], dir: string, emit: readonly string[], io: Io): boolean {
  for (const r of results) {
    if (!r.plan) continue;
    const folder = join(dir, r.job.name);
    try {
      mkdirSync(folder, { recursive: true });
      for (const name of emit) {
        const t = targets.find((x) => x.name === name)!;
        writeFileAtomic(join(folder, t.file), t.emit(r.plan));
      }
    } catch (e) {
      io.err(`fsmoec: error: cannot write ${folder}: ${(e as Error).message}\n`);
      return false;
    }
  }
  return true;
}

/** Parse `--emit a,b` against the known targets; undefined (after a message) when one is unknown. */
export function parseEmit(value: string | undefined, io: Io): string[] | undefined {
  const list = (value ?? DEFAULT_TARGETS.join(",")).split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  const unknown = list.filter((n) => !targets.some((t) => t.name === n));
  if (unknown.length > 0) {
    io.err(`fsmoec: error: unknown --emit target ${unknown.map((u) => `'${u}'`).join(", ")}; targets: ${targets.map((t) => t.name).join(", ")}\n`);
    return undefined;
  }
  return list;
}

/** The summary printed by `fsmoec FILE`. */
export function printSummaries(results: readonly JobResult[], io: Io): void {
  for (const r of results) if (r.compiled && r.plan) io.out(summarizeCompiled(r));
}

/** The candidate table behind each choice (`fsmoec explain`). */
export function printExplain(results: readonly JobResult[], layer: number | undefined, io: Io): void {
  for (const r of results) {
    const c = r.compiled;
    if (!c) continue;
    io.out(`train ${r.job.name}: ${r.strategy} — ${c.schedule.notes.length > 0 ? c.schedule.notes.join("; ") : "no notes"}\n`);
    const rows = c.schedule.candidates.filter((k) => layer === undefined || !/layer \d+/.test(k.scope) || k.scope.endsWith(`layer ${layer}`));
    if (rows.length === 0) {
      io.out("  (this strategy considers no alternatives)\n");
      continue;
    }
    const width = Math.max(...rows.map((k) => k.scope.length));
    const desc = Math.max(...rows.map((k) => k.description.length));
    for (const k of rows) {
      const time = Number.isFinite(k.predictedUs) ? `${(k.predictedUs / 1000).toFixed(3)} ms` : "—";
      io.out(`  ${k.chosen ? "*" : " "} ${k.scope.padEnd(width)}  ${k.description.padEnd(desc)}  ${time.padStart(12)}${k.note ? `  ${k.note}` : ""}\n`);
    }
  }
}

/** Validate `--schedule`. */
export function validSchedule(s: string | undefined): boolean {
  return s === undefined || (STRATEGY_NAMES as readonly string[]).includes(s);
}

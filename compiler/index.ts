/**
 * The driver: the ordered list of compiler stages in one place (STYLE.md, "The stage list
 * lives in one place"). `--print-after` and `--timings` iterate over it. Each stage is a pure
 * function from the previous stage's value to the next.
 */
import { checkLoaded, load, type CheckResult, type Loaded } from "./check/check.js";
import type { CheckHost } from "./check/host.js";
import type { Program } from "./check/program.js";

/** One stage of the pipeline. */
export interface Stage<I, O> {
  readonly name: string;
  readonly summary: string;
  readonly run: (input: I) => O;
  /** The stage's value as text, for `--print-after`. */
  readonly print: (output: O) => string;
}

/** What the front end consumes: a root file (and, optionally, its text and a host). */
export interface Source {
  readonly file: string;
  readonly text?: string | Uint8Array;
  readonly host?: CheckHost;
}

function stripSpans(key: string, value: unknown): unknown {
  return key === "span" || key === "spans" ? undefined : value;
}

/** The parse stage: the root file and its imports as ASTs (spans elided when printed). */
export const parseStage: Stage<Source, Loaded> = {
  name: "parse",
  summary: "lex and parse the root file and its imports into typed ASTs",
  run: (src) => load(src.file, src.host, src.text),
  print: (r) => JSON.stringify(r.asts.map((a) => ({ file: a.span.file, items: a.items })), stripSpans, 2) + "\n",
};

/** The check stage: names, units, defaults, ranges, sweeps and layout → Program. */
export const checkStage: Stage<Loaded, CheckResult> = {
  name: "check",
  summary: "resolve names, evaluate fields with units, apply defaults, expand sweeps, check the layout",
  run: checkLoaded,
  print: (r) => JSON.stringify(r.program, stripSpans, 2) + "\n",
};

/** The front-end stages in order (their values are shared by every job of a file). */
export const stages = [parseStage, checkStage] as const;

/**
 * The per-job stages that follow, in order (compiler/compile/compile.ts runs them): their
 * names and what each does, for `--print-after` and the docs.
 */
export const compileStages = [
  { name: "lower", summary: "every layer to the unified MoE abstraction with exact sizes (compiler/lower/)" },
  { name: "cost", summary: "the cost model: hardware α–β or a fitted profile (compiler/cost/)" },
  { name: "schedule", summary: "the strategy's degrees, issue orders and gradient slots (compiler/schedule/)" },
  { name: "graph", summary: "the static task graph of one rank: ops on streams, events, buffers (compiler/graph/)" },
  { name: "verify", summary: "no cycles, races, collective-order mismatches, bad shapes (compiler/verify/)" },
  { name: "memory", summary: "buffer lifetimes to arena offsets and the peak (compiler/memory/)" },
  { name: "plan", summary: "plan.json (compiler/plan/)" },
] as const;

/** The names of the per-job stages. */
export const compileStageNames: readonly string[] = compileStages.map((s) => s.name);

/** The checked Program of a source, with every diagnostic (the front end as one call). */
export function frontEnd(src: Source): CheckResult {
  return checkStage.run(parseStage.run(src));
}

export type { Program };

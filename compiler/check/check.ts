/**
 * The check stage (ARCHITECTURE.md: AST → Program): load a root file and its imports, resolve
 * block names (with the `std` presets), evaluate every block, expand sweeps, run the layout
 * rules, and return the Program of jobs that checked clean with every diagnostic found. It
 * never throws on any input.
 */
import type * as A from "../../grammar/ast.js";
import { parse } from "../../grammar/parse.js";
import { diagnostic, sortDiagnostics, type Diagnostic } from "../diagnostics/diagnostic.js";
import { SourceFile, type Span } from "../diagnostics/span.js";
import { didYouMean } from "../diagnostics/suggest.js";
import { stdPresets } from "../std/index.js";
import { Evaluator, type BlockEntry } from "./evaluate.js";
import { nodeHost, type CheckHost } from "./host.js";
import { modelOf, trainJob } from "./materialize.js";
import type { Program, TrainJob } from "./program.js";
import { jobRules, modelRules } from "./rules/index.js";
import { isBlockKind, schemas } from "./schema.js";
import { Instance, type Patch } from "./values.js";

/** The most train jobs one sweep may expand to. */
export const MAX_SWEEP_JOBS = 100_000;

/** What {@link check} returns. */
export interface CheckResult {
  readonly program: Program;
  readonly diagnostics: readonly Diagnostic[];
  /** Every file read (and std), for rendering diagnostics. */
  readonly sources: ReadonlyMap<string, SourceFile>;
  /** The parsed files, root first. */
  readonly asts: readonly A.FileNode[];
}

/** A root file and its imports, parsed: the parse stage's value. */
export interface Loaded {
  readonly asts: readonly A.FileNode[];
  readonly sources: ReadonlyMap<string, SourceFile>;
  /** Syntax errors and unreadable imports. */
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * Read and parse a root file and, transitively, the files it imports (each once). `rootText`
 * gives the root's contents directly; the host still reads its imports.
 */
export function load(root: string, host: CheckHost = nodeHost, rootText?: string | Uint8Array): Loaded {
  const out = { asts: [] as A.FileNode[], sources: new Map<string, SourceFile>(), diagnostics: [] as Diagnostic[] };
  const visit = (path: string, input: string | Uint8Array) => {
    const r = parse(input, path);
    out.asts.push(r.ast);
    out.sources.set(path, r.source);
    out.diagnostics.push(...r.diagnostics);
    for (const item of r.ast.items) {
      if (item.kind !== "import") continue;
      const target = host.resolve(path, item.path);
      if (out.sources.has(target)) continue;
      let text: string | Uint8Array;
      try {
        text = host.read(target);
      } catch (e) {
        out.diagnostics.push(diagnostic("FSM2008", item.pathSpan, { what: "import ", path: item.path, reason: (e as Error).message }));
        continue;
      }
      visit(target, text);
    }
  };
  if (rootText !== undefined) visit(root, rootText);
  else {
    try {
      visit(root, host.read(root));
    } catch (e) {
      out.diagnostics.push(diagnostic("FSM2008", { file: root, start: 0, end: 0 }, { what: "", path: root, reason: (e as Error).message }));
    }
  }
  return out;
}

/**
 * Check a root file and everything it imports: parse, then {@link checkLoaded}. `text` gives
 * the root's contents directly (the host still reads its imports).
 */
export function check(root: string, options: { host?: CheckHost; text?: string | Uint8Array } = {}): CheckResult {
  return checkLoaded(load(root, options.host ?? nodeHost, options.text));
}

/** Check parsed files (the check stage proper). */
export function checkLoaded(loaded: Loaded): CheckResult {
  const diagnostics = [...loaded.diagnostics];
  const std = stdPresets();
  const sources = new Map(loaded.sources);
  sources.set(std.source.name, std.source);

  const blocks = new Map<string, BlockEntry>();
  for (const item of std.ast.items) {
    if (item.kind === "block" && isBlockKind(item.blockKind.text)) blocks.set(item.name.text, { node: item, kind: item.blockKind.text, std: true });
  }
  // The presets alone: std code resolves names among them only (std is a closed world).
  const stdBlocks = new Map(blocks);
  const user: BlockEntry[] = [];
  for (const ast of loaded.asts) {
    for (const item of ast.items) {
      if (item.kind !== "block") continue;
      const kind = item.blockKind.text;
      if (!isBlockKind(kind)) {
        diagnostics.push(diagnostic("FSM2001", item.blockKind.span, { kind, hint: didYouMean(kind, Object.keys(schemas)) }));
        continue;
      }
      const prev = blocks.get(item.name.text);
      if (prev && !prev.std) {
        diagnostics.push(diagnostic("FSM2002", item.name.span, { name: item.name.text }, [{ message: `'${item.name.text}' first defined here`, span: prev.node.name.span }]));
        continue;
      }
      const entry: BlockEntry = { node: item, kind, std: false };
      blocks.set(item.name.text, entry);
      user.push(entry);
    }
  }

  const ev = new Evaluator(blocks, stdBlocks);
  const jobs: TrainJob[] = [];
  const finish = (inst: Instance, name: string, sweep: TrainJob["sweep"]) => {
    if (!ev.evaluateAll(inst)) return;
    const job = trainJob(ev, inst, name, sweep);
    const found = [...modelRules.flatMap((r) => r.check(job.model)), ...jobRules.flatMap((r) => r.check(job))];
    diagnostics.push(...found);
    if (found.length === 0) jobs.push(job);
  };
  for (const entry of user) {
    const name = entry.node.name.text;
    const inst = ev.instanceOf(name)!;
    if (entry.kind === "train") finish(inst, name, null);
    else if (entry.kind === "sweep") expandSweep(ev, inst, entry.node, sources, finish);
    else if (ev.evaluateAll(inst) && (entry.kind === "model" || entry.kind === "layer")) {
      // A model or layer is checked on its own too, used by a train job or not; where a job uses
      // it unchanged, the job's model reports the same diagnostics, which are reported once.
      const model = modelOf(ev, inst);
      diagnostics.push(...modelRules.flatMap((r) => r.check(model)));
    }
  }
  diagnostics.push(...ev.diagnostics);
  return {
    program: { files: loaded.asts.map((a) => a.span.file), jobs },
    diagnostics: sortDiagnostics(diagnostics),
    sources,
    asts: loaded.asts,
  };
}

function cover(path: readonly A.Ident[]): Span {
  return { ...path[0]!.span, end: path[path.length - 1]!.span.end };
}

function text(sources: ReadonlyMap<string, SourceFile>, span: Span): string {
  return sources.get(span.file)?.text.slice(span.start, span.end) ?? "";
}

/** Expand a sweep into train jobs: the cartesian product of its `vary` lists, in order. */
function expandSweep(
  ev: Evaluator,
  inst: Instance,
  node: A.BlockNode,
  sources: ReadonlyMap<string, SourceFile>,
  finish: (inst: Instance, name: string, sweep: TrainJob["sweep"]) => void,
): void {
  ev.evaluateAll(inst);
  const base = ev.field(inst, "base");
  const varyExpr = inst.written("vary");
  if (!base || base.k !== "inst" || !varyExpr || varyExpr.kind === "error") return;
  if (varyExpr.kind !== "blockValue") {
    ev.report("FSM2010", varyExpr.span, { field: "vary" });
    return;
  }
  if (varyExpr.body.fields.length === 0) {
    ev.report("FSM2014", varyExpr.span, { detail: "must list at least one field and its values" });
    return;
  }
  const axes: { path: string[]; values: A.Expr[] }[] = [];
  const seen = new Map<string, A.FieldNode>();
  let ok = true;
  for (const f of varyExpr.body.fields) {
    const key = f.path.map((p) => p.text).join(".");
    const first = seen.get(key);
    if (first) {
      // Two lists for one path would silently make duplicate jobs.
      ev.report("FSM2006", cover(f.path), { field: key }, [{ message: `'${key}' first given here`, span: cover(first.path) }]);
      ok = false;
      continue;
    }
    seen.set(key, f);
    if (!validVaryPath(ev, base.inst, f.path)) {
      ok = false;
      continue;
    }
    if (f.value.kind === "error") {
      ok = false;
      continue;
    }
    if (f.value.kind !== "list" || f.value.items.length === 0) {
      ev.report("FSM2014", f.value.span, { detail: "values must be a non-empty list" });
      ok = false;
      continue;
    }
    axes.push({ path: f.path.map((p) => p.text), values: [...f.value.items] });
  }
  if (!ok) return;
  const count = axes.reduce((n, a) => n * a.values.length, 1);
  if (count > MAX_SWEEP_JOBS) {
    ev.report("FSM2012", node.name.span, { name: node.name.text, count, limit: MAX_SWEEP_JOBS });
    return;
  }
  const width = String(count).length;
  const choice = new Array<number>(axes.length).fill(0);
  for (let i = 0; i < count; i++) {
    let rest = i;
    for (let a = axes.length - 1; a >= 0; a--) {
      choice[a] = rest % axes[a]!.values.length;
      rest = Math.floor(rest / axes[a]!.values.length);
    }
    const picks = axes.map((a, k) => ({ path: a.path, expr: a.values[choice[k]!]! }));
    const name = `${node.name.text}_${String(i + 1).padStart(width, "0")}`;
    const job = new Instance(base.inst.schema, `train '${name}' of sweep '${node.name.text}'`, base.inst.bodies, undefined, base.inst.anchor, name, buildPatch(picks));
    finish(job, name, { name: node.name.text, point: picks.map((p) => [p.path.join("."), text(sources, p.expr.span)] as const) });
  }
}

function validVaryPath(ev: Evaluator, train: Instance, path: readonly A.Ident[]): boolean {
  let cur = train;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const spec = cur.schema.fields[seg.text];
    if (!spec) {
      ev.report("FSM2013", seg.span, { path: path.map((p) => p.text).join("."), reason: `${cur.label} has no field '${seg.text}'${didYouMean(seg.text, Object.keys(cur.schema.fields))}` });
      return false;
    }
    if (i === path.length - 1) return true;
    const v = ev.field(cur, seg.text);
    if (v === null) return false;
    if (v.k !== "inst") {
      ev.report("FSM2013", seg.span, { path: path.map((p) => p.text).join("."), reason: `'${seg.text}' is not a block` });
      return false;
    }
    cur = v.inst;
  }
  return true;
}

function buildPatch(picks: readonly { path: readonly string[]; expr: A.Expr }[]): Patch {
  type MutablePatch = { exprs: Map<string, A.Expr>; children: Map<string, MutablePatch> };
  const root: MutablePatch = { exprs: new Map(), children: new Map() };
  for (const { path, expr } of picks) {
    let p = root;
    for (const seg of path.slice(0, -1)) {
      let next = p.children.get(seg);
      if (!next) p.children.set(seg, (next = { exprs: new Map(), children: new Map() }));
      p = next;
    }
    p.exprs.set(path[path.length - 1]!, expr);
  }
  return root;
}

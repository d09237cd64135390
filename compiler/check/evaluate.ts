/**
 * Field evaluation: names, units, dimensions, exact arithmetic, defaults, ranges and
 * reference cycles (LANGUAGE.md, "Values, units and expressions"). Evaluation is lazy and
 * memoized per instance and field, so a field is computed once however often it is referenced,
 * and a reference loop is found as the field being re-entered. A value the parser could not read
 * (an error node) is in error silently: its syntax error is already reported.
 */
import type * as A from "../../grammar/ast.js";
import { parse } from "../../grammar/parse.js";
import { diagnostic, type Diagnostic, type Related } from "../diagnostics/diagnostic.js";
import type { Code } from "../diagnostics/messages.js";
import type { Span } from "../diagnostics/span.js";
import { didYouMean } from "../diagnostics/suggest.js";
import { STD_FILE } from "../std/index.js";
import * as Q from "./rational.js";
import { isBlockKind, pipelineBlockSchema, schemas, type BlockKind, type BlockSchema, type FieldSpec, type FieldType } from "./schema.js";
import { DIMENSIONLESS, describeDim, dimDiv, dimEquals, dimMul, formatQuantity, lookupUnit, unitNames, type Dim } from "./units.js";
import { Instance, type Patch, type Value } from "./values.js";

/**
 * The longest chain of references a field's value may need (FSM2016): a field that refers to a
 * field that refers to a field … this many times. It is a property of the references, so it is
 * reported at the same field whatever order blocks are evaluated in.
 */
export const MAX_REFERENCE_DEPTH = 400;

/** A top-level block visible by name. */
export interface BlockEntry {
  readonly node: A.BlockNode;
  readonly kind: BlockKind;
  /** True for the built-in presets: templates checked only where used. */
  readonly std: boolean;
}

type Num = { q: Q.Rational; dim: Dim };

const defaultExprs = new Map<string, A.Expr>();

/** Parse a schema default once; defaults are written in the language itself. */
function defaultExpr(text: string): A.Expr {
  let e = defaultExprs.get(text);
  if (!e) {
    const r = parse(`d d { v = ${text} }`, "<default>");
    const item = r.ast.items[0];
    if (r.diagnostics.length > 0 || !item || item.kind !== "block") throw new Error(`bad schema default: ${text}`);
    e = item.body.fields[0]!.value;
    defaultExprs.set(text, e);
  }
  return e;
}

/**
 * Field evaluation recurses (a field's value evaluates the fields it refers to), but never
 * deeper than this many fields on the JavaScript stack: a deeper field is evaluated first, from
 * the top, and the evaluation that needed it resumed (see {@link Evaluator.field}). So a chain of
 * references of any length is followed without exhausting the stack, and the depth of a chain
 * (FSM2016) is a property of the references, not of the order in which blocks are evaluated.
 */
const STACK_SLICE = 100;

/** One field being evaluated. `refs` is the longest chain of references below it found so far. */
interface Frame {
  readonly inst: Instance;
  readonly field: string;
  readonly span: Span;
  refs: number;
}

/** Thrown when evaluation reaches {@link STACK_SLICE} fields: evaluate `field` of `inst` first. */
class Deferral {
  constructor(
    readonly inst: Instance,
    readonly field: string,
    /** The frames that were being evaluated, bottom first. */
    readonly frames: readonly Frame[],
  ) {}
}

/** Evaluates instances against their schemas, collecting diagnostics. */
export class Evaluator {
  readonly diagnostics: Diagnostic[] = [];
  private readonly stack: Frame[] = [];
  /** Frames of evaluations suspended by a {@link Deferral}: logically below {@link stack}. */
  private readonly suspended: Frame[] = [];
  /** The fields of {@link suspended} and {@link stack}, to find a reference cycle quickly. */
  private readonly standalone = new Map<BlockEntry, Instance>();
  /** Instances made while evaluating, kept so that a resumed evaluation finds the same ones. */
  private readonly made = new WeakMap<object, Map<unknown, Instance>>();

  /**
   * `blocks` are the blocks user code sees: the user's blocks and the std presets they do not
   * shadow. `std` are the presets alone, which is all that std code sees (std is a closed world,
   * so a user block named like a preset never changes another preset).
   */
  constructor(
    private readonly blocks: ReadonlyMap<string, BlockEntry>,
    private readonly std: ReadonlyMap<string, BlockEntry> = new Map(),
  ) {}

  report(code: Code, span: Span, args: Record<string, string | number> = {}, related: Related[] = []): null {
    this.diagnostics.push(diagnostic(code, span, args, related));
    return null;
  }

  /** The block a name written at `at` refers to: std code sees only std, user code sees user blocks first. */
  private lookup(name: string, at: Span | undefined): BlockEntry | undefined {
    return at?.file === STD_FILE ? this.std.get(name) : this.blocks.get(name);
  }

  /** The instance of a top-level block as written, shared by every plain reference to it. */
  instanceOf(name: string, at?: Span): Instance | undefined {
    const entry = this.lookup(name, at);
    if (!entry) return undefined;
    // A std preset used by the user's code is checked where it is used: its missing fields and
    // defaults are reported at the user's reference, with a note at the preset.
    if (entry.std && at && at.file !== STD_FILE) {
      return this.once(entry, at, () => new Instance(schemas[entry.kind], `${entry.kind} '${name}'`, [entry.node.body], undefined, at, name, undefined, entry.node.name.span));
    }
    let inst = this.standalone.get(entry);
    if (!inst) {
      inst = new Instance(schemas[entry.kind], `${entry.kind} '${name}'`, [entry.node.body], undefined, entry.node.name.span, name);
      this.standalone.set(entry, inst);
    }
    return inst;
  }

  /** The instance `make` builds for (`owner`, `key`), built once. */
  private once(owner: object, key: unknown, make: () => Instance): Instance {
    let m = this.made.get(owner);
    if (!m) this.made.set(owner, (m = new Map()));
    let inst = m.get(key);
    if (!inst) m.set(key, (inst = make()));
    return inst;
  }

  private readonly verdicts = new WeakMap<Instance, boolean>();

  /**
   * Evaluate every field of an instance, of its nested blocks and of the blocks it refers to;
   * report unknown fields. True when all of it is free of errors.
   */
  evaluateAll(inst: Instance): boolean {
    const known = this.verdicts.get(inst);
    if (known !== undefined) return known;
    this.verdicts.set(inst, true);
    let ok: boolean;
    try {
      ok = this.checkFieldNames(inst);
      for (const name of Object.keys(inst.schema.fields)) {
        const v = this.field(inst, name);
        if (v === null) ok = false;
        else if (v.k === "inst" && !this.evaluateAll(v.inst)) ok = false;
      }
    } catch (e) {
      // Suspended by a Deferral: this instance is evaluated again when the evaluation resumes.
      this.verdicts.delete(inst);
      throw e;
    }
    this.verdicts.set(inst, ok);
    return ok;
  }

  /** Unknown, duplicate and inapplicable fields in the bodies of an instance. */
  /**
   * Whether a body's field names are right for a schema — no duplicates, none unknown — and the
   * fields whose applicability depends on a sibling's value. Bodies are shared by every use of
   * a block (every job of a sweep), so this is worked out once per body and schema.
   */
  private readonly bodyVerdicts = new WeakMap<A.BodyNode, { schema: BlockSchema; ok: boolean; conditional: A.FieldNode[] }>();

  private checkFieldNames(inst: Instance): boolean {
    let ok = true;
    for (const body of inst.bodies) {
      let verdict = this.bodyVerdicts.get(body);
      if (!verdict || verdict.schema !== inst.schema) {
        verdict = this.checkBody(inst, body);
        this.bodyVerdicts.set(body, verdict);
      }
      if (!verdict.ok) ok = false;
      for (const f of verdict.conditional) {
        const spec = inst.schema.fields[f.path[0]!.text]!;
        const sel = this.field(inst, spec.appliesTo!.field);
        if (sel && sel.k === "name" && !spec.appliesTo!.values.includes(sel.name)) {
          const applies = `${spec.appliesTo!.field} = ${spec.appliesTo!.values.join(" | ")}`;
          ok = this.report("FSM2011", f.path[0]!.span, { field: f.path[0]!.text, applies, actual: `${spec.appliesTo!.field} = ${sel.name}` }) ?? false;
        }
      }
    }
    return ok;
  }

  private checkBody(inst: Instance, body: A.BodyNode): { schema: BlockSchema; ok: boolean; conditional: A.FieldNode[] } {
    let ok = true;
    const conditional: A.FieldNode[] = [];
    const seen = new Map<string, A.FieldNode>();
    for (const f of body.fields) {
      const name = f.path.length === 1 ? f.path[0]!.text : f.path.map((p) => p.text).join(".");
      const first = seen.get(name);
      if (first) {
        ok = this.report("FSM2006", f.path[0]!.span, { field: name }, [{ message: `'${name}' first given here`, span: first.path[0]!.span }]) ?? false;
        continue;
      }
      seen.set(name, f);
      const spec = f.path.length === 1 ? inst.schema.fields[name] : undefined;
      if (!spec) {
        const hint = f.path.length > 1 ? "; dotted names are allowed only in a sweep's 'vary' block" : didYouMean(name, Object.keys(inst.schema.fields));
        ok = this.report("FSM2004", cover(f.path), { field: name, where: inst.label, hint }) ?? false;
        continue;
      }
      if (spec.appliesTo) conditional.push(f);
    }
    return { schema: inst.schema, ok, conditional };
  }

  /**
   * The value of one field, evaluated once. `null` when it is in error (already reported).
   *
   * Called from the top (no field being evaluated), it evaluates the field to the end: when the
   * evaluation needs a field {@link STACK_SLICE} fields down, it is suspended, that field is
   * evaluated from the top, and the suspended evaluation started again, finding it cached.
   */
  field(inst: Instance, name: string): Value | null {
    const cached = inst.cache.get(name);
    if (cached !== undefined) {
      this.noteRefs(inst.refs.get(name) ?? 0);
      return cached;
    }
    if (this.stack.length > 0) {
      if (this.stack.length >= STACK_SLICE) throw new Deferral(inst, name, [...this.stack]);
      return this.evaluateField(inst, name);
    }
    // Each pending evaluation, with the frames it had when it was suspended; `suspended` holds
    // the frames of all but the last, in order.
    const pending: { inst: Instance; field: string; frames: readonly Frame[] }[] = [{ inst, field: name, frames: [] }];
    try {
      while (pending.length > 0) {
        const top = pending[pending.length - 1]!;
        try {
          if (top.inst.cache.get(top.field) === undefined) this.evaluateField(top.inst, top.field);
        } catch (e) {
          if (!(e instanceof Deferral)) throw e;
          top.frames = e.frames;
          for (const f of e.frames) {
            this.suspended.push(f);
            this.activate(f.inst, f.field, true);
          }
          pending.push({ inst: e.inst, field: e.field, frames: [] });
          continue;
        }
        pending.pop();
        // The evaluation below resumes: its frames are on the stack again, not suspended.
        const resumed = pending[pending.length - 1]?.frames ?? [];
        for (const f of this.suspended.splice(this.suspended.length - resumed.length)) this.activate(f.inst, f.field, false);
      }
    } finally {
      for (const f of this.suspended) this.activate(f.inst, f.field, false);
      this.suspended.length = 0;
    }
    return inst.cache.get(name) ?? null;
  }

  private activate(inst: Instance, field: string, on: boolean): void {
    if (on) (inst.active ??= new Set()).add(field);
    else inst.active?.delete(field);
  }

  /** Tell the field being evaluated that it refers to a field whose longest chain of references is `refs`. */
  private noteRefs(refs: number): void {
    const parent = this.stack[this.stack.length - 1];
    if (parent && parent.refs < refs + 1) parent.refs = refs + 1;
  }

  private evaluateField(inst: Instance, name: string): Value | null {
    const spec = inst.schema.fields[name];
    if (!spec) return null;
    const written = inst.written(name);
    const span = written?.span ?? inst.anchor;
    if (inst.active?.has(name)) {
      const logical = [...this.suspended, ...this.stack];
      const loop = logical.slice(logical.findIndex((s) => s.inst === inst && s.field === name));
      this.report("FSM2007", loop[0]!.span, { cycle: [...loop.map((s) => `${s.inst.label}.${s.field}`), `${inst.label}.${name}`].join(" → ") });
      for (const s of loop) s.inst.cache.set(s.field, null);
      return null;
    }
    const frame: Frame = { inst, field: name, span, refs: 0 };
    this.stack.push(frame);
    this.activate(inst, name, true);
    let value: Value | null;
    try {
      value = this.compute(inst, name, spec, written);
    } finally {
      this.stack.pop();
      this.activate(inst, name, false);
    }
    // The limit is on the longest chain of references below the field, which does not depend on
    // where evaluation started: it is reported at the one field whose chain first exceeds it.
    if (value !== null && frame.refs > MAX_REFERENCE_DEPTH) value = this.report("FSM2016", span, { limit: MAX_REFERENCE_DEPTH });
    if (!inst.cache.has(name)) {
      inst.cache.set(name, value);
      inst.refs.set(name, frame.refs);
    }
    this.noteRefs(frame.refs);
    return inst.cache.get(name)!;
  }

  private compute(inst: Instance, name: string, spec: FieldSpec, written: A.Expr | undefined): Value | null {
    const type = spec.type;
    if (type.t === "block") return this.nestedBlock(inst, name, type.schema);
    // A sweep's `vary` is expanded by the sweep stage, not evaluated as a value.
    if (type.t === "vary" && written) return { k: "none" };
    if (written) return this.typed(written, type, inst, name, written.span, undefined);
    if (spec.appliesTo) {
      const sel = this.field(inst, spec.appliesTo.field);
      if (!sel || sel.k !== "name" || !spec.appliesTo.values.includes(sel.name)) return { k: "none" };
    }
    if (spec.default !== undefined) {
      return this.typed(defaultExpr(spec.default), type, inst, name, inst.anchor, spec.default);
    }
    if (spec.required) {
      const note = inst.origin ? [{ message: `'${inst.name}' is a standard preset, defined here`, span: inst.origin }] : [];
      return this.report("FSM2005", inst.anchor, { field: name, where: inst.label }, note);
    }
    return { k: "none" };
  }

  private nestedBlock(inst: Instance, name: string, schema: BlockSchema): Value | null {
    const written = inst.writtenAll(name);
    const bodies: A.BodyNode[] = [];
    for (const f of written) {
      if (f.value.kind === "error") return null;
      if (f.value.kind !== "blockValue") return this.report("FSM2010", f.value.span, { field: name });
      bodies.push(f.value.body);
    }
    const patched = inst.patch?.exprs.get(name);
    if (patched) {
      if (patched.kind === "error") return null;
      if (patched.kind !== "blockValue") return this.report("FSM2010", patched.span, { field: name });
      bodies.push(patched.body);
    }
    const anchor = written[written.length - 1]?.path[0]!.span ?? inst.anchor;
    const child = new Instance(schema, `${name} of ${inst.label}`, bodies, inst, anchor, name, inst.patch?.children.get(name));
    return { k: "inst", inst: child };
  }

  /** Evaluate an expression as the field's type requires, with range checks. */
  private typed(e: A.Expr, type: FieldType, scope: Instance, field: string, span: Span, fromDefault: string | undefined): Value | null {
    // A value the parser could not read is already reported (FSM1xxx): it is silently in error.
    if (e.kind === "error") return null;
    const where = fromDefault === undefined ? span : scope.anchor;
    // A default is reported at the block, so the message names the block and how to give the
    // field a value instead: `field 'heads' of attention of model 'm' … (the default, hidden /
    // 128); write 'attention { heads = … }'`.
    const of = fromDefault === undefined ? "" : ` of ${scope.label}`;
    switch (type.t) {
      case "int":
      case "real": {
        const want = type.t === "int" ? DIMENSIONLESS : type.dim;
        // A whole value that is no number at all (a list, a string, a block, `every 2`).
        if (!isArithmetic(e)) return this.wrongSort(e, where, field, of, scope, fromDefault, type.t === "int" ? "an integer" : describeDim(want));
        const n = this.numeric(e, scope);
        if (!n) return null;
        if (!dimEquals(n.dim, want)) {
          return this.report("FSM2104", where, { field, where: of, expected: describeDim(want), actual: withDefault(describeDim(n.dim).replace(/ \(.*\)$/, ""), fromDefault, scope, field) });
        }
        if (type.t === "int" && !Q.isInteger(n.q)) return this.report("FSM2102", where, { field, where: of, value: withDefault(Q.format(n.q), fromDefault, scope, field) });
        const min = Q.parseLiteral(String(type.min));
        const c = Q.compare(n.q, min);
        const exclusive = type.t === "real" && type.minExclusive;
        const tooBig = type.max !== undefined && Q.compare(n.q, Q.parseLiteral(String(type.max))) > 0;
        if (c < 0 || (exclusive && c === 0) || tooBig) {
          const range =
            type.t === "int"
              ? `an integer in ${type.min} … ${type.max ?? "∞"}`
              : type.max !== undefined
                ? `in ${exclusive ? "(" : "["}${type.min}, ${type.max}]`
                : exclusive
                  ? "greater than 0"
                  : "at least 0";
          const value = type.t === "int" ? Q.format(n.q) : formatQuantity(n.q, n.dim, fromDefault === undefined ? writtenUnit(e) : undefined);
          return this.report("FSM2105", where, { field, where: of, range, value: withDefault(value, fromDefault, scope, field) });
        }
        return { k: "num", q: n.q, dim: n.dim };
      }
      case "enum":
      case "bool": {
        const values = type.t === "bool" ? ["true", "false"] : type.values;
        const choices = values.join(" | ");
        if (e.kind === "ref" && !e.override && !e.argument) {
          const text = e.path.map((p) => p.text).join(".");
          if (values.includes(text)) return { k: "name", name: text };
          const v = e.path.length > 1 || this.inScope(e.path[0]!.text, scope) ? this.reference(e.path, scope) : undefined;
          if (v === null) return null;
          if (v && v.k === "name" && values.includes(v.name)) return v;
          return this.report("FSM2106", where, { field, where: of, choices, value: text, hint: didYouMean(text, values) });
        }
        return this.wrongSort(e, where, field, of, scope, fromDefault, `one of ${choices}`);
      }
      case "string":
        if (e.kind === "string") return { k: "str", s: e.value };
        return this.wrongSort(e, where, field, of, scope, fromDefault, "a string");
      case "ref":
        return this.blockRef(e, type.kinds, scope, field);
      case "degree":
        if (e.kind === "ref" && e.path.length === 1 && e.path[0]!.text === "auto" && !e.override && !e.argument) return { k: "name", name: "auto" };
        if (!isArithmetic(e)) return this.wrongSort(e, where, field, of, scope, fromDefault, "auto or an integer");
        return this.typed(e, { t: "int", min: 1, max: 1024 }, scope, field, span, fromDefault);
      case "pipeline": {
        if (e.kind === "blockValue") {
          const inst = this.once(scope, e, () => new Instance(pipelineBlockSchema, `pipeline of ${scope.label}`, [e.body], scope, e.span, "pipeline"));
          if (!this.evaluateAll(inst)) return null;
          const forward = this.field(inst, "forward");
          const backward = this.field(inst, "backward");
          return forward && backward ? { k: "pipeline", forward, backward } : null;
        }
        if (!isArithmetic(e)) return this.wrongSort(e, where, field, of, scope, fromDefault, "auto, an integer or a block { forward = …, backward = … }");
        const d = this.typed(e, { t: "degree" }, scope, field, span, fromDefault);
        return d ? { k: "pipeline", forward: d, backward: d } : null;
      }
      case "moeLayers":
        return this.moeLayers(e, scope, field, where);
      case "vary":
      case "block":
        return this.report("FSM2010", where, { field });
    }
  }

  /** FSM2103 from {@link typed}: the value is not of the sort the field takes. */
  private wrongSort(e: A.Expr, where: Span, field: string, of: string, scope: Instance, fromDefault: string | undefined, expected: string): null {
    return this.report("FSM2103", where, { field, where: of, expected, actual: withDefault(describeExpr(e), fromDefault, scope, field) });
  }

  private moeLayers(e: A.Expr, scope: Instance, field: string, where: Span): Value | null {
    if (e.kind === "ref" && e.path.length === 1 && !e.override) {
      const word = e.path[0]!.text;
      if (word === "all" && !e.argument) return { k: "layers", indices: "all" };
      if ((word === "every" || word === "after") && e.argument) {
        const n = this.typed(e.argument, { t: "int", min: word === "every" ? 1 : 0, max: 2 ** 31 - 1 }, scope, field, e.argument.span, undefined);
        if (!n || n.k !== "num") return null;
        const v = Number(n.q.num);
        return word === "every" ? { k: "layers", indices: "all", every: v } : { k: "layers", indices: "all", after: v };
      }
    }
    if (e.kind === "list") {
      const out: number[] = [];
      for (const item of e.items) {
        const n = this.typed(item, { t: "int", min: 0, max: 2 ** 31 - 1 }, scope, field, item.span, undefined);
        if (!n || n.k !== "num") return null;
        out.push(Number(n.q.num));
      }
      return { k: "layers", indices: out };
    }
    return this.report("FSM2103", where, { field, expected: "all, every N, after N or a list of layer indices", actual: describeExpr(e) });
  }

  /** A field whose value is a block: a named block or preset (with overrides), or an inline block of a kind. */
  private blockRef(e: A.Expr, kinds: readonly BlockKind[], scope: Instance, field: string): Value | null {
    const expected = kinds.join(" or ");
    if (e.kind !== "ref" || e.argument) return this.report("FSM2103", e.span, { field, expected: `the name of a ${expected}`, actual: describeExpr(e) });
    const head = e.path[0]!;
    const patch = scope.patch?.children.get(field);
    const entry = e.path.length === 1 ? this.lookup(head.text, head.span) : undefined;
    if (e.path.length === 1 && isBlockKind(head.text) && !entry) {
      if (!kinds.includes(head.text)) return this.report("FSM2009", head.span, { name: head.text, actual: `block kind`, field, expected: expected });
      if (!e.override) return this.report("FSM2003", head.span, { name: head.text, hint: `; an inline ${head.text} needs its fields: ${head.text} { … }` });
      return { k: "inst", inst: new Instance(schemas[head.text], `inline ${head.text} of ${scope.label}`, [e.override], scope, head.span, head.text, patch) };
    }
    let base: Instance | undefined;
    if (entry) {
      if (!kinds.includes(entry.kind)) {
        return this.report("FSM2009", head.span, { name: head.text, actual: entry.kind, field, expected }, [{ message: `'${head.text}' is defined here`, span: entry.node.name.span }]);
      }
      base = this.instanceOf(head.text, head.span)!;
    } else if (e.path.length > 1 || this.inScope(head.text, scope)) {
      const v = this.reference(e.path, scope);
      if (v === null) return null;
      if (v.k !== "inst" || !kinds.includes(v.inst.schema.kind as BlockKind)) {
        return this.report("FSM2103", e.span, { field, expected: `a ${expected}`, actual: describeValue(v) });
      }
      base = v.inst;
    } else {
      const names = [...(head.span.file === STD_FILE ? this.std : this.blocks)].filter(([, b]) => kinds.includes(b.kind)).map(([n]) => n);
      return this.report("FSM2003", head.span, { name: head.text, hint: didYouMean(head.text, names) });
    }
    if (!e.override && !patch) return { k: "inst", inst: base };
    const bodies = e.override ? [...base.bodies, e.override] : base.bodies;
    const label = e.override ? `${base.label} (with overrides)` : base.label;
    return { k: "inst", inst: new Instance(base.schema, label, bodies, base.parent, e.override ? head.span : base.anchor, base.name, mergePatch(base.patch, patch), base.origin) };
  }

  private inScope(name: string, scope: Instance | undefined): boolean {
    for (let s = scope; s; s = s.parent) if (s.schema.fields[name] || s.schema.kind === name) return true;
    return false;
  }

  /**
   * A dotted reference: the first name is a field of this block or an enclosing one, the kind
   * of an enclosing block (`model.hidden` inside `ffn`), or a top-level block; each further
   * name is a field of the block reached so far.
   */
  reference(path: readonly A.Ident[], scope: Instance): Value | null {
    const head = path[0]!;
    let value: Value | null | undefined;
    for (let s: Instance | undefined = scope; s && value === undefined; s = s.parent) {
      if (s.schema.fields[head.text]) value = this.field(s, head.text);
      else if (s.schema.kind === head.text) value = { k: "inst", inst: s };
    }
    if (value === undefined) {
      const inst = this.instanceOf(head.text, head.span);
      if (inst) value = { k: "inst", inst };
    }
    if (value === undefined) {
      const names = new Set<string>();
      for (let s: Instance | undefined = scope; s; s = s.parent) for (const f of Object.keys(s.schema.fields)) names.add(f);
      for (const b of (head.span.file === STD_FILE ? this.std : this.blocks).keys()) names.add(b);
      return this.report("FSM2003", head.span, { name: head.text, hint: didYouMean(head.text, names) });
    }
    for (const [i, seg] of path.entries()) {
      if (i === 0) continue;
      if (value === null) return null;
      if (value.k !== "inst") {
        const name = `'${path.slice(0, i).map((p) => p.text).join(".")}' (${describeValue(value)})`;
        return this.report("FSM2015", seg.span, { name, field: seg.text, hint: "; only a block has fields" });
      }
      const inst: Instance = value.inst;
      if (!inst.schema.fields[seg.text]) {
        return this.report("FSM2015", seg.span, { name: inst.label, field: seg.text, hint: didYouMean(seg.text, Object.keys(inst.schema.fields)) });
      }
      value = this.field(inst, seg.text);
    }
    return value;
  }

  /** Evaluate an arithmetic expression to an exact quantity. */
  numeric(e: A.Expr, scope: Instance): Num | null {
    switch (e.kind) {
      case "number": {
        let q = Q.parseLiteral(e.text);
        let dim = DIMENSIONLESS;
        if (e.unit) {
          const u = lookupUnit(e.unit.text);
          if (!u) return this.report("FSM2101", e.unit.span, { unit: e.unit.text, hint: didYouMean(e.unit.text, unitNames()) });
          q = Q.mul(q, u.factor);
          dim = u.dim;
        }
        return { q, dim };
      }
      case "paren":
        return this.numeric(e.expr, scope);
      case "negate": {
        const v = this.numeric(e.operand, scope);
        return v && (e.count % 2 === 1 ? { q: Q.neg(v.q), dim: v.dim } : v);
      }
      case "binary": {
        let acc = this.numeric(e.operands[0]!, scope);
        for (let i = 1; i < e.operands.length && acc; i++) {
          const rhs = this.numeric(e.operands[i]!, scope);
          if (!rhs) return null;
          const op = e.operators[i - 1]!;
          const at = e.operands[i]!.span;
          if (op === "+" || op === "-") {
            if (!dimEquals(acc.dim, rhs.dim)) {
              return this.report("FSM2108", { ...e.span, start: e.operands[0]!.span.start, end: at.end }, { op: op === "+" ? "add" : "subtract", left: describeDim(acc.dim), right: describeDim(rhs.dim) });
            }
            acc = { q: op === "+" ? Q.add(acc.q, rhs.q) : Q.sub(acc.q, rhs.q), dim: acc.dim };
          } else if (op === "*") {
            acc = { q: Q.mul(acc.q, rhs.q), dim: dimMul(acc.dim, rhs.dim) };
          } else {
            if (Q.isZero(rhs.q)) return this.report("FSM2107", at);
            acc = { q: Q.div(acc.q, rhs.q), dim: dimDiv(acc.dim, rhs.dim) };
          }
          if (!Q.inRange(acc.q)) return this.report("FSM2109", e.span, { detail: "the result is too large or too precise to represent" });
        }
        return acc;
      }
      case "ref": {
        if (e.override || e.argument) return this.report("FSM2110", e.span, { what: e.override ? "a block" : "a phrase like 'every 2'" });
        const v = this.reference(e.path, scope);
        if (v === null) return null;
        if (v.k === "num") return { q: v.q, dim: v.dim };
        return this.report("FSM2110", e.span, { what: `'${e.path.map((p) => p.text).join(".")}' (${describeValue(v)})` });
      }
      case "string":
        return this.report("FSM2110", e.span, { what: "a string" });
      case "list":
        return this.report("FSM2110", e.span, { what: "a list" });
      case "blockValue":
        return this.report("FSM2110", e.span, { what: "a block" });
      case "error":
        return null;
    }
  }
}

/**
 * A value as a message shows it: when it is a schema default, also the default's text and how
 * to give the field a value instead (`… (the default, hidden / 128); write 'attention { heads = … }'`).
 */
function withDefault(s: string, fromDefault: string | undefined, scope: Instance, field: string): string {
  if (fromDefault === undefined) return s;
  const nested = scope.parent !== undefined && !isBlockKind(scope.schema.kind);
  const write = nested ? `${scope.schema.kind} { ${field} = … }` : `${field} = …`;
  return `${s} (the default, ${fromDefault}); write '${write}'`;
}

function mergePatch(a: Patch | undefined, b: Patch | undefined): Patch | undefined {
  if (!a) return b;
  if (!b) return a;
  const exprs = new Map(a.exprs);
  for (const [k, v] of b.exprs) exprs.set(k, v);
  const children = new Map(a.children);
  for (const [k, v] of b.children) children.set(k, mergePatch(children.get(k), v)!);
  return { exprs, children };
}

function cover(path: readonly A.Ident[]): Span {
  const first = path[0]!.span;
  return { ...first, end: path[path.length - 1]!.span.end };
}

/** True for an expression that may evaluate to a number: a literal, arithmetic, or a name that may be a field. */
function isArithmetic(e: A.Expr): boolean {
  switch (e.kind) {
    case "number":
    case "paren":
    case "negate":
    case "binary":
    case "error":
      return true;
    case "ref":
      return !e.override && !e.argument;
    case "string":
    case "list":
    case "blockValue":
      return false;
  }
}

/** The first unit written in an expression (`-1 us` → `us`), to show a value as it was written. */
function writtenUnit(e: A.Expr): string | undefined {
  switch (e.kind) {
    case "number":
      return e.unit?.text;
    case "paren":
      return writtenUnit(e.expr);
    case "negate":
      return writtenUnit(e.operand);
    case "binary":
      for (const o of e.operands) {
        const u = writtenUnit(o);
        if (u !== undefined) return u;
      }
      return undefined;
    default:
      return undefined;
  }
}

/** What an expression is, in words, for "expects X, got Y". */
export function describeExpr(e: A.Expr): string {
  switch (e.kind) {
    case "number":
      return e.unit ? `the quantity ${e.text} ${e.unit.text}` : `the number ${e.text}`;
    case "string":
      return "a string";
    case "ref": {
      const name = e.path.map((p) => p.text).join(".");
      if (e.override) return "a block";
      if (e.argument) return `the phrase '${name} ${e.argument.kind === "number" ? e.argument.text : "…"}'`;
      return `the name '${name}'`;
    }
    case "list":
      return "a list";
    case "blockValue":
      return "a block";
    case "binary":
    case "negate":
    case "paren":
      return "an arithmetic expression";
    case "error":
      return "an invalid value";
  }
}

/** What a value is, in words. */
export function describeValue(v: Value): string {
  switch (v.k) {
    case "num":
      return `the ${dimEquals(v.dim, DIMENSIONLESS) ? "number" : "quantity"} ${formatQuantity(v.q, v.dim)}`;
    case "str":
      return "a string";
    case "name":
      return `the name '${v.name}'`;
    case "inst":
      return v.inst.label;
    case "list":
      return "a list";
    case "pipeline":
      return "a pipeline block";
    case "layers":
      return "a layer selection";
    case "none":
      return "an unset field";
  }
}

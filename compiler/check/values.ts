/**
 * Values of evaluated fields and the block instances they live in. An {@link Instance} is one
 * use of a block: its written bodies (a preset's body, then the overrides on top), the block
 * that encloses it (for lexical references), and sweep patches.
 */
import type * as A from "../../grammar/ast.js";
import type { Span } from "../diagnostics/span.js";
import type { Rational } from "./rational.js";
import type { BlockSchema } from "./schema.js";
import type { Dim } from "./units.js";

/** An evaluated field value. */
export type Value =
  | { readonly k: "num"; readonly q: Rational; readonly dim: Dim }
  | { readonly k: "str"; readonly s: string }
  | { readonly k: "name"; readonly name: string }
  | { readonly k: "inst"; readonly inst: Instance }
  | { readonly k: "list"; readonly items: readonly Value[] }
  | { readonly k: "pipeline"; readonly forward: Value; readonly backward: Value }
  | { readonly k: "layers"; readonly indices: readonly number[] | "all"; readonly every?: number; readonly after?: number }
  | { readonly k: "none" };

/** Sweep overrides: expressions replacing fields, and patches for the blocks fields refer to. */
export interface Patch {
  readonly exprs: ReadonlyMap<string, A.Expr>;
  readonly children: ReadonlyMap<string, Patch>;
}

/** One use of a block. */
export class Instance {
  /** Fields being evaluated right now (on the evaluator's stack or suspended): re-entering one is a cycle. */
  active: Set<string> | undefined;

  /** Evaluated fields; `null` marks a field whose error was already reported. */
  readonly cache = new Map<string, Value | null>();
  /** For each evaluated field, the longest chain of references its value needed (FSM2016). */
  readonly refs = new Map<string, number>();

  constructor(
    readonly schema: BlockSchema,
    /** How messages name it: "model 'mixtral'", "attention of model 'mixtral'". */
    readonly label: string,
    readonly bodies: readonly A.BodyNode[],
    readonly parent: Instance | undefined,
    /** Where to point when a field is missing or defaulted. */
    readonly anchor: Span,
    /** The top-level block name, or the inline kind. */
    readonly name: string,
    readonly patch: Patch | undefined = undefined,
    /** Where the std preset this instance uses is defined, when it is anchored at the user's reference to it. */
    readonly origin: Span | undefined = undefined,
  ) {}

  /** The written field with this name (the last body that writes it wins), or the sweep's value. */
  written(field: string): A.Expr | undefined {
    const patched = this.patch?.exprs.get(field);
    if (patched) return patched;
    for (let i = this.bodies.length - 1; i >= 0; i--) {
      const f = findField(this.bodies[i]!, field);
      if (f) return f.value;
    }
    return undefined;
  }

  /** Every written occurrence of a nested-block field, base first. */
  writtenAll(field: string): A.FieldNode[] {
    const out: A.FieldNode[] = [];
    for (const b of this.bodies) {
      const f = findField(b, field);
      if (f) out.push(f);
    }
    return out;
  }
}

/** Each body's fields by name (the first of a name; duplicates are reported elsewhere), built once per body. */
const fieldIndex = new WeakMap<A.BodyNode, Map<string, A.FieldNode>>();

function findField(body: A.BodyNode, name: string): A.FieldNode | undefined {
  let index = fieldIndex.get(body);
  if (!index) {
    index = new Map();
    for (const f of body.fields) if (f.path.length === 1 && !index.has(f.path[0]!.text)) index.set(f.path[0]!.text, f);
    fieldIndex.set(body, index);
  }
  return index.get(name);
}

/**
 * The typed AST of a `.moe` file (ARCHITECTURE.md, "Data structures": every node has a span).
 * It mirrors the source: the checker gives it meaning, the formatter prints it back.
 */
import type { Span } from "../compiler/diagnostics/span.js";

/** A name as written, with where it was written. */
export interface Ident {
  readonly text: string;
  readonly span: Span;
}

/** A whole file: imports and blocks in source order, and the comments for the formatter. */
export interface FileNode {
  readonly kind: "file";
  readonly span: Span;
  readonly items: readonly (ImportNode | BlockNode)[];
  readonly comments: readonly Comment[];
}

/** A `//` or `/* *\/` comment, kept only for the formatter. */
export interface Comment {
  readonly text: string;
  readonly span: Span;
  /** True when code precedes the comment on its line (a trailing comment). */
  readonly trailing: boolean;
}

/** `import "path.moe"`. */
export interface ImportNode {
  readonly kind: "import";
  readonly path: string;
  readonly pathSpan: Span;
  readonly span: Span;
}

/** `KIND NAME { … }` at the top level. */
export interface BlockNode {
  readonly kind: "block";
  readonly blockKind: Ident;
  readonly name: Ident;
  readonly body: BodyNode;
  readonly span: Span;
}

/** `{ field … }`: the fields of a block, a nested block or a block value. */
export interface BodyNode {
  readonly kind: "body";
  readonly fields: readonly FieldNode[];
  readonly span: Span;
}

/**
 * `name = value`, or `name { … }` (`nested`), where `name` may be a dotted path inside a sweep's
 * `vary` block.
 */
export interface FieldNode {
  readonly kind: "field";
  readonly path: readonly Ident[];
  readonly value: Expr;
  readonly nested: boolean;
  readonly span: Span;
}

/** Any value or expression. */
export type Expr = NumberNode | StringNode | RefNode | BinaryNode | NegateNode | ParenNode | ListNode | BlockValueNode | ErrorNode;

/** `4096`, `1.2`, `100 Gb/s`: the literal as written and its unit, if any. */
export interface NumberNode {
  readonly kind: "number";
  readonly text: string;
  readonly unit: Ident | undefined;
  readonly span: Span;
}

/** A double-quoted string (escapes resolved in `value`). */
export interface StringNode {
  readonly kind: "string";
  readonly value: string;
  readonly raw: string;
  readonly span: Span;
}

/**
 * A name or dotted path: an enum value, a block or preset, a field reference. `override` is
 * `preset { field = … }` (or an inline block of a kind: `link { … }`); `argument` is the number
 * in `every 2`.
 */
export interface RefNode {
  readonly kind: "ref";
  readonly path: readonly Ident[];
  readonly override: BodyNode | undefined;
  readonly argument: Expr | undefined;
  readonly span: Span;
}

/**
 * A chain of operators of one precedence level, `a + b - c` or `a * b / c`, kept flat so that a
 * long chain never makes a deep tree.
 */
export interface BinaryNode {
  readonly kind: "binary";
  readonly operands: readonly Expr[];
  readonly operators: readonly ("+" | "-" | "*" | "/")[];
  readonly span: Span;
}

/** `-x` (`count` minus signs). */
export interface NegateNode {
  readonly kind: "negate";
  readonly count: number;
  readonly operand: Expr;
  readonly span: Span;
}

/** `( … )`, kept so that formatting preserves what was written. */
export interface ParenNode {
  readonly kind: "paren";
  readonly expr: Expr;
  readonly span: Span;
}

/** `[a, b, c]`. */
export interface ListNode {
  readonly kind: "list";
  readonly items: readonly Expr[];
  readonly span: Span;
}

/** An anonymous block value: `pipeline = { forward = 4, backward = 2 }`. */
export interface BlockValueNode {
  readonly kind: "blockValue";
  readonly body: BodyNode;
  readonly span: Span;
}

/** Where the parser recovered from a syntax error: already reported, ignored by the checker. */
export interface ErrorNode {
  readonly kind: "error";
  readonly span: Span;
}

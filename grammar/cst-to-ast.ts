/**
 * The CST visitor that turns chevrotain's concrete syntax tree into the typed AST of
 * `grammar/ast.ts`. Nodes the parser re-synced past may lack children, so every child is
 * optional here and a missing value becomes an {@link ErrorNode} (already reported).
 */
import type { CstElement, CstNode, IToken } from "chevrotain";
import type { Diagnostic } from "../compiler/diagnostics/diagnostic.js";
import { diagnostic } from "../compiler/diagnostics/diagnostic.js";
import type { Span } from "../compiler/diagnostics/span.js";
import type * as A from "./ast.js";
import { moeParser } from "./parser.js";

type Ctx = Record<string, CstElement[] | undefined>;

const BaseVisitor = moeParser.getBaseCstVisitorConstructor();

function isToken(e: CstElement | undefined): e is IToken {
  return e !== undefined && "image" in e;
}

function isNode(e: CstElement | undefined): e is CstNode {
  return e !== undefined && "children" in e;
}

/** The largest number a literal may have: the largest finite double. */
export const MAX_LITERAL = Number.MAX_VALUE;

/** Builds the AST of one file; collects the few syntax errors only visible on the CST. */
export class AstBuilder extends BaseVisitor {
  readonly diagnostics: Diagnostic[] = [];

  constructor(private readonly fileName: string) {
    super();
    this.validateVisitor();
  }

  private tokenSpan(t: IToken): Span {
    const start = Number.isFinite(t.startOffset) ? t.startOffset : 0;
    const end = Number.isFinite(t.endOffset) ? (t.endOffset as number) + 1 : start;
    return { file: this.fileName, start, end };
  }

  private nodeSpan(n: CstNode, fallback?: Span): Span {
    const loc = n.location;
    if (loc && Number.isFinite(loc.startOffset) && Number.isFinite(loc.endOffset)) {
      return { file: this.fileName, start: loc.startOffset, end: (loc.endOffset as number) + 1 };
    }
    return fallback ?? { file: this.fileName, start: 0, end: 0 };
  }

  /** Visit a child, handing it its own node so that rules can read their location. */
  private v(n: CstNode): any {
    return this.visit(n, n);
  }

  private ident(t: IToken): A.Ident {
    return { text: t.image, span: this.tokenSpan(t) };
  }

  private token(ctx: Ctx, name: string, i = 0): IToken | undefined {
    const e = ctx[name]?.[i];
    return isToken(e) && !t_recovered(e) ? e : undefined;
  }

  private child(ctx: Ctx, name: string, i = 0): CstNode | undefined {
    const e = ctx[name]?.[i];
    return isNode(e) ? e : undefined;
  }

  private children(ctx: Ctx, name: string): CstNode[] {
    return (ctx[name] ?? []).filter(isNode);
  }

  file(ctx: Ctx, node: CstNode): Omit<A.FileNode, "comments"> {
    const items: (A.ImportNode | A.BlockNode)[] = [];
    for (const n of [...this.children(ctx, "importDecl"), ...this.children(ctx, "block")]) {
      const item = this.v(n) as A.ImportNode | A.BlockNode | undefined;
      if (item) items.push(item);
    }
    items.sort((a, b) => a.span.start - b.span.start);
    return { kind: "file", span: this.nodeSpan(node), items };
  }

  importDecl(ctx: Ctx, node: CstNode): A.ImportNode | undefined {
    // An unterminated path (FSM1004) imports nothing.
    const str = this.token(ctx, "StringLiteral");
    if (!str) return undefined;
    return { kind: "import", path: this.unquote(str), pathSpan: this.tokenSpan(str), span: this.nodeSpan(node) };
  }

  block(ctx: Ctx, node: CstNode): A.BlockNode | undefined {
    const kind = this.token(ctx, "kind");
    const name = this.token(ctx, "name");
    const body = this.child(ctx, "body");
    if (!kind || !name || !body) return undefined;
    return { kind: "block", blockKind: this.ident(kind), name: this.ident(name), body: this.v(body), span: this.nodeSpan(node) };
  }

  body(ctx: Ctx, node: CstNode): A.BodyNode {
    const fields = this.children(ctx, "field").map((f) => this.v(f) as A.FieldNode | undefined).filter((f) => f !== undefined);
    // Chevrotain collects the commas in source order, as it does the fields.
    const commas = (ctx["Comma"] ?? []).filter(isToken).map((t) => t.startOffset);
    const span = this.nodeSpan(node);
    // Fields are separated by line breaks or commas (LANGUAGE.md, "Shape").
    for (const i of unseparated(fields, commas, (a, b) => this.sameLine(a, b))) {
      const cur = fields[i]!;
      this.diagnostics.push(diagnostic("FSM1009", cur.path[0]?.span ?? cur.span));
    }
    return { kind: "body", fields, span };
  }

  private sourceText = "";

  /** Give the builder the file text, used to tell whether two offsets share a line. */
  setText(text: string): void {
    this.sourceText = text;
  }

  private sameLine(a: number, b: number): boolean {
    for (let i = a; i < b; i++) if (this.sourceText.charCodeAt(i) === 10) return false;
    return true;
  }

  field(ctx: Ctx, node: CstNode): A.FieldNode | undefined {
    const pathNode = this.child(ctx, "path");
    if (!pathNode) return undefined;
    const path = this.v(pathNode) as A.Ident[];
    if (path.length === 0) return undefined;
    const span = this.nodeSpan(node, path[0]!.span);
    const bodyNode = this.child(ctx, "body");
    if (bodyNode) {
      const body = this.v(bodyNode) as A.BodyNode;
      return { kind: "field", path, value: { kind: "blockValue", body, span: body.span }, nested: true, span };
    }
    const exprNode = this.child(ctx, "expression");
    const value: A.Expr = exprNode && !exprNode.recoveredNode ? this.v(exprNode) : { kind: "error", span };
    return { kind: "field", path, value, nested: false, span };
  }

  path(ctx: Ctx): A.Ident[] {
    const out: A.Ident[] = [];
    for (const t of ctx["Identifier"] ?? []) if (isToken(t) && !t_recovered(t)) out.push(this.ident(t));
    return out;
  }

  private chain(ctx: Ctx, node: CstNode, operandRule: string, ops: readonly string[]): A.Expr {
    const operands: A.Expr[] = [];
    for (const n of ctx[operandRule] ?? []) if (isNode(n)) operands.push(this.v(n) as A.Expr);
    // Most expressions are one operand: skip collecting operators it does not use.
    if (operands.length === 1) return operands[0]!;
    const operators = ops
      .flatMap((name) => (ctx[name] ?? []).filter(isToken))
      .sort((a, b) => a.startOffset - b.startOffset)
      .map((t) => t.image as "+" | "-" | "*" | "/");
    const span = this.nodeSpan(node);
    if (operands.length === 0) return { kind: "error", span };
    if (operators.length !== operands.length - 1 || operands.some((o) => o.kind === "error")) return { kind: "error", span };
    return { kind: "binary", operands, operators, span };
  }

  expression(ctx: Ctx, node: CstNode): A.Expr {
    return this.chain(ctx, node, "term", ADDITIVE);
  }

  term(ctx: Ctx, node: CstNode): A.Expr {
    return this.chain(ctx, node, "unary", MULTIPLICATIVE);
  }

  unary(ctx: Ctx, node: CstNode): A.Expr {
    const span = this.nodeSpan(node);
    const primary = this.child(ctx, "primary");
    const operand: A.Expr = primary ? this.v(primary) : { kind: "error", span };
    const count = (ctx["Minus"] ?? []).length;
    if (count === 0 || operand.kind === "error") return operand;
    return { kind: "negate", count, operand, span };
  }

  primary(ctx: Ctx, node: CstNode): A.Expr {
    const span = this.nodeSpan(node);
    const num = this.token(ctx, "NumberLiteral");
    if (num) {
      const unitNode = this.child(ctx, "unit");
      const unit = unitNode ? (this.v(unitNode) as A.Ident | undefined) : undefined;
      // A literal out of range (FSM1010) is an error value: nothing downstream evaluates it.
      if (!this.checkLiteral(num)) return { kind: "error", span };
      return { kind: "number", text: num.image, unit, span };
    }
    const str = this.token(ctx, "StringLiteral");
    if (str) return { kind: "string", value: this.unquote(str), raw: str.image, span };
    // An unterminated string (FSM1004, reported by the lexer) is an error value.
    if (this.token(ctx, "UnterminatedString")) return { kind: "error", span };
    const ref = this.child(ctx, "reference");
    if (ref) return this.v(ref);
    const list = this.child(ctx, "list");
    if (list) return this.v(list);
    const body = this.child(ctx, "body");
    if (body) return { kind: "blockValue", body: this.v(body), span };
    const inner = this.child(ctx, "expression");
    if (inner && this.token(ctx, "RParen")) {
      const expr = this.v(inner) as A.Expr;
      return expr.kind === "error" ? expr : { kind: "paren", expr, span };
    }
    return { kind: "error", span };
  }

  unit(ctx: Ctx, node: CstNode): A.Ident | undefined {
    const name = this.token(ctx, "Identifier") ?? this.token(ctx, "MicroSeconds");
    if (!name) return undefined;
    const per = this.token(ctx, "per");
    const text = per ? `${name.image}/${per.image}` : name.image;
    return { text, span: this.nodeSpan(node, this.tokenSpan(name)) };
  }

  reference(ctx: Ctx, node: CstNode): A.Expr {
    const span = this.nodeSpan(node);
    const pathNode = this.child(ctx, "path");
    const path = pathNode ? (this.v(pathNode) as A.Ident[]) : [];
    if (path.length === 0) return { kind: "error", span };
    const bodyNode = this.child(ctx, "body");
    const argNode = this.child(ctx, "argument");
    return {
      kind: "ref",
      path,
      override: bodyNode ? (this.v(bodyNode) as A.BodyNode) : undefined,
      argument: argNode ? (this.v(argNode) as A.Expr) : undefined,
      span,
    };
  }

  list(ctx: Ctx, node: CstNode): A.Expr {
    const span = this.nodeSpan(node);
    if (!this.token(ctx, "RBracket")) return { kind: "error", span };
    return { kind: "list", items: this.children(ctx, "expression").map((n) => this.v(n) as A.Expr), span };
  }

  /** Report a literal out of range (FSM1010); true when it is in range. */
  private checkLiteral(t: IToken): boolean {
    const text = t.image.replace(/_/g, "");
    const value = Number(text);
    const nonZeroDigits = /[1-9]/.test(text.replace(/[eE].*$/, ""));
    if (text.length > 400 || !Number.isFinite(value) || (value === 0 && nonZeroDigits) || (value !== 0 && Math.abs(value) < 1e-300)) {
      this.diagnostics.push(diagnostic("FSM1010", this.tokenSpan(t), { text: shorten(t.image), max: "1.8e308, and no closer to zero than 1e-300" }));
      return false;
    }
    return true;
  }

  private unquote(t: IToken): string {
    const raw = t.image;
    let out = "";
    for (let i = 1; i < raw.length - 1; i++) {
      const ch = raw[i]!;
      if (ch !== "\\") {
        out += ch;
        continue;
      }
      const next = raw[++i] ?? "";
      const map: Record<string, string> = { '"': '"', "\\": "\\", n: "\n", t: "\t" };
      if (next in map) out += map[next];
      else {
        const start = t.startOffset + i - 1;
        this.diagnostics.push(diagnostic("FSM1011", { file: this.fileName, start, end: start + 1 + next.length }, { char: next }));
        out += next;
      }
    }
    return out;
  }
}

/**
 * The indices of the fields that follow another field on its line with no comma between them
 * (FSM1009); fields whose value is an error are skipped. `commas` are the offsets of the body's
 * commas. Fields and commas are both in source order, so one pass over each suffices: the work
 * is linear in the number of fields and commas.
 */
export function unseparated(
  fields: readonly { readonly span: Span; readonly value: { readonly kind: string } }[],
  commas: ArrayLike<number>,
  sameLine: (from: number, to: number) => boolean,
): number[] {
  const out: number[] = [];
  let c = 0;
  for (let i = 1; i < fields.length; i++) {
    const prev = fields[i - 1]!;
    const cur = fields[i]!;
    while (c < commas.length && commas[c]! < prev.span.end) c++;
    if (prev.value.kind === "error" || cur.value.kind === "error") continue;
    const between = c < commas.length && commas[c]! < cur.span.start;
    if (!between && sameLine(prev.span.end, cur.span.start)) out.push(i);
  }
  return out;
}

const ADDITIVE = ["Plus", "Minus"] as const;
const MULTIPLICATIVE = ["Star", "Slash"] as const;

function t_recovered(t: IToken): boolean {
  return t.isInsertedInRecovery === true;
}

function shorten(s: string): string {
  return s.length > 40 ? `${s.slice(0, 20)}…${s.slice(-10)}` : s;
}

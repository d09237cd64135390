/**
 * The canonical formatter behind `fsmoec fmt` (LANGUAGE.md, "Shape"). It prints the AST back
 * with every comment kept, two-space indentation, one field per line, `=` aligned within a
 * block, trailing comments aligned over consecutive lines, one blank line between top-level
 * blocks and at most one where the source had blank lines between fields. A nested block stays
 * on one line (`attention { heads = 32, kv_heads = 8 }`) when it was written on one line,
 * holds no comment and fits in {@link MAX_WIDTH} columns; top-level blocks are always expanded.
 * Formatting is idempotent and preserves the AST.
 */
import type { Diagnostic } from "../compiler/diagnostics/diagnostic.js";
import type * as A from "./ast.js";
import { parse } from "./parse.js";

/** The column limit for keeping a nested block or a list on one line. */
export const MAX_WIDTH = 100;
const INDENT = "  ";

/** What {@link format} returns: the formatted text, or null when the file has syntax errors. */
export interface FormatResult {
  readonly text: string | null;
  readonly diagnostics: readonly Diagnostic[];
}

/** Format a `.moe` source. Files with syntax errors are not formatted (their AST is partial). */
export function format(source: string | Uint8Array, file = "<input>"): FormatResult {
  const r = parse(source, file);
  if (r.diagnostics.length > 0) return { text: null, diagnostics: r.diagnostics };
  return { text: new Printer(r.source.text, r.ast.comments).file(r.ast), diagnostics: [] };
}

interface Line {
  code: string;
  comment?: string;
  /** Lines that belong to a multi-line construct are not aligned with their neighbours. */
  multi?: boolean;
  blank?: boolean;
}

class Printer {
  private next = 0;

  constructor(
    private readonly text: string,
    private readonly comments: readonly A.Comment[],
  ) {}

  file(ast: A.FileNode): string {
    const lines: Line[] = [];
    ast.items.forEach((item, i) => {
      this.leading(lines, item.span.start, "", i > 0);
      if (i > 0 && !lines[lines.length - 1]?.blank && !this.endsWithComment(lines)) lines.push({ code: "", blank: true });
      if (item.kind === "import") {
        lines.push({ code: `import ${this.slice(item.pathSpan)}`, ...this.trailing(item.span.end) });
      } else {
        const head = `${item.blockKind.text} ${item.name.text} `;
        const body = this.body(item.body, "", true);
        body[0]!.code = head + body[0]!.code;
        // A comment on the line of the block's `}` belongs to the block and stays on that line.
        Object.assign(body[body.length - 1]!, this.trailing(item.span.end, true));
        lines.push(...body);
        this.afterBlock(lines, item.span.end);
      }
    });
    this.leading(lines, Infinity, "", ast.items.length > 0);
    while (lines[lines.length - 1]?.blank) lines.pop();
    return render(lines);
  }

  /** True when the last lines are comments that {@link leading} just emitted (of one line or several). */
  private endsWithComment(lines: Line[]): boolean {
    const last = lines[lines.length - 1];
    return last !== undefined && !last.blank && this.lastWasComment;
  }

  /**
   * A comment of several lines that starts on the line of a top-level block's `}` belongs to
   * that block: it follows the `}` on lines of its own, and a blank line separates it from what
   * comes next, as one separates blocks.
   */
  private afterBlock(lines: Line[], end: number): void {
    const c = this.comments[this.next];
    if (!c || !c.trailing || this.text.slice(end, c.span.start).includes("\n")) return;
    for (const l of this.commentLines(c, "")) lines.push({ code: l, multi: true });
    this.next++;
    this.lastCodeEnd = c.span.end;
    lines.push({ code: "", blank: true });
  }

  private lastWasComment = false;

  private slice(span: { start: number; end: number }): string {
    return this.text.slice(span.start, span.end);
  }

  private blankBetween(from: number, to: number): boolean {
    return /\n[ \t\r]*\n/.test(this.text.slice(from, to));
  }

  /** Emit the comments that start before `offset` on their own lines. */
  private leading(lines: Line[], offset: number, indent: string, blankAllowed: boolean): void {
    this.lastWasComment = false;
    let prevEnd = this.next > 0 ? this.comments[this.next - 1]!.span.end : -1;
    while (this.next < this.comments.length && this.comments[this.next]!.span.start < offset) {
      const c = this.comments[this.next]!;
      const before = lines[lines.length - 1];
      const lastCodeEnd = Math.max(prevEnd, this.lastCodeEnd);
      if (blankAllowed && before && !before.blank && lastCodeEnd >= 0 && this.blankBetween(lastCodeEnd, c.span.start)) lines.push({ code: "", blank: true });
      for (const l of this.commentLines(c, indent)) lines.push({ code: l, multi: true });
      prevEnd = c.span.end;
      this.lastCodeEnd = c.span.end;
      this.next++;
      blankAllowed = true;
      this.lastWasComment = true;
    }
    if (this.lastWasComment && offset !== Infinity && this.blankBetween(prevEnd, offset)) lines.push({ code: "", blank: true });
  }

  private lastCodeEnd = -1;

  /**
   * The lines of a comment on lines of its own at `indent`. The lines after the first keep
   * their indentation relative to the comment's `/*`, so formatting again changes nothing.
   */
  private commentLines(c: A.Comment, indent: string): string[] {
    const column = c.span.start - (this.text.lastIndexOf("\n", c.span.start - 1) + 1);
    return c.text.split("\n").map((l, i) => {
      const line = l.replace(/\r$/, "").trimEnd();
      if (i === 0) return indent + line;
      const strip = Math.min(column, /^[ \t]*/.exec(line)![0].length);
      return line === "" ? "" : indent + line.slice(strip);
    });
  }

  /**
   * The comment that ends the line on which `end` lies, if nothing but commas stands between
   * them: in `a = 1, b = 2  // c` the comment is b's, not a's. A `//` comment, or (`blockToo`,
   * after a top-level block's `}`) a `/* … *\/` comment on one line.
   */
  private trailing(end: number, blockToo = false): { comment?: string } {
    this.lastCodeEnd = end;
    const c = this.comments[this.next];
    const oneLine = c !== undefined && (c.text.startsWith("//") || (blockToo && !c.text.includes("\n")));
    if (c && c.trailing && oneLine && /^[ \t,]*$/.test(this.text.slice(end, c.span.start))) {
      this.next++;
      this.lastCodeEnd = c.span.end;
      return { comment: c.text.trimEnd() };
    }
    return {};
  }

  private hasComment(span: { start: number; end: number }): boolean {
    return this.comments.some((c) => c.span.start >= span.start && c.span.end <= span.end);
  }

  /** A body as lines; the first line's code starts with `{` (the caller prefixes it). */
  private body(body: A.BodyNode, indent: string, expand: boolean): Line[] {
    if (body.fields.length === 0 && !this.hasComment(body.span)) return [{ code: "{}" }];
    if (!expand && this.fitsInline(body)) {
      const inline = this.inlineBody(body);
      if (inline !== undefined && indent.length + inline.length <= MAX_WIDTH) return [{ code: inline }];
    }
    const inner = indent + INDENT;
    const lines: Line[] = [{ code: "{", multi: true }];
    this.lastCodeEnd = body.span.start + 1;
    const width = Math.max(0, ...body.fields.filter((f) => !f.nested).map((f) => pathText(f).length));
    body.fields.forEach((f, i) => {
      const startLen = lines.length;
      this.leading(lines, f.span.start, inner, true);
      const hadComments = lines.length > startLen;
      if (i > 0 && !hadComments && this.blankBetween(this.lastCodeEnd, f.span.start) && !lines[lines.length - 1]!.blank) lines.push({ code: "", blank: true });
      lines.push(...this.field(f, inner, width));
    });
    this.leading(lines, body.span.end - 1, inner, true);
    while (lines[lines.length - 1]?.blank) lines.pop();
    lines.push({ code: `${indent}}`, multi: true });
    this.lastCodeEnd = body.span.end;
    return lines;
  }

  private fitsInline(body: A.BodyNode): boolean {
    const first = body.fields[0];
    if (!first) return false;
    return !this.text.slice(body.span.start, first.span.start).includes("\n") && !this.hasComment(body.span);
  }

  /** `{ a = 1, b = 2 }`, or undefined when some field needs more than one line. */
  private inlineBody(body: A.BodyNode): string | undefined {
    const parts: string[] = [];
    for (const f of body.fields) {
      const v = this.expr(f.value, "", false);
      if (v === undefined) return undefined;
      parts.push(f.nested ? `${pathText(f)} ${v}` : `${pathText(f)} = ${v}`);
    }
    return `{ ${parts.join(", ")} }`;
  }

  private field(f: A.FieldNode, indent: string, width: number): Line[] {
    const name = pathText(f);
    const head = f.nested ? `${indent}${name} ` : `${indent}${name.padEnd(width)} = `;
    const value = this.expr(f.value, indent, false);
    if (value !== undefined && (head + value).length <= MAX_WIDTH) return [{ code: head + value, ...this.trailing(f.span.end) }];
    const lines = this.exprLines(f.value, indent);
    lines[0]!.code = head + lines[0]!.code;
    const last = lines[lines.length - 1]!;
    Object.assign(last, this.trailing(f.span.end));
    return lines;
  }

  /** An expression that may span lines (bodies and long lists). */
  private exprLines(e: A.Expr, indent: string): Line[] {
    if (e.kind === "blockValue") return this.body(e.body, indent, false);
    if (e.kind === "ref" && e.override) {
      const lines = this.body(e.override, indent, false);
      lines[0]!.code = `${e.path.map((p) => p.text).join(".")} ${lines[0]!.code}`;
      if (e.argument) lines[lines.length - 1]!.code += ` ${this.expr(e.argument, indent, true)}`;
      return lines;
    }
    if (e.kind === "list" && e.items.length > 0) {
      const inner = indent + INDENT;
      return [{ code: "[", multi: true }, ...e.items.map((it) => ({ code: `${inner}${this.expr(it, inner, true)},`, multi: true })), { code: `${indent}]`, multi: true }];
    }
    return [{ code: this.expr(e, indent, true)! }];
  }

  /**
   * An expression on one line, or undefined when it holds a block that must be expanded
   * (unless `force`, which prints everything on one line).
   */
  private expr(e: A.Expr, indent: string, force: boolean): string | undefined {
    switch (e.kind) {
      case "number":
        return e.unit ? `${e.text} ${e.unit.text}` : e.text;
      case "string":
        return e.raw;
      case "ref": {
        let s = e.path.map((p) => p.text).join(".");
        if (e.override) {
          if (!this.fitsInline(e.override) && e.override.fields.length > 0 && !force) return undefined;
          const b = e.override.fields.length === 0 ? "{}" : this.inlineBody(e.override);
          if (b === undefined) return undefined;
          s += ` ${b}`;
        }
        if (e.argument) {
          const a = this.expr(e.argument, indent, force);
          if (a === undefined) return undefined;
          s += ` ${a}`;
        }
        return s;
      }
      case "binary": {
        let s = this.expr(e.operands[0]!, indent, force);
        for (let i = 1; i < e.operands.length; i++) {
          const r = this.expr(e.operands[i]!, indent, force);
          if (s === undefined || r === undefined) return undefined;
          s += ` ${e.operators[i - 1]} ${r}`;
        }
        return s;
      }
      case "negate": {
        const o = this.expr(e.operand, indent, force);
        return o === undefined ? undefined : "-".repeat(e.count) + o;
      }
      case "paren": {
        const o = this.expr(e.expr, indent, force);
        return o === undefined ? undefined : `(${o})`;
      }
      case "list": {
        // Items are always printed on one line each (as exprLines does), so whether a list fits
        // on one line depends only on its width, and formatting again decides the same.
        const items = e.items.map((i) => this.expr(i, indent, true));
        if (items.some((i) => i === undefined)) return undefined;
        return `[${items.join(", ")}]`;
      }
      case "blockValue": {
        if (e.body.fields.length === 0) return "{}";
        if (!this.fitsInline(e.body) && !force) return undefined;
        return this.inlineBody(e.body);
      }
      case "error":
        return this.slice(e.span);
    }
  }
}

function pathText(f: A.FieldNode): string {
  return f.path.map((p) => p.text).join(".");
}

/** Join lines, aligning trailing comments over runs of consecutive single-line fields. */
function render(lines: Line[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i]!;
    if (l.comment === undefined || l.multi) {
      out.push(l.comment === undefined ? l.code : `${l.code}  ${l.comment}`);
      i++;
      continue;
    }
    let j = i;
    const indent = /^ */.exec(l.code)![0].length;
    while (j < lines.length && lines[j]!.comment !== undefined && !lines[j]!.multi && /^ */.exec(lines[j]!.code)![0].length === indent) j++;
    const width = Math.max(...lines.slice(i, j).map((x) => x.code.length));
    for (let k = i; k < j; k++) out.push(`${lines[k]!.code.padEnd(width)}  ${lines[k]!.comment}`);
    i = j;
  }
  return out.map((s) => s.trimEnd()).join("\n") + "\n";
}

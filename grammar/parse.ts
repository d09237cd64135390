/**
 * The front door of the grammar stage: source bytes or text in, a typed AST and syntax
 * diagnostics (FSM1xxx) out. It never throws: invalid UTF-8, NUL characters, unterminated
 * strings and comments, runaway nesting and oversize files are all diagnostics
 * (LANGUAGE.md, "Shape" and "Values").
 */
import type { IRecognitionException, IToken, TokenType } from "chevrotain";
import { EOF } from "chevrotain";
import { diagnostic, sortDiagnostics, type Diagnostic } from "../compiler/diagnostics/diagnostic.js";
import { SourceFile, type Span } from "../compiler/diagnostics/span.js";
import type * as A from "./ast.js";
import { AstBuilder } from "./cst-to-ast.js";
import { moeParser } from "./parser.js";
import * as T from "./tokens.js";
import { decodeUtf8 } from "./utf8.js";

/** The deepest nesting of brackets, braces and parentheses the language accepts. */
export const MAX_NESTING = 64;
/** The largest source file accepted, in bytes (UTF-16 code units for text input). */
export const MAX_FILE_SIZE = 16 * 1024 * 1024;

/** What {@link parse} returns. */
export interface ParseResult {
  readonly ast: A.FileNode;
  readonly source: SourceFile;
  readonly diagnostics: readonly Diagnostic[];
}

const open = new Set<TokenType>([T.LCurly, T.LBracket, T.LParen]);
const close = new Set<TokenType>([T.RCurly, T.RBracket, T.RParen]);

/** Parse one file. `input` is the file's bytes (checked as UTF-8) or already-decoded text. */
export function parse(input: string | Uint8Array, file = "<input>"): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const size = typeof input === "string" ? input.length : input.byteLength;
  if (size > MAX_FILE_SIZE) {
    const source = new SourceFile(file, "");
    diagnostics.push(diagnostic("FSM1012", { file, start: 0, end: 0 }, { size, limit: MAX_FILE_SIZE }));
    return { ast: emptyFile(file), source, diagnostics };
  }
  let text: string;
  const replaced = new Set<number>();
  if (typeof input === "string") {
    text = input;
  } else {
    const decoded = decodeUtf8(input);
    text = decoded.text;
    for (const bad of decoded.invalid) {
      replaced.add(bad.offset);
      const hex = bad.bytes.map((b) => `0x${b.toString(16).toUpperCase().padStart(2, "0")}`).join(" ");
      diagnostics.push(diagnostic("FSM1001", { file, start: bad.offset, end: bad.offset + 1 }, { bytes: bad.bytes.length === 1 ? `byte ${hex}` : `sequence ${hex} (incomplete)` }));
    }
  }
  // A byte-order mark is allowed at the very start; lex it as a space to keep offsets.
  const lexText = text.charCodeAt(0) === 0xfeff ? " " + text.slice(1) : text;
  const source = new SourceFile(file, text);
  const span = (start: number, end: number): Span => ({ file, start, end });

  const lexed = T.moeLexer.tokenize(lexText);
  for (const e of lexed.errors) {
    // Chevrotain groups a run of unlexable characters into one error; report each kind of cause.
    let i = e.offset;
    const end = e.offset + e.length;
    while (i < end) {
      const cp = lexText.codePointAt(i)!;
      const w = cp > 0xffff ? 2 : 1;
      if (replaced.has(i)) {
        // Already reported as invalid UTF-8.
      } else if (cp === 0) {
        diagnostics.push(diagnostic("FSM1002", span(i, i + 1)));
      } else {
        let j = i + w;
        while (j < end && !replaced.has(j) && lexText.codePointAt(j) !== 0) j += (lexText.codePointAt(j)! > 0xffff ? 2 : 1);
        diagnostics.push(diagnostic("FSM1003", span(i, j), { char: printable(String.fromCodePoint(cp)) }));
        i = j;
        continue;
      }
      i += w;
    }
  }
  for (const t of lexed.groups["errors"] ?? []) {
    if (t.tokenType === T.UnterminatedComment) diagnostics.push(diagnostic("FSM1005", span(t.startOffset, t.startOffset + 2)));
  }
  for (const t of lexed.tokens) {
    if (t.tokenType === T.UnterminatedString) diagnostics.push(diagnostic("FSM1004", span(t.startOffset, (t.endOffset ?? t.startOffset) + 1)));
  }

  const comments = (lexed.groups["comments"] ?? []).map((t): A.Comment => ({
    text: t.image,
    span: span(t.startOffset, (t.endOffset ?? t.startOffset) + 1),
    trailing: precededOnLine(lexText, t.startOffset),
  }));

  let depth = 0;
  for (const t of lexed.tokens) {
    if (open.has(t.tokenType)) depth++;
    else if (close.has(t.tokenType)) depth--;
    if (depth > MAX_NESTING) {
      diagnostics.push(diagnostic("FSM1008", span(t.startOffset, t.startOffset + 1), { limit: MAX_NESTING }));
      return { ast: { ...emptyFile(file), comments }, source, diagnostics: sortDiagnostics(diagnostics) };
    }
  }

  // Parse one top-level block at a time: each block's CST is visited and dropped before the
  // next is built, which keeps a large file's garbage short-lived (three times faster on a
  // 20,000-line file than one CST for the whole file). A chunk ends where the brace depth
  // returns to zero; an unclosed block runs to the end of the file, as it would in one parse.
  const builder = new AstBuilder(file);
  builder.setText(lexText);
  const items: (A.ImportNode | A.BlockNode)[] = [];
  const tokens = lexed.tokens;
  let start = 0;
  let blockDepth = 0;
  for (let k = 0; k <= tokens.length; k++) {
    const type = tokens[k]?.tokenType;
    if (type === T.LCurly) blockDepth++;
    else if (type === T.RCurly) blockDepth--;
    const atEnd = k === tokens.length;
    if (!atEnd && !(type === T.RCurly && blockDepth <= 0)) continue;
    blockDepth = 0;
    const chunk = tokens.slice(start, atEnd ? k : k + 1);
    start = k + 1;
    if (chunk.length === 0) continue;
    moeParser.input = chunk;
    let cst;
    try {
      cst = moeParser.file();
    } catch (e) {
      // The nesting limit keeps recursion far from the stack's end; an embedder calling us from
      // deep in its own stack can still run out, and gets a diagnostic rather than a crash.
      if (!(e instanceof RangeError)) throw e;
      moeParser.input = [];
      diagnostics.push(diagnostic("FSM1008", span(0, 0), { limit: MAX_NESTING }));
      return { ast: { ...emptyFile(file), comments }, source, diagnostics: sortDiagnostics(diagnostics) };
    }
    for (const e of moeParser.errors) diagnostics.push(syntaxDiagnostic(e, file, lexText));
    const part = builder.visit(cst, cst) as Omit<A.FileNode, "comments">;
    items.push(...part.items);
  }
  diagnostics.push(...builder.diagnostics);
  const body = { kind: "file" as const, items };
  const ast: A.FileNode = { ...body, span: span(0, text.length), comments };
  return { ast, source, diagnostics: sortDiagnostics(diagnostics) };
}

function emptyFile(file: string): A.FileNode {
  return { kind: "file", span: { file, start: 0, end: 0 }, items: [], comments: [] };
}

function precededOnLine(text: string, offset: number): boolean {
  for (let i = offset - 1; i >= 0; i--) {
    const c = text[i];
    if (c === "\n") return false;
    if (c !== " " && c !== "\t" && c !== "\r") return true;
  }
  return false;
}

function printable(ch: string): string {
  const cp = ch.codePointAt(0)!;
  if (cp < 0x20 || cp === 0x7f) return `\\u${cp.toString(16).padStart(4, "0")}`;
  return ch;
}

/** A token as a person would name it in "found …". */
export function describeToken(t: IToken | undefined): string {
  if (!t || t.tokenType === EOF || !Number.isFinite(t.startOffset)) return "end of file";
  switch (t.tokenType) {
    case T.Identifier:
    case T.Import:
      return `'${t.image}'`;
    case T.NumberLiteral:
      return `number ${t.image.length > 20 ? t.image.slice(0, 20) + "…" : t.image}`;
    case T.StringLiteral:
    case T.UnterminatedString:
      return "a string";
    default:
      return `'${t.image}'`;
  }
}

const ruleExpectations: Record<string, string> = {
  file: "a block (KIND NAME { … }) or 'import'",
  block: "a block: KIND NAME { … }",
  body: "a field or '}'",
  field: "'=' or '{' after the field name",
  path: "a field name",
  expression: "a value",
  term: "a value",
  unary: "a value",
  primary: "a value (a number, a string, a name, '(', '[' or '{')",
  unit: "a unit",
  reference: "a name",
  list: "',' or ']'",
};

function tokenExpectation(t: TokenType): string {
  switch (t) {
    case T.Identifier:
      return "a name";
    case T.NumberLiteral:
      return "a number";
    case T.StringLiteral:
    case T.UnterminatedString:
      return "a string";
    case EOF:
      return "end of file";
    default:
      return typeof t.LABEL === "string" ? t.LABEL : t.name;
  }
}

function syntaxDiagnostic(e: IRecognitionException, file: string, text: string): Diagnostic {
  const rule = e.context?.ruleStack?.[e.context.ruleStack.length - 1] ?? "file";
  const found = describeToken(e.token);
  let start = e.token?.startOffset;
  let end = (e.token?.endOffset ?? NaN) + 1;
  if (!Number.isFinite(start) || e.token?.tokenType === EOF) {
    const prev = (e as IRecognitionException & { previousToken?: IToken }).previousToken;
    start = prev && Number.isFinite(prev.endOffset) ? (prev.endOffset as number) + 1 : text.length;
    end = start;
  }
  const s: Span = { file, start: start as number, end: Math.max(start as number, end) };
  // FSM1006 is one particular token missing (chevrotain's MismatchedTokenException, raised by a
  // CONSUME); FSM1007 is no alternative matching (NoViableAltException from an OR), or tokens
  // left where the file could end, which is no block or import starting there.
  if (e.name === "MismatchedTokenException" && rule !== "file") {
    // Chevrotain's message names the expected token by its LABEL when it has one (`')'`), else by its name.
    const expected = /-->\s*(\S+)\s*<--/.exec(e.message)?.[1];
    const type = [...T.allTokens, EOF].find((t) => t.name === expected || t.LABEL === expected);
    // The token that ends a repetition could also have been another item of it.
    const closing = (rule === "body" && type === T.RCurly) || (rule === "list" && type === T.RBracket);
    return diagnostic("FSM1006", s, { expected: type && !closing ? tokenExpectation(type) : ruleExpectations[rule] ?? "something else", found });
  }
  // `import` takes one token, a string (terminated or not, so the choice is an OR): a missing token.
  if (rule === "importDecl") return diagnostic("FSM1006", s, { expected: "a string", found });
  if (e.name === "NotAllInputParsedException" || rule === "file") {
    return diagnostic("FSM1007", s, { expected: ruleExpectations["file"]!, found });
  }
  return diagnostic("FSM1007", s, { expected: ruleExpectations[rule] ?? "something else", found });
}

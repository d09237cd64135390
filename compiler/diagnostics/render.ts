/**
 * Rendering diagnostics for people (`file:line:col: error FSMnnnn: message`, the source line,
 * a caret underline) and for editors (`--format json`). LANGUAGE.md, "What is checked where".
 */
import type { Diagnostic } from "./diagnostic.js";
import type { SourceFile, Span } from "./span.js";

/** Looks up the text of a file named in a span. */
export type FileLookup = (name: string) => SourceFile | undefined;

const TAB = "    ";

/**
 * A source line as shown in a snippet: tabs expanded, and every other control character shown
 * as its Unicode control picture (NUL as ␀, DEL as ␡), one column wide, so that a raw NUL or
 * escape never reaches the terminal and the caret still lines up.
 */
function expand(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === "\t" ? TAB : String.fromCharCode(c === "\u007f" ? 0x2421 : 0x2400 + c.charCodeAt(0))));
}

/** Width on screen of the first `columns - 1` code points of a line, with tabs expanded. */
function screenColumn(line: string, column: number): number {
  let width = 0;
  let seen = 1;
  for (const ch of line) {
    if (seen >= column) break;
    width += ch === "\t" ? TAB.length : 1;
    seen++;
  }
  return width;
}

function snippet(file: SourceFile, span: Span): string[] {
  const start = file.position(span.start);
  const end = file.position(Math.max(span.start, span.end));
  const text = file.lineText(start.line);
  const from = screenColumn(text, start.column);
  const to = end.line === start.line ? screenColumn(text, end.column) : expand(text).length;
  const width = Math.max(1, to - from);
  const gutter = String(start.line).padStart(5);
  return [`${gutter} | ${expand(text)}`, `${" ".repeat(gutter.length)} | ${" ".repeat(from)}${"^".repeat(width)}`];
}

function header(files: FileLookup, span: Span): string {
  const file = files(span.file);
  if (!file) return span.file;
  const p = file.position(span.start);
  return `${span.file}:${p.line}:${p.column}`;
}

/** Render diagnostics as text, each with its source line and caret, related notes after it. */
export function renderText(diagnostics: readonly Diagnostic[], files: FileLookup): string {
  const out: string[] = [];
  for (const d of diagnostics) {
    out.push(`${header(files, d.span)}: ${d.severity} ${d.code}: ${d.message}`);
    const file = files(d.span.file);
    if (file) out.push(...snippet(file, d.span));
    for (const r of d.related) {
      out.push(`${header(files, r.span)}: note: ${r.message}`);
      const rf = files(r.span.file);
      if (rf) out.push(...snippet(rf, r.span));
    }
  }
  return out.length === 0 ? "" : out.join("\n") + "\n";
}

/** A location in the JSON form: 1-based lines and columns, end exclusive. */
export interface JsonLocation {
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

/** A diagnostic in the JSON form that `--format json` prints, one array per run. */
export interface JsonDiagnostic extends JsonLocation {
  code: string;
  severity: string;
  message: string;
  related: (JsonLocation & { message: string })[];
}

function location(files: FileLookup, span: Span): JsonLocation {
  const file = files(span.file);
  if (!file) return { file: span.file, line: 1, column: 1, endLine: 1, endColumn: 1 };
  const s = file.position(span.start);
  const e = file.position(span.end);
  return { file: span.file, line: s.line, column: s.column, endLine: e.line, endColumn: e.column };
}

/** Diagnostics as plain JSON values, for editors and scripts. */
export function toJson(diagnostics: readonly Diagnostic[], files: FileLookup): JsonDiagnostic[] {
  return diagnostics.map((d) => ({
    ...location(files, d.span),
    code: d.code,
    severity: d.severity,
    message: d.message,
    related: d.related.map((r) => ({ ...location(files, r.span), message: r.message })),
  }));
}

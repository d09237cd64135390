/**
 * Source positions. Every AST node carries a {@link Span}; diagnostics are rendered from spans
 * through the {@link SourceFile} that holds the text (ARCHITECTURE.md, "Data structures").
 */

/** A half-open range of UTF-16 offsets `[start, end)` in one file. */
export interface Span {
  readonly file: string;
  readonly start: number;
  readonly end: number;
}

/** A 1-based line and column (columns count Unicode code points, as editors do). */
export interface Position {
  readonly line: number;
  readonly column: number;
}

/** A file's text with a line index, so offsets can be turned into lines and columns. */
export class SourceFile {
  readonly lineStarts: number[];

  constructor(
    readonly name: string,
    readonly text: string,
  ) {
    const starts = [0];
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) === 10) starts.push(i + 1);
    }
    this.lineStarts = starts;
  }

  /** The 1-based line and column of an offset. */
  position(offset: number): Position {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= o) lo = mid;
      else hi = mid - 1;
    }
    const lineStart = this.lineStarts[lo]!;
    return { line: lo + 1, column: codePointLength(this.text.slice(lineStart, o)) + 1 };
  }

  /** The text of a 1-based line, without its line break. */
  lineText(line: number): string {
    const start = this.lineStarts[line - 1];
    if (start === undefined) return "";
    const next = this.lineStarts[line];
    const end = next === undefined ? this.text.length : next - 1;
    return this.text.slice(start, end).replace(/\r$/, "");
  }

  /** The offset where a 1-based line and column start (the inverse of {@link position}). */
  offsetOf(line: number, column: number): number {
    const start = this.lineStarts[line - 1] ?? this.text.length;
    let offset = start;
    for (let c = 1; c < column && offset < this.text.length; c++) {
      const code = this.text.codePointAt(offset)!;
      offset += code > 0xffff ? 2 : 1;
    }
    return offset;
  }
}

/** The number of code points in a string (a surrogate pair counts once). */
export function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

/** The smallest span that covers both spans (they must be in the same file). */
export function cover(a: Span, b: Span): Span {
  return { file: a.file, start: Math.min(a.start, b.start), end: Math.max(a.end, b.end) };
}

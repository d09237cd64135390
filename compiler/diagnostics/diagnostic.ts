/**
 * The diagnostic value every stage returns instead of throwing (STYLE.md, "A diagnostic
 * catalog"): a code from the catalog, the filled message, a primary span and related spans.
 */
import { formatMessage, messages, type Code, type Severity } from "./messages.js";
import type { Span } from "./span.js";

/** A secondary location that explains a diagnostic ("first defined here"). */
export interface Related {
  readonly message: string;
  readonly span: Span;
}

/** One problem found in the input. */
export interface Diagnostic {
  readonly code: Code;
  readonly severity: Severity;
  readonly message: string;
  readonly span: Span;
  readonly related: readonly Related[];
}

/** Build a diagnostic from a catalog code and the arguments its template names. */
export function diagnostic(
  code: Code,
  span: Span,
  args: Readonly<Record<string, string | number>> = {},
  related: readonly Related[] = [],
): Diagnostic {
  return { code, severity: messages[code].severity, message: formatMessage(code, args), span, related };
}

/** True when any diagnostic in the list is an error. */
export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === "error");
}

/**
 * Sort diagnostics by file, then position, then code, and drop exact repeats (a block checked
 * standalone and again at each use may report the same problem twice).
 */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const d of diagnostics) {
    const key = `${d.span.file}\u0000${d.span.start}\u0000${d.span.end}\u0000${d.code}\u0000${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return out.sort(
    (a, b) =>
      (a.span.file < b.span.file ? -1 : a.span.file > b.span.file ? 1 : 0) ||
      a.span.start - b.span.start ||
      a.span.end - b.span.end ||
      (a.code < b.code ? -1 : a.code > b.code ? 1 : 0),
  );
}

/**
 * Number and table formatting shared by the reports (`fsmoec simulate`, `compare`, `sweep`,
 * docs/EVALUATION.md): times in ms or s, memory in GiB, aligned text tables, CSV and Markdown.
 * Every formatter is deterministic (fixed digits, no locale).
 */

/** A time given in µs, as `12.34 ms` or `1.235 s`. */
export function ms(us: number): string {
  if (!Number.isFinite(us)) return "—";
  return Math.abs(us) >= 1e6 ? `${(us / 1e6).toFixed(3)} s` : `${(us / 1000).toFixed(2)} ms`;
}

/** Bytes as GiB, MiB, KiB or B. */
export function gib(bytes: number): string {
  for (const [unit, f] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) if (bytes >= f) return `${(bytes / f).toFixed(1)} ${unit}`;
  return `${bytes} B`;
}

/** A fraction as a percentage with one decimal: `12.3%`. */
export function pct(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : "—";
}

/** A signed percentage: `+1.2%`, `−0.4%`. */
export function signedPct(x: number): string {
  if (!Number.isFinite(x)) return "—";
  const v = (100 * Math.abs(x)).toFixed(2);
  return x < 0 && Number(v) > 0 ? `−${v}%` : `+${v}%`;
}

/** A ratio: `1.234×`. */
export function times(x: number, digits = 3): string {
  return Number.isFinite(x) ? `${x.toFixed(digits)}×` : "—";
}

/** Rows as an aligned text table (first row the header); `right` marks right-aligned columns. */
export function textTable(rows: readonly (readonly string[])[], right: readonly boolean[] = [], indent = "  "): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  const pad = (c: string, i: number) => {
    const fill = " ".repeat(widths[i]! - [...c].length);
    return right[i] ? fill + c : c + fill;
  };
  return rows.map((r) => indent + r.map(pad).join("  ").trimEnd()).join("\n") + "\n";
}

/** One CSV field (RFC 4180 quoting where needed). */
export function csvField(v: string | number): string {
  const s = typeof v === "number" ? (Number.isFinite(v) ? String(v) : "") : v;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rows as CSV (first row the header), with a final newline. */
export function csv(rows: readonly (readonly (string | number)[])[]): string {
  return rows.map((r) => r.map(csvField).join(",")).join("\n") + "\n";
}

/** Rows as a Markdown table (first row the header); `right` marks right-aligned columns. */
export function markdownTable(rows: readonly (readonly string[])[], right: readonly boolean[] = []): string {
  const esc = (c: string) => c.replace(/\|/g, "\\|");
  const [header, ...body] = rows;
  if (!header) return "";
  const lines = [`| ${header.map(esc).join(" | ")} |`, `|${header.map((_, i) => (right[i] ? "---:" : "---")).join("|")}|`];
  for (const r of body) lines.push(`| ${r.map(esc).join(" | ")} |`);
  return lines.join("\n") + "\n";
}

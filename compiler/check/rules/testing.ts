/**
 * Shared helpers of the layout-rule tests: check a source held in memory and say where its
 * diagnostics point.
 */
import { check } from "../check.js";
import { memoryHost } from "../host.js";

/** Check one in-memory file; each diagnostic as `CODE line:column message`. */
export function diagnose(source: string): string[] {
  const r = check("job.moe", { host: memoryHost({ "job.moe": source }) });
  return r.diagnostics.map((d) => {
    const p = r.sources.get(d.span.file)!.position(d.span.start);
    return `${d.code} ${p.line}:${p.column} ${d.message}`;
  });
}

/** The 1-based `line:column` of `fragment` in `source`, plus `offset` characters. */
export function at(source: string, fragment: string, offset = 0): string {
  const i = source.indexOf(fragment);
  if (i < 0) throw new Error(`'${fragment}' not in source`);
  const before = source.slice(0, i + offset).split("\n");
  return `${before.length}:${before[before.length - 1]!.length + 1}`;
}

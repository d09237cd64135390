/**
 * The golden-file mechanism (STYLE.md, "Golden files like TypeScript's baselines"): an output
 * is compared with spec/baselines/reference/NAME; a difference (or a missing reference) writes
 * the new output to spec/baselines/local/NAME and fails. `npm run baselines:accept` copies
 * local to reference, and the diff is reviewed in the commit.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export const REFERENCE = "spec/baselines/reference";
export const LOCAL = "spec/baselines/local";

/** Compare `actual` with the reference baseline `name`; returns a message on mismatch, else undefined. */
export function compareBaseline(name: string, actual: string): string | undefined {
  const ref = join(REFERENCE, name);
  const local = join(LOCAL, name);
  const expected = existsSync(ref) ? readFileSync(ref, "utf8") : undefined;
  if (expected === actual) {
    rmSync(local, { force: true });
    return undefined;
  }
  mkdirSync(dirname(local), { recursive: true });
  writeFileSync(local, actual);
  return expected === undefined
    ? `no reference baseline ${ref}; new output written to ${local} (accept with npm run baselines:accept)`
    : `${ref} differs; new output written to ${local} (review the diff, accept with npm run baselines:accept)`;
}

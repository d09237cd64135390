/**
 * `npm run baselines:accept`: copy every new output in spec/baselines/local over the
 * reference baselines, then empty local. A deliberate step; review `git diff spec/` after it.
 */
import { cpSync, existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const LOCAL = "spec/baselines/local";
const REFERENCE = "spec/baselines/reference";

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

if (!existsSync(LOCAL)) {
  console.log("nothing to accept: spec/baselines/local does not exist");
} else {
  const files = walk(LOCAL);
  for (const f of files) {
    const rel = relative(LOCAL, f);
    cpSync(f, join(REFERENCE, rel));
    console.log(`accepted ${join(REFERENCE, rel)}`);
  }
  rmSync(LOCAL, { recursive: true, force: true });
  console.log(`${files.length} baseline${files.length === 1 ? "" : "s"} accepted; review with git diff ${REFERENCE}`);
}

/**
 * Sweep benchmark (issue figure: the 1,458-layer paper grid under the four strategies in
 * under 20 s wall on 2 cores). Times `fsmoec sweep bench/paper-grid.moe` as a child process,
 * start to finish (tsx start-up, check, 1,458 × 4 compiles, the fsmoe plans simulated against
 * the closed form, CSV, Markdown and SVG written), then prints the figures it produced.
 * Run: npx tsx bench/sweep.bench.ts [--runs N] (default 1)
 */
import { spawnSync } from "node:child_process";
import { cpus, tmpdir } from "node:os";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const runsArg = process.argv.indexOf("--runs");
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 1;
const out = mkdtempSync(join(tmpdir(), "fsmoec-sweep-bench-"));
const walls: number[] = [];
let stdout = "";
for (let i = 0; i < runs; i++) {
  const t = performance.now();
  const r = spawnSync(process.execPath, ["bin/fsmoec", "sweep", "bench/paper-grid.moe", "-o", out, "--progress", "none"], { encoding: "utf8" });
  walls.push((performance.now() - t) / 1000);
  if (r.status !== 0) {
    console.error(r.stderr);
    process.exit(1);
  }
  stdout = r.stdout;
}
walls.sort((a, b) => a - b);
const wall = walls[walls.length >> 1]!;
const lines = readFileSync(join(out, "paper_grid.csv"), "utf8").trimEnd().split("\n").length - 1;
rmSync(out, { recursive: true, force: true });
console.log(`paper-grid sweep: ${lines} jobs × 4 strategies, wall ${wall.toFixed(1)} s (median of ${runs}; ${cpus().length} cores here)  target < 20 s on 2 cores: ${wall < 20 ? "ok" : "MISSED"}`);
process.stdout.write(stdout);

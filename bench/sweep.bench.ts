/**
 * Sweep benchmark (issue figure: the 1,458-layer paper grid under the four strategies in
 * under 20 s wall on 2 cores). Times `fsmoec sweep bench/paper-grid.moe` as a child process,
 * start to finish (tsx start-up, check, 1,458 × 4 compiles, the fsmoe plans simulated against
 * the closed form, CSV, Markdown and SVG written), then prints the figures it produced. Wall
 * time suffers when other processes share the cores; the child's CPU time (from /proc, on
 * Linux) does not, and is what the wall time comes to on idle cores.
 * Run: npx tsx bench/sweep.bench.ts [--runs N] (default 1)
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";

/** CPU seconds of this process's waited-for children (user + system), or NaN off Linux. */
function childCpuSeconds(): number {
  if (!existsSync("/proc/self/stat")) return NaN;
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the command name: field 3 is index 0, so cutime (16) and cstime (17) are 13 and 14; clock ticks of 1/100 s.
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

const runsArg = process.argv.indexOf("--runs");
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 1;
const out = mkdtempSync(join(tmpdir(), "fsmoec-sweep-bench-"));
const walls: number[] = [];
const cpu: number[] = [];
let stdout = "";
for (let i = 0; i < runs; i++) {
  const c0 = childCpuSeconds();
  const t = performance.now();
  const r = spawnSync(process.execPath, ["bin/fsmoec", "sweep", "bench/paper-grid.moe", "-o", out, "--progress", "none"], { encoding: "utf8" });
  walls.push((performance.now() - t) / 1000);
  cpu.push(childCpuSeconds() - c0);
  if (r.status !== 0) {
    console.error(r.stderr);
    process.exit(1);
  }
  stdout = r.stdout;
}
const wall = median(walls);
const lines = readFileSync(join(out, "paper_grid.csv"), "utf8").trimEnd().split("\n").length - 1;
rmSync(out, { recursive: true, force: true });
console.log(
  `paper-grid sweep: ${lines} jobs × 4 strategies, wall ${wall.toFixed(1)} s, CPU ${median(cpu).toFixed(1)} s ` +
    `(median of ${runs}; ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)})  target < 20 s wall on 2 cores: ${wall < 20 ? "ok" : "MISSED"}`,
);
process.stdout.write(stdout);

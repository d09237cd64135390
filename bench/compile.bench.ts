/**
 * Compiler benchmarks (issue figures; medians, never timed tests):
 * - compile time of Mixtral-8x7B on 64 GPUs and of DeepSeek-V3 on 2,048 and 16,384 GPUs
 *   (auto, the whole per-job pipeline: lower, cost, schedule, graph, verify, memory, bound),
 *   and the 16,384 / 2,048 ratio (the plan's size must not grow with the world);
 * - the compiler process's peak resident memory on DeepSeek-V3 at 2,048 GPUs (a child process);
 * - the paper grid (bench/paper-grid.moe, fsmoe-paper-48 profile, 1,458 layers): geometric-mean
 *   predicted speedups of fsmoe over tutel and deepspeed, of auto over fsmoe, each strategy's
 *   median ratio to the lower bound, and how often fsmoe's forward and backward degrees differ.
 * Run: npx tsx bench/compile.bench.ts [--quick] (quick: every 9th grid point).
 */
import { spawnSync } from "node:child_process";
import { check } from "../compiler/check/check.js";
import type { TrainJob } from "../compiler/check/program.js";
import { compileJob } from "../compiler/compile/compile.js";
import { STRATEGY_NAMES, type StrategyName } from "../compiler/schedule/index.js";

const quick = process.argv.includes("--quick");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function job(file: string, name?: string): TrainJob {
  const r = check(file);
  const j = name ? r.program.jobs.find((x) => x.name === name) : r.program.jobs[0];
  if (!j) throw new Error(`no job ${name ?? ""} in ${file}: ${r.diagnostics.map((d) => d.message).join("; ")}`);
  return j;
}

function timeCompile(j: TrainJob, runs: number): { median: number; ops: number } {
  let ops = 0;
  for (let i = 0; i < 3; i++) compileJob(j, { strategy: "auto" });
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const c = compileJob(j, { strategy: "auto" });
    times.push(performance.now() - t);
    ops = c.compiled?.graph.ops.length ?? 0;
  }
  return { median: median(times), ops };
}

const rows: [string, string, string, string][] = [];
const row = (what: string, value: string, target: string, ok: boolean | null) => rows.push([what, value, target, ok === null ? "" : ok ? "ok" : "MISSED"]);

const mixtral = timeCompile(job("examples/mixtral-8x7b.moe"), 15);
row(`compile Mixtral-8x7B, 64 GPUs (${mixtral.ops} ops)`, `${mixtral.median.toFixed(1)} ms`, "< 100 ms", mixtral.median < 100);
const ds2k = timeCompile(job("bench/deepseek-v3-scale.moe", "deepseek_v3_2048"), 9);
row(`compile DeepSeek-V3, 2,048 GPUs (${ds2k.ops} ops)`, `${ds2k.median.toFixed(1)} ms`, "< 500 ms", ds2k.median < 500);
const ds16k = timeCompile(job("bench/deepseek-v3-scale.moe", "deepseek_v3_16384"), 9);
row(`compile DeepSeek-V3, 16,384 GPUs (${ds16k.ops} ops)`, `${ds16k.median.toFixed(1)} ms`, "", null);
const ratio = ds16k.median / ds2k.median;
row("16,384 / 2,048 compile-time ratio", ratio.toFixed(2), "≤ 1.3", ratio <= 1.3);

const rss = spawnSync(process.execPath, ["--import", "tsx", "bench/compile-rss.ts"], { encoding: "utf8" });
const mb = Number(rss.stdout.trim());
row("compiler peak RSS, DeepSeek-V3 2,048 GPUs", Number.isFinite(mb) ? `${mb.toFixed(0)} MB` : `failed: ${rss.stderr.slice(0, 200)}`, "< 300 MB", Number.isFinite(mb) && mb < 300);

// ── the paper grid
const grid = check("bench/paper-grid.moe").program.jobs.filter((j) => j.sweep !== null);
const points = quick ? grid.filter((_, i) => i % 9 === 0) : grid;
const t0 = performance.now();
const times = new Map<StrategyName, number[]>(STRATEGY_NAMES.map((s) => [s, []]));
const bounds: number[] = [];
let differ = 0;
let failed = 0;
for (const j of points) {
  const first = compileJob(j, { strategy: "fsmoe" });
  if (!first.compiled) {
    failed++;
    continue;
  }
  const lb = first.compiled.lowerBoundUs;
  const fs = first.compiled;
  const l0 = [...fs.schedule.layers.values()][0]!;
  if (l0.forward.degree !== l0.backward.degree) differ++;
  bounds.push(lb);
  for (const s of STRATEGY_NAMES) {
    const c = s === "fsmoe" ? first : compileJob(j, { strategy: s, lowerBoundUs: lb });
    times.get(s)!.push(c.compiled ? c.compiled.timeline.makespanUs : NaN);
  }
}
const gridMs = performance.now() - t0;
const geo = (a: number[], b: number[]) => Math.exp(a.reduce((s, x, i) => s + Math.log(b[i]! / x), 0) / a.length);
const fsT = times.get("fsmoe")!;
row(`paper grid: ${points.length} layers, 4 strategies (${failed} failed)`, `${(gridMs / 1000).toFixed(1)} s`, "", null);
row("geomean speedup fsmoe over tutel", geo(fsT, times.get("tutel")!).toFixed(3), "paper 1.18–1.22", null);
row("geomean speedup fsmoe over deepspeed", geo(fsT, times.get("deepspeed")!).toFixed(3), "paper 1.18–1.22", null);
row("geomean speedup auto over fsmoe", geo(times.get("auto")!, fsT).toFixed(3), "≥ 1", geo(times.get("auto")!, fsT) >= 1 - 1e-12);
for (const s of STRATEGY_NAMES) row(`median ratio to the lower bound, ${s}`, median(times.get(s)!.map((t, i) => t / bounds[i]!)).toFixed(3), "", null);
row("fsmoe forward and backward degrees differ", `${differ} of ${points.length}`, "paper 912 of 1,458", null);
const exceptions = (s: StrategyName) => fsT.filter((t, i) => t > times.get(s)![i]! * (1 + 1e-9)).length;
row("layers where fsmoe is slower than tutel / deepspeed", `${exceptions("tutel")} / ${exceptions("deepspeed")}`, "", null);

const w: number[] = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length)), Math.max(...rows.map((r) => r[2].length))];
const pad = (cells: readonly string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(w[i]!) : c)).join("  ");
console.log(pad(["figure", "value", "target"]));
for (const r of rows) console.log(pad(r));

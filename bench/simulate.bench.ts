/**
 * Simulator benchmark (issue figure: ≥ 1,000,000 simulated ops per second; medians, never a
 * timed test). For real plans — Mixtral-8x7B on 64 GPUs, GPT 1.3B+MoE-128 on 64 GPUs,
 * DeepSeek-V3 on 2,048 GPUs, all under auto — it times `simulate` end to end (flattening the
 * plan, the event loop, the critical path and the closed-form check of every MoE block) with
 * the default model (contention on), with interference 1.2 and Zipf 1.2 skew on top, and the
 * event loop alone, and prints simulated ops per second.
 * Run: npx tsx bench/simulate.bench.ts
 */
import { check } from "../compiler/check/check.js";
import { compileJob, programText } from "../compiler/compile/index.js";
import { buildPlan } from "../compiler/plan/build.js";
import { inputFromCompiled, prepare, runEngine, simulate, type SimulationOptions } from "../runtime/simulate/index.js";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function timeIt(f: () => void, minMs = 400): number {
  for (let i = 0; i < 5; i++) f();
  const times: number[] = [];
  const t0 = performance.now();
  while (times.length < 15 || performance.now() - t0 < minMs) {
    const t = performance.now();
    f();
    times.push(performance.now() - t);
  }
  return median(times);
}

const cases: [string, string | undefined][] = [
  ["examples/mixtral-8x7b.moe", undefined],
  ["examples/gpt-1.3b-moe128.moe", undefined],
  ["bench/deepseek-v3-scale.moe", "deepseek_v3_2048"],
];
const modes: [string, SimulationOptions][] = [
  ["contention", { contention: true }],
  ["contention + interference 1.2 + zipf:1.2", { contention: true, interference: 1.2, skew: { kind: "zipf", s: 1.2 } }],
];

const rows: string[][] = [["plan", "ops", "mode", "median", "ops/s", "target"]];
const all: number[] = [];
for (const [file, name] of cases) {
  const r = check(file);
  const job = name ? r.program.jobs.find((j) => j.name === name)! : r.program.jobs[0]!;
  const c = compileJob(job, { strategy: "auto" }).compiled!;
  const plan = buildPlan(c, file, programText(r), "bench");
  const input = inputFromCompiled(c, plan);
  const n = plan.ops.length;
  for (const [mode, o] of modes) {
    const ms = timeIt(() => simulate(input, o));
    const rate = (n / ms) * 1000;
    all.push(rate);
    rows.push([job.name, String(n), `simulate, ${mode}`, `${ms.toFixed(2)} ms`, `${(rate / 1e6).toFixed(2)} M`, rate >= 1e6 ? "≥ 1 M: ok" : "≥ 1 M: MISSED"]);
  }
  const p = prepare(input, { contention: true });
  const ms = timeIt(() => runEngine(p, true, 1));
  rows.push([job.name, String(n), "event loop alone, contention", `${ms.toFixed(2)} ms`, `${((n / ms) * 1000 / 1e6).toFixed(2)} M`, ""]);
}
rows.push(["all plans", "", "simulate, median over the rows above", "", `${(median(all) / 1e6).toFixed(2)} M`, median(all) >= 1e6 ? "≥ 1 M: ok" : "≥ 1 M: MISSED"]);

const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd());

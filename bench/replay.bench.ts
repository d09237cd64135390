/**
 * Figures of the native host runtime (ARCHITECTURE.md, "Runtime"): the executor's dispatch cost
 * per op with empty kernels (1 rank, 1 stream: a DeepSpeed-style serial plan; and 4 ranks on 3
 * streams), host GEMM throughput of the expert kernels, and the process's RSS against the
 * memory plan. Run with `npx tsx bench/replay.bench.ts` after `npm run build:native`. It prints
 * figures; it asserts nothing (timings depend on the machine and its load).
 */
import { checkedJob, layerJobSource, type LayerJobSpec } from "../runtime/replay/fixtures.js";
import { loadAddon, planFor, replay, routerOptions } from "../runtime/replay/index.js";
import type { StrategyName } from "../compiler/schedule/index.js";

const { addon, error } = loadAddon();
if (!addon) {
  console.log(`replay bench skipped: ${error}`);
  process.exit(0);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function plan(spec: LayerJobSpec, strategy: StrategyName) {
  const job = checkedJob(layerJobSource({ ...spec, schedule: strategy }));
  const { plan, diagnostics } = planFor(job, strategy);
  if (!plan) throw new Error(diagnostics.map((d) => d.message).join("\n"));
  return { plan, router: routerOptions(job) };
}

async function dispatch(label: string, spec: LayerJobSpec, strategy: StrategyName, spinUs?: number): Promise<void> {
  const { plan: p, router } = plan(spec, strategy);
  const r = await replay(p, { iterations: 300, emptyKernels: true, router, ...(spinUs !== undefined && { spinUs }) });
  if (!r.ok) throw new Error(r.error);
  const per = median(r.iterationUs.slice(20)) / p.ops.length;
  const best = Math.min(...r.iterationUs.slice(20)) / p.ops.length;
  console.log(`dispatch, empty kernels, ${label}: ${p.ops.length} ops per iteration, ${per.toFixed(2)} µs per op (median of 280 iterations; best ${best.toFixed(2)} µs)`);
}

await dispatch("1 rank, 1 stream (deepspeed)", { nodes: 1, gpus: 1, microBatches: 16 }, "deepspeed");
await dispatch("1 rank, 1 stream (deepspeed), no spinning", { nodes: 1, gpus: 1, microBatches: 16 }, "deepspeed", 0);
await dispatch("4 ranks, 3 streams (fsmoe)", { nodes: 2, gpus: 2, microBatches: 4, pipeline: "2" }, "fsmoe");

// GEMM throughput of the expert kernels (fp32, one rank, so nothing else competes).
{
  const { plan: p, router } = plan({ nodes: 1, gpus: 1, hidden: 256, expertHidden: 1024, experts: 4, seqLen: 256, microBatch: 2, capacityFactor: 1 }, "deepspeed");
  const r = await replay(p, { iterations: 5, router });
  if (!r.ok) throw new Error(r.error);
  for (const dir of ["fwd", "bwd"] as const) {
    const ops = p.ops.filter((o) => o.kind === "expert" && o.dir === dir);
    const macs = ops.reduce((s, o) => s + o.macs, 0) * (dir === "bwd" ? 2 : 1);
    const us = ops.reduce((s, o) => s + r.ranks[0]!.opUs[o.id]!, 0);
    console.log(`expert GEMMs ${dir}: ${(macs / 1e6).toFixed(1)} M MACs in ${(us / 1000).toFixed(2)} ms = ${((2 * macs) / us / 1000).toFixed(2)} GFLOP/s`);
  }
  const gate = p.ops.filter((o) => o.kind === "gate" && o.dir === "fwd");
  const gus = gate.reduce((s, o) => s + r.ranks[0]!.opUs[o.id]!, 0);
  console.log(`router GEMM + routing fwd: ${gate.reduce((s, o) => s + o.macs, 0) / 1e6} M MACs in ${(gus / 1000).toFixed(3)} ms`);
}

// RSS against the memory plan (8 ranks in one process).
{
  const { plan: p, router } = plan({ nodes: 2, gpus: 4, hidden: 256, expertHidden: 512, experts: 8, seqLen: 128, microBatch: 2, microBatches: 2 }, "fsmoe");
  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 1);
  const r = await replay(p, { iterations: 3, router });
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  if (!r.ok) throw new Error(r.error);
  const world = 8;
  const planned = p.memory.arenaBytes * world;
  const weights = p.memory.weightBytes * world;
  console.log(
    `RSS: +${((peak - before) / 2 ** 20).toFixed(1)} MiB during an 8-rank replay; memory plan: arenas ${(planned / 2 ** 20).toFixed(2)} MiB (${(p.memory.arenaBytes / 2 ** 10).toFixed(0)} KiB per rank) + weights ${(weights / 2 ** 20).toFixed(2)} MiB; ` +
      `median iteration ${(median(r.iterationUs) / 1000).toFixed(2)} ms vs predicted ${(p.predicted.iterationUs / 1000).toFixed(3)} ms (the cluster's hardware model, not this host)`,
  );
}

// Predicted vs measured on this machine with its own profile (4 ranks).
{
  const { profileHost } = await import("../runtime/replay/profile.js");
  const { writeFileSync, mkdtempSync } = await import("node:fs");
  const { join, relative } = await import("node:path");
  const { tmpdir } = await import("node:os");
  const { profile } = await profileHost({ iterations: 5 });
  const file = join(mkdtempSync(join(tmpdir(), "fsmoe-profile-")), "host.json");
  writeFileSync(file, JSON.stringify(profile));
  // The compiler resolves a profile path against the .moe file's folder (here the working directory).
  const named = relative(process.cwd(), file);
  for (const strategy of ["deepspeed", "tutel", "fsmoe", "auto"] as const) {
    const { plan: p, router } = plan({ nodes: 2, gpus: 2, hidden: 128, expertHidden: 256, seqLen: 64, microBatches: 2, profile: named }, strategy);
    const r = await replay(p, { iterations: 20, router });
    if (!r.ok) throw new Error(r.error);
    const measured = median(r.iterationUs.slice(2));
    const predicted = p.predicted.iterationUs;
    console.log(`predicted vs measured, tiny layer job at 4 ranks, ${strategy}: predicted ${(predicted / 1000).toFixed(2)} ms, measured ${(measured / 1000).toFixed(2)} ms (median of 18), error ${(((predicted - measured) / measured) * 100).toFixed(0)}%`);
  }
}

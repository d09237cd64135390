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

// GEMM throughput of the expert kernels (fp32, one rank, so nothing else competes), against the machine's measured peak.
{
  const peak1 = addon.peakGflops(1, 0.3);
  const peakAll = addon.peakGflops(addon.buildInfo().hardwareThreads, 0.3);
  console.log(`measured fp32 peak (register-resident multiply-add chains, widest vector unit): ${peak1.toFixed(1)} GFLOP/s on 1 core, ${peakAll.toFixed(1)} GFLOP/s on ${addon.buildInfo().hardwareThreads}`);
  const { plan: p, router } = plan({ nodes: 1, gpus: 1, hidden: 256, expertHidden: 1024, experts: 4, seqLen: 256, microBatch: 2, capacityFactor: 1 }, "deepspeed");
  const r = await replay(p, { iterations: 6, warmup: 1, router });
  if (!r.ok) throw new Error(r.error);
  for (const dir of ["fwd", "bwd"] as const) {
    const ops = p.ops.filter((o) => o.kind === "expert" && o.dir === dir);
    const macs = ops.reduce((s, o) => s + o.macs, 0) * (dir === "bwd" ? 2 : 1);
    const us = ops.reduce((s, o) => s + r.ranks[0]!.opUs[o.id]!, 0);
    const gflops = (2 * macs) / us / 1000;
    console.log(`expert GEMMs ${dir}: ${(macs / 1e6).toFixed(1)} M MACs in ${(us / 1000).toFixed(2)} ms = ${gflops.toFixed(2)} GFLOP/s, ${((100 * gflops) / peak1).toFixed(0)}% of the 1-core peak`);
  }
  const gate = p.ops.filter((o) => o.kind === "gate" && o.dir === "fwd");
  const gus = gate.reduce((s, o) => s + r.ranks[0]!.opUs[o.id]!, 0);
  console.log(`router GEMM + routing fwd: ${gate.reduce((s, o) => s + o.macs, 0) / 1e6} M MACs in ${(gus / 1000).toFixed(3)} ms`);
}

// RSS against the memory plan, each in a fresh child process: a minimal 1-rank job gives the
// runtime's fixed overhead (threads, first-touch of code and allocator pools, result copies of a
// tiny model), then 8-rank jobs give the growth per planned byte (arenas + weights).
{
  const { spawnSync } = await import("node:child_process");
  const measure = (spec: LayerJobSpec & { schedule?: StrategyName }, capture = false) => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "bench/replay-rss.ts", JSON.stringify(spec), ...(capture ? [] : ["--no-capture"])], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout.trim().split("\n").pop()!) as { world: number; before: number; peak: number; arenaBytes: number; weightBytes: number };
  };
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const fixed = measure({ nodes: 1, gpus: 1, hidden: 16, expertHidden: 16, experts: 2, seqLen: 8, microBatch: 1 });
  const fixedBytes = fixed.peak - fixed.before - fixed.arenaBytes - fixed.weightBytes;
  console.log(`RSS, fixed runtime overhead (1 rank, ${mib(fixed.arenaBytes + fixed.weightBytes)} planned): +${mib(fixed.peak - fixed.before)}, i.e. ${mib(fixedBytes)} beside the plan`);
  for (const spec of [
    { nodes: 2, gpus: 4, hidden: 256, expertHidden: 512, experts: 8, seqLen: 128, microBatch: 2, microBatches: 2 },
    { nodes: 2, gpus: 4, hidden: 512, expertHidden: 1024, experts: 8, seqLen: 256, microBatch: 2, microBatches: 2 },
  ]) {
    for (const capture of [false, true]) {
      const m = measure(spec, capture);
      const planned = m.arenaBytes + m.weightBytes;
      const grown = m.peak - m.before;
      console.log(
        `RSS, ${m.world} ranks, hidden ${spec.hidden}, ${capture ? "returning every tensor (--verify)" : "timing run"}: +${mib(grown)} during the replay against ${mib(planned)} planned (arenas ${mib(m.arenaBytes)} + weights ${mib(m.weightBytes)}): ` +
          `${(grown / planned).toFixed(2)}× the plan; ${((grown - fixedBytes) / planned).toFixed(2)}× once the fixed ${mib(fixedBytes)} is set aside`,
      );
    }
  }
}

// Predicted vs measured on this machine with its own profile: examples/tiny.moe (4 ranks) with
// its cluster naming a profile fitted here, in fp32 (what the host computes). The scheduler's
// prediction assumes a device per rank; the simulator's adds the profile's shared cores and
// executor cost per op — the figure to compare.
{
  const { profileHost } = await import("../runtime/replay/profile.js");
  const { check } = await import("../compiler/check/check.js");
  const { simulate, linksOf, pricerOf } = await import("../runtime/simulate/index.js");
  const { writeFileSync, readFileSync, mkdtempSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { tmpdir } = await import("node:os");
  const { profile, dispatchUs, handoffUs } = await profileHost();
  const dir = mkdtempSync(join(tmpdir(), "fsmoe-profile-"));
  writeFileSync(join(dir, "host.json"), JSON.stringify(profile));
  const tiny = readFileSync("examples/tiny.moe", "utf8").replace("nics_per_node = 1", 'nics_per_node = 1\n  profile       = "host.json"').replace("dtype      = bf16", "dtype      = fp32");
  writeFileSync(join(dir, "tiny.moe"), tiny);
  const job = check(join(dir, "tiny.moe")).program.jobs[0]!;
  console.log(`host profile: ${profile.entries.length} lines, ranks share ${profile.host!.cores} cores, executor ${dispatchUs} µs CPU per op and ${handoffUs} µs per hand-off`);
  for (const strategy of ["deepspeed", "tutel", "fsmoe", "auto"] as const) {
    const { plan: p, diagnostics } = planFor(job, strategy);
    if (!p) throw new Error(diagnostics.map((d) => d.message).join("\n"));
    // Three replays of 25 iterations (5 warm-up): the median of their medians, and their spread.
    const runs: number[] = [];
    for (let k = 0; k < 3; k++) {
      const r = await replay(p, { iterations: 25, warmup: 5, capture: false });
      if (!r.ok) throw new Error(r.error);
      runs.push(median(r.iterationUs.slice(5)));
    }
    const measured = median(runs);
    const simulated = simulate({ plan: p, links: linksOf(job.cluster), pricer: pricerOf(job), origin: "bench" }).run.makespanUs;
    const pct = (x: number) => `${x >= measured ? "+" : ""}${(((x - measured) / measured) * 100).toFixed(1)}%`;
    console.log(
      `predicted vs measured, examples/tiny.moe at 4 ranks, ${strategy}: measured ${(measured / 1000).toFixed(2)} ms (median of 3 runs' medians of 20, runs ${(Math.min(...runs) / 1000).toFixed(2)}–${(Math.max(...runs) / 1000).toFixed(2)} ms); simulated with shared cores ${(simulated / 1000).toFixed(2)} ms (${pct(simulated)}); scheduler's per-device prediction ${(p.predicted.iterationUs / 1000).toFixed(2)} ms (${pct(p.predicted.iterationUs)})`,
    );
  }
}

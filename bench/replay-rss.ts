/**
 * Child process of bench/replay.bench.ts: compile one host-sized job (the spec is argv[2], JSON,
 * a LayerJobSpec), then replay it and print one JSON line: the process's resident memory before
 * the replay (Node, the compiler, the plan and the loaded addon) and its peak during it, with
 * the plan's memory figures, all in bytes. With --no-capture (argv[3]) the replay returns no
 * tensors (a timing run); without it, the copies verification reads. A fresh process per
 * measurement, so nothing freed earlier hides in the allocator.
 */
import { readFileSync } from "node:fs";
import { checkedJob, layerJobSource, type LayerJobSpec } from "../runtime/replay/fixtures.js";
import { planFor, replay, requireAddon } from "../runtime/replay/index.js";

/** Resident memory now, from /proc (bytes). */
function rssNow(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

const spec = JSON.parse(process.argv[2] ?? "{}") as LayerJobSpec;
const { plan } = planFor(checkedJob(layerJobSource(spec)), spec.schedule ?? "fsmoe");
if (!plan) throw new Error("the job does not compile");
const text = JSON.stringify(plan);
requireAddon();
global.gc?.();
const before = rssNow();
let peak = before;
const timer = setInterval(() => (peak = Math.max(peak, rssNow())), 1);
const r = await replay(text, { iterations: 3, capture: process.argv[3] !== "--no-capture" });
clearInterval(timer);
if (!r.ok) throw new Error(r.error);
// The kernel's high-water mark covers what the 1 ms sampling missed.
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
peak = Math.max(peak, hwm ? Number(hwm[1]) * 1024 : 0);
const world = plan.job.cluster.nodes * plan.job.cluster.gpusPerNode;
console.log(JSON.stringify({ world, before, peak, arenaBytes: plan.memory.arenaBytes * world, weightBytes: plan.memory.weightBytes * world }));

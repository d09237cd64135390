/**
 * The host backend proves schedules correct (ARCHITECTURE.md, "Runtime"): the plan of every
 * strategy, degree, issue order and layout, replayed on in-process ranks, yields the
 * unscheduled reference's outputs, loss and every gradient within 1e-5 with identical routing.
 */
import { describe, expect, it } from "vitest";
import { checkedJob, layerJobSource, type LayerJobSpec } from "../runtime/replay/fixtures.js";
import { loadAddon, planFor, verify } from "../runtime/replay/index.js";
import { STRATEGY_NAMES } from "../compiler/schedule/index.js";

const { addon, error } = loadAddon();
if (!addon) console.warn(`replay tests skipped: ${error}`);

async function verifies(spec: LayerJobSpec, strategy: (typeof STRATEGY_NAMES)[number]) {
  const job = checkedJob(layerJobSource({ ...spec, schedule: strategy }));
  const { plan, diagnostics } = planFor(job, strategy);
  expect(plan, diagnostics.map((d) => d.message).join("\n")).toBeDefined();
  const v = await verify(plan!, { timeoutMs: 20_000 });
  if ("error" in v) throw new Error(v.error);
  const c = v.comparison;
  const bad = c.tensors.filter((t) => !t.ok).map((t) => `rank ${t.rank} ${t.name} ${t.relError}`);
  expect(bad).toEqual([]);
  expect(c.missing).toEqual([]);
  expect(c.routing.filter((r) => r.mismatches > 0)).toEqual([]);
  expect(c.loss.ok).toBe(true);
  expect(c.ok).toBe(true);
  const ranks = job.cluster.nodes * job.cluster.gpusPerNode;
  // Every rank reports the output, input gradient and gradients of every micro-batch.
  expect(c.tensors.length).toBe(ranks * (2 * job.microBatches + 2));
  return plan!;
}

/** Layouts of the issue: FSMoE's default, EP inside the node, EP over the world, expert replicas. */
const layouts: readonly { name: string; spec: LayerJobSpec }[] = [
  { name: "1 rank", spec: { nodes: 1, gpus: 1 } },
  { name: "4 ranks, esp = G (FSMoE default)", spec: { nodes: 2, gpus: 2, microBatches: 2 } },
  { name: "8 ranks, esp = G, ep over the rail", spec: { nodes: 2, gpus: 4, pipeline: "2" } },
  { name: "8 ranks, EP inside the node (edp = 2)", spec: { nodes: 2, gpus: 4, parallel: "esp = 1, ep = 4" } },
  { name: "8 ranks, EP over the world", spec: { nodes: 2, gpus: 4, parallel: "esp = 1, ep = 8", experts: 8 } },
  { name: "8 ranks, ESP with expert replicas (edp = 2)", spec: { nodes: 2, gpus: 4, parallel: "esp = 4, ep = 1" } },
];

describe.skipIf(!addon)("every strategy replays to the reference", () => {
  for (const strategy of STRATEGY_NAMES)
    for (const l of layouts)
      it(`${strategy} on ${l.name}`, async () => {
        await verifies(l.spec, strategy);
      });
});

describe.skipIf(!addon)("routers, activations, degrees and recomputation replay to the reference", () => {
  const cases: readonly { name: string; spec: LayerJobSpec; strategy: (typeof STRATEGY_NAMES)[number] }[] = [
    { name: "softmax_topk with group limits, no renormalization", spec: { experts: 8, routerFields: "normalize = false, groups = 4, topk_groups = 2" }, strategy: "fsmoe" },
    { name: "gshard with its random second expert, swiglu", spec: { router: "gshard", activation: "swiglu" }, strategy: "tutel" },
    { name: "switch (top-1), relu", spec: { router: "switch", topK: 1, activation: "relu", capacityFactor: 2 }, strategy: "auto" },
    { name: "sigmoid with expert bias, groups and route scale on 8 ranks", spec: { nodes: 2, gpus: 4, experts: 8, router: "sigmoid", routerFields: "groups = 2, topk_groups = 1, route_scale = 2.5" }, strategy: "fsmoe" },
    { name: "geglu with dropped tokens (capacity factor 0.5)", spec: { activation: "geglu", capacityFactor: 0.5 }, strategy: "deepspeed" },
    { name: "different forward and backward degrees, two micro-batches", spec: { pipeline: "{ forward = 2, backward = 4 }", microBatches: 2 }, strategy: "fsmoe" },
    { name: "interleaved issue order (auto, degree 4)", spec: { nodes: 2, gpus: 4, pipeline: "4", seqLen: 32 }, strategy: "auto" },
    { name: "full recomputation", spec: { recompute: "full", microBatches: 2 }, strategy: "fsmoe" },
  ];
  for (const c of cases)
    it(c.name, async () => {
      await verifies(c.spec, c.strategy);
    });
});

describe.skipIf(!addon)("verification has teeth", () => {
  it("a rank that skips an expert kernel is caught", async () => {
    const job = checkedJob(layerJobSource({ nodes: 2, gpus: 2 }));
    const { plan } = planFor(job, "fsmoe");
    const expert = plan!.ops.find((o) => o.kind === "expert" && o.dir === "fwd")!;
    const v = await verify(plan!, { skip: [{ rank: 1, op: expert.id }] });
    expect("comparison" in v && v.comparison.ok).toBe(false);
  });

  it("replaying twice gives bit-identical tensors", async () => {
    const job = checkedJob(layerJobSource({ nodes: 2, gpus: 2, router: "gshard" }));
    const { plan } = planFor(job, "auto");
    const a = await verify(plan!, { iterations: 2 });
    const b = await verify(plan!, {});
    if (!("replay" in a) || !("replay" in b)) throw new Error("replay failed");
    for (const [name, t] of Object.entries(a.replay.ranks[1]!.tensors)) expect(Array.from(b.replay.ranks[1]!.tensors[name]!)).toEqual(Array.from(t));
  });
});

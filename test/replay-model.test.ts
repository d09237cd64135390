/**
 * Model jobs on the host backend (ARCHITECTURE.md, "Runtime"; native/README.md, "The model"): a pre-norm
 * transformer — vocabulary-parallel embedding, attention with tensor + sequence parallelism,
 * dense FFN layers, MoE layers with shared experts, final norm, vocabulary-parallel LM head and
 * cross-entropy — replayed by every strategy on 1, 4 and 8 in-process ranks equals the
 * unscheduled reference: logits, per-token loss, every gradient within 1e-5, identical routing.
 * And the plan says what the runtime needs: exact accesses, every gradient reduced once.
 */
import { describe, expect, it } from "vitest";
import { expectVerified } from "./verified.js";
import type { Plan } from "../compiler/plan/schema.js";
import { STRATEGY_NAMES, type StrategyName } from "../compiler/schedule/index.js";
import { checkedJob, modelJobSource, type ModelJobSpec } from "../runtime/replay/fixtures.js";
import { loadAddon, planFor, replay, verify } from "../runtime/replay/index.js";

const { addon, error } = loadAddon();
if (!addon) console.warn(`replay model tests skipped: ${error}`);

function modelPlan(spec: ModelJobSpec, strategy: StrategyName): Plan {
  const job = checkedJob(modelJobSource({ ...spec, schedule: strategy }));
  const { plan, diagnostics } = planFor(job, strategy);
  expect(plan, diagnostics.map((d) => d.message).join("\n")).toBeDefined();
  return plan!;
}

async function verifies(spec: ModelJobSpec, strategy: StrategyName): Promise<Plan> {
  const plan = modelPlan(spec, strategy);
  const v = await verify(plan, { timeoutMs: 20_000 });
  if ("error" in v) throw new Error(v.error);
  const c = v.comparison;
  expectVerified(c);
  // Every rank reports logits and per-token losses of every micro-batch and every gradient.
  const names = new Set(c.tensors.filter((t) => t.rank === 0).map((t) => t.name));
  const job = plan.job;
  for (let mb = 0; mb < job.microBatches; mb++) for (const n of [`logits.mb${mb}`, `loss.mb${mb}`]) expect(names).toContain(n);
  for (const n of ["grad.embedding", "grad.lm_head", "grad.final_norm"]) expect(names).toContain(n);
  for (let l = 0; l < job.model.layers; l++) {
    for (const n of ["attention_norm", "ffn_norm", "attention"]) expect(names).toContain(`grad.L${l}.${n}`);
    const moe = job.model.moeLayers.includes(l);
    if (moe) for (const n of ["router", "expert"]) expect(names).toContain(`grad.L${l}.${n}`);
    if (!moe) expect(names).toContain(`grad.L${l}.dense_ffn`);
    if (moe && job.model.sharedExperts > 0) expect(names).toContain(`grad.L${l}.shared_expert`);
  }
  return plan;
}

/** 1, 4 and 8 ranks: attention, dense FFN layers (every 2) and shared experts. */
const layouts: readonly { name: string; spec: ModelJobSpec }[] = [
  { name: "1 rank, dense FFN every other layer", spec: { nodes: 1, gpus: 1 } },
  { name: "4 ranks, tp = esp = 2, two micro-batches", spec: { nodes: 2, gpus: 2, microBatches: 2 } },
  {
    name: "8 ranks, tp = esp = 4, GQA, shared experts in every layer",
    spec: { nodes: 2, gpus: 4, moeLayers: "all", attention: "heads = 8, kv_heads = 4, kind = gqa", sharedExperts: 2, sharedHidden: 16, seqLen: 16 },
  },
];

describe.skipIf(!addon)("every strategy replays a model to the reference", () => {
  for (const strategy of STRATEGY_NAMES)
    for (const l of layouts)
      it(`${strategy} on ${l.name}`, async () => {
        await verifies(l.spec, strategy);
      });
});

describe.skipIf(!addon)("model features replay to the reference", () => {
  const cases: readonly { name: string; spec: ModelJobSpec; strategy: StrategyName }[] = [
    { name: "attention probabilities kept for the backward (recompute = none)", spec: { nodes: 2, gpus: 2, recompute: "none" }, strategy: "fsmoe" },
    { name: "full recomputation with shared experts and two micro-batches", spec: { nodes: 2, gpus: 2, recompute: "full", sharedExperts: 1, microBatches: 2 }, strategy: "auto" },
    { name: "tp = 1 with data parallelism over 4 ranks (EP over the world)", spec: { nodes: 2, gpus: 2, parallel: "tp = 1, esp = 1, ep = 4" }, strategy: "fsmoe" },
    { name: "EP inside the node with expert replicas (edp = 2), swiglu, sigmoid router", spec: { nodes: 2, gpus: 4, parallel: "tp = 4, esp = 1, ep = 4", experts: 8, activation: "swiglu", router: "sigmoid", ffnActivation: "swiglu", seqLen: 16 }, strategy: "tutel" },
    { name: "different forward and backward degrees, dropped tokens", spec: { nodes: 2, gpus: 2, pipeline: "{ forward = 2, backward = 4 }", capacityFactor: 0.5, seqLen: 16 }, strategy: "fsmoe" },
    { name: "multi-query attention, switch router, relu", spec: { nodes: 1, gpus: 2, attention: "heads = 4, kv_heads = 2, kind = gqa", router: "switch", topK: 1, activation: "relu", ffnActivation: "relu" }, strategy: "deepspeed" },
  ];
  for (const c of cases)
    it(c.name, async () => {
      await verifies(c.spec, c.strategy);
    });
});

describe.skipIf(!addon)("model verification has teeth", () => {
  it("a rank that skips its attention kernel is caught", async () => {
    const plan = modelPlan({ nodes: 2, gpus: 2 }, "fsmoe");
    const op = plan.ops.find((o) => o.kind === "attention" && o.dir === "fwd" && o.layer === 1)!;
    const v = await verify(plan, { skip: [{ rank: 1, op: op.id }] });
    expect("comparison" in v && v.comparison.ok).toBe(false);
  });

  it("a rank that skips the gather of the loss's maxima ends the run with a collective mismatch naming the op", async () => {
    const plan = modelPlan({ nodes: 2, gpus: 2 }, "fsmoe");
    const op = plan.ops.find((o) => o.role === "loss_max_allgather")!;
    const r = await replay(plan, { skip: [{ rank: 0, op: op.id }], timeoutMs: 300 });
    expect(r.ok).toBe(false);
    const message = (r as { error: string }).error;
    expect(message).toMatch(/collective all_gather 'loss_(max|stats)_allgather' \(op \d+.*\) on stream intra of rank \d: (collective mismatch in group tp|.*timed out)/);
    expect(message).toContain(`op ${op.id}`);
  });

  it("a rank that skips a gate is caught: decisions out of range are refused, stale ones fail verification", async () => {
    const plan = modelPlan({ nodes: 2, gpus: 2 }, "fsmoe");
    const gate = plan.ops.find((o) => o.kind === "gate" && o.dir === "fwd")!;
    const v = await verify(plan, { skip: [{ rank: 0, op: gate.id }], timeoutMs: 300 });
    if ("error" in v) expect(v.error).toMatch(/routing decisions out of range|timed out|mismatch/);
    else expect(v.comparison.ok).toBe(false);
  });
});

describe("a model's plan says what the runtime needs", () => {
  const plan = modelPlan({ nodes: 2, gpus: 4, moeLayers: "every 2", sharedExperts: 1, seqLen: 16, vocab: 96, pipeline: "{ forward = 2, backward = 4 }" }, "fsmoe");
  const buffer = (id: number) => plan.buffers[id]!;
  const { tp } = plan.job.parallel;
  const N = plan.job.microBatch * plan.job.seqLen;
  const V = plan.job.model.vocab!;

  it("carries the router's own fields, attention, the FFN and the shared experts in job.model", () => {
    expect(plan.job.model).toMatchObject({ normalize: true, groups: 1, topkGroups: 1, routeScale: 1, sharedExperts: 1, sharedHidden: 32, ffn: { hidden: 64, activation: "gelu" } });
    expect(plan.job.model.attention).toMatchObject({ kind: "mha", heads: 4, kvHeads: 4, headDim: 8 });
  });

  it("writes vocabulary-parallel logits (V/tp per rank) that the loss reads, gathering each token's maximum and statistics over tp", () => {
    const lm = plan.ops.find((o) => o.kind === "lm_head" && o.dir === "fwd")!;
    const logits = lm.accesses.find((a) => a.write)!;
    expect(logits.bytes).toBe(N * (V / tp) * 4);
    const lossOps = plan.ops.filter((o) => o.kind === "loss" && o.microBatch === 0);
    expect(lossOps.map((o) => `${o.dir} ${o.role}`)).toEqual(["fwd loss_max", "fwd loss_sumexp", "fwd loss", "bwd loss"]);
    for (const o of lossOps.filter((x) => x.role !== "loss" || x.dir === "bwd")) expect(o.accesses.some((a) => !a.write && a.buffer === logits.buffer && a.bytes === logits.bytes)).toBe(true);
    // Each rank's maxima, then its Σ exp and target logits, gathered over tp (fp32: 4 bytes per element).
    const gathers = plan.ops.filter((o) => o.kind === "all_gather" && o.microBatch === 0 && o.role.startsWith("loss_"));
    expect(gathers.map((o) => [o.role, o.group, o.bytes])).toEqual([
      ["loss_max_allgather", "tp", tp * N * 4],
      ["loss_stats_allgather", "tp", 2 * tp * N * 4],
    ]);
    // Token ids and targets: the tensor-parallel group's B · L tokens, inputs of the iteration.
    for (const name of ["mb0.tokens", "mb0.targets"]) expect(plan.buffers.find((b) => b.name === name)).toMatchObject({ bytes: N * 4, persistent: true });
  });

  it("declares the routing decisions, the saved combine output, dL/d(combine weight) and the layer input the gate backward reads", () => {
    for (const l of plan.job.model.moeLayers) {
      const gateF = plan.ops.find((o) => o.kind === "gate" && o.dir === "fwd" && o.layer === l)!;
      const gateB = plan.ops.find((o) => o.kind === "gate" && o.dir === "bwd" && o.layer === l)!;
      const iorderF = plan.ops.find((o) => o.kind === "iorder" && o.dir === "fwd" && o.layer === l)!;
      const iorderB = plan.ops.find((o) => o.kind === "iorder" && o.dir === "bwd" && o.layer === l)!;
      const routing = gateF.accesses.find((a) => a.write && buffer(a.buffer).name.endsWith(".routing"))!;
      expect(routing.bytes).toBe((N / tp) * plan.job.model.topK * 12);
      for (const o of [iorderF, iorderB, gateB]) expect(o.accesses.some((a) => !a.write && a.buffer === routing.buffer && a.bytes === routing.bytes)).toBe(true);
      const combined = iorderF.accesses[0]!;
      expect(iorderB.accesses.some((a) => !a.write && a.buffer === combined.buffer && a.bytes === buffer(combined.buffer).bytes)).toBe(true);
      const weights = iorderB.accesses.find((a) => a.write && buffer(a.buffer).name.endsWith(".grad_weight"))!;
      expect(gateB.accesses.some((a) => !a.write && a.buffer === weights.buffer)).toBe(true);
      expect(gateB.accesses.some((a) => !a.write && a.buffer === gateF.accesses[0]!.buffer)).toBe(true);
    }
    // No 1-byte stand-ins remain.
    expect(plan.ops.flatMap((o) => o.accesses).filter((a) => a.bytes === 1)).toEqual([]);
  });

  it("reads saved expert buffers in the forward's chunks when the degrees differ", () => {
    const layer = plan.layers[0]!;
    expect([layer.forward.degree, layer.backward.degree]).toEqual([2, 4]);
    const fwd = plan.ops.find((o) => o.kind === "expert" && o.dir === "fwd" && o.layer === layer.layer)!;
    const saved = fwd.accesses[0]!.buffer;
    const total = buffer(saved).bytes;
    for (const o of plan.ops.filter((x) => x.kind === "expert" && x.dir === "bwd" && x.layer === layer.layer)) {
      const a = o.accesses.find((x) => x.buffer === saved)!;
      // Backward chunk i of 4 holds slots of forward chunk ⌊i / 2⌋ of 2.
      expect([a.offset, a.bytes]).toEqual([(total / 2) * Math.floor(o.chunk / 2), total / 2]);
    }
  });

  it("all-reduces every dense gradient over dp exactly once, the embedding and LM head included", () => {
    const covered = new Map<number, number[]>();
    for (const o of plan.ops.filter((x) => x.role === "grad_allreduce"))
      for (const a of o.accesses) {
        const marks = covered.get(a.buffer) ?? new Array<number>(buffer(a.buffer).bytes).fill(0);
        for (let i = a.offset; i < a.offset + a.bytes; i++) marks[i]!++;
        covered.set(a.buffer, marks);
      }
    const dense = plan.buffers.filter((b) => b.name.endsWith(".dense_grad") || b.name === "head.grad");
    for (const b of dense) expect([b.name, new Set(covered.get(b.id) ?? [0])]).toEqual([b.name, new Set([1])]);
  });

  it("names the local expert of DeepSpeed's per-expert ops and declares its whole chunk", () => {
    const ds = modelPlan({ nodes: 2, gpus: 2, experts: 8 }, "deepspeed");
    const ops = ds.ops.filter((o) => o.kind === "expert" && o.dir === "fwd" && o.layer === 1);
    expect(ops.map((o) => o.expert)).toEqual([0, 1, 2, 3]);
    expect(new Set(ops.map((o) => JSON.stringify(o.accesses))).size).toBe(1);
  });
});

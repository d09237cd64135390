/**
 * Multi-head latent attention (MLA, DeepSeek-V2 §2.1; native/README.md "Multi-head latent
 * attention") on the host backend: model jobs with MLA replayed by every strategy on 1, 4 and 8
 * in-process ranks, with tp = 1 and tp = 2, equal the unscheduled reference — logits, per-token
 * loss, every gradient within 1e-5 (the replicated down-projections' too, which the plan
 * all-reduces over tp), identical routing — and so does the shrunk DeepSeek-V3 example through
 * `fsmoec run`. The plan covers the replicated part with the tp all-reduce.
 */
import { describe, expect, it } from "vitest";
import { expectVerified } from "./verified.js";
import { cliAsync } from "./cli.js";
import type { Plan } from "../compiler/plan/schema.js";
import { STRATEGY_NAMES, type StrategyName } from "../compiler/schedule/index.js";
import { checkedJob, modelJobSource, type ModelJobSpec } from "../runtime/replay/fixtures.js";
import { loadAddon, planFor, shrink, validatePlan, verify } from "../runtime/replay/index.js";
import { check } from "../compiler/check/check.js";

const { addon, error } = loadAddon();
if (!addon) console.warn(`replay MLA tests skipped: ${error}`);

/** MLA with 2 heads per tp rank (up to tp = 2), small lora ranks and head dimensions. */
const MLA = "kind = mla, heads = 4, q_lora_rank = 16, kv_lora_rank = 12, qk_nope_dim = 8, rope_dim = 4, v_head_dim = 6";

function mlaPlan(spec: ModelJobSpec, strategy: StrategyName): Plan {
  const job = checkedJob(modelJobSource({ attention: MLA, ...spec, schedule: strategy }));
  const { plan, diagnostics } = planFor(job, strategy);
  expect(plan, diagnostics.map((d) => d.message).join("\n")).toBeDefined();
  return plan!;
}

async function verifies(spec: ModelJobSpec, strategy: StrategyName): Promise<void> {
  const plan = mlaPlan(spec, strategy);
  const v = await verify(plan, { timeoutMs: 20_000 });
  if ("error" in v) throw new Error(v.error);
  const c = v.comparison;
  expectVerified(c);
  const names = new Set(c.tensors.filter((t) => t.rank === 0).map((t) => t.name));
  for (let l = 0; l < plan.job.model.layers; l++) expect(names).toContain(`grad.L${l}.attention`);
}

/** Run the CLI in-process and wait for the asynchronous run command. */
const fsmoec = cliAsync;

const layouts: readonly { name: string; spec: ModelJobSpec }[] = [
  { name: "1 rank", spec: { nodes: 1, gpus: 1 } },
  { name: "4 ranks, tp = 1 (EP over the world)", spec: { nodes: 2, gpus: 2, parallel: "tp = 1, esp = 1, ep = 4" } },
  { name: "4 ranks, tp = esp = 2, two micro-batches", spec: { nodes: 2, gpus: 2, microBatches: 2 } },
  { name: "8 ranks, tp = 2, EP over the world, shared experts", spec: { nodes: 2, gpus: 4, parallel: "tp = 2, esp = 1, ep = 8", experts: 8, sharedExperts: 1, sharedHidden: 16 } },
];

describe.skipIf(!addon)("every strategy replays a model with MLA to the reference", () => {
  for (const strategy of STRATEGY_NAMES)
    for (const l of layouts)
      it(`${strategy} on ${l.name}`, async () => {
        await verifies(l.spec, strategy);
      });
});

describe.skipIf(!addon)("MLA with model features", () => {
  it("attention probabilities kept for the backward (recompute = none)", async () => {
    await verifies({ nodes: 2, gpus: 2, recompute: "none" }, "fsmoe");
  });
  it("full recomputation", async () => {
    await verifies({ nodes: 2, gpus: 2, recompute: "full", sharedExperts: 1 }, "auto");
  });
  it("DeepSeek's sigmoid router with groups, swiglu and a longer sequence", async () => {
    await verifies({ nodes: 2, gpus: 2, experts: 8, router: "sigmoid", moeFields: "groups = 4, topk_groups = 2, route_scale = 2.5", activation: "swiglu", ffnActivation: "swiglu", seqLen: 16 }, "tutel");
  });
});

describe.skipIf(!addon)("MLA verification has teeth", () => {
  it("a rank that skips its attention kernel is caught", async () => {
    const plan = mlaPlan({ nodes: 2, gpus: 2 }, "fsmoe");
    const op = plan.ops.find((o) => o.kind === "attention" && o.dir === "bwd" && o.layer === 1)!;
    const v = await verify(plan, { skip: [{ rank: 1, op: op.id }] });
    expect("comparison" in v && v.comparison.ok).toBe(false);
  });

  it("without the tp all-reduce of the replicated part the attention gradients differ from the reference", async () => {
    const plan = mlaPlan({ nodes: 2, gpus: 2 }, "fsmoe");
    const M = plan.job.model.hidden;
    const norms = 2 * M;
    // Shrink every layer's tp all-reduce back to the norms and router only.
    const ops = plan.ops.map((o) => {
      if (o.role !== "sp_grad_allreduce" || o.layer < 0) return o;
      const bytes = (norms + (plan.job.model.moeLayers.includes(o.layer) ? M * plan.job.model.experts : 0)) * 4;
      return { ...o, bytes, elements: bytes / 4, accesses: o.accesses.map((x) => ({ ...x, bytes })) };
    });
    const v = await verify({ ...plan, ops }, {});
    if ("error" in v) throw new Error(v.error);
    expect(v.comparison.tensors.filter((t) => !t.ok).map((t) => t.name.replace(/^grad\.L\d+\./, ""))).toContain("attention");
  });

  it("refuses an odd rope dimension with a clear message", () => {
    const plan = mlaPlan({ nodes: 1, gpus: 1 }, "fsmoe");
    const bad = { ...plan, job: { ...plan.job, model: { ...plan.job.model, attention: { ...plan.job.model.attention!, ropeDim: 3 } } } };
    const v = validatePlan(bad as Plan);
    expect(v.ok).toBe(false);
    expect(v.error).toMatch(/job\.model\.attention\.ropeDim: rotary embedding rotates pairs of dimensions; 3 is odd/);
  });
});

describe("the plan all-reduces MLA's replicated attention gradients over tp", () => {
  it("covers the norms, the router and the down-projections and lora norms that start the attention region", () => {
    const plan = mlaPlan({ nodes: 2, gpus: 2 }, "fsmoe");
    const M = plan.job.model.hidden;
    const a = plan.job.model.attention!;
    const replicated = M * a.qLoraRank! + M * (a.kvLoraRank! + a.ropeDim!) + a.qLoraRank! + a.kvLoraRank!;
    for (let l = 0; l < plan.job.model.layers; l++) {
      const moe = plan.job.model.moeLayers.includes(l);
      const router = moe ? M * plan.job.model.experts : 0;
      const op = plan.ops.find((o) => o.role === "sp_grad_allreduce" && o.layer === l)!;
      expect(op.group).toBe("tp");
      expect(op.accesses.map((x) => [x.offset, x.bytes])).toEqual([[0, (2 * M + router + replicated) * 4]]);
    }
  });
});

describe("--shrink keeps DeepSeek-V3's structure", () => {
  it("keeps MLA, the sigmoid router with groups, dense first layers and a shared expert that splits over tp", () => {
    const job = check("examples/deepseek-v3.moe").program.jobs[0]!;
    const s = shrink(job).job;
    const a = s.model.attention!;
    expect(a.kind).toBe("mla");
    expect(a.heads % s.parallel.tp).toBe(0);
    expect(a.ropeDim! % 2).toBe(0);
    expect(s.model.moe.router).toBe("sigmoid");
    expect(s.model.moe.groups).toBeGreaterThan(1);
    expect(s.model.moeLayers).toEqual([3]);
    expect(s.model.moe.sharedExperts).toBe(1);
    expect((s.model.moe.sharedExperts * s.model.moe.sharedHidden) % s.parallel.tp).toBe(0);
  });
});

describe.skipIf(!addon)("fsmoec run examples/deepseek-v3.moe --shrink --verify", () => {
  for (const s of STRATEGY_NAMES)
    it(`passes with --schedule ${s}`, async () => {
      const r = await fsmoec("run", "examples/deepseek-v3.moe", "--backend", "host", "--shrink", "--verify", "--schedule", s);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/verify: PASS — \d+ tensors on 8 ranks/);
      expect(r.out).toMatch(/routing identical/);
    });
});

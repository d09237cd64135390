/**
 * `fsmoec run` and the pieces around it: the counter-based generator every backend shares,
 * --shrink keeping a job's structure, the CLI's output and exit codes, and the message when the
 * addon is not built.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { check } from "../compiler/check/check.js";
import { cliAsync } from "./cli.js";
import { checkedJob, layerJobSource } from "../runtime/replay/fixtures.js";
import { loadAddon, planFor, shrink } from "../runtime/replay/index.js";

const { addon, error } = loadAddon();
if (!addon) console.warn(`replay CLI tests skipped: ${error}`);

/** Run the CLI in-process and wait for the asynchronous run command. */
const fsmoec = cliAsync;

describe("the native addon's loader", () => {
  it("names the build command when the addon is missing", () => {
    const r = loadAddon("/nonexistent/fsmoec_native.node");
    expect(r.addon).toBeUndefined();
    expect(r.error).toMatch(/not built .*run `npm run build:native`/);
  });
});

describe.skipIf(!addon)("the counter-based generator", () => {
  it("is Philox4x32-10: Random123's known answers", () => {
    const hex = (v: number[]) => v.map((x) => x.toString(16).padStart(8, "0"));
    expect(hex(addon!.philox([0, 0, 0, 0], [0, 0]))).toEqual(["6627e8d5", "e169c58d", "bc57ac4c", "9b00dbd8"]);
    expect(hex(addon!.philox([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]))).toEqual(["408f276d", "41c83b0e", "a20bc7c6", "6d5451fd"]);
    expect(hex(addon!.philox([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]))).toEqual(["d16cfe09", "94fdcceb", "5001e420", "24126ea1"]);
  });

  it("is keyed by seed, tensor and element index, uniform in [-a, a)", () => {
    const v = addon!.uniform(7, "L0.router", 12345, 0.5);
    expect(addon!.uniform(7, "L0.router", 12345, 0.5)).toBe(v);
    expect(addon!.uniform(8, "L0.router", 12345, 0.5)).not.toBe(v);
    expect(addon!.uniform(7, "L0.w1", 12345, 0.5)).not.toBe(v);
    expect(addon!.uniform(7, "L0.router", 12346, 0.5)).not.toBe(v);
    let sum = 0;
    for (let i = 0; i < 4000; i++) {
      const x = addon!.uniform(3, "input", i, 1);
      expect(x).toBeGreaterThanOrEqual(-1);
      expect(x).toBeLessThan(1);
      sum += x;
    }
    expect(Math.abs(sum / 4000)).toBeLessThan(0.05);
  });
});

describe("--shrink keeps a job's structure at host size", () => {
  const job = (file: string, name?: string) => check(file).program.jobs.find((j) => name === undefined || j.name === name)!;

  it("keeps ESP over the node and EP over the rail (FSMoE's default layout)", () => {
    const s = shrink(job("examples/layer-sweep.moe", "layer_job")).job;
    expect([s.cluster.nodes, s.cluster.gpusPerNode]).toEqual([2, 4]);
    expect(s.parallel).toMatchObject({ tp: 4, esp: 4, ep: 2, edp: 1 });
    expect(s.model.hidden).toBeLessThanOrEqual(256);
    expect(s.model.dtype).toBe("fp32");
    expect(s.model.moe.router).toBe("softmax_topk");
  });

  it("keeps EP inside the node with expert replicas across nodes", () => {
    const src = layerJobSource({ nodes: 4, gpus: 8, experts: 16, parallel: "esp = 1, ep = 8" });
    const s = shrink(checkedJob(src)).job;
    expect(s.parallel).toMatchObject({ esp: 1, ep: 4, edp: 2 });
    expect(s.model.moe.experts % 4).toBe(0);
  });

  it("keeps EP over the world and the router's group limits", () => {
    const src = layerJobSource({ nodes: 8, gpus: 8, experts: 64, topK: 4, parallel: "esp = 1, ep = 64", router: "sigmoid", routerFields: "groups = 8, topk_groups = 2, route_scale = 2.5" });
    const s = shrink(checkedJob(src)).job;
    expect(s.parallel).toMatchObject({ esp: 1, ep: 8, edp: 1 });
    expect(s.model.moe.groups).toBe(4);
    expect(s.model.moe.topkGroups! * (s.model.moe.experts / s.model.moe.groups!)).toBeGreaterThanOrEqual(s.model.moe.topK);
    expect(s.model.moe.routeScale).toBe(2.5);
  });

  it("keeps a model's layer pattern in a few layers", () => {
    const s = shrink(job("examples/tiny.moe")).job;
    expect(s.model.layers).toBeLessThanOrEqual(4);
    expect(s.model.moeLayers).toEqual([1, 3]);
    expect(planFor(s, "fsmoe").plan).toBeDefined();
  });

  it("keeps grouped-query attention with key/value heads that split over tp", () => {
    const s = shrink(job("examples/mixtral-8x7b.moe")).job;
    const a = s.model.attention!;
    expect(a.kind).toBe("gqa");
    expect(a.kvHeads! % s.parallel.tp).toBe(0);
    expect(a.heads / a.kvHeads!).toBeGreaterThan(1);
    expect(a.headDim! * a.heads).toBeLessThanOrEqual(s.model.hidden);
  });
});

describe.skipIf(!addon)("fsmoec run --backend host", () => {
  it("replays a shrunk real job and verifies it against the reference", async () => {
    const r = await fsmoec("run", "examples/layer-sweep.moe", "--job", "layer_job", "--backend", "host", "--shrink", "--verify", "--iterations", "2");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/run layer_job \(auto\) on the host backend: 8 ranks/);
    expect(r.out).toMatch(/shrunk: ranks 6×8 → 2×4/);
    expect(r.out).toMatch(/verify: PASS — 32 tensors on 8 ranks/);
    expect(r.out).toMatch(/routing identical/);
  });

  it("runs a shrunk model job with every strategy (--schedule) and reports JSON", async () => {
    for (const s of ["deepspeed", "tutel", "fsmoe", "auto"]) {
      const r = await fsmoec("run", "examples/mixtral-6e.moe", "--shrink", "--verify", "--schedule", s, "--format", "json");
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      const j = JSON.parse(r.out) as { strategy: string; verify: { ok: boolean; tensors: { name: string }[] } };
      expect(j.strategy).toBe(s);
      expect(j.verify.ok).toBe(true);
      expect(j.verify.tensors.map((t) => t.name)).toContain("grad.L0.attention");
    }
  });

  it("runs tiny.moe as it is, in fp32, and verifies every strategy", async () => {
    for (const s of ["deepspeed", "tutel", "fsmoe", "auto"]) {
      const r = await fsmoec("run", "examples/tiny.moe", "--backend", "host", "--verify", "--schedule", s);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/note: dtype bf16 → fp32 \(the host backend computes in fp32\)/);
      expect(r.out).toMatch(/verify: PASS — 100 tensors on 4 ranks/);
    }
  });

  it("refuses a job too large for the host and points at --shrink", async () => {
    const r = await fsmoec("run", "examples/layer-sweep.moe", "--job", "layer_job");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/48 ranks; the host backend runs at most 8 \(use fsmoec run --shrink\)/);
  });

  it("replays a plan.json and writes a Chrome trace", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fsmoec-run-"));
    const { plan } = planFor(checkedJob(layerJobSource({ nodes: 2, gpus: 2 })), "fsmoe");
    writeFileSync(join(dir, "plan.json"), JSON.stringify(plan));
    const r = await fsmoec("run", join(dir, "plan.json"), "--iterations", "3", "--trace", join(dir, "trace.json"));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/3 iterations: [\d.]+ ms per iteration \(median\)/);
    const trace = JSON.parse(readFileSync(join(dir, "trace.json"), "utf8")) as { traceEvents: { ph: string; pid: number }[] };
    expect(trace.traceEvents.filter((e) => e.ph === "X").length).toBe(4 * plan!.ops.length);
  });

  it("rejects a truncated plan.json with the byte where it breaks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fsmoec-run-"));
    const { plan } = planFor(checkedJob(layerJobSource({})), "fsmoe");
    writeFileSync(join(dir, "plan.json"), JSON.stringify(plan).slice(0, 300));
    const r = await fsmoec("run", join(dir, "plan.json"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/rejects this plan: plan: malformed JSON: byte 300: /);
  });
});

describe("host profiling", () => {
  it("splits the executor's overhead into a cost per op and per hand-off, never negative", async () => {
    const { fitOverhead } = await import("../runtime/replay/profile.js");
    const jobs = [
      { ops: 28, handoffs: 20 },
      { ops: 62, handoffs: 70 },
      { ops: 54, handoffs: 30 },
    ];
    const exact = fitOverhead(jobs.map((j) => ({ ...j, overheadUs: 12 * j.ops + 5 * j.handoffs })));
    expect(exact.dispatchUs).toBeCloseTo(12, 9);
    expect(exact.handoffUs).toBeCloseTo(5, 9);
    // Overheads that fall with hand-offs: a cost per op alone, not a negative cost per hand-off.
    const alone = fitOverhead(jobs.map((j) => ({ ...j, overheadUs: 10 * j.ops - 2 * j.handoffs })));
    expect(alone.handoffUs).toBe(0);
    expect(alone.dispatchUs).toBeGreaterThan(0);
  });

  it("prices an op by the most specific line: its kind over its class", async () => {
    const { profileModel } = await import("../compiler/cost/profiles.js");
    const fallback = { name: "fallback", description: "", interference: 1, linear: () => ({ alphaUs: 1000, betaUs: 0 }) };
    const m = profileModel(
      {
        format: "fsmoe-profile/1",
        name: "p",
        description: "",
        entries: [
          { op: "dense_gemm", alphaUs: 1, betaUs: 0 },
          { op: "dense_gemm", kind: "attention", alphaUs: 2, betaUs: 0 },
          { op: "dense_gemm", kind: "attention", dir: "bwd", alphaUs: 3, betaUs: 0 },
        ],
        host: { cores: 2, dispatchUs: 5 },
      },
      fallback,
    );
    expect(m.linear({ cls: "dense_gemm", dir: "fwd" }).alphaUs).toBe(1);
    expect(m.linear({ cls: "dense_gemm", dir: "fwd", kind: "lm_head" }).alphaUs).toBe(1);
    expect(m.linear({ cls: "dense_gemm", dir: "fwd", kind: "attention" }).alphaUs).toBe(2);
    expect(m.linear({ cls: "dense_gemm", dir: "bwd", kind: "attention" }).alphaUs).toBe(3);
    expect(m.linear({ cls: "memory", dir: "fwd" }).alphaUs).toBe(1000);
    expect(m.sharedCores).toEqual({ cores: 2, dispatchUs: 5 });
  });

  it("fits α and β by least squares", async () => {
    const { fitLine } = await import("../runtime/replay/profile.js");
    const f = fitLine([1, 2, 4, 8, 16].map((n) => ({ n, us: 3 + 0.5 * n })));
    expect(f.alphaUs).toBeCloseTo(3, 9);
    expect(f.betaUs).toBeCloseTo(0.5, 9);
    expect(f.r2).toBeCloseTo(1, 9);
    // Never negative: a falling line is the mean weighted by 1/t², a negative intercept refits through the origin.
    const flat = fitLine([{ n: 1, us: 5 }, { n: 2, us: 4 }]);
    expect(flat.betaUs).toBe(0);
    expect(flat.alphaUs).toBeCloseTo((5 / 25 + 4 / 16) / (1 / 25 + 1 / 16), 12);
    // Relative errors: a large op that strays does not drag the small ops' line away from them.
    const mixed = fitLine([{ n: 1, us: 3.5 }, { n: 2, us: 4 }, { n: 4, us: 5 }, { n: 10_000, us: 7_000 }]);
    expect(Math.abs(mixed.alphaUs + mixed.betaUs - 3.5) / 3.5).toBeLessThan(0.1);
    expect(fitLine([{ n: 1, us: 0 }, { n: 2, us: 3 }]).alphaUs).toBe(0);
  });

  it.skipIf(!addon)("writes a profile the compiler reads", async () => {
    const { profileHost } = await import("../runtime/replay/profile.js");
    const { Profile } = await import("../compiler/cost/profiles.js");
    const { profile, fits, dispatchUs, handoffUs } = await profileHost({
      iterations: 2,
      specs: [{ hidden: 32, seqLen: 16 }, { hidden: 64, seqLen: 32, activation: "swiglu" }, { model: true, hidden: 32, seqLen: 16, parallel: "tp = 2, esp = 2, ep = 2, edp = 1" }],
    });
    expect(Profile.safeParse(profile).success).toBe(true);
    expect(new Set(fits.map((f) => f.op))).toEqual(new Set(["all_to_all", "all_gather", "reduce_scatter", "all_reduce", "expert_gemm", "dense_gemm", "memory"]));
    // The model job's dense ops get lines of their own kind; every line is non-negative.
    for (const kind of ["attention", "dense_ffn", "lm_head", "gate", "order", "iorder", "embed", "loss"]) expect(fits.some((f) => f.kind === kind)).toBe(true);
    for (const f of fits) expect(f.alphaUs >= 0 && f.betaUs >= 0).toBe(true);
    // The ranks share this machine's cores, and the executor's own cost per op was measured.
    expect(profile.host).toEqual({ cores: availableParallelism(), dispatchUs, handoffUs });
    expect(dispatchUs >= 0 && handoffUs >= 0 && dispatchUs + handoffUs > 0).toBe(true);
    // A cluster next to the file names it, and the compiler prices the plan with it.
    const dir = mkdtempSync(join(tmpdir(), "fsmoec-profile-"));
    writeFileSync(join(dir, "host.json"), JSON.stringify(profile));
    writeFileSync(join(dir, "job.moe"), layerJobSource({ profile: "host.json" }));
    const job = check(join(dir, "job.moe")).program.jobs[0]!;
    const { plan, diagnostics } = planFor(job, "fsmoe");
    expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    expect(plan!.costModel.name).toBe("host");
    // The run compares the measured iteration with the simulation under the profile's shared cores.
    const r = await fsmoec("run", join(dir, "job.moe"), "--iterations", "2", "--format", "json");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { simulatedIterationUs: number; predictedIterationUs: number };
    expect(out.simulatedIterationUs).toBeGreaterThanOrEqual(out.predictedIterationUs);
  });
});

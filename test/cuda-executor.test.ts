/**
 * The CUDA executor without a GPU (issue 6): fsmoe-replay built from the real executor
 * (native/src/cuda/backend.cc, gemm.cc, bench.cc, the dlopen shims) against a CPU stand-in of the
 * CUDA runtime (native/tools/mock/cuda_mock.cc: streams run in issue order, a capture records and
 * checks its fork/join shape, a graph launch replays) and CPU versions of the kernel launchers
 * (native/tools/mock/kernels_cpu.cc), and a stand-in libnccl.so.2 of one-rank communicators
 * (native/tools/mock/fake_nccl.cc). What it proves: the executor's scheduling, event waits,
 * loopback collectives, arena offsets, GEMM shapes and strides, expert row lists, taps, loss and
 * CUDA-graph capture and replay, and its NCCL calls (one rank), reproduce the host reference on every prepared case (fp32 within
 * 1e-4, bf16 GEMM operands within 2e-2); model jobs (embedding, MHA / GQA attention, dense FFN,
 * multi-head latent attention, shared experts, norms, LM head and the vocabulary-parallel loss, through
 * native/src/cuda/model_ops.cc and the CPU versions of dense_kernels.cuh in
 * native/tools/mock/dense_kernels_cpu.cc) too, MLA included; the profile sweep fits and predicts, the benchmarks run,
 * a hung NCCL case is stopped, and the GPU check's table renders. The addon (src/addon.cc) and
 * libfsmoe_runtime (src/capi/runtime.cc, the C API of generated code) are linked against the
 * same objects: runCuda's results are judged by verifyCuda and by `fsmoec run --backend cuda
 * --verify`, and an emitted plan.cu driven through the C API reproduces the host reference (and
 * one that disagrees with its plan.json is refused at the op). What it cannot prove: the
 * device kernels themselves (kernels.cu), real stream concurrency, and NCCL across processes,
 * which only GPUs run (scripts/gpu-check.sh).
 */
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { Profile } from "../compiler/cost/profiles.js";
import { loadAddon, type NativeAddon } from "../runtime/replay/addon.js";
import { planFor, verifyCuda } from "../runtime/replay/index.js";
import { program } from "../cli/main.js";
import { CASES, prepare } from "../scripts/gpu-prepare.js";
import { emitCuda } from "../codegen/cuda.js";
import { identifier } from "../codegen/common.js";
import { checkedJob, layerJobSource, modelJobSource, type ModelJobSpec } from "../runtime/replay/fixtures.js";

const run = promisify(execFile);
const CUDA_INCLUDE = ["/usr/local/cuda/include", process.env.CUDA_HOME ? `${process.env.CUDA_HOME}/include` : ""].find((d) => d && existsSync(join(d, "cuda_runtime.h")));
async function which(tool: string): Promise<string | undefined> {
  try {
    return (await run("sh", ["-c", `command -v ${tool}`])).stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}
const gxx = await which("g++");
const python = (await which("python3")) ?? (await which("python"));
const { addon } = loadAddon();
const skip = !gxx ? "g++ not found" : !CUDA_INCLUDE ? "no CUDA toolkit headers (cuda_runtime.h)" : !addon ? "the addon is not built (npm run build:native)" : "";
if (skip) console.log(`cuda-executor: ${skip}: skipping the mock-runtime tests of the CUDA executor`);

const NATIVE = resolve("native");
const PREPARED = resolve("scripts/gpu-check");

/** The host sources of the addon (CMakeLists.txt's FSMOEC_SOURCES), so this build follows the library. */
function hostSources(): string[] {
  const cmake = readFileSync(join(NATIVE, "CMakeLists.txt"), "utf8");
  const m = /set\(FSMOEC_SOURCES([^)]*)\)/.exec(cmake);
  if (!m) throw new Error("CMakeLists.txt has no FSMOEC_SOURCES");
  return m[1]!.split(/\s+/).filter((s) => s.endsWith(".cc")).map((s) => join(NATIVE, s));
}

let exe = "";
let fakeNccl = "";
/** The addon (src/addon.cc) linked against the same objects: runCuda on the CPU stand-in. */
let mockAddonPath = "";
/** libfsmoe_runtime (src/capi/runtime.cc, the C API of generated code) linked against the same objects. */
let capiLib = "";
const requireHere = createRequire(import.meta.url);
/** node-addon-api's and Node-API's headers, as cmake-js finds them. */
function napiIncludes(): string[] {
  return [join(requireHere.resolve("node-addon-api/package.json"), ".."), join(requireHere.resolve("node-api-headers/package.json"), "..", "include")];
}
interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}
async function mock(args: readonly string[], env: Record<string, string> = {}): Promise<Ran> {
  try {
    const r = await run(exe, args, { env: { ...process.env, ...env }, maxBuffer: 1 << 26, timeout: 300_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === "number" ? x.code : -1, stdout: x.stdout ?? "", stderr: x.stderr ?? "" };
  }
}

describe.skipIf(!!skip)("the CUDA executor on a CPU stand-in of the CUDA runtime", () => {
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "fsmoe-cuda-mock-"));
    const sources = [
      "tools/mock/cuda_mock.cc",
      "tools/mock/kernels_cpu.cc",
      "tools/mock/dense_kernels_cpu.cc",
      "src/cuda/backend.cc",
      "src/cuda/model_ops.cc",
      "src/cuda/gemm.cc",
      "src/cuda/bench.cc",
      "src/cuda/libs.cc",
      "src/cuda/bootstrap.cc",
      "tools/fsmoe-replay.cc",
      "tools/tensors.cc",
      "tools/predict.cc",
      "src/capi/runtime.cc",
    ].map((s) => join(NATIVE, s));
    // addon.cc last: the tool's objects and the addon's share everything else (-fPIC for the addon).
    const all = [...sources, ...hostSources(), join(NATIVE, "src/addon.cc")];
    const objects: string[] = [];
    let next = 0;
    await Promise.all(
      [0, 1].map(async () => {
        while (next < all.length) {
          const src = all[next++]!;
          const obj = join(dir, `${objects.length}-${basename(src)}.o`);
          objects.push(obj);
          const napi = src.endsWith("addon.cc") ? [...napiIncludes().flatMap((d) => ["-I", d]), "-DNAPI_VERSION=8", "-DNODE_ADDON_API_DISABLE_DEPRECATED", "-DNAPI_DISABLE_CPP_EXCEPTIONS"] : [];
          await run(gxx!, ["-std=c++17", "-O1", "-fPIC", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", "-I", CUDA_INCLUDE!, ...napi, "-c", src, "-o", obj], { maxBuffer: 1 << 24 });
        }
      }),
    );
    const isTool = (o: string) => /-(fsmoe-replay|tensors|predict)\.cc\.o$/.test(o);
    const isAddon = (o: string) => o.endsWith("-addon.cc.o");
    const isCapi = (o: string) => o.endsWith("-runtime.cc.o");
    exe = join(dir, "fsmoe-replay-mock");
    // -rdynamic: the fake NCCL library calls the mock runtime's cudaMemcpyAsync.
    await run(gxx!, ["-rdynamic", ...objects.filter((o) => !isAddon(o) && !isCapi(o)), "-ldl", "-lpthread", "-o", exe]);
    mockAddonPath = join(dir, "fsmoec_native_mock.node");
    await run(gxx!, ["-shared", ...objects.filter((o) => !isTool(o) && !isCapi(o)), "-ldl", "-lpthread", "-o", mockAddonPath]);
    capiLib = join(dir, "libfsmoe_runtime.so");
    await run(gxx!, ["-shared", "-Wl,--no-undefined", ...objects.filter((o) => !isAddon(o) && !/-(fsmoe-replay|predict)\.cc\.o$/.test(o)), "-ldl", "-lpthread", "-o", capiLib]);
    fakeNccl = join(dir, "libnccl-fake.so.2");
    await run(gxx!, ["-std=c++17", "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-I", CUDA_INCLUDE!, join(NATIVE, "tools/mock/fake_nccl.cc"), "-o", fakeNccl]);
  }, 600_000);

  it("reproduces the host reference on every prepared case, eager and from the CUDA graph; the NCCL case is skipped with the reason", async () => {
    const out = mkdtempSync(join(tmpdir(), "fsmoe-mock-suite-"));
    const r = await mock(["suite", join(PREPARED, "manifest.json"), "--no-sweep", "--no-bench", "--out", join(out, "gpu")]);
    expect([0, 1], r.stdout + r.stderr).toContain(r.code);
    const suite = JSON.parse(readFileSync(join(out, "gpu", "suite.json"), "utf8")) as {
      cases: { name: string; ok: boolean; precision: string; skipped?: string; comparison?: { maxRelError: number; routingMismatches: number; tolerance: number }; timing?: { graphIterations: number; graphUs: number } }[];
    };
    for (const c of suite.cases) {
      if (c.skipped) {
        expect(c.name).toMatch(/nccl/);
        expect(c.skipped).toMatch(/^NCCL unavailable: /);
        continue;
      }
      expect(c.ok, `${c.name}: ${JSON.stringify(c)}`).toBe(true);
      expect(c.comparison!.routingMismatches).toBe(0);
      expect(c.comparison!.maxRelError, c.name).toBeLessThan(c.precision === "bf16" ? 2e-2 : 1e-6);
      if (c.precision === "bf16") expect(c.comparison!.maxRelError, `${c.name}: bf16 operands change the numbers`).toBeGreaterThan(1e-5);
      expect(c.timing!.graphIterations).toBeGreaterThan(0);
    }
    expect(suite.cases.filter((c) => c.ok).length).toBeGreaterThanOrEqual(suite.cases.length - 1);
  });

  it("drives NCCL as the plan says (one-rank communicators of a stand-in libnccl.so.2 loaded from FSMOEC_NCCL_PATH), eager and captured", async () => {
    const out = mkdtempSync(join(tmpdir(), "fsmoe-mock-nccl-"));
    const r = await mock(["suite", join(PREPARED, "manifest.json"), "--no-sweep", "--no-bench", "--only", "one-rank,one-rank-nccl", "--out", out], { FSMOEC_NCCL_PATH: fakeNccl });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const suite = JSON.parse(readFileSync(join(out, "suite.json"), "utf8")) as { cases: { name: string; ok: boolean; commLibrary: string; comparison: { maxRelError: number } }[] };
    const nccl = suite.cases.find((c) => c.name === "one-rank-nccl")!;
    expect(nccl.ok).toBe(true);
    expect(nccl.commLibrary).toContain("NCCL 22703");
    expect(nccl.comparison.maxRelError).toBeLessThan(1e-6);
  });

  it("stops an NCCL case that hangs (in a child process, after the case's time limit) and goes on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fsmoe-mock-hang-"));
    const m = JSON.parse(readFileSync(join(PREPARED, "manifest.json"), "utf8")) as { cases: { name: string; plan: string; expected: string; timeoutMs?: number }[] };
    m.cases = m.cases.filter((c) => c.name === "one-rank-nccl" || c.name === "one-rank").map((c) => ({ ...c, plan: join(PREPARED, c.plan), expected: join(PREPARED, c.expected), timeoutMs: 1500 }));
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(m));
    const started = Date.now();
    const r = await mock(["suite", join(dir, "manifest.json"), "--no-sweep", "--no-bench", "--out", join(dir, "out")], { FSMOEC_NCCL_PATH: fakeNccl, FAKE_NCCL_HANG: "1" });
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(r.code).toBe(4);
    const suite = JSON.parse(readFileSync(join(dir, "out", "suite.json"), "utf8")) as { cases: { name: string; ok: boolean; error?: string }[] };
    expect(suite.cases.find((c) => c.name === "one-rank")!.ok).toBe(true);
    expect(suite.cases.find((c) => c.name === "one-rank-nccl")!.error).toMatch(/^timed out after 1\.5 s \(NCCL initialization or a collective hung/);
  });

  it("fits a profile on a sweep, predicts every plan's iteration, runs the benchmarks, and the check's table renders", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fsmoe-mock-prep-"));
    const sweep = [32, 64].flatMap((hidden) => [16, 48].map((seqLen) => ({ name: `tiny-h${hidden}-t${seqLen}`, spec: { nodes: 1, gpus: 1, hidden, expertHidden: 2 * hidden, seqLen, microBatch: 1, pipeline: "2" } })));
    await prepare(dir, { cases: CASES.slice(1, 2), sweep, router: [{ tokens: 128, hidden: 32, experts: 8, topK: 2, capacityFactor: 1.25 }], gemm: [{ m: 40, n: 24, k: 16, batch: 2, dtype: "bf16" }] });
    const out = mkdtempSync(join(tmpdir(), "fsmoe-mock-out-"));
    const r = await mock(["suite", join(dir, "manifest.json"), "--out", join(out, "gpu")]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const suite = JSON.parse(readFileSync(join(out, "gpu", "suite.json"), "utf8")) as {
      sweep: { name: string; measuredUs: number; predictedUs: number; opTimes: string }[];
      profile: { fits: { class: string; samples: number }[]; maxAbsRelError: number };
      router: { totalUs: number; capacity: number }[];
      gemm: { tflops: number; engine: string }[];
    };
    expect(suite.sweep.map((s) => s.name)).toEqual(sweep.map((s) => s.name));
    for (const s of suite.sweep) {
      expect(s.measuredUs).toBeGreaterThan(0);
      expect(s.predictedUs).toBeGreaterThan(0);
      expect(s.opTimes).toBe("graph");
    }
    expect(suite.profile.fits.map((f) => f.class)).toEqual(expect.arrayContaining(["gate.fwd", "expert.fwd.g2", "expert.bwd.g2", "order.fwd", "iorder.fwd", "prologue"]));
    // The profile file is one fsmoec can name.
    Profile.parse(JSON.parse(readFileSync(join(out, "gpu", "gpu-profile.json"), "utf8")));
    expect(suite.router[0]!.capacity).toBe(Math.ceil((1.25 * 128 * 2) / 8));
    expect(suite.router[0]!.totalUs).toBeGreaterThan(0);
    expect(suite.gemm[0]!.engine).toBe("built-in");
    if (!python) return console.log("cuda-executor: python not found: the table is not rendered");
    mkdirSync(join(out, "host"));
    writeFileSync(join(out, "host", "suite.json"), JSON.stringify({ ok: true, cases: [{ name: "x", ok: true }] }));
    writeFileSync(join(out, "info.json"), JSON.stringify({ device: true, deviceName: "mock", computeCapability: 90, smCount: 1 }));
    const table = await run(python, [resolve("scripts/gpu-check.py"), "table", out]).catch((e: { stdout: string; code: number }) => ({ stdout: e.stdout, code: e.code }));
    expect(table.stdout).toContain("fsmoe GPU check: mock (sm_90, 1 SMs)");
    expect(table.stdout).toMatch(/cuda vs host: fsmoe-esp-ep \(fp32, 4 ranks\) +max rel .* PASS/);
    expect(table.stdout).toMatch(/router\+order\+restore T=128 M=32 E=8 k=2 +ours .*no PyTorch timing.* SKIP/);
    expect(table.stdout).toMatch(/profile fit: predicted vs measured \(4 plans\)/);
    expect(table.stdout).toMatch(/iteration eager vs graph: fsmoe-esp-ep/);
  });

  it("says 'no CUDA device' when cudaGetDeviceCount fails", async () => {
    const r = await mock(["info"], { FSMOE_MOCK_NO_DEVICE: "1" });
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/device: +no CUDA device: cudaGetDeviceCount failed: cudaErrorInsufficientDriver/);
  });

  it("refuses a missing NCCL with the path tried", async () => {
    const manifest = JSON.parse(readFileSync(join(PREPARED, "manifest.json"), "utf8")) as { cases: { plan: string }[] };
    const n = await mock(["run", join(PREPARED, manifest.cases[0]!.plan), "--comm", "nccl"], { FSMOEC_NCCL_PATH: "/nonexistent/libnccl.so.2" });
    expect(n.code).toBe(3);
    expect(n.stderr).toContain("NCCL unavailable: cannot load $FSMOEC_NCCL_PATH (/nonexistent/libnccl.so.2");
  });

  it("runs model jobs through runCuda to the host reference: fsmoe and deepspeed, 4 ranks tp 2, MHA, GQA and MLA, fp32 and bf16, eager and from the CUDA graph", async () => {
    const mockAddon = loadAddon(mockAddonPath).addon as NativeAddon;
    const cases: readonly { schedule: "fsmoe" | "deepspeed"; spec: ModelJobSpec }[] = [
      { schedule: "fsmoe", spec: { nodes: 2, gpus: 2, sharedExperts: 1, microBatches: 2 } },
      { schedule: "deepspeed", spec: { nodes: 2, gpus: 2, attention: "heads = 4, kv_heads = 2, kind = gqa", recompute: "none" } },
      { schedule: "fsmoe", spec: { nodes: 2, gpus: 2, recompute: "full", activation: "swiglu", ffnActivation: "swiglu", router: "sigmoid" } },
      { schedule: "deepspeed", spec: { nodes: 2, gpus: 2, attention: "kind = mla, heads = 4, q_lora_rank = 16, kv_lora_rank = 12, qk_nope_dim = 8, rope_dim = 4, v_head_dim = 6" } },
    ];
    for (const c of cases) {
      const { plan, diagnostics } = planFor(checkedJob(modelJobSource({ ...c.spec, schedule: c.schedule })), c.schedule);
      if (!plan) throw new Error(diagnostics.map((d) => d.message).join("\n"));
      expect(plan.job.parallel.tp).toBe(2);
      const runs = [
        { precision: "fp32", graph: true },
        { precision: "fp32", graph: false },
        { precision: "bf16", graph: true },
      ] as const;
      // bf16: one MoE layer between dense ones (bf16 expert operands would flip a later MoE layer's routing decisions).
      const { plan: lowPlan } = planFor(checkedJob(modelJobSource({ ...c.spec, layers: 3, moeLayers: "[1]", schedule: c.schedule })), c.schedule);
      for (const o of runs) {
        const what = `${c.schedule} ${JSON.stringify(c.spec)} ${o.precision} ${o.graph ? "graph" : "eager"}`;
        const v = await verifyCuda(o.precision === "bf16" ? lowPlan! : plan, { ...o, iterations: 2 }, mockAddon);
        if ("error" in v) throw new Error(`${what}: ${v.error}`);
        expect(v.comparison.tensors.filter((t) => !t.ok).map((t) => `rank ${t.rank} ${t.name} ${t.relError}`), what).toEqual([]);
        expect(v.ok, what).toBe(true);
        expect(v.replay.timing.graphIterations, what).toBe(o.graph ? 2 : 0);
        expect(v.comparison.routing.every((r) => r.mismatches === 0 && r.decisions > 0), what).toBe(true);
        if (o.precision === "fp32") expect(v.comparison.maxRelError, what).toBeLessThan(1e-5);
        else expect(v.comparison.maxRelError, `${what}: bf16 expert operands change the numbers`).toBeGreaterThan(1e-5);
        const names = new Set(v.comparison.tensors.filter((t) => t.rank === 1).map((t) => t.name));
        const expected = ["logits.mb0", "loss.mb0", "grad.embedding", "grad.lm_head", "grad.final_norm", "grad.L0.attention", "grad.L0.attention_norm", "grad.L0.dense_ffn", "grad.L1.router", "grad.L1.expert", "grad.L1.ffn_norm"];
        if (c.spec.sharedExperts) expected.push("grad.L1.shared_expert", "logits.mb1", "loss.mb1");
        for (const n of expected) expect(names, `${what}: ${n}`).toContain(n);
      }
    }
  });

  it("runs a plan through the addon's runCuda and judges it against the host reference (fp32 1e-4, bf16 2e-2)", async () => {
    const mockAddon = loadAddon(mockAddonPath).addon as NativeAddon;
    expect(mockAddon.buildInfo().backends).toBe("host,cuda");
    expect(mockAddon.cudaDevice!()).toMatchObject({ compiled: true, ok: true });
    const plan = readFileSync(join(PREPARED, "cases", "fsmoe-esp-ep.plan.json"), "utf8");
    const fp32 = await verifyCuda(plan, { iterations: 2 }, mockAddon);
    if ("error" in fp32) throw new Error(fp32.error);
    expect(fp32.ok).toBe(true);
    expect(fp32.comparison.tolerance).toBe(1e-4);
    expect(fp32.replay.ranksHere).toEqual([0, 1, 2, 3]);
    expect(fp32.replay.comm).toMatch(/^loopback/);
    expect(fp32.replay.timing.graphIterations).toBe(2);
    expect(fp32.comparison.tensors.length).toBeGreaterThanOrEqual(4 * 3);
    expect(fp32.comparison.routing.every((r) => r.mismatches === 0 && r.decisions > 0)).toBe(true);
    expect(fp32.comparison.maxRelError).toBeLessThan(1e-6);
    const bf16 = await verifyCuda(plan, { precision: "bf16", graph: false }, mockAddon);
    if ("error" in bf16) throw new Error(bf16.error);
    expect(bf16.ok).toBe(true);
    expect(bf16.comparison.tolerance).toBe(2e-2);
    expect(bf16.comparison.maxRelError, "bf16 operands change the numbers").toBeGreaterThan(1e-5);
    expect(bf16.replay.timing.graphIterations).toBe(0);
  });

  it("fsmoec run --backend cuda --verify passes through the addon ($FSMOEC_ADDON_PATH), and says 'no CUDA device' with exit 3 when there is none", async () => {
    const saved = { addon: process.env.FSMOEC_ADDON_PATH, noDevice: process.env.FSMOE_MOCK_NO_DEVICE, exitCode: process.exitCode };
    const cli = async (...argv: string[]) => {
      let out = "";
      let err = "";
      let code = 0;
      await program({ out: (x) => (out += x), err: (x) => (err += x) }, (c) => (code = c)).exitOverride().parseAsync(argv, { from: "user" });
      return { code, out, err };
    };
    const plan = join(PREPARED, "cases", "tutel-gshard-swiglu.plan.json");
    try {
      process.env.FSMOEC_ADDON_PATH = mockAddonPath;
      const ok = await cli("run", plan, "--backend", "cuda", "--verify", "--precision", "bf16");
      expect(ok.code, ok.err).toBe(0);
      expect(ok.out).toMatch(/on the cuda backend: 4 ranks/);
      expect(ok.out).toMatch(/cuda: .*; bf16; GEMM built-in; comm loopback/);
      expect(ok.out).toMatch(/verify: PASS .*\(tolerance 2e-2\); routing identical/);
      const json = await cli("run", plan, "--backend", "cuda", "--verify", "--format", "json");
      expect(json.code, json.err).toBe(0);
      const report = JSON.parse(json.out) as { backend: string; verify: { ok: boolean; tolerance: number }; cuda: { precision: string; timing: { graphIterations: number } } };
      expect(report).toMatchObject({ backend: "cuda", verify: { ok: true, tolerance: 1e-4 }, cuda: { precision: "fp32", timing: { graphIterations: 1 } } });
      process.env.FSMOE_MOCK_NO_DEVICE = "1";
      const none = await cli("run", plan, "--backend", "cuda", "--verify");
      expect(none.code).toBe(3);
      expect(none.err).toMatch(/^fsmoec: error: no CUDA device: cudaGetDeviceCount failed: cudaErrorInsufficientDriver/);
    } finally {
      for (const [k, v] of [["FSMOEC_ADDON_PATH", saved.addon], ["FSMOE_MOCK_NO_DEVICE", saved.noDevice]] as const) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
      process.exitCode = saved.exitCode;
    }
  });

  it("an emitted plan.cu linked against libfsmoe_runtime runs the plan (a layer job and a model job): the same tensors as the host reference; a plan.json of another job, a missing device and a failing op are reported", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fsmoe-capi-"));
    // Two one-rank layer jobs of different sizes (the C API runs one rank per process; more ranks need NCCL across processes).
    const planOf = (hidden: number) => {
      const source = layerJobSource({ nodes: 1, gpus: 1, hidden, expertHidden: 2 * hidden, experts: 4, topK: 2, seqLen: 24, microBatches: 2, activation: "swiglu", parallel: "esp = 1, ep = 1", pipeline: "2" });
      const { plan, diagnostics } = planFor(checkedJob(source), "fsmoe");
      if (!plan) throw new Error(diagnostics.map((d) => d.message).join("\n"));
      return plan;
    };
    const plan = planOf(32);
    const other = planOf(48);
    writeFileSync(join(dir, "plan.json"), JSON.stringify(plan));
    writeFileSync(join(dir, "other.json"), JSON.stringify(other));
    writeFileSync(join(dir, "plan.cu"), emitCuda(plan));
    const fn = `fsmoe_plan_${identifier(plan.job.name)}`;
    writeFileSync(
      join(dir, "main.cc"),
      `#include "fsmoe_runtime_cuda.h"
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
extern "C" fsmoe_status ${fn}(fsmoe_rt* rt, int32_t rank, int32_t* failed_op);
// main PLAN_JSON OUT ITERATIONS: create the runtime, issue ITERATIONS iterations, write the last one's tensors.
int main(int argc, char** argv) {
  if (argc != 4) return 2;
  std::ifstream f(argv[1]);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  fsmoe_rt* rt = nullptr;
  fsmoe_status st = fsmoe_cuda_create(text.data(), text.size(), nullptr, &rt);
  if (st != FSMOE_OK) {
    std::printf("create: %s: %s\\n", fsmoe_status_name(st), fsmoe_cuda_error(rt));
    fsmoe_cuda_destroy(rt);
    return 3;
  }
  for (int i = 0; i < std::atoi(argv[3]); i++) {
    int32_t failed = -1;
    st = ${fn}(rt, fsmoe_cuda_rank(rt), &failed);
    if (st != FSMOE_OK) {
      std::printf("iteration %d: %s at op %d: %s\\n", i, fsmoe_status_name(st), failed, fsmoe_cuda_error(rt));
      fsmoe_cuda_destroy(rt);
      return 4;
    }
  }
  st = fsmoe_cuda_synchronize(rt);
  if (st == FSMOE_OK) st = fsmoe_cuda_write_results(rt, argv[2]);
  if (st != FSMOE_OK) std::printf("results: %s: %s\\n", fsmoe_status_name(st), fsmoe_cuda_error(rt));
  fsmoe_cuda_destroy(rt);
  return st == FSMOE_OK ? 0 : 5;
}
`,
    );
    // A generated file whose gate op reads another byte range than plan.json says.
    const gate = plan.ops.find((o) => o.kind === "gate")!;
    const skewed = { ...plan, ops: plan.ops.map((o) => (o.id === gate.id ? { ...o, accesses: o.accesses.map((a, i) => (i === 0 ? { ...a, offset: a.offset + 4 } : a)) } : o)) } as typeof plan;
    writeFileSync(join(dir, "skewed.cu"), emitCuda(skewed));
    const link = (cu: string, out: string) =>
      run(gxx!, ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-x", "c++", "-I", join(NATIVE, "include"), join(dir, cu), "-x", "none", join(dir, "main.cc"), capiLib, `-Wl,-rpath,${join(capiLib, "..")}`, "-o", join(dir, out)]);
    await Promise.all([link("plan.cu", "driver"), link("skewed.cu", "skewed")]);
    const driver = join(dir, "driver");
    const skewedRun = await run(join(dir, "skewed"), [join(dir, "plan.json"), join(dir, "skewed.tensors"), "1"]).then(() => ({ code: 0, stdout: "" }), (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }));
    expect(skewedRun.code).toBe(4);
    expect(skewedRun.stdout).toContain(`FSMOE_ERROR_MISMATCH at op ${gate.id} in fsmoe_launch_gate(`);
    expect(skewedRun.stdout).toMatch(new RegExp(`op ${gate.id} range 0 is not plan.json's \\(offset \\d+, \\d+ bytes\\)`));
    const drive = (planFile: string, iterations: number, env: Record<string, string> = {}) => run(driver, [planFile, join(dir, "out.tensors"), String(iterations)], { env: { ...process.env, ...env } }).then(() => ({ code: 0, stdout: "" }), (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }));
    // Two iterations: the second starts from zeroed gradients again, so it reproduces one iteration of the reference.
    const ok = await drive(join(dir, "plan.json"), 2);
    expect(ok.code, ok.stdout).toBe(0);
    const ref = await mock(["reference", join(dir, "plan.json"), "--write", join(dir, "ref.tensors")]);
    expect(ref.code, ref.stderr).toBe(0);
    const cmp = await mock(["compare", join(dir, "out.tensors"), join(dir, "ref.tensors"), "--tolerance", "1e-6"]);
    expect(cmp.code, cmp.stdout + cmp.stderr).toBe(0);
    console.log(`cuda-executor: plan.cu on libfsmoe_runtime vs the host reference: ${cmp.stdout.trim().split("\n").pop()}`);
    expect(cmp.stdout).toMatch(/MATCH: \d+ tensors, .* 0\/\d+ routing decisions differ/);
    // The runtime checks the generated file against plan.json before issuing anything.
    const wrong = await drive(join(dir, "other.json"), 1);
    expect(wrong.code).toBe(4);
    expect(wrong.stdout).toMatch(/FSMOE_ERROR_MISMATCH outside any op in fsmoe_plan_begin\(rt, &kPlan, rank\): the generated plan does not match plan.json: arena of \d+ bytes vs \d+/);
    const none = await drive(join(dir, "plan.json"), 1, { FSMOE_MOCK_NO_DEVICE: "1" });
    expect(none.code).toBe(3);
    expect(none.stdout).toMatch(/^create: FSMOE_ERROR_UNAVAILABLE: no CUDA device: cudaGetDeviceCount failed/);
    // A one-rank model job (embedding, attention, dense FFN, MoE, LM head, loss) through the same C API: the generated function has the same name.
    const { plan: model, diagnostics } = planFor(checkedJob(modelJobSource({ nodes: 1, gpus: 1, sharedExperts: 1 })), "fsmoe");
    if (!model) throw new Error(diagnostics.map((d) => d.message).join("\n"));
    expect(identifier(model.job.name)).toBe(identifier(plan.job.name));
    writeFileSync(join(dir, "model.json"), JSON.stringify(model));
    writeFileSync(join(dir, "model.cu"), emitCuda(model));
    await link("model.cu", "model-driver");
    const ran = await run(join(dir, "model-driver"), [join(dir, "model.json"), join(dir, "model.tensors"), "2"]).then(() => ({ code: 0, stdout: "" }), (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }));
    expect(ran.code, ran.stdout).toBe(0);
    expect((await mock(["reference", join(dir, "model.json"), "--write", join(dir, "model-ref.tensors")])).code).toBe(0);
    const mcmp = await mock(["compare", join(dir, "model.tensors"), join(dir, "model-ref.tensors"), "--tolerance", "1e-5"]);
    expect(mcmp.code, mcmp.stdout + mcmp.stderr).toBe(0);
    expect(mcmp.stdout).toMatch(/MATCH: \d+ tensors/);
    console.log(`cuda-executor: a model job's plan.cu on libfsmoe_runtime vs the host reference: ${mcmp.stdout.trim().split("\n").pop()}`);
  });
});

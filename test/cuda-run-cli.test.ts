/**
 * `fsmoec run --backend cuda` through the addon on whatever machine runs the tests: without a
 * device (or in a build without nvcc) the run stops with "no CUDA device: …" and exit code 3,
 * never a crash; with one, a small layer job verifies against the host reference. The addon's
 * build info names its backends, and --precision is refused for the host backend. The CPU
 * stand-in of the CUDA runtime drives the same path to a verdict in test/cuda-executor.test.ts.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliAsync } from "./cli.js";
import { checkedJob, layerJobSource } from "../runtime/replay/fixtures.js";
import { isNoDevice, loadAddon, planFor, replayCuda } from "../runtime/replay/index.js";

const { addon, error } = loadAddon();
if (!addon) console.warn(`cuda run CLI tests skipped: ${error}`);

/** Run the CLI in-process and wait for the asynchronous run command. */
const fsmoec = cliAsync;

/** A small layer job's plan (2 ranks, expert and sequence parallel), written to a temporary plan.json. */
function layerPlanFile(): string {
  const job = checkedJob(layerJobSource({ nodes: 1, gpus: 2, hidden: 32, expertHidden: 64, seqLen: 16, parallel: "esp = 2, ep = 1" }));
  const { plan, diagnostics } = planFor(job, "fsmoe");
  if (!plan) throw new Error(diagnostics.map((d) => d.message).join("\n"));
  const file = join(mkdtempSync(join(tmpdir(), "fsmoe-cuda-cli-")), "layer.plan.json");
  writeFileSync(file, JSON.stringify(plan));
  return file;
}

describe.skipIf(!addon)("fsmoec run --backend cuda", () => {
  const device = addon?.cudaDevice?.();

  it("the addon says which backends it has and whether a device is here", () => {
    const info = addon!.buildInfo();
    expect(info.backends).toBe(info.cuda ? "host,cuda" : "host");
    expect(device, "the addon predates runCuda: rebuild it").toBeDefined();
    expect(device!.compiled).toBe(info.cuda);
    if (!device!.ok) expect(device!.error).toMatch(/^no CUDA device: /);
  });

  it.skipIf(!!device?.ok)("without a device: 'no CUDA device' and exit code 3, verified or not, for a layer job and a model job", async () => {
    const plan = layerPlanFile();
    for (const args of [[plan], [plan, "--verify", "--precision", "bf16"], ["examples/tiny.moe", "--shrink", "--verify"]]) {
      const r = await fsmoec("run", ...args, "--backend", "cuda");
      expect(r.code, r.err).toBe(3);
      expect(r.err).toMatch(/^fsmoec: error: no CUDA device: \S/);
      expect(r.out).toBe("");
    }
    const direct = await replayCuda(JSON.stringify({}), {}, addon!);
    expect(direct.ok).toBe(false);
    // A plan the loader rejects is reported as such, before any device is looked for.
    if (!direct.ok) expect(isNoDevice(direct.error)).toBe(false);
  });

  it.skipIf(!device?.ok)("with a device: a small layer job verifies against the host reference", async () => {
    const r = await fsmoec("run", layerPlanFile(), "--backend", "cuda", "--verify", "--iterations", "3");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/on the cuda backend/);
    expect(r.out).toMatch(/verify: PASS .*tolerance 1e-4/);
  });

  it("refuses --precision bf16 on the host backend (usage, exit 2) and bad options in the addon", async () => {
    const r = await fsmoec("run", "examples/tiny.moe", "--shrink", "--precision", "bf16");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--precision bf16 needs --backend cuda/);
    const bad = await addon!.runCuda!("{}", JSON.stringify({ precision: "fp16" }));
    expect(bad).toEqual({ ok: false, error: "options.precision: expected one of fp32, bf16" });
    const host = await addon!.runCuda!("{}", JSON.stringify({ emptyKernels: true }));
    expect(host.ok).toBe(false);
    if (!host.ok) expect(host.error).toMatch(/host-backend options/);
  });
});

/**
 * The CUDA backend's standalone tool on any machine (issue 6): fsmoe-replay, built by
 * `npm run build:native` from the runtime's sources and, where nvcc exists, the CUDA backend.
 * Without a GPU every CUDA entry point says "no CUDA device" (exit 3) and the dlopen shims say
 * "NCCL unavailable" / "cuBLAS unavailable" with what they tried; the prepared folder the GPU
 * check consumes (scripts/gpu-check/) matches the host backend and the addon's current
 * reference; the fsmoe-tensors/1 format round-trips between TS and C++; and the TCP rendezvous
 * of torchrun-style variables gathers, refuses mismatches and times out with messages.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { reference } from "../runtime/replay/index.js";
import { loadAddon } from "../runtime/replay/addon.js";
import { decodeTensors, encodeTensors, MANIFEST_FORMAT } from "../scripts/gpu-prepare.js";

const TOOL = resolve("native/build/Release/fsmoe-replay");
const PREPARED = resolve("scripts/gpu-check");
const haveTool = existsSync(TOOL);
if (!haveTool) console.log(`cuda-tools: ${TOOL} is not built (run \`npm run build:native\`): skipping the tool's tests`);
const { addon } = loadAddon();

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the tool; never rejects (the exit code is part of the answer). */
function tool(args: readonly string[], env: Record<string, string | undefined> = {}, timeout = 120_000): Promise<Ran> {
  return new Promise((done) => {
    execFile(TOOL, args, { env: { ...process.env, ...env }, timeout, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === "number" ? ((error as { code: number }).code) : -1) : 0;
      done({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** A TCP port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

/** Processes of a rendezvous, started together. */
function ranks(envs: readonly Record<string, string>[], args: readonly string[] = []): Promise<Ran[]> {
  return Promise.all(
    envs.map(
      (env) =>
        new Promise<Ran>((done) => {
          const p = spawn(TOOL, ["rendezvous", ...args], { env: { ...process.env, RANK: undefined, WORLD_SIZE: undefined, ...env } });
          let stdout = "";
          let stderr = "";
          p.stdout.on("data", (d) => (stdout += d));
          p.stderr.on("data", (d) => (stderr += d));
          p.on("close", (code) => done({ code: code ?? -1, stdout, stderr }));
        }),
    ),
  );
}

const manifest = JSON.parse(readFileSync(join(PREPARED, "manifest.json"), "utf8")) as {
  format: string;
  cases: { name: string; plan: string; expected: string; precision: string; comm: string; tolerance: number }[];
  sweep: { name: string; plan: string }[];
};

describe("the prepared folder of the GPU check", () => {
  it("is an fsmoe-gpu-check/1 manifest of small cases (fp32 1e-4, bf16 2e-2, one rank, NCCL and four ranks) and a sweep, under 2 MB", () => {
    expect(manifest.format).toBe(MANIFEST_FORMAT);
    expect(manifest.cases.length).toBeGreaterThanOrEqual(6);
    for (const c of manifest.cases) {
      expect(existsSync(join(PREPARED, c.plan)), c.plan).toBe(true);
      expect(existsSync(join(PREPARED, c.expected)), c.expected).toBe(true);
      expect(c.tolerance).toBe(c.precision === "bf16" ? 2e-2 : 1e-4);
    }
    expect(manifest.cases.some((c) => c.comm === "nccl")).toBe(true);
    expect(manifest.cases.some((c) => c.precision === "bf16")).toBe(true);
    expect(manifest.sweep.length).toBeGreaterThanOrEqual(6);
    const bytes = [...new Set([...manifest.cases.flatMap((c) => [c.plan, c.expected]), ...manifest.sweep.map((s) => s.plan)])].reduce((s, f) => s + readFileSync(join(PREPARED, f)).length, 0);
    expect(bytes).toBeLessThan(2 * 1024 * 1024);
  });

  it.skipIf(!addon)("holds the references the addon computes today (else rerun `npx tsx scripts/gpu-prepare.ts`)", async () => {
    for (const file of [...new Set(manifest.cases.map((c) => c.plan))]) {
      const c = manifest.cases.find((x) => x.plan === file)!;
      const ref = await reference(readFileSync(join(PREPARED, file), "utf8"));
      if (!ref.ok) throw new Error(ref.error);
      const stored = decodeTensors(readFileSync(join(PREPARED, c.expected)));
      expect(stored.length, c.name).toBe(ref.ranks.length);
      stored.forEach((r, i) => {
        const want = ref.ranks[i]!;
        expect(r.loss, `${c.name} rank ${i} loss: the prepared folder is stale; rerun npx tsx scripts/gpu-prepare.ts`).toBe(want.loss);
        expect(Object.keys(r.tensors).sort()).toEqual(Object.keys(want.tensors).sort());
        for (const [name, a] of Object.entries(want.tensors)) expect(Buffer.from(r.tensors[name]!.buffer).equals(Buffer.from(a.buffer, a.byteOffset, a.byteLength)), `${c.name} rank ${i} ${name}`).toBe(true);
        for (const [name, a] of Object.entries(want.ints)) expect([...r.ints[name]!], `${c.name} rank ${i} ${name}`).toEqual([...a]);
      });
    }
  });

  it("round-trips fsmoe-tensors/1 in TS", () => {
    const ranks = [{ loss: 1.5, lossScale: 3, tensors: { a: new Float32Array([1, -2, 3.25]) }, ints: { r: new Int32Array([0, 1, -1, 2]) } }];
    const back = decodeTensors(encodeTensors(ranks, [3]));
    expect(back[0]!.rank).toBe(3);
    expect([...back[0]!.tensors.a!]).toEqual([1, -2, 3.25]);
    expect([...back[0]!.ints.r!]).toEqual([0, 1, -1, 2]);
  });
});

describe.skipIf(!haveTool)("fsmoe-replay on this machine", () => {
  it("reports the device, cuBLAS, NCCL and the bootstrap; without a GPU it says 'no CUDA device' and exits 3", async () => {
    const r = await tool(["info", "--json", join(mkdtempSync(join(tmpdir(), "fsmoe-info-")), "info.json")]);
    expect(r.stdout).toMatch(/build: +(CUDA backend compiled in|host backend only)/);
    expect(r.stdout).toMatch(/cuBLAS: +(available|cuBLAS unavailable: )/);
    expect(r.stdout).toMatch(/NCCL: +(available|NCCL unavailable: )/);
    if (r.code === 3) {
      console.log("cuda-tools: no CUDA device here: the GPU paths are checked for their messages only");
      expect(r.stdout).toMatch(/device: +no CUDA device: /);
    } else {
      expect(r.code).toBe(0);
    }
  });

  it("names the library path it was given when NCCL or cuBLAS cannot be used", async () => {
    const r = await tool(["info"], { FSMOEC_NCCL_PATH: "/nonexistent/libnccl.so.2", FSMOEC_CUBLAS_PATH: "libm.so.6" });
    expect(r.stdout).toContain("NCCL unavailable: cannot load $FSMOEC_NCCL_PATH (/nonexistent/libnccl.so.2: cannot open shared object file");
    expect(r.stdout).toMatch(/cuBLAS unavailable: libm\.so\.6 lacks an entry point: symbol cublasCreate_v2 not found/);
  });

  it("reads the bootstrap from torchrun's or an MPI launcher's variables", async () => {
    const t = await tool(["info"], { RANK: "1", WORLD_SIZE: "4", LOCAL_RANK: "1", MASTER_ADDR: "10.0.0.1", MASTER_PORT: "1234" });
    expect(t.stdout).toContain("bootstrap: torchrun, rank 1 of 4, rendezvous 10.0.0.1:1234");
    const m = await tool(["info"], { RANK: undefined, OMPI_COMM_WORLD_RANK: "2", OMPI_COMM_WORLD_SIZE: "3" });
    expect(m.stdout).toContain("bootstrap: Open MPI, rank 2 of 3, rendezvous 127.0.0.1:29500");
    const bad = await tool(["info"], { RANK: "x", WORLD_SIZE: "2" });
    expect(bad.stdout).toContain("RANK='x' is not a whole number");
  });

  it("fails cleanly without a GPU: run, benchmarks and the GPU suite exit 3 with 'no CUDA device', never a crash", async () => {
    const probe = await tool(["info"]);
    if (probe.code !== 3) return console.log("cuda-tools: a GPU is present; the no-device messages are not checked");
    const c = manifest.cases[0]!;
    const out = mkdtempSync(join(tmpdir(), "fsmoe-nodev-"));
    for (const args of [
      ["run", join(PREPARED, c.plan), "--expected", join(PREPARED, c.expected)],
      ["bench-router"],
      ["bench-gemm"],
      ["suite", join(PREPARED, "manifest.json"), "--out", out],
    ]) {
      const r = await tool(args);
      expect(r.code, args.join(" ")).toBe(3);
      expect(r.stderr, args.join(" ")).toMatch(/^fsmoe-replay: no CUDA device: /m);
    }
    expect(JSON.parse(readFileSync(join(out, "suite.json"), "utf8"))).toMatchObject({ ok: false, unavailable: true });
  });

  it("replays every prepared case on the host backend within tolerance of its reference", async () => {
    const out = mkdtempSync(join(tmpdir(), "fsmoe-host-suite-"));
    const r = await tool(["suite", join(PREPARED, "manifest.json"), "--backend", "host", "--no-sweep", "--out", out]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const suite = JSON.parse(readFileSync(join(out, "suite.json"), "utf8")) as { ok: boolean; cases: { name: string; ok: boolean; comparison: { maxRelError: number } }[] };
    expect(suite.ok).toBe(true);
    expect(suite.cases.map((c) => c.name)).toEqual(manifest.cases.map((c) => c.name));
    for (const c of suite.cases) expect(c.comparison.maxRelError, c.name).toBeLessThan(1e-5);
  });

  it("writes the same fsmoe-tensors/1 bytes' meaning as TS: the tool's reference equals the addon's exactly, and a changed value is a mismatch", async () => {
    const c = manifest.cases.find((x) => x.name === "fsmoe-esp-ep")!;
    const dir = mkdtempSync(join(tmpdir(), "fsmoe-ref-"));
    const mine = join(dir, "ref.bin");
    const w = await tool(["reference", join(PREPARED, c.plan), "--write", mine]);
    expect(w.code, w.stderr).toBe(0);
    expect((await tool(["compare", mine, join(PREPARED, c.expected), "--tolerance", "0"])).code).toBe(0);
    const ranks = decodeTensors(readFileSync(mine));
    const t = ranks[1]!.tensors["out.mb0"]!;
    t[5] = t[5]! + 1;
    writeFileSync(join(dir, "bad.bin"), encodeTensors(ranks, ranks.map((r) => r.rank)));
    const bad = await tool(["compare", join(dir, "bad.bin"), join(PREPARED, c.expected)]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/rank 1 out\.mb0 +rel\. error .* > 0\.0001/);
    expect(bad.stdout).toContain("MISMATCH");
  });

  it("gathers every rank's payload over the TCP rendezvous of RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT", async () => {
    const port = String(await freePort());
    const base = { WORLD_SIZE: "3", MASTER_ADDR: "127.0.0.1", MASTER_PORT: port };
    const out = await ranks([2, 0, 1].map((r) => ({ ...base, RANK: String(r) })));
    for (const r of out) {
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ source: "torchrun", world: 3, payloads: ["rank0", "rank1", "rank2"] });
    }
  });

  it("refuses a rank that disagrees on the world size, and names the missing rank after the timeout", async () => {
    const port = String(await freePort());
    const bad = await ranks([
      { RANK: "0", WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", MASTER_PORT: port },
      { RANK: "1", WORLD_SIZE: "3", MASTER_ADDR: "127.0.0.1", MASTER_PORT: port },
    ], ["--timeout-ms", "10000"]);
    for (const r of bad) {
      expect(r.code).toBe(4);
      expect(r.stderr).toContain("rank 1 says the world has 3 ranks; rank 0 says 2");
    }
    const alone = await ranks([{ RANK: "0", WORLD_SIZE: "3", MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(await freePort()) }], ["--timeout-ms", "400"]);
    expect(alone[0]!.code).toBe(4);
    expect(alone[0]!.stderr).toContain("timed out after 400 ms waiting for ranks 1, 2");
    const orphan = await ranks([{ RANK: "1", WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(await freePort()) }], ["--timeout-ms", "400"]);
    expect(orphan[0]!.code).toBe(4);
    expect(orphan[0]!.stderr).toMatch(/timed out after 400 ms connecting to rank 0 \(connect: Connection refused\)/);
  });
});

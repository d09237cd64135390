/**
 * Ranks as MPI processes (ARCHITECTURE.md, "Runtime"; native/README.md, "Transports"): under
 * `mpirun -np W`, `fsmoec run --verify` replays each rank in its own process with the same
 * executor and verifies every strategy; a wrong process count and a rank that skips a collective
 * end with a clear message and a non-zero exit, never a hang. The mpirun tests skip (saying why)
 * where mpirun is missing or the addon was built without MPI; combining the processes' reports
 * is tested everywhere.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { check } from "../compiler/check/check.js";
import { loadAddon, planFor, TOLERANCE } from "../runtime/replay/index.js";
import { combine } from "../runtime/replay/mpi.js";

const { addon } = loadAddon();
const hasMpirun = spawnSync("mpirun", ["--version"], { encoding: "utf8" }).status === 0;
const skipReason = !addon ? "the native addon is not built" : !addon.buildInfo().mpi ? "the native addon was built without MPI" : !hasMpirun ? "mpirun is not installed" : "";
if (skipReason) console.log(`MPI replay tests skipped: ${skipReason}`);

/** `mpirun -np N ./bin/fsmoec …`: exit status, output, and the seconds it took. */
function mpirun(np: number, ...args: string[]): { status: number | null; out: string; err: string; seconds: number } {
  const t0 = Date.now();
  const r = spawnSync("mpirun", ["-np", String(np), "--oversubscribe", "--bind-to", "none", "./bin/fsmoec", ...args], {
    encoding: "utf8",
    timeout: 90_000,
    // Root may run mpirun only when it says so (CI containers run as root).
    env: { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: "1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1", OMPI_MCA_rmaps_base_oversubscribe: "1" },
  });
  return { status: r.status, out: r.stdout ?? "", err: r.stderr ?? "", seconds: (Date.now() - t0) / 1000 };
}

function maxError(out: string): number {
  const m = /max ‖x − ref‖\/‖ref‖ = ([0-9.e+-]+)/.exec(out);
  return m ? Number(m[1]) : Infinity;
}

describe.skipIf(skipReason !== "")("fsmoec run under mpirun", () => {
  for (const strategy of ["deepspeed", "tutel", "fsmoe", "auto"])
    it(`verifies tiny.moe with ${strategy} on 4 MPI processes`, () => {
      const r = mpirun(4, "run", "examples/tiny.moe", "--backend", "host", "--verify", "--schedule", strategy);
      expect(r.err).not.toMatch(/error/i);
      expect(r.status).toBe(0);
      expect(r.out).toMatch(new RegExp(`run tiny_job \\(${strategy}\\) on the host backend: 4 MPI processes`));
      // Rank 0 alone prints the one combined report, covering all four ranks.
      expect(r.out.match(/verify:/g)).toHaveLength(1);
      expect(r.out).toMatch(/verify: PASS — \d+ tensors on 4 ranks/);
      expect(r.out).toMatch(/routing identical/);
      expect(maxError(r.out)).toBeLessThanOrEqual(TOLERANCE);
    }, 120_000);

  it("verifies the shrunk mixtral-8x7b on 8 MPI processes", () => {
    const r = mpirun(8, "run", "examples/mixtral-8x7b.moe", "--backend", "host", "--verify", "--shrink");
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/8 MPI processes/);
    expect(r.out).toMatch(/verify: PASS — \d+ tensors on 8 ranks/);
    expect(maxError(r.out)).toBeLessThanOrEqual(TOLERANCE);
  }, 120_000);

  it("rejects a process count that is not the job's world size, naming both", () => {
    const r = mpirun(2, "run", "examples/tiny.moe", "--backend", "host", "--verify");
    expect(r.status).not.toBe(0);
    expect(r.err).toMatch(/this job has 4 ranks but mpirun started 2 processes; run it with mpirun -np 4/);
    expect(r.out).not.toMatch(/verify:/);
  }, 120_000);

  it("ends a run whose rank skips a collective with a timeout naming the op, stream and rank", () => {
    // The plan `fsmoec run` replays: tiny.moe in fp32 with fsmoe; rank 0 skips its last collective.
    const checked = check("examples/tiny.moe");
    const job = checked.program.jobs[0]!;
    const { plan } = planFor({ ...job, model: { ...job.model, dtype: "fp32" } }, "fsmoe");
    const last = [...plan!.ops].reverse().find((o) => ["all_to_all", "all_gather", "reduce_scatter", "all_reduce"].includes(o.kind))!;
    const r = mpirun(4, "run", "examples/tiny.moe", "--backend", "host", "--verify", "--schedule", "fsmoe", "--timeout", "300", "--skip", `0:${last.id}`);
    expect(r.status).not.toBe(0);
    expect(r.err).toMatch(new RegExp(`collective ${last.kind} '${last.role}' \\(op ${last.id},.*\\) on stream ${last.stream} of rank \\d+ timed out after 300 ms waiting in group ${last.group} \\{[0-9, ]+\\} for rank 0`));
    expect(r.out).not.toMatch(/verify:/);
    expect(r.seconds).toBeLessThan(60);
  }, 120_000);
});

describe("combining the MPI processes' reports", () => {
  const report = (rank: number, relError: number, mismatches = 0) => ({
    rank,
    loss: 1 + rank,
    iterationUs: [100 * (rank + 1), 50],
    startUs: [0, 1],
    endUs: [1, 2],
    verify: {
      comparison: {
        ok: relError <= TOLERANCE && mismatches === 0,
        tolerance: TOLERANCE,
        tensors: [{ rank, name: "out.mb0", elements: 4, relError, ok: relError <= TOLERANCE }],
        routing: [{ rank, name: "route.L0.mb0", decisions: 8, mismatches }],
        loss: { replay: 1 + rank, reference: 1 + rank, relError: 0, ok: true },
        missing: [],
        maxRelError: relError,
      },
      referenceLoss: 1 + rank,
      lossScale: 10,
    },
  });

  it("passes when every process passes, with each iteration the slowest process's", () => {
    const c = combine([report(0, 1e-7), report(1, 2e-7)], true);
    expect("error" in c).toBe(false);
    if ("error" in c) return;
    expect(c.comparison!.ok).toBe(true);
    expect(c.comparison!.maxRelError).toBe(2e-7);
    expect(c.comparison!.tensors.map((t) => t.rank)).toEqual([0, 1]);
    expect(c.comparison!.loss.replay).toBe(3);
    expect(c.iterationUs).toEqual([200, 50]);
    expect(c.ranks).toHaveLength(2);
  });

  it("fails when one process's tensor, routing or loss fails", () => {
    const tensor = combine([report(0, 1e-7), report(1, 1e-3)], true);
    expect("error" in tensor || tensor.comparison!.ok).toBe(false);
    const routing = combine([report(0, 1e-7), report(1, 1e-7, 2)], true);
    expect("error" in routing || routing.comparison!.ok).toBe(false);
    const off = report(1, 1e-7);
    const loss = combine([report(0, 1e-7), { ...off, verify: { ...off.verify, referenceLoss: 2.5 } }], true);
    expect("error" in loss || loss.comparison!.loss.ok).toBe(false);
  });

  it("says so when a process sent no verification", () => {
    const { verify: _, ...bare } = report(1, 1e-7);
    expect(combine([report(0, 1e-7), bare], true)).toEqual({ error: "an MPI process sent no verification" });
  });
});

describe.skipIf(!addon)("ranks as threads when no MPI launcher started the process", () => {
  it("reports no MPI job and runs every rank in this process", () => {
    expect(addon!.mpi()).toBeNull();
    expect(() => addon!.mpiAllgather("x", 100)).toThrow(/not part of an MPI job|no MPI/);
  });
});

/**
 * scripts/gpu-check.sh on this machine (issue 6): it builds fsmoe-replay with plain cmake (no Node
 * headers needed), checks the prepared plans against the host backend, and without a GPU ends
 * with a clear "no CUDA device" row and exit status 3 instead of a crash. On a machine with a
 * GPU the check itself takes minutes and is run by hand (`bash scripts/gpu-check.sh OUTDIR`), so
 * this test only checks its usage message there.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const TOOL = resolve("native/build/Release/fsmoe-replay");

function bash(args: readonly string[], timeout: number): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    execFile("bash", [...args], { timeout, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : -1) : 0;
      done({ code, out: String(stdout) + String(stderr) });
    });
  });
}

/** Whether this machine has a CUDA device, asked of the already built tool (undefined: unknown). */
function hasDevice(): Promise<boolean | undefined> {
  if (!existsSync(TOOL)) return Promise.resolve(undefined);
  return new Promise((done) => execFile(TOOL, ["info"], (error) => done(!error ? true : (error as { code?: number }).code === 3 ? false : undefined)));
}

const cmake = await new Promise<boolean>((done) => execFile("sh", ["-c", "command -v cmake"], (e) => done(!e)));
const device = await hasDevice();
if (!cmake) console.log("cuda-gpu-check: cmake not found: skipping the run of scripts/gpu-check.sh");
if (device) console.log("cuda-gpu-check: a CUDA device is present: run `bash scripts/gpu-check.sh OUTDIR` by hand for the full check");

describe("scripts/gpu-check.sh", () => {
  it("prints its usage without an output folder", async () => {
    const r = await bash(["scripts/gpu-check.sh"], 10_000);
    expect(r.code).toBe(2);
    expect(r.out).toContain("bash scripts/gpu-check.sh OUTDIR");
  });

  it.skipIf(!cmake || device !== false)("builds, checks the prepared plans on the host, and fails cleanly with 'no CUDA device' (exit 3)", { timeout: 600_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), "fsmoe-gpu-check-"));
    const r = await bash(["scripts/gpu-check.sh", out], 590_000);
    expect(r.code, r.out).toBe(3);
    expect(r.out).toMatch(/built .*fsmoe-replay/);
    expect(r.out).toMatch(/prepared plans vs host backend +\d+\/\d+ cases match their references +all +PASS/);
    expect(r.out).toMatch(/cuda backend +no CUDA device: .* +a CUDA device +SKIP/);
    expect(r.out).not.toMatch(/Segmentation|core dumped|Traceback|Aborted/);
    // Full logs in the named folder.
    for (const f of ["gpu-check.log", "build.log", "info.json", "host/suite.json", "gpu/suite.json"]) expect(existsSync(join(out, f)), f).toBe(true);
    expect(JSON.parse(readFileSync(join(out, "host", "suite.json"), "utf8")).ok).toBe(true);
    expect(JSON.parse(readFileSync(join(out, "gpu", "suite.json"), "utf8"))).toMatchObject({ ok: false, unavailable: true });
  });
});

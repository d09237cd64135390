/**
 * The host kernels' backward math against central finite differences (native/README.md,
 * "Verification"): fsmoe-gradcheck, built by `npm run build:native`, checks MLA in double and the
 * fp32 kernels (MHA, GQA, MLA through dense.h, the FFN per activation, the expert FFN, RMS norm,
 * the vocabulary-parallel cross-entropy, the gate through each router) block by block.
 * `run --verify` cannot see an error there, since the reference shares those kernels. Here every
 * expected block must be reported within its tolerance, and with `--corrupt` (an error of
 * 10 × the tolerance in each block) every one must fail.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const TOOL = resolve("native/build/Release/fsmoe-gradcheck");
const haveTool = existsSync(TOOL);
if (!haveTool) console.log(`native-gradcheck: ${TOOL} is not built (run \`npm run build:native\`): skipping the gradient checks`);

/** One reported check. */
interface Check {
  name: string;
  n: number;
  rel: number;
  tol: number;
  ok: boolean;
}

/** Runs the tool; resolves with its exit code, the parsed lines and the output (never rejects). */
function gradcheck(args: readonly string[]): Promise<{ code: number; checks: Check[]; stdout: string }> {
  return new Promise((done) => {
    execFile(TOOL, args, { timeout: 30_000 }, (error, stdout) => {
      const code = error ? (typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : -1) : 0;
      const checks: Check[] = [];
      for (const line of String(stdout).split("\n")) {
        const m = /^(\S+)\s+n=(\d+)\s+max_rel_err=(\S+)\s+tol=(\S+)\s+(ok|FAIL)$/.exec(line);
        if (m) checks.push({ name: m[1]!, n: Number(m[2]), rel: Number(m[3]), tol: Number(m[4]), ok: m[5] === "ok" });
      }
      done({ code, checks, stdout: String(stdout) });
    });
  });
}

const MLA_BLOCKS = ["dn", "dWdq", "dWdkv", "dgamma_q", "dgamma_kv", "dWuq", "dWukv", "dWo"];
const MHA_BLOCKS = ["dn", "dWq", "dWk", "dWv", "dWo"];
/** Every block the tool must check. */
const EXPECTED = [
  ...MLA_BLOCKS.map((b) => `mla.f64.${b}`),
  ...MHA_BLOCKS.map((b) => `attention.mha.${b}`),
  ...MHA_BLOCKS.map((b) => `attention.gqa.${b}`),
  ...MLA_BLOCKS.map((b) => `attention.mla.f32.${b}`),
  ...["relu", "gelu"].flatMap((a) => ["dn", "dW1", "dW2"].map((b) => `ffn.${a}.${b}`)),
  ...["swiglu", "geglu"].flatMap((a) => ["dn", "dW1", "dW3", "dW2"].map((b) => `ffn.${a}.${b}`)),
  "expert.gelu.dIn",
  ...[0, 1].flatMap((e) => ["dW1", "dW2"].map((b) => `expert.gelu.e${e}.${b}`)),
  "expert.swiglu.dIn",
  ...[0, 1].flatMap((e) => ["dW1", "dW3", "dW2"].map((b) => `expert.swiglu.e${e}.${b}`)),
  "rmsnorm.ds",
  "rmsnorm.dgamma",
  "loss.dlogits",
  ...["softmax_topk", "softmax_topk.raw", "softmax_topk.grouped", "gshard", "switch", "sigmoid.grouped"].flatMap((r) => [`router.${r}.dx`, `router.${r}.dW`]),
];

describe.skipIf(!haveTool)("fsmoe-gradcheck", () => {
  it("finds every backward within tolerance of central differences and exits 0", async () => {
    const r = await gradcheck([]);
    expect(r.code, r.stdout).toBe(0);
    expect(r.checks.map((c) => c.name).sort()).toEqual([...EXPECTED].sort());
    for (const c of r.checks) {
      expect(c.ok, c.name).toBe(true);
      expect(c.rel, c.name).toBeLessThanOrEqual(c.tol);
      expect(c.n, c.name).toBeGreaterThan(0);
    }
    // MLA's double-precision check is held far tighter than the fp32 kernels.
    for (const c of r.checks.filter((c) => c.name.startsWith("mla.f64."))) expect(c.tol, c.name).toBeLessThanOrEqual(1e-7);
    expect(r.stdout).toContain(`gradcheck: ${EXPECTED.length} checks, 0 failed`);
  });

  it("fails every check, and exits 1, when each block's gradient is off by 10 × its tolerance (--corrupt)", async () => {
    const r = await gradcheck(["--corrupt"]);
    expect(r.code, r.stdout).toBe(1);
    expect(r.checks.map((c) => c.name).sort()).toEqual([...EXPECTED].sort());
    for (const c of r.checks) expect(c.ok, c.name).toBe(false);
  });

  it("refuses an unknown argument with exit 2", async () => {
    expect((await gradcheck(["--bogus"])).code).toBe(2);
  });
});

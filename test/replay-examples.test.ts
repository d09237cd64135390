/**
 * Every example, shrunk to host size, replays under every strategy on the host backend and
 * computes exactly what the unscheduled reference computes (issue 5's "done when": `fsmoec run
 * --verify --shrink` for every strategy on every example; the CLI itself is exercised on some of
 * them in replay-cli, replay-mla and replay-mpi). A sweep file contributes its first job.
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { expectVerified } from "./verified.js";
import { check } from "../compiler/check/check.js";
import { STRATEGY_NAMES } from "../compiler/schedule/index.js";
import { loadAddon, planFor, shrink, verify } from "../runtime/replay/index.js";

const { addon, error } = loadAddon();
if (!addon) console.log(`replay-examples skipped: ${error}`);

const examples = readdirSync("examples")
  .filter((f) => f.endsWith(".moe"))
  .sort();

describe.skipIf(!addon)("every example, shrunk, verifies under every strategy", () => {
  it("finds the examples", () => {
    expect(examples).toEqual(expect.arrayContaining(["deepseek-v3.moe", "gpt-1.3b-moe128.moe", "layer-sweep.moe", "mixtral-6e.moe", "mixtral-8x7b.moe", "tiny.moe"]));
  });

  for (const file of examples) {
    it(`examples/${file}`, async () => {
      const r = check(`examples/${file}`);
      expect(r.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      const job = shrink(r.program.jobs[0]!).job;
      for (const strategy of STRATEGY_NAMES) {
        const { plan, diagnostics } = planFor(job, strategy);
        expect(plan, `${file} ${strategy}: ${diagnostics.map((d) => d.message).join("; ")}`).toBeDefined();
        const v = await verify(plan!);
        if (!v.ok && "error" in v) throw new Error(`${file} ${strategy}: ${v.error}`);
        expectVerified(v.comparison!);
        expect(Math.max(...v.comparison!.tensors.map((t) => t.relError)), `${file} ${strategy}`).toBeLessThanOrEqual(1e-5);
      }
    }, 120_000);
  }
});

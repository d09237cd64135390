/**
 * The simulator against FSMoE's closed form (SCHEDULING.md §3, fsmoe-digest.md §4.3 and
 * Appendix A): on the symmetric FSMoE blocks of the paper grid they agree within 2%; where a
 * block breaks one of the formula's assumptions, `simulate` names it.
 */
import { describe, expect, it } from "vitest";
import { chunkTimes, closedForm } from "../compiler/schedule/evaluate.js";
import { AGREEMENT, simulate } from "../runtime/simulate/index.js";
import { compiled, jobsOf } from "../runtime/simulate/testing.js";

describe("the simulator and FSMoE's closed form", () => {
  it("agree within 2% on every MoE block of the paper grid's fsmoe plans (no contention, no skew)", () => {
    const grid = jobsOf("bench/paper-grid.moe").filter((j) => j.sweep !== null);
    expect(grid.length).toBe(1458);
    let blocks = 0;
    for (const job of grid) {
      const { c, input } = compiled("bench/paper-grid.moe", "fsmoe", job);
      const sim = simulate(input, { contention: false });
      const layer = [...c.schedule.layers.values()][0]!;
      for (const b of sim.blocks) {
        // The scheduler's own closed form, from its own chunk times.
        const r = b.dir === "fwd" ? layer.forward.degree : layer.backward.degree;
        expect(b.degree).toBe(r);
        const T = closedForm(chunkTimes(c.workload, c.pricer, b.dir, r, layer.capacity), r, b.gradUs).T;
        expect(Math.abs(b.simulatedUs / T - 1)).toBeLessThanOrEqual(AGREEMENT);
        expect(b.reasons).toEqual([]);
        blocks++;
      }
    }
    expect(blocks).toBe(2 * 1458);
  });

  it("names unequal AllGather and ReduceScatter times when they make a block disagree", () => {
    const { input, plan } = compiled("bench/paper-grid.moe", "fsmoe", jobsOf("bench/paper-grid.moe").find((j) => j.name === "paper_grid_0034")!);
    // The same plan with every ReduceScatter six times slower than the scheduler priced it.
    const ops = plan.ops.map((o) => (o.kind === "reduce_scatter" && o.role.startsWith("esp_") ? { ...o, predictedUs: 6 * o.predictedUs } : o));
    const sim = simulate({ ...input, plan: { ...plan, ops } }, { contention: false });
    const off = sim.blocks.filter((b) => Math.abs(b.disagreement) > AGREEMENT);
    expect(off.length).toBeGreaterThan(0);
    for (const b of off) expect(b.reasons.join("; ")).toMatch(/AG and RS times differ/);
  });

  it("names skew when the slowest rank makes a block slower than the formula", () => {
    const { input } = compiled("bench/paper-grid.moe", "fsmoe", jobsOf("bench/paper-grid.moe").find((j) => j.name === "paper_grid_0034")!);
    const sim = simulate(input, { contention: false, skew: { kind: "zipf", s: 1.5 } });
    expect(sim.blocks.length).toBe(2);
    for (const b of sim.blocks) expect(b.reasons.join("; ")).toMatch(/skew: the slowest rank carries/);
  });

  it("names a non-phased issue order, whose timing the formula does not describe", () => {
    const { input } = compiled("examples/mixtral-6e.moe", "tutel");
    const sim = simulate(input, { contention: false });
    const off = sim.blocks.filter((b) => Math.abs(b.disagreement) > AGREEMENT);
    expect(off.length).toBeGreaterThan(0);
    for (const b of off) expect(b.reasons[0]).toMatch(/issue order is single-comm/);
  });
});

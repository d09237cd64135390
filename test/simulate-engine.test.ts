/**
 * The simulator's engine (runtime/simulate): it reproduces the scheduler's timeline when its
 * extra effects are off, and contention, interference and skew only ever slow a plan down.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { timeline } from "../compiler/graph/timeline.js";
import { STRATEGY_NAMES } from "../compiler/schedule/index.js";
import { expertShares, layerSkews, parseSkew, simulate, type Links, type SimulationInput } from "../runtime/simulate/index.js";
import { compiled, jobsOf, syntheticPlan, type SyntheticOp } from "../runtime/simulate/testing.js";

describe("the simulator with contention off", () => {
  for (const file of ["examples/tiny.moe", "examples/mixtral-6e.moe"]) {
    it(`reproduces the plan's own timeline bit for bit, op by op, for every strategy on ${file}`, () => {
      for (const s of STRATEGY_NAMES) {
        const { plan, input } = compiled(file, s);
        const t = timeline(plan);
        const sim = simulate(input, { contention: false });
        expect(sim.run.ok).toBe(true);
        expect(sim.run.makespanUs).toBe(t.makespanUs);
        expect(Array.from(sim.run.start)).toEqual(Array.from(t.start));
        expect(Array.from(sim.run.end)).toEqual(Array.from(t.end));
        expect(sim.run.makespanUs).toBeCloseTo(plan.predicted.iterationUs, 0);
      }
    });
  }

  it("gives a critical path whose ops follow each other without gaps and end at the iteration's end", () => {
    const { input } = compiled("examples/tiny.moe", "auto");
    const sim = simulate(input, { contention: false });
    const path = sim.criticalPath;
    expect(sim.run.start[path[0]!]).toBe(0);
    expect(sim.run.end[path[path.length - 1]!]).toBe(sim.run.makespanUs);
    for (let k = 1; k < path.length; k++) expect(sim.run.start[path[k]!]).toBe(sim.run.end[path[k - 1]!]);
  });
});

/** Random synthetic plans: ops on random streams, waits on earlier ops, collectives on groups of every span. */
const syntheticOps = fc
  .array(
    fc.record({
      stream: fc.constantFrom("compute", "intra", "inter" as const),
      comm: fc.boolean(),
      kind: fc.constantFrom("all_to_all", "all_gather", "reduce_scatter", "all_reduce" as const),
      group: fc.constantFrom("intra2", "rail", "world"),
      us: fc.oneof(fc.constant(0), fc.double({ min: 0.5, max: 100, noNaN: true })),
      bytes: fc.integer({ min: 0, max: 4_000_000 }),
      back: fc.array(fc.integer({ min: 1, max: 6 }), { maxLength: 2 }),
    }),
    { minLength: 1, maxLength: 30 },
  )
  .map((list) =>
    list.map(
      (o, i): SyntheticOp => ({
        stream: o.stream,
        kind: o.comm ? o.kind : "expert",
        us: o.us,
        bytes: o.comm ? o.bytes : 0,
        ...(o.comm && { group: o.group }),
        waits: [...new Set(o.back.map((b) => i - b).filter((w) => w >= 0))],
      }),
    ),
  );
const links = fc.option(fc.record({ nicBytesPerUs: fc.double({ min: 1, max: 1e5, noNaN: true }), intraBytesPerUs: fc.double({ min: 1, max: 1e5, noNaN: true }) }), { nil: null });

function inputOf(ops: readonly SyntheticOp[], l: Links | null): SimulationInput {
  return { plan: syntheticPlan(ops), links: l, pricer: null, origin: "test" };
}

describe("the simulator's effects", () => {
  it("contention and interference never make any op finish earlier, nor the plan faster", () => {
    fc.assert(
      fc.property(syntheticOps, links, fc.double({ min: 1, max: 3, noNaN: true }), (ops, l, f) => {
        const input = inputOf(ops, l);
        const plain = simulate(input, { contention: false });
        const slow = simulate(input, { contention: true, interference: f });
        expect(plain.run.ok && slow.run.ok).toBe(true);
        expect(slow.run.makespanUs).toBeGreaterThanOrEqual(plain.run.makespanUs * (1 - 1e-12));
        for (let i = 0; i < ops.length; i++) expect(slow.run.end[i]!).toBeGreaterThanOrEqual(plain.run.end[i]! * (1 - 1e-12) - 1e-9);
      }),
      { numRuns: 300 },
    );
  });

  it("contention never makes a compiled plan faster", () => {
    for (const file of ["examples/tiny.moe", "examples/mixtral-6e.moe"]) {
      for (const s of STRATEGY_NAMES) {
        const { input } = compiled(file, s);
        expect(simulate(input, { contention: true }).run.makespanUs).toBeGreaterThanOrEqual(simulate(input, { contention: false }).run.makespanUs);
      }
    }
  });

  it("splits the NIC max-min fairly between two different ops that need all of it", () => {
    // No link figures: each inter-node op is taken to saturate the NIC; both run from 0 on two streams.
    const ops: SyntheticOp[] = [
      { stream: "inter", kind: "all_to_all", group: "rail", us: 100, bytes: 1000 },
      { stream: "intra", kind: "all_reduce", group: "rail", us: 50, bytes: 1000 },
    ];
    const sim = simulate(inputOf(ops, null), { contention: true });
    // Half rate each until the all-reduce finishes at 100 (50 of work), then the all-to-all has 50 left alone.
    expect(sim.run.end[1]).toBeCloseTo(100, 9);
    expect(sim.run.end[0]).toBeCloseTo(150, 9);
    expect(sim.run.nic.ops).toBe(2);
    expect(sim.run.nic.addedUs).toBeCloseTo(100, 9);
  });

  it("leaves concurrent ops alone when their link demands fit in the link together", () => {
    const ops: SyntheticOp[] = [
      { stream: "inter", kind: "all_to_all", group: "rail", us: 100, bytes: 1000 },
      { stream: "intra", kind: "all_reduce", group: "rail", us: 50, bytes: 1000 },
    ];
    const sim = simulate(inputOf(ops, { nicBytesPerUs: 1000, intraBytesPerUs: 1000 }), { contention: true });
    expect(sim.run.end[0]).toBe(100);
    expect(sim.run.end[1]).toBe(50);
    expect(sim.run.nic.ops).toBe(0);
  });

  it("slows a compute kernel by the interference factor while a communication kernel runs", () => {
    const ops: SyntheticOp[] = [
      { stream: "compute", kind: "expert", us: 100 },
      { stream: "inter", kind: "all_to_all", group: "rail", us: 50, bytes: 10 },
    ];
    const sim = simulate(inputOf(ops, null), { contention: true, interference: 2 });
    // 50 µs at half speed (25 of work), then 75 alone.
    expect(sim.run.end[0]).toBeCloseTo(125, 9);
    expect(sim.run.interference.ops).toBe(1);
    expect(simulate(inputOf(ops, null), { contention: true }).run.end[0]).toBe(100);
  });

  it("shares CPU cores among the ops running on every rank, and charges each op the executor's cost (host profiles)", () => {
    // 4 ranks on 2 cores: half a core per rank. Alone, an op runs at 1/2; two at once at 1/4 each.
    const ops: SyntheticOp[] = [
      { stream: "compute", kind: "expert", us: 100 },
      { stream: "inter", kind: "all_to_all", group: "rail", us: 50, bytes: 10, waits: [] },
      { stream: "compute", kind: "expert", us: 10, waits: [1] },
    ];
    const sim = simulate(inputOf(ops, null), { contention: false, sharedCores: { cores: 2, dispatchUs: 2 } });
    // Works 102, 52, 12. Both first ops at 1/4 until the all-to-all is done: 52 × 4 = 208; the
    // expert has 102 − 52 = 50 left, alone at 1/2: 308. The last op then takes 12 × 2 = 24: 332.
    expect(sim.run.end[1]).toBeCloseTo(208, 9);
    expect(sim.run.end[0]).toBeCloseTo(308, 9);
    expect(sim.run.end[2]).toBeCloseTo(332, 9);
    expect(sim.run.cores.ops).toBe(3);
    expect(sim.run.cores.addedUs).toBeCloseTo(332 + 208 - (102 + 52 + 12), 9);
    // With a core per running op there is nothing to share, only the executor's cost.
    const roomy = simulate(inputOf(ops, null), { contention: false, sharedCores: { cores: 8, dispatchUs: 0 } });
    expect(roomy.run.makespanUs).toBe(simulate(inputOf(ops, null), { contention: false }).run.makespanUs);
    expect(roomy.run.cores.ops).toBe(0);
  });

  it("charges a hand-off per wait on another stream's op and per collective (host profiles)", () => {
    const ops: SyntheticOp[] = [
      { stream: "compute", kind: "expert", us: 10 },
      { stream: "inter", kind: "all_to_all", group: "rail", us: 10, bytes: 10, waits: [0] },
      { stream: "compute", kind: "expert", us: 10, waits: [1] },
      { stream: "compute", kind: "expert", us: 10, waits: [2] },
    ];
    // 8 cores for 4 ranks: nothing shared. Hand-offs: op 1 (a wait on compute, and a collective) 2, op 2 one, op 3 none (same stream).
    const sim = simulate(inputOf(ops, null), { contention: false, sharedCores: { cores: 8, dispatchUs: 1, handoffUs: 3 } });
    expect(Array.from(sim.run.end)).toEqual([11, 11 + 17, 28 + 14, 42 + 11]);
  });

  it("shared cores never make any op finish earlier", () => {
    fc.assert(
      fc.property(syntheticOps, fc.integer({ min: 1, max: 16 }), fc.double({ min: 0, max: 20, noNaN: true }), (ops, cores, dispatchUs) => {
        const input = inputOf(ops, null);
        const plain = simulate(input, { contention: false });
        const shared = simulate(input, { contention: false, sharedCores: { cores, dispatchUs } });
        expect(shared.run.ok).toBe(true);
        for (let i = 0; i < ops.length; i++) expect(shared.run.end[i]!).toBeGreaterThanOrEqual(plain.run.end[i]! * (1 - 1e-12) - 1e-9);
      }),
      { numRuns: 200 },
    );
  });
});

describe("the imbalance mode", () => {
  it("parses zipf, loads and none, and refuses anything else with a reason", () => {
    expect(parseSkew("zipf:1.2")).toEqual({ kind: "zipf", s: 1.2 });
    expect(parseSkew("loads:4,1,1,1")).toEqual({ kind: "loads", loads: [4, 1, 1, 1] });
    expect(parseSkew("none")).toBeNull();
    expect(parseSkew("zipf:-1")).toMatch(/non-negative exponent/);
    expect(parseSkew("gauss:2")).toMatch(/unknown skew/);
  });

  it("gives expert shares that sum to 1 and never exceed 1/k", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 8 }), fc.double({ min: 0, max: 4, noNaN: true }), (E, k0, s) => {
        const k = Math.min(k0, E);
        const shares = expertShares({ kind: "zipf", s }, E, k);
        expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
        for (const x of shares) expect(x).toBeLessThanOrEqual(1 / k + 1e-12);
      }),
    );
  });

  it("leaves routers that balance loads by construction (expert choice, Soft MoE) alone", () => {
    const { plan } = compiled("examples/tiny.moe", "fsmoe");
    for (const router of ["expert_choice", "softmoe"]) {
      const p = { ...plan, job: { ...plan.job, model: { ...plan.job.model, router } } };
      expect(layerSkews(p, { kind: "zipf", s: 3 })).toEqual([]);
    }
    expect(layerSkews(plan, { kind: "zipf", s: 3 }).length).toBe(plan.layers.length);
  });

  it("leaves a balanced load (zipf:0) within the plan's capacity", () => {
    const { plan } = compiled("examples/tiny.moe", "fsmoe");
    for (const l of layerSkews(plan, { kind: "zipf", s: 0 })) expect(l.factor).toBe(1);
  });

  it("skew never makes a plan faster; it slows one down once the hottest rank outgrows the capacity headroom", () => {
    const grid = jobsOf("bench/paper-grid.moe").filter((j) => j.sweep !== null);
    for (const job of [grid[0]!, grid[500]!, grid[1457]!]) {
      for (const s of STRATEGY_NAMES) {
        const { input, plan } = compiled("bench/paper-grid.moe", s, job);
        const outgrows = layerSkews(plan, { kind: "zipf", s: 2 }).some((l) => l.factor > 1);
        // The first grid point (top-1, f = 1.0) has no headroom; the last (top-4, f = 2.0) absorbs even zipf:2.
        if (job === grid[0]) expect(outgrows).toBe(true);
        if (job === grid[1457]) expect(outgrows).toBe(false);
        const balanced = simulate(input, { contention: true }).run.makespanUs;
        let last = balanced;
        for (const exponent of [0, 0.5, 1.2, 2]) {
          const t = simulate(input, { contention: true, skew: { kind: "zipf", s: exponent } }).run.makespanUs;
          expect(t).toBeGreaterThanOrEqual(balanced);
          expect(t).toBeGreaterThanOrEqual(last * (1 - 1e-12));
          last = t;
        }
        if (outgrows) expect(last).toBeGreaterThan(balanced);
        else expect(last).toBe(balanced);
      }
    }
  });
});

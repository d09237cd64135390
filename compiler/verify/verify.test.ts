import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { before, happensBefore } from "./order.js";
import { expandSpmd } from "./spmd.js";
import { moePipeline } from "./testing.js";
import { verify, verifyGraph } from "./verify.js";

describe("verify: a valid plan", () => {
  it.each([1, 2, 4, 8])("the FSMoE pipeline with degree %i verifies clean as an SPMD graph", (degree) => {
    const { graph } = moePipeline({ degree, gradAllReduce: true });
    expect(verifyGraph(graph)).toEqual([]);
  });

  it("the FSMoE pipeline verifies clean expanded over 4 ranks (node groups of 2, rail of 2, world of 4)", () => {
    const { graph } = moePipeline({ degree: 4, layers: 2, gradAllReduce: true });
    expect(verify(expandSpmd(graph, [0, 1, 2, 3], 4))).toEqual([]);
  });

  it("interleaving inter and intra consistently verifies clean", () => {
    const { graph } = moePipeline({ degree: 4, inter: "interleaved", intra: "interleaved" });
    expect(verifyGraph(graph)).toEqual([]);
    expect(verify(expandSpmd(graph, [0, 1, 2, 3], 4))).toEqual([]);
  });

  it("expected shapes that the chunks add up to verify clean", () => {
    const { graph } = moePipeline({ degree: 4, chunkBytes: 512 });
    const shapes = [
      { layer: 0, dir: "fwd" as const, role: "dispatch", totalBytes: 2048 },
      { layer: 0, dir: "fwd" as const, role: "esp_allgather", totalBytes: 4096 },
    ];
    expect(verifyGraph(graph, { shapes })).toEqual([]);
  });

  it("a per-rank issue names the first rank sharing the program and how many more share it", () => {
    const { graph } = moePipeline({ degree: 2 });
    const bad = { ...graph, ops: graph.ops.map((op) => (op.role === "iorder" ? { ...op, waits: [] } : op)) };
    const issues = verify(expandSpmd(bad, [0, 1, 2, 3], 4));
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]!.rank).toBe(0);
    expect(issues[0]!.message).toContain("on rank 0 (and 3 more ranks with the same program)");
  });

  it("maxIssues caps the report", () => {
    const { graph } = moePipeline({ degree: 8, layers: 4 });
    const bad = { ...graph, ops: graph.ops.map((op) => ({ ...op, waits: [] })) };
    expect(verifyGraph(bad, { maxIssues: 5 })).toHaveLength(5);
  });
});

describe("verify: properties", () => {
  it("any FSMoE or consistently interleaved pipeline verifies clean over 4 ranks", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 3 }), fc.boolean(), (degree, layers, interleave) => {
        const how = interleave ? "interleaved" : "fsmoe";
        const { graph } = moePipeline({ degree, layers, inter: how, intra: how, gradAllReduce: true });
        expect(verify(expandSpmd(graph, [0, 1, 2, 3], 4))).toEqual([]);
      }),
      { numRuns: 25 },
    );
  });

  it("dropping any one wait is reported as a race exactly when no other path still orders the two ops", () => {
    // Every wait of the pipeline guards a data dependency (the waiter reads or rewrites what
    // the waited-for op wrote), so the oracle is happens-before without that edge.
    const { graph } = moePipeline({ degree: 3, gradAllReduce: true });
    const waits = graph.ops.flatMap((op) => op.waits.map((w) => [op.id, w] as const));
    expect(waits.length).toBe(19);
    for (const [target, dropped] of waits) {
      const ops = graph.ops.map((op) => (op.id === target ? { ...op, waits: op.waits.filter((w) => w !== dropped) } : op));
      const hb = happensBefore(ops);
      const stillOrdered = before(hb, hb.indexOf.get(dropped)!, hb.indexOf.get(target)!);
      const issues = verify(expandSpmd({ ...graph, ops }, [0, 1, 2, 3], 4));
      expect(issues.map((i) => i.code)).toEqual(stillOrdered ? [] : ["FSM4002"]);
      if (!stillOrdered) expect(issues[0]!.ops).toEqual(expect.arrayContaining([dropped, target]));
    }
  });

  it("reports a group with a zero size instead of throwing", () => {
    const { graph } = moePipeline({ degree: 2 });
    const groups = graph.groups.map((g) => (g.name === "rail" ? { ...g, size: 0 } : g));
    const issues = verify(expandSpmd({ ...graph, groups }, [0, 1, 2, 3], 4));
    expect(issues.map((i) => i.code)).toEqual(["FSM4012"]);
  });
});

import { describe, expect, it } from "vitest";
import { expandSpmd } from "./spmd.js";
import { GraphBuilder, moePipeline } from "./testing.js";
import { verify, verifyGraph } from "./verify.js";

describe("cycle check (FSM4001)", () => {
  it("rejects interleaving only the inter stream (SCHEDULING.md §3, auto 2): C1 → RS1 → AG_r → D_r → C1", () => {
    const r = 4;
    const { graph, layers } = moePipeline({ degree: r, inter: "interleaved", intra: "fsmoe" });
    const issues = verifyGraph(graph);
    expect(issues.map((i) => i.code)).toEqual(["FSM4001"]);
    const [L] = layers;
    const cycle = issues[0]!;
    // Any reported cycle passes through a combine, its reduce-scatter, a later all-gather and its dispatch.
    expect(cycle.ops).toContain(L!.RS[0]);
    expect(cycle.message).toMatch(/all_to_all combine L0 fwd chunk \d, inter\) waits for op \d+ \(reduce_scatter esp_reducescatter L0 fwd chunk \d, intra\)/);
    expect(cycle.message).toContain("is queued behind");
    expect(cycle.message).toContain("on intra");
    expect(cycle.message).toContain("on inter");
  });

  it("reports the FIFO deadlock once for all ranks that share the program, and no cross-rank deadlock on top", () => {
    const { graph } = moePipeline({ degree: 4, inter: "interleaved" });
    const issues = verify(expandSpmd(graph, [0, 1, 2, 3], 4));
    expect(issues.map((i) => i.code)).toEqual(["FSM4001"]);
    expect(issues[0]!.rank).toBe(0);
  });

  it("names both ops of a two-op wait cycle", () => {
    const b = new GraphBuilder();
    const x = b.buffer("x", 64);
    b.op({ kind: "expert", stream: "compute", role: "expert", waits: [2], writes: [{ buffer: x }] });
    b.op({ kind: "norm", stream: "intra", role: "norm", waits: [1], reads: [{ buffer: x }] });
    const issues = verifyGraph(b.build());
    expect(issues).toHaveLength(1);
    expect(issues[0]!.code).toBe("FSM4001");
    expect(issues[0]!.ops).toEqual([1, 2]);
    expect(issues[0]!.message).toContain("op 1 (expert expert L0 fwd, compute) waits for op 2 (norm norm L0 fwd, intra)");
  });

  it("accepts a wait on an op issued later when no cycle results", () => {
    const b = new GraphBuilder();
    const x = b.buffer("x", 64);
    b.op({ kind: "norm", stream: "intra", role: "norm", waits: [2], reads: [{ buffer: x }] });
    b.op({ kind: "expert", stream: "compute", role: "expert", writes: [{ buffer: x }] });
    expect(verifyGraph(b.build())).toEqual([]);
  });
});

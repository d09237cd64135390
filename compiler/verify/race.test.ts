import { describe, expect, it } from "vitest";
import { GraphBuilder, moePipeline } from "./testing.js";
import { verifyGraph } from "./verify.js";

describe("race check (FSM4002)", () => {
  it("reports a removed event edge (E2 no longer waits for AG2), naming both ops and the buffer", () => {
    const { graph, layers } = moePipeline({ degree: 4 });
    const ag = layers[0]!.AG[2]!;
    const e = layers[0]!.E[2]!;
    const bad = { ...graph, ops: graph.ops.map((op) => (op.id === e ? { ...op, waits: op.waits.filter((w) => w !== ag) } : op)) };
    const issues = verifyGraph(bad);
    expect(issues.map((i) => i.code)).toEqual(["FSM4002"]);
    expect(issues[0]!.ops).toEqual([ag, e]);
    expect(issues[0]!.message).toBe(
      `data race on buffer 'L0.gathered' (id 3): op ${ag} (all_gather esp_allgather L0 fwd chunk 2, intra) writes and ` +
        `op ${e} (expert expert L0 fwd chunk 2, compute) reads bytes [4096, 6144) with no program order or event between them`,
    );
  });

  it("finds write–write races and write-after-read races", () => {
    const b = new GraphBuilder();
    const x = b.buffer("x", 100);
    b.op({ kind: "norm", stream: "compute", role: "a", writes: [{ buffer: x, offset: 0, bytes: 60 }] });
    b.op({ kind: "norm", stream: "intra", role: "b", writes: [{ buffer: x, offset: 50, bytes: 50 }] });
    b.op({ kind: "norm", stream: "inter", role: "c", waits: [1, 2], reads: [{ buffer: x }] });
    b.op({ kind: "norm", stream: "compute", role: "d", writes: [{ buffer: x, offset: 90, bytes: 10 }] });
    const issues = verifyGraph(b.build());
    // d follows a on compute but nothing orders it after b (intra) or c (inter).
    expect(issues.map((i) => [i.code, i.ops])).toEqual([
      ["FSM4002", [1, 2]],
      ["FSM4002", [2, 4]],
      ["FSM4002", [3, 4]],
    ]);
    expect(issues[0]!.message).toContain("bytes [50, 60)");
    expect(issues[1]!.message).toContain("op 2 (norm b L0 fwd, intra) writes and op 4 (norm d L0 fwd, compute) writes bytes [90, 100)");
    expect(issues[2]!.message).toContain("reads and op 4 (norm d L0 fwd, compute) writes bytes [90, 100)");
  });

  it("accepts accesses ordered by program order, by a chain of events, disjoint, or both reads", () => {
    const b = new GraphBuilder();
    const x = b.buffer("x", 100);
    const w = b.buffer("w", 100, true);
    b.op({ kind: "norm", stream: "compute", role: "a", writes: [{ buffer: x }], reads: [{ buffer: w }] });
    b.op({ kind: "norm", stream: "compute", role: "b", writes: [{ buffer: x }] });
    b.op({ kind: "norm", stream: "intra", role: "c", waits: [2], writes: [{ buffer: x, offset: 0, bytes: 50 }], reads: [{ buffer: w }] });
    b.op({ kind: "norm", stream: "inter", role: "d", waits: [3], reads: [{ buffer: x }, { buffer: w }] });
    b.op({ kind: "norm", stream: "compute", role: "e", writes: [{ buffer: x, offset: 50, bytes: 50 }] });
    b.op({ kind: "norm", stream: "inter", role: "f", writes: [{ buffer: x, offset: 0, bytes: 50 }] });
    // e and f are unordered with each other but touch disjoint halves; e is unordered with d,
    // which reads the whole of x: that is the one race.
    const issues = verifyGraph(b.build());
    expect(issues.map((i) => i.ops)).toEqual([[4, 5]]);
  });

  it("does not treat an op's own read and write of a range as a race", () => {
    const b = new GraphBuilder();
    const x = b.buffer("x", 64);
    b.op({ kind: "norm", stream: "compute", role: "a", reads: [{ buffer: x }], writes: [{ buffer: x }] });
    b.op({ kind: "norm", stream: "intra", role: "b", waits: [1], reads: [{ buffer: x }], writes: [{ buffer: x }] });
    expect(verifyGraph(b.build())).toEqual([]);
  });
});

import { describe, expect, it } from "vitest";
import { GraphBuilder, moePipeline } from "./testing.js";
import { verifyGraph } from "./verify.js";

describe("bounds check (FSM4006)", () => {
  it("reports an access past the end of its buffer", () => {
    const { graph, layers } = moePipeline({ degree: 4 });
    const d3 = layers[0]!.D[3]!;
    const ops = graph.ops.map((op) =>
      op.id === d3 ? { ...op, accesses: op.accesses.map((a) => (a.write ? { ...a, offset: a.offset + 512 } : a)) } : op,
    );
    const issues = verifyGraph({ ...graph, ops });
    expect(issues.map((i) => i.code)).toEqual(["FSM4006"]);
    expect(issues[0]!.message).toBe(
      `op ${d3} (all_to_all dispatch L0 fwd chunk 3, inter) writes bytes [3584, 4608) of buffer 'L0.dispatched' (id 2), which holds 4096 bytes`,
    );
  });

  it("reports an access at a negative offset", () => {
    const b = new GraphBuilder();
    const x = b.buffer("x", 64);
    b.op({ kind: "norm", stream: "compute", role: "norm", reads: [{ buffer: x, offset: -8, bytes: 16 }] });
    expect(verifyGraph(b.build()).map((i) => i.code)).toEqual(["FSM4006"]);
  });
});

describe("collective bytes (FSM4007)", () => {
  it("accepts every kind's rule: all-to-all whole, all-gather output, reduce-scatter input, in-place all-reduce", () => {
    const { graph } = moePipeline({ degree: 2, gpus: 4, gradAllReduce: true });
    expect(verifyGraph(graph)).toEqual([]);
  });

  it("reports an all-gather whose bytes is its input rather than the gathered size", () => {
    const { graph, layers } = moePipeline({ degree: 2, chunkBytes: 256, gpus: 4 });
    const ag = layers[0]!.AG[0]!;
    const ops = graph.ops.map((op) => (op.id === ag ? { ...op, bytes: 256 } : op));
    const issues = verifyGraph({ ...graph, ops }).filter((i) => i.code === "FSM4007");
    expect(issues.map((i) => i.message)).toEqual([
      `op ${ag} (all_gather esp_allgather L0 fwd chunk 0, intra) moves 256 bytes, but its writes cover 1024 bytes; expected 256 (an all-gather writes the gathered size and reads 1/P of it, P = 4)`,
      `op ${ag} (all_gather esp_allgather L0 fwd chunk 0, intra) moves 256 bytes, but its reads cover 256 bytes; expected 64 (an all-gather writes the gathered size and reads 1/P of it, P = 4)`,
    ]);
  });

  it("reports a reduce-scatter that writes more than 1/P of its input", () => {
    const b = new GraphBuilder();
    const node = b.group("node", 2, 1);
    const src = b.buffer("src", 1024);
    const dst = b.buffer("dst", 1024);
    b.op({ kind: "reduce_scatter", stream: "intra", role: "rs", group: node, bytes: 1024, reads: [{ buffer: src }], writes: [{ buffer: dst }] });
    const issues = verifyGraph(b.build());
    expect(issues.map((i) => i.code)).toEqual(["FSM4007"]);
    expect(issues[0]!.message).toContain("its writes cover 1024 bytes; expected 512");
  });
});

describe("structure (FSM4011)", () => {
  it("reports waits, buffers and groups that do not exist, and repeated ids", () => {
    const b = new GraphBuilder();
    const x = b.buffer("x", 64);
    b.op({ kind: "norm", stream: "compute", role: "a", waits: [99], writes: [{ buffer: x }] });
    b.op({ kind: "all_reduce", stream: "inter", role: "ar", group: "nope", bytes: 64, waits: [1], writes: [{ buffer: x }] });
    const graph = b.build();
    const ops = [...graph.ops, { ...graph.ops[0]!, waits: [2], accesses: [{ buffer: 7, offset: 0, bytes: 4, write: false }] }];
    const messages = verifyGraph({ ...graph, ops })
      .filter((i) => i.code === "FSM4011")
      .map((i) => i.message);
    expect(messages).toEqual([
      "malformed plan: op 1 (norm a L0 fwd, compute) waits for op 99, which does not exist",
      "malformed plan: op 2 (all_reduce ar L0 fwd, inter) runs on group 'nope', which does not exist",
      "malformed plan: op 1 (norm a L0 fwd, compute) reuses the id of op 1 (norm a L0 fwd, compute)",
      "malformed plan: op 1 (norm a L0 fwd, compute) accesses buffer 7, which does not exist",
    ]);
  });
});

import { describe, expect, it } from "vitest";
import { expandSpmd } from "./spmd.js";
import { moePipeline } from "./testing.js";
import { verify, verifyGraph } from "./verify.js";

describe("scale", () => {
  // 1,191 MoE layers of degree 8 (42 ops each) and a gradient all-reduce: 50,024 ops and 8,339
  // buffers. The check is that it completes (about a second each here); no timed assertion.
  const { graph } = moePipeline({ degree: 8, layers: 1191, gradAllReduce: true });

  it("verifies a 50,000-op SPMD graph", () => {
    expect(graph.ops.length).toBeGreaterThanOrEqual(50_000);
    expect(verifyGraph(graph)).toEqual([]);
  });

  it("verifies the same graph expanded over 4 ranks, with the cross-rank checks", () => {
    expect(verify(expandSpmd(graph, [0, 1, 2, 3], 4))).toEqual([]);
  });
});

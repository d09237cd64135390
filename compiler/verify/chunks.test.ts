import { describe, expect, it } from "vitest";
import type { TaskGraph } from "../graph/types.js";
import { moePipeline } from "./testing.js";
import { verifyGraph } from "./verify.js";

function withOp(graph: TaskGraph, id: number, edit: (op: TaskGraph["ops"][number]) => TaskGraph["ops"][number]): TaskGraph {
  return { ...graph, ops: graph.ops.map((op) => (op.id === id ? edit(op) : op)) };
}

describe("chunk sizes (FSM4008) and numbering (FSM4010)", () => {
  it("reports a chunk of a different size than the others", () => {
    const { graph, layers } = moePipeline({ degree: 4, chunkBytes: 1024 });
    const d0 = layers[0]!.D[0]!;
    const d2 = layers[0]!.D[2]!;
    const bad = withOp(graph, d2, (op) => ({ ...op, bytes: 512, accesses: op.accesses.map((a) => ({ ...a, bytes: 512 })) }));
    const issues = verifyGraph(bad);
    expect(issues.map((i) => i.code)).toEqual(["FSM4008"]);
    expect(issues[0]!.ops).toEqual([d0, d2]);
    expect(issues[0]!.message).toBe(
      `chunks of all_to_all dispatch L0 fwd differ in size: chunk 0 (op ${d0} (all_to_all dispatch L0 fwd chunk 0, inter)) moves 1024 bytes, ` +
        `chunk 2 (op ${d2} (all_to_all dispatch L0 fwd chunk 2, inter)) moves 512`,
    );
  });

  it("reports a repeated chunk number", () => {
    const { graph, layers } = moePipeline({ degree: 3 });
    const bad = withOp(graph, layers[0]!.RS[2]!, (op) => ({ ...op, chunk: 1 }));
    const issues = verifyGraph(bad).filter((i) => i.code === "FSM4010");
    expect(issues.map((i) => i.message)).toEqual(["chunks of reduce_scatter esp_reducescatter L0 fwd are numbered 0, 1, 1; expected 0 … 2, each once"]);
  });
});

describe("shapes (FSM4009)", () => {
  it("reports chunks that do not add up to the expected total, with the capacity numbers", () => {
    const { graph, layers } = moePipeline({ degree: 4, chunkBytes: 1024 });
    const issues = verifyGraph(graph, { shapes: [{ layer: 0, dir: "fwd", role: "combine", totalBytes: 5120 }] });
    expect(issues.map((i) => i.code)).toEqual(["FSM4009"]);
    expect(issues[0]!.ops).toEqual(layers[0]!.C);
    expect(issues[0]!.message).toBe("all_to_all combine L0 fwd moves 4096 bytes in all (4 chunks × 1024), but its shape needs 5120");
  });

  it("lists unequal chunks in the sum", () => {
    const { graph, layers } = moePipeline({ degree: 2, chunkBytes: 1024 });
    const bad = withOp(graph, layers[0]!.C[1]!, (op) => ({ ...op, bytes: 512, accesses: op.accesses.map((a) => ({ ...a, bytes: 512 })) }));
    const issues = verifyGraph(bad, { shapes: [{ layer: 0, dir: "fwd", role: "combine", totalBytes: 2048 }] }).filter((i) => i.code === "FSM4009");
    expect(issues[0]!.message).toBe("all_to_all combine L0 fwd moves 1536 bytes in all (1024 + 512), but its shape needs 2048");
  });

  it("reports a shape no collective has", () => {
    const { graph } = moePipeline({ degree: 2 });
    const issues = verifyGraph(graph, { shapes: [{ layer: 5, dir: "bwd", role: "dispatch", totalBytes: 2048 }] });
    expect(issues.map((i) => i.message)).toEqual([
      "dispatch L5 bwd moves 0 bytes in all (no collective has this layer, direction and role), but its shape needs 2048",
    ]);
  });
});

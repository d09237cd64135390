import { describe, expect, it } from "vitest";
import type { TaskGraph } from "../graph/types.js";
import { GraphBuilder, moePipeline } from "../verify/testing.js";
import { checkPlacement, placementProblems } from "./check.js";
import { bufferLifetimes } from "./lifetimes.js";
import { planMemory, type MemoryPlan } from "./plan.js";

/** A chain on one stream: a → b → c → d, with a persistent weight and an unused buffer. */
function chain(): TaskGraph {
  const g = new GraphBuilder();
  const w = g.buffer("w", 1000, true);
  const a = g.buffer("a", 1000);
  const b = g.buffer("b", 2000);
  const c = g.buffer("c", 500);
  const d = g.buffer("d", 3000);
  g.buffer("unused", 100);
  g.op({ kind: "embed", stream: "compute", role: "embed", writes: [{ buffer: a }] });
  g.op({ kind: "norm", stream: "compute", role: "norm", reads: [{ buffer: a }], writes: [{ buffer: b }] });
  g.op({ kind: "attention", stream: "compute", role: "attention", reads: [{ buffer: b }], writes: [{ buffer: c }] });
  g.op({ kind: "dense_ffn", stream: "compute", role: "ffn", reads: [{ buffer: c }], writes: [{ buffer: d }] });
  g.op({ kind: "lm_head", stream: "compute", role: "head", reads: [{ buffer: d }, { buffer: w }] });
  return g.build();
}

describe("buffer lifetimes", () => {
  it("run from the first to the last access in issue order; persistent buffers live throughout", () => {
    const l = bufferLifetimes(chain());
    expect([...l.entries()]).toEqual([
      [0, { first: 0, last: 4, persistent: true }],
      [1, { first: 0, last: 1, persistent: false }],
      [2, { first: 1, last: 2, persistent: false }],
      [3, { first: 2, last: 3, persistent: false }],
      [4, { first: 3, last: 4, persistent: false }],
      [5, { first: -1, last: -1, persistent: false }],
    ]);
  });
});

describe("planMemory", () => {
  it("places by size, reusing memory of dead buffers, at 256-byte boundaries", () => {
    const plan = planMemory(chain());
    // Persistent w at 0, region rounded to 1024. Arena (base 1024): d (3000) at 0; b (2000)
    // shares with d (disjoint, ordered on one stream) at 0; a (1000) overlaps b's lifetime,
    // so it goes at align(2000) = 2048; c (500) overlaps b and d, both from 0, so
    // align(3000) = 3072. Peak 3072 + 500 = 3572 → 3584.
    expect(Object.fromEntries(plan.offsets)).toEqual({ 0: 0, 1: 1024 + 2048, 2: 1024, 3: 1024 + 3072, 4: 1024, 5: 1024 });
    expect(plan.persistentBytes).toBe(1024);
    expect(plan.arenaBytes).toBe(3584);
    expect(plan.totalBytes).toBe(4608);
    checkPlacement(plan, chain());
  });

  it("does not share memory between buffers whose issue-order lifetimes are disjoint but whose ops may run concurrently", () => {
    const build = (wait: boolean) => {
      const g = new GraphBuilder();
      const tokens = g.buffer("tokens", 1024);
      const out = g.buffer("out", 1024);
      g.op({ kind: "order", stream: "compute", role: "order", writes: [{ buffer: tokens }] });
      g.op({ kind: "norm", stream: "inter", role: "send", waits: [1], reads: [{ buffer: tokens }] });
      // Issued after the inter op, but on compute it may run while the inter op still reads.
      g.op({ kind: "expert", stream: "compute", role: "expert", waits: wait ? [2] : [], writes: [{ buffer: out }] });
      return g.build();
    };
    const racy = planMemory(build(false));
    expect(racy.offsets.get(0)).not.toBe(racy.offsets.get(1));
    expect(racy.arenaBytes).toBe(2048);
    const ordered = planMemory(build(true));
    expect(ordered.offsets.get(0)).toBe(ordered.offsets.get(1));
    expect(ordered.arenaBytes).toBe(1024);
  });

  it("places the FSMoE pipeline soundly", () => {
    for (const degree of [1, 2, 4, 8]) {
      const { graph } = moePipeline({ degree, layers: 3, gradAllReduce: true });
      const plan = planMemory(graph);
      expect(placementProblems(plan, graph)).toEqual([]);
      expect(plan.arenaBytes).toBeLessThan(graph.buffers.filter((b) => !b.persistent).reduce((s, b) => s + b.bytes, 0));
    }
  });

  it("is deterministic: the same graph, or its buffers listed in another order, gives the same offsets", () => {
    const { graph } = moePipeline({ degree: 4, layers: 2 });
    const a = planMemory(graph);
    const b = planMemory(graph);
    const c = planMemory({ ...graph, buffers: [...graph.buffers].reverse() });
    expect([...a.offsets]).toEqual([...b.offsets]);
    expect(Object.fromEntries(c.offsets)).toEqual(Object.fromEntries(a.offsets));
    expect(c.arenaBytes).toBe(a.arenaBytes);
  });
});

describe("checkPlacement", () => {
  it("rejects two live buffers placed on top of each other, and misaligned offsets", () => {
    const graph = chain();
    const plan = planMemory(graph);
    const bad: MemoryPlan = { ...plan, offsets: new Map([...plan.offsets, [1, 1024], [3, 1024 + 3000]]) };
    expect(() => checkPlacement(bad, graph)).toThrow(/buffers 'a' \(id 1\) at \[1024, 2024\) and 'b' \(id 2\) at \[1024, 3024\) overlap while both are live/);
    expect(placementProblems(bad, graph)).toContain("buffer 'c' (id 3) at 4024 is not 256-byte aligned");
  });

  it("rejects sharing between buffers of concurrent ops even when issue order says they are dead", () => {
    const g = new GraphBuilder();
    const x = g.buffer("x", 512);
    const y = g.buffer("y", 512);
    g.op({ kind: "norm", stream: "inter", role: "read", reads: [{ buffer: x }] });
    g.op({ kind: "norm", stream: "compute", role: "write", writes: [{ buffer: y }] });
    const graph = g.build();
    const plan = planMemory(graph);
    expect(() => checkPlacement({ ...plan, offsets: new Map([[0, 0], [1, 0]]) }, graph)).toThrow(/overlap while both are live/);
  });
});

import { describe, expect, it } from "vitest";
import { check } from "../check/check.js";
import { costModelFor } from "../cost/index.js";
import type { BlockStyle, GradPiece } from "../graph/moe-block.js";
import { Pricer } from "../graph/pricing.js";
import type { Direction } from "../graph/types.js";
import { padCapacity } from "../lower/shapes.js";
import { lower, type Workload } from "../lower/workload.js";
import { fastBlockTime } from "./block-sim.js";
import { blockTime } from "./evaluate.js";

/** The first job of an example, lowered and priced the way compiler/compile/compile.ts does it. */
function setup(file: string): { w: Workload; pricer: Pricer } {
  const r = check(file);
  expect(r.diagnostics).toEqual([]);
  const w = lower(r.program.jobs[0]!);
  const cost = costModelFor(w.job, w.bytes);
  expect(cost.diagnostics).toEqual([]);
  const pricer = new Pricer(cost.model!, new Map(Object.values(w.groups).map((g) => [g.name, g])), w.shape.gemms);
  return { w, pricer };
}

/** Every style the strategies use at degree r: serial (r = 1), single-comm, phased, interleaved 1 … r − 1. */
function stylesAt(r: number): BlockStyle[] {
  const out: BlockStyle[] = [{ kind: "single-comm" }, { kind: "phased" }];
  if (r === 1) out.unshift({ kind: "serial" });
  for (let l = 1; l < r; l++) out.push({ kind: "interleaved", lookahead: l });
  return out;
}

function label(s: BlockStyle): string {
  return s.kind === "interleaved" ? `interleaved/${s.lookahead}` : s.kind;
}

function expectClose(fast: number, graph: number, what: string): void {
  const rel = Math.abs(fast - graph) / Math.max(Math.abs(graph), 1e-12);
  expect(rel, `${what}: fastBlockTime ${fast} µs, blockTime ${graph} µs`).toBeLessThanOrEqual(1e-6);
}

// tiny (esp = 2, hardware model) and mixtral-8x7b (esp = 8) are the brief's; deepseek-v3 adds a
// layout without expert sharding (esp = 1), where no AllGather or ReduceScatter exists.
const EXAMPLES = ["examples/tiny.moe", "examples/mixtral-8x7b.moe", "examples/deepseek-v3.moe"];
const DEGREES = Array.from({ length: 10 }, (_, i) => i + 1);

describe("fastBlockTime agrees with timing the real block graph (blockTime)", () => {
  for (const file of EXAMPLES) {
    it(`gives the same block time as the graph for every style, degree 1–10, direction and gradient load on ${file}`, () => {
      const { w, pricer } = setup(file);
      // A gradient load big enough to matter: the dense gradients of the first layer (at least 1 element).
      const load = Math.max(1, w.layers[0]!.denseParams);
      let compared = 0;
      for (const r of DEGREES) {
        const capacity = padCapacity(w.shape.capacity0, r);
        for (const dir of ["fwd", "bwd"] as Direction[]) {
          for (const style of stylesAt(r)) {
            for (const elements of [0, load]) {
              const grads: GradPiece[] = elements > 0 ? [{ parts: [{ source: 0, offset: 0, elements }] }] : [];
              const graph = blockTime(w, pricer, dir, style, r, capacity, grads);
              const what = `${file} ${dir} ${label(style)} r=${r} C=${capacity} grad=${elements}`;
              expect(graph, `${what}: the block graph deadlocks`).not.toBeNull();
              expectClose(fastBlockTime(w, pricer, dir, style, r, capacity, elements), graph!, what);
              compared++;
            }
          }
        }
      }
      // 1 serial + 10 single-comm + 10 phased + 45 interleaved styles, × 2 directions × 2 loads.
      expect(compared).toBe(66 * 2 * 2);
    });
  }

  it("agrees at a capacity that is not a multiple of the degree (chunks of fractional size)", () => {
    const { w, pricer } = setup("examples/tiny.moe");
    const capacity = w.shape.capacity0 + 1;
    for (const r of [3, 7]) {
      for (const dir of ["fwd", "bwd"] as Direction[]) {
        for (const style of stylesAt(r)) {
          const graph = blockTime(w, pricer, dir, style, r, capacity);
          expectClose(fastBlockTime(w, pricer, dir, style, r, capacity), graph!, `${dir} ${label(style)} r=${r} C=${capacity}`);
        }
      }
    }
  });

  it("agrees for DeepSpeed's serial style at degrees above 1 too", () => {
    const { w, pricer } = setup("examples/mixtral-8x7b.moe");
    for (const r of [2, 4]) {
      const capacity = padCapacity(w.shape.capacity0, r);
      for (const dir of ["fwd", "bwd"] as Direction[]) {
        const graph = blockTime(w, pricer, dir, { kind: "serial" }, r, capacity);
        expectClose(fastBlockTime(w, pricer, dir, { kind: "serial" }, r, capacity), graph!, `${dir} serial r=${r}`);
      }
    }
  });
});

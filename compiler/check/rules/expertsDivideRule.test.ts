/**
 * expertsDivideRule: the routed experts spread evenly over the ep ranks (FSM3002).
 */
import { describe, expect, it } from "vitest";
import { diagnose, at } from "./testing.js";

/** A job of 8 GPUs per node on `nodes` nodes with `experts` experts and expert parallelism `ep` (esp fills the rest of a node). */
function job(nodes: number, experts: number, ep: number, esp: number): string {
  return `cluster c {
  nodes         = ${nodes}
  gpus_per_node = 8
  device        = h100_sxm
  intra         = nvlink4
  inter         = ib_ndr
}

layer l {
  hidden        = 1024
  experts       = ${experts}
  top_k         = 1
  expert_hidden = 4096
}

train t {
  model       = l
  cluster     = c
  micro_batch = 1
  seq_len     = 1024
  parallel { esp = ${esp}, ep = ${ep} }
}
`;
}

describe("expertsDivideRule", () => {
  it("accepts experts that are a multiple of ep, one expert per rank included", () => {
    expect(diagnose(job(1, 8, 8, 1))).toEqual([]);
    expect(diagnose(job(1, 64, 8, 1))).toEqual([]);
    expect(diagnose(job(2, 6, 2, 8))).toEqual([]);
  });

  it("accepts any number of experts with ep = 1", () => {
    expect(diagnose(job(1, 7, 1, 8))).toEqual([]);
  });

  it("reports experts that do not divide over ep, at ep", () => {
    const src = job(4, 6, 4, 8);
    expect(diagnose(src)).toEqual([`FSM3002 ${at(src, "ep = 4", 5)} 6 experts do not divide over ep = 4 ranks`]);
  });

  it("reports fewer experts than ep ranks", () => {
    const src = job(1, 4, 8, 1);
    expect(diagnose(src)).toEqual([`FSM3002 ${at(src, "ep = 8", 5)} 4 experts do not divide over ep = 8 ranks`]);
  });

  it("points at the parallel block when ep is the default (nodes)", () => {
    const src = job(3, 8, 3, 8).replace("parallel { esp = 8, ep = 3 }", "parallel { esp = 8 }");
    expect(diagnose(src)).toEqual([`FSM3002 ${at(src, "parallel")} 8 experts do not divide over ep = 3 ranks`]);
  });
});

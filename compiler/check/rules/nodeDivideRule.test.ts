/**
 * nodeDivideRule: tp and esp divide gpus_per_node, so their groups never straddle nodes
 * (FSM3003).
 */
import { describe, expect, it } from "vitest";
import { diagnose, at } from "./testing.js";

/** A job on `nodes` × `gpus` GPUs with 24 experts, hidden sizes divisible by 2, 3, 4 and 8, and the given parallel block. */
function job(nodes: number, gpus: number, parallel: string): string {
  return `cluster c {
  nodes         = ${nodes}
  gpus_per_node = ${gpus}
  device        = h100_sxm
  intra         = nvlink4
  inter         = ib_ndr
}

layer l {
  hidden        = 1536
  experts       = 24
  top_k         = 2
  expert_hidden = 6144
}

train t {
  model       = l
  cluster     = c
  micro_batch = 3
  seq_len     = 1024
  ${parallel}
}
`;
}

describe("nodeDivideRule", () => {
  it("accepts tp and esp that divide gpus_per_node, from 1 up to the whole node", () => {
    expect(diagnose(job(1, 8, "parallel { tp = 1, esp = 1, ep = 8 }"))).toEqual([]);
    expect(diagnose(job(1, 8, "parallel { tp = 2, esp = 4, ep = 2 }"))).toEqual([]);
    expect(diagnose(job(1, 8, "parallel { tp = 8, esp = 8, ep = 1 }"))).toEqual([]);
  });

  it("reports a tp that does not divide gpus_per_node, at tp", () => {
    const src = job(3, 8, "parallel { tp = 3, esp = 8, ep = 3 }");
    expect(diagnose(src)).toEqual([`FSM3003 ${at(src, "tp = 3", 5)} tp = 3 must divide gpus_per_node = 8`]);
  });

  it("reports an esp that does not divide gpus_per_node, at esp", () => {
    const src = job(3, 8, "parallel { tp = 1, esp = 3, ep = 8 }");
    expect(diagnose(src)).toEqual([`FSM3003 ${at(src, "esp = 3", 6)} esp = 3 must divide gpus_per_node = 8`]);
  });

  it("reports tp and esp both when neither divides", () => {
    const src = job(3, 8, "parallel { tp = 3, esp = 3, ep = 4, edp = 2 }");
    expect(diagnose(src)).toEqual([
      `FSM3003 ${at(src, "tp = 3", 5)} tp = 3 must divide gpus_per_node = 8`,
      `FSM3003 ${at(src, "esp = 3", 6)} esp = 3 must divide gpus_per_node = 8`,
    ]);
  });

  it("reports only esp when tp is not written and so is esp (its default)", () => {
    const src = job(3, 8, "parallel { esp = 3, ep = 8 }");
    expect(diagnose(src)).toEqual([`FSM3003 ${at(src, "esp = 3", 6)} esp = 3 must divide gpus_per_node = 8`]);
  });

  it("reports a tp larger than the node", () => {
    const src = job(2, 4, "parallel { tp = 8, esp = 4, ep = 2 }");
    expect(diagnose(src)).toEqual([`FSM3003 ${at(src, "tp = 8", 5)} tp = 8 must divide gpus_per_node = 4`]);
  });
});

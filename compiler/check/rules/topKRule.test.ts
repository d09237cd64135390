/**
 * topKRule: top_k is at most experts (FSM3005). The layers use the xmoe router, which has no
 * expert groups, so that the group rule (FSM3008) does not also apply.
 */
import { describe, expect, it } from "vitest";
import { diagnose, at } from "./testing.js";

/** A one-node job whose layer has `experts` experts and `top_k`; `extra` adds fields to the layer. */
function job(experts: number, topK: number, extra = "router        = xmoe"): string {
  return `cluster c {
  nodes         = 1
  gpus_per_node = 8
  device        = h100_sxm
  intra         = nvlink4
  inter         = ib_ndr
}

layer l {
  hidden        = 1024
  experts       = ${experts}
  top_k         = ${topK}
  expert_hidden = 4096
  ${extra}
}

train t {
  model       = l
  cluster     = c
  micro_batch = 1
  seq_len     = 1024
  parallel { esp = 8, ep = 1 }
}
`;
}

describe("topKRule", () => {
  it("accepts top_k below experts", () => {
    expect(diagnose(job(8, 2))).toEqual([]);
  });

  it("accepts top_k equal to experts", () => {
    expect(diagnose(job(4, 4))).toEqual([]);
    expect(diagnose(job(1, 1))).toEqual([]);
  });

  it("reports top_k one larger than experts, at top_k", () => {
    const src = job(4, 5);
    expect(diagnose(src)).toEqual([`FSM3005 ${at(src, "top_k         = 5", 16)} top_k = 5 is larger than experts = 4`]);
  });

  it("checks the top_k of a model's moe block", () => {
    const src = job(2, 1).replace(/layer l \{[^}]*\}/, "model l {\n  layers = 2\n  hidden = 1024\n  moe { experts = 2, top_k = 3, expert_hidden = 4096, router = xmoe }\n}");
    expect(diagnose(src)).toEqual([`FSM3005 ${at(src, "top_k = 3", 8)} top_k = 3 is larger than experts = 2`]);
  });
});

/**
 * layoutProductRule: esp · ep · edp covers the cluster exactly (FSM3001), and a defaulted
 * edp = world / (esp · ep) comes out whole (FSM3007).
 */
import { describe, expect, it } from "vitest";
import { diagnose, at } from "./testing.js";

/** A job of `nodes` × `gpus` GPUs, 16 experts (divisible by every ep used here), the given parallel block. */
function job(nodes: number, gpus: number, parallel: string): string {
  return `cluster c {
  nodes         = ${nodes}
  gpus_per_node = ${gpus}
  device        = h100_sxm
  intra         = nvlink4
  inter         = ib_ndr
}

layer l {
  hidden        = 1024
  experts       = 16
  top_k         = 2
  expert_hidden = 4096
}

train t {
  model       = l
  cluster     = c
  micro_batch = 1
  seq_len     = 1024
  ${parallel}
}
`;
}

describe("layoutProductRule", () => {
  it("accepts explicit degrees whose product is the number of GPUs", () => {
    expect(diagnose(job(2, 4, "parallel { esp = 4, ep = 2, edp = 1 }"))).toEqual([]);
    expect(diagnose(job(2, 4, "parallel { esp = 2, ep = 2, edp = 2 }"))).toEqual([]);
    expect(diagnose(job(2, 4, "parallel { esp = 1, ep = 8, edp = 1 }"))).toEqual([]);
  });

  it("accepts the default layout: esp = gpus_per_node, ep = nodes, edp = 1", () => {
    expect(diagnose(job(2, 4, ""))).toEqual([]);
  });

  it("accepts a defaulted edp that comes out whole", () => {
    expect(diagnose(job(4, 4, "parallel { esp = 2, ep = 2 }"))).toEqual([]);
  });

  it("reports an explicit product larger than the cluster at edp, with the arithmetic", () => {
    const src = job(2, 4, "parallel { esp = 4, ep = 2, edp = 2 }");
    expect(diagnose(src)).toEqual([`FSM3001 ${at(src, "edp = 2", 6)} esp · ep · edp = 4 · 2 · 2 = 16, but the cluster has 8 GPUs (2 nodes × 4)`]);
  });

  it("reports an explicit product smaller than the cluster", () => {
    const src = job(4, 4, "parallel { esp = 4, ep = 2, edp = 1 }");
    expect(diagnose(src)).toEqual([`FSM3001 ${at(src, "edp = 1", 6)} esp · ep · edp = 4 · 2 · 1 = 8, but the cluster has 16 GPUs (4 nodes × 4)`]);
  });

  it("reports a defaulted edp that is a fraction, at esp", () => {
    const src = job(2, 4, "parallel { esp = 4, ep = 4 }");
    expect(diagnose(src)).toEqual([`FSM3007 ${at(src, "esp = 4", 6)} edp = 8 / (esp · ep) = 8 / (4 · 4) is not a whole number`]);
  });

  it("reports a defaulted edp when esp · ep does not divide the GPUs (8 / 3)", () => {
    const src = job(2, 4, "parallel { esp = 1, ep = 3 }").replace("experts       = 16", "experts       = 12");
    expect(diagnose(src)).toEqual([`FSM3007 ${at(src, "esp = 1", 6)} edp = 8 / (esp · ep) = 8 / (1 · 3) is not a whole number`]);
  });

  it("divides the world exactly, beyond 2^53", () => {
    // (2^31 − 1)² GPUs is odd, so ep = 2 leaves a fraction; in doubles the world rounds to an even number.
    const src = job(2147483647, 2147483647, "parallel { tp = 1, esp = 1, ep = 2 }");
    expect(diagnose(src)).toEqual([
      `FSM3007 ${at(src, "esp = 1", 6)} edp = 4611686014132420609 / (esp · ep) = 4611686014132420609 / (1 · 2) is not a whole number`,
    ]);
  });

  it("points at the parallel block when esp itself is defaulted", () => {
    const src = job(1, 8, "parallel { ep = 16 }");
    expect(diagnose(src)).toEqual([`FSM3007 ${at(src, "parallel")} edp = 8 / (esp · ep) = 8 / (8 · 16) is not a whole number`]);
  });
});

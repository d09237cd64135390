/**
 * moeLayersRule: moe_layers names only layers the model has, each once, and selects at least
 * one (FSM3006).
 */
import { describe, expect, it } from "vitest";
import { diagnose, at } from "./testing.js";

/** A one-node job of a model with `layers` layers and the given moe_layers. */
function job(layers: number, moeLayers: string): string {
  return `cluster c {
  nodes         = 1
  gpus_per_node = 8
  device        = h100_sxm
  intra         = nvlink4
  inter         = ib_ndr
}

model m {
  layers     = ${layers}
  hidden     = 1024
  moe { experts = 8, top_k = 2, expert_hidden = 4096 }
  moe_layers = ${moeLayers}
}

train t {
  model       = m
  cluster     = c
  micro_batch = 1
  seq_len     = 1024
}
`;
}

describe("moeLayersRule", () => {
  it("accepts all, every N and after N that leave at least one MoE layer", () => {
    for (const sel of ["all", "every 1", "every 2", "every 4", "after 0", "after 3"]) expect(diagnose(job(4, sel))).toEqual([]);
  });

  it("accepts a list naming the first and the last layer", () => {
    expect(diagnose(job(4, "[0, 3]"))).toEqual([]);
  });

  it("accepts a list in any order", () => {
    expect(diagnose(job(4, "[3, 0, 2]"))).toEqual([]);
  });

  it("reports a list index equal to the number of layers, naming the valid range", () => {
    const src = job(4, "[0, 4]");
    expect(diagnose(src)).toEqual([`FSM3006 ${at(src, "[0, 4]")} moe_layers names layer 4, but the model has layers 0 … 3`]);
  });

  it("reports an index named twice", () => {
    const src = job(4, "[2, 1, 2]");
    expect(diagnose(src)).toEqual([`FSM3006 ${at(src, "[2, 1, 2]")} moe_layers names layer 2 twice`]);
  });

  it("reports an empty list as selecting no layer", () => {
    const src = job(4, "[]");
    expect(diagnose(src)).toEqual([`FSM3006 ${at(src, "[]")} moe_layers selects no layer of the model's 4`]);
  });

  it("reports 'after N' with N equal to the number of layers", () => {
    const src = job(4, "after 4");
    expect(diagnose(src)).toEqual([`FSM3006 ${at(src, "after 4")} moe_layers after 4 leaves no MoE layer in a model of 4 layers`]);
  });

  it("reports 'every N' with N larger than the number of layers", () => {
    const src = job(4, "every 5");
    expect(diagnose(src)).toEqual([`FSM3006 ${at(src, "every 5")} moe_layers selects no layer of the model's 4`]);
  });

  it("does not apply to a standalone layer, which is one MoE layer", () => {
    const src = job(4, "all").replace(/model m \{[^}]*\}\n  moe_layers = all\n\}/, "layer m { hidden = 1024, experts = 8, top_k = 2, expert_hidden = 4096 }");
    expect(src).toContain("layer m");
    expect(diagnose(src)).toEqual([]);
  });
});

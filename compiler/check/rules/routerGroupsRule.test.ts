/**
 * routerGroupsRule: group-limited routing (softmax_topk and sigmoid) splits the experts into
 * `groups` equal groups, a token uses `topk_groups` of them, and those hold at least top_k
 * experts (FSM3008).
 */
import { describe, expect, it } from "vitest";
import { diagnose, at } from "./testing.js";

/** A one-node job whose layer has 8 experts, the given top_k, router and group fields. */
function job(topK: number, fields: string): string {
  return `cluster c {
  nodes         = 1
  gpus_per_node = 8
  device        = h100_sxm
  intra         = nvlink4
  inter         = ib_ndr
}

layer l {
  hidden        = 1024
  experts       = 8
  top_k         = ${topK}
  expert_hidden = 4096
  ${fields}
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

describe("routerGroupsRule", () => {
  it("accepts the defaults: one group, all of it usable", () => {
    expect(diagnose(job(2, ""))).toEqual([]);
    expect(diagnose(job(2, "router = sigmoid"))).toEqual([]);
  });

  it("accepts groups that divide the experts and usable groups that hold exactly top_k experts", () => {
    expect(diagnose(job(4, "router = sigmoid, groups = 4, topk_groups = 2"))).toEqual([]);
    expect(diagnose(job(2, "groups = 8, topk_groups = 2"))).toEqual([]);
  });

  it("accepts topk_groups equal to groups", () => {
    expect(diagnose(job(2, "groups = 4, topk_groups = 4"))).toEqual([]);
  });

  it("reports groups that do not divide the experts, at groups", () => {
    const src = job(2, "router = sigmoid, groups = 3, topk_groups = 1");
    expect(diagnose(src)).toEqual([`FSM3008 ${at(src, "groups = 3", 9)} router groups: 8 experts do not split into 3 equal groups`]);
  });

  it("reports topk_groups larger than groups, at topk_groups", () => {
    const src = job(2, "groups = 4, topk_groups = 5");
    expect(diagnose(src)).toEqual([`FSM3008 ${at(src, "topk_groups = 5", 14)} router groups: topk_groups = 5 is more than groups = 4`]);
  });

  it("reports usable groups holding fewer experts than top_k", () => {
    const src = job(3, "router = sigmoid, groups = 4, topk_groups = 1");
    expect(diagnose(src)).toEqual([`FSM3008 ${at(src, "topk_groups = 1", 14)} router groups: 1 of 4 groups hold 2 experts, fewer than top_k = 3`]);
  });

  it("defaults topk_groups to groups, so groups alone never limits routing", () => {
    expect(diagnose(job(8, "groups = 8"))).toEqual([]);
  });

  it("does not apply to routers without groups", () => {
    // gshard routes each token to 2 experts, switch to 1 (FSM3012 otherwise).
    for (const [router, topK] of [["gshard", 2], ["switch", 1], ["xmoe", 1], ["softmoe", 1], ["expert_choice", 1]] as const) {
      expect(diagnose(job(topK, `router = ${router}`))).toEqual([]);
    }
  });

  it("leaves top_k larger than the experts of all groups to FSM3005 when routing is not group-limited", () => {
    // With groups = topk_groups every expert is usable: the condition is top_k ≤ experts, FSM3005's.
    const src = job(9, "");
    expect(diagnose(src)).toEqual([`FSM3005 ${at(src, "top_k         = 9", 16)} top_k = 9 is larger than experts = 8`]);
    expect(diagnose(job(9, "groups = 4")).map((d) => d.slice(0, 7))).toEqual(["FSM3005"]);
  });

  it("compares the experts of the usable groups with top_k exactly", () => {
    // 1073741790 of 1073741792 groups of 2 experts hold 2147483580 experts, exactly top_k; in
    // doubles 1073741790 · 2147483584 / 1073741792 is 2147483579.9999998.
    const src = job(1, "groups = 1073741792, topk_groups = 1073741790")
      .replace("experts       = 8", "experts       = 2147483584")
      .replace("top_k         = 1", "top_k         = 2147483580");
    expect(diagnose(src)).toEqual([]);
  });
});

describe("model rules on a model or layer that no train job uses", () => {
  const layer = (fields: string) => `layer l {\n  hidden        = 64\n  experts       = 8\n  expert_hidden = 64\n${fields}}\n`;

  it("checks the router groups", () => {
    const src = layer("  top_k         = 3\n  router        = sigmoid\n  groups        = 4\n  topk_groups   = 1\n");
    expect(diagnose(src)).toEqual([`FSM3008 ${at(src, "topk_groups   = 1", 16)} router groups: 1 of 4 groups hold 2 experts, fewer than top_k = 3`]);
  });

  it("checks top_k against the experts and the router", () => {
    const src = layer("  top_k         = 9\n");
    expect(diagnose(src)).toEqual([`FSM3005 ${at(src, "top_k         = 9", 16)} top_k = 9 is larger than experts = 8`]);
  });

  it("checks moe_layers of a model", () => {
    const src = "model m {\n  layers     = 2\n  hidden     = 128\n  moe { experts = 8, top_k = 2, expert_hidden = 64 }\n  moe_layers = [0, 2]\n}\n";
    expect(diagnose(src)).toEqual([`FSM3006 ${at(src, "[0, 2]")} moe_layers names layer 2, but the model has layers 0 … 1`]);
  });

  it("reports a problem once when a train job uses the model as it is", () => {
    const src = job(9, "");
    expect(diagnose(src).filter((d) => d.startsWith("FSM3005"))).toHaveLength(1);
  });
});

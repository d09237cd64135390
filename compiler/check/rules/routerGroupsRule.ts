import { diagnostic, type Diagnostic } from "../../diagnostics/diagnostic.js";
import type { ModelRule } from "./rule.js";

/**
 * Group-limited routing (baselines.md §2.2): the experts split into `groups` equal groups, a
 * token may use `topk_groups` of them, and those must hold at least top_k experts. FSM3008.
 * When a token may use every group (`topk_groups = groups`, as with the default `groups = 1`)
 * routing is not group-limited, and the last condition is top_k ≤ experts, which is FSM3005's.
 * Products are exact (bigint): experts · topk_groups can exceed 2⁵³.
 */
export const routerGroupsRule: ModelRule = {
  name: "routerGroups",
  scope: "model",
  summary: "groups divides experts; topk_groups ≤ groups; when topk_groups < groups, topk_groups · experts / groups ≥ top_k.",
  check(model) {
    const moe = model.moe;
    if (moe.groups === null || moe.topkGroups === null) return [];
    const out: Diagnostic[] = [];
    const { experts, groups, topkGroups, topK, spans } = moe;
    if (experts % groups !== 0) out.push(diagnostic("FSM3008", spans["groups"]!, { detail: `${experts} experts do not split into ${groups} equal groups` }));
    else if (topkGroups > groups) out.push(diagnostic("FSM3008", spans["topk_groups"]!, { detail: `topk_groups = ${topkGroups} is more than groups = ${groups}` }));
    else if (topkGroups < groups) {
      const held = BigInt(topkGroups) * BigInt(experts / groups);
      if (held < BigInt(topK)) {
        out.push(diagnostic("FSM3008", spans["topk_groups"]!, { detail: `${topkGroups} of ${groups} groups hold ${held} experts, fewer than top_k = ${topK}` }));
      }
    }
    return out;
  },
};

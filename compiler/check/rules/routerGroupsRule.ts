import { diagnostic, type Diagnostic } from "../../diagnostics/diagnostic.js";
import type { Rule } from "./rule.js";

/**
 * Group-limited routing (baselines.md §2.2): the experts split into `groups` equal groups, a
 * token may use `topk_groups` of them, and those must hold at least top_k experts. FSM3008.
 */
export const routerGroupsRule: Rule = {
  name: "routerGroups",
  summary: "groups divides experts; topk_groups ≤ groups; topk_groups · experts / groups ≥ top_k.",
  check(job) {
    const moe = job.model.moe;
    if (moe.groups === null || moe.topkGroups === null) return [];
    const out: Diagnostic[] = [];
    const { experts, groups, topkGroups, topK, spans } = moe;
    if (experts % groups !== 0) out.push(diagnostic("FSM3008", spans["groups"]!, { detail: `${experts} experts do not split into ${groups} equal groups` }));
    else if (topkGroups > groups) out.push(diagnostic("FSM3008", spans["topk_groups"]!, { detail: `topk_groups = ${topkGroups} is more than groups = ${groups}` }));
    else if ((topkGroups * experts) / groups < topK) {
      out.push(diagnostic("FSM3008", spans["topk_groups"]!, { detail: `${topkGroups} of ${groups} groups hold ${(topkGroups * experts) / groups} experts, fewer than top_k = ${topK}` }));
    }
    return out;
  },
};

import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { Rule } from "./rule.js";

/** A token cannot use more experts than exist. FSM3005. */
export const topKRule: Rule = {
  name: "topK",
  summary: "top_k is at most experts.",
  check(job) {
    const { topK, experts, spans } = job.model.moe;
    return topK <= experts ? [] : [diagnostic("FSM3005", spans["top_k"]!, { topk: topK, experts })];
  },
};

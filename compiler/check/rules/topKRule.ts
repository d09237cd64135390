import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { ModelRule } from "./rule.js";

/** A token cannot use more experts than exist. FSM3005. */
export const topKRule: ModelRule = {
  name: "topK",
  scope: "model",
  summary: "top_k is at most experts.",
  check(model) {
    const { topK, experts, spans } = model.moe;
    return topK <= experts ? [] : [diagnostic("FSM3005", spans["top_k"]!, { topk: topK, experts })];
  },
};

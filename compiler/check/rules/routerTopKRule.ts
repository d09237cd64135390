import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { ModelRule } from "./rule.js";

/** The experts per token of the routers that fix it: Switch sends each token to 1, GShard to 2. */
export const FIXED_TOP_K: Readonly<Record<string, number>> = { switch: 1, gshard: 2 };

/** `switch` routes each token to one expert and `gshard` to two: top_k must say so. FSM3012. */
export const routerTopKRule: ModelRule = {
  name: "routerTopK",
  scope: "model",
  summary: "top_k is 1 with the switch router and 2 with gshard.",
  check(model) {
    const { router, topK, spans } = model.moe;
    const k = FIXED_TOP_K[router];
    if (k === undefined || topK === k) return [];
    return [diagnostic("FSM3012", spans["top_k"]!, { router, k, experts: k === 1 ? "expert" : "experts", topk: topK })];
  },
};

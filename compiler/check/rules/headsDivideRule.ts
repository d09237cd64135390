import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { ModelRule } from "./rule.js";

/**
 * Grouped-query attention shares each key/value head among heads / kv_heads query heads, so
 * kv_heads divides heads (MLA has no kv_heads). FSM3004.
 */
export const headsDivideRule: ModelRule = {
  name: "headsDivide",
  scope: "model",
  summary: "heads divide by kv_heads.",
  check(model) {
    const att = model.attention;
    if (!att || att.kind === "mla" || att.heads % att.kvHeads === 0) return [];
    return [diagnostic("FSM3004", att.spans["kv_heads"]!, { what: "heads", value: att.heads, by: "kv_heads", divisor: att.kvHeads })];
  },
};

/**
 * The `json` target: plan.json itself (ARCHITECTURE.md, "plan.json"), two-space indented with
 * a final newline, keys in the schema's order.
 */
import type { Plan } from "../compiler/plan/schema.js";

/** plan.json text. */
export function emitJson(plan: Plan): string {
  return JSON.stringify(plan, null, 2) + "\n";
}

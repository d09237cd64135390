/**
 * The plan's JSON Schema (draft 2020-12), generated from the zod schema so the two can never
 * disagree; published as spec/plan.schema.json for tools outside TypeScript.
 */
import { z } from "zod";
import { Plan, PLAN_FORMAT } from "./schema.js";

/** The JSON Schema text of plan.json. */
export function planJsonSchema(): string {
  const schema = z.toJSONSchema(Plan, { target: "draft-2020-12" }) as Record<string, unknown>;
  return JSON.stringify({ title: `fsmoe plan (${PLAN_FORMAT})`, ...schema }, null, 2) + "\n";
}

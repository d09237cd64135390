/**
 * `npm run schema`: publish the plan's zod schema as JSON Schema (draft 2020-12) at
 * spec/plan.schema.json. test/plan-schema.test.ts fails when the published file is stale.
 */
import { writeFileSync } from "node:fs";
import { planJsonSchema } from "../compiler/plan/json-schema.js";

writeFileSync("spec/plan.schema.json", planJsonSchema());
console.log("wrote spec/plan.schema.json");

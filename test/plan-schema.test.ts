/**
 * spec/plan.schema.json is the published form of the zod plan schema: it must be current
 * (regenerate with `npm run schema`), and a real plan must validate against it with a
 * JSON Schema validator, not only with zod.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Ajv2020 } from "ajv/dist/2020.js";
import { check } from "../compiler/check/check.js";
import { compileJob } from "../compiler/compile/compile.js";
import { buildPlan } from "../compiler/plan/build.js";
import { planJsonSchema } from "../compiler/plan/json-schema.js";

describe("the published plan schema", () => {
  it("is the current zod schema (run npm run schema after changing compiler/plan/schema.ts)", () => {
    expect(readFileSync("spec/plan.schema.json", "utf8")).toBe(planJsonSchema());
  });

  it("accepts a compiled plan and rejects one with a field removed", () => {
    const job = check("examples/tiny.moe").program.jobs[0]!;
    const c = compileJob(job, { strategy: "auto" }).compiled!;
    const plan = JSON.parse(JSON.stringify(buildPlan(c, "examples/tiny.moe", "", "test"))) as Record<string, unknown>;
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(JSON.parse(readFileSync("spec/plan.schema.json", "utf8")) as object);
    expect(validate(plan), JSON.stringify(validate.errors)).toBe(true);
    delete plan["predicted"];
    expect(validate(plan)).toBe(false);
  });
});

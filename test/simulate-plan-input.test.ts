/**
 * `fsmoec simulate` on plan.json files (compiler/plan/read.ts): a good plan simulates like its
 * source; a malformed one, one of another format version, one with a field of the wrong type
 * or one that fails verification is refused with a message naming the field or op, exit 1, and
 * never a stack trace.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../cli/main.js";
import { parsePlan } from "../compiler/plan/read.js";
import type { Plan } from "../compiler/plan/schema.js";
import { compiled } from "../runtime/simulate/testing.js";

const dir = mkdtempSync(join(tmpdir(), "fsmoec-simulate-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(...argv: string[]): { code: number; out: string; err: string } {
  let out = "";
  let err = "";
  const code = run(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

const good = compiled("examples/tiny.moe", "auto").plan;

/** Write a plan (or any text) to a file of the temp folder and return its path. */
function file(name: string, content: Plan | string): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content, null, 2));
  return path;
}

function edited(edit: (p: Record<string, any>) => void): string {
  const p = JSON.parse(JSON.stringify(good)) as Record<string, any>;
  edit(p);
  return JSON.stringify(p, null, 2);
}

const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at [^\n]+:\d+:\d+/);

describe("fsmoec simulate on a plan.json", () => {
  it("simulates a compiled plan exactly like its .moe source, with the source's link figures", () => {
    const path = file("good.json", good);
    const fromPlan = cli("simulate", path, "--format", "json");
    const fromMoe = cli("simulate", "examples/tiny.moe", "--format", "json");
    expect(fromPlan.code).toBe(0);
    expect(fromMoe.code).toBe(0);
    const a = JSON.parse(fromPlan.out).simulations[0];
    const b = JSON.parse(fromMoe.out).simulations[0];
    expect(a.iterationUs).toBe(b.iterationUs);
    expect(a.links).toMatch(/links of cluster 'tiny_2x2' in examples\/tiny\.moe/);
  });

  it("still simulates a plan whose source is gone, and says the link figures are unknown", () => {
    const path = file("moved.json", { ...good, source: { ...good.source, file: join(dir, "gone.moe") } });
    const r = cli("simulate", path);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/no link figures \(the source .*gone\.moe is missing or does not check\)/);
  });

  it("refuses malformed JSON, saying where", () => {
    const r = cli("simulate", file("cut.json", JSON.stringify(good).slice(0, 300)));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cut\.json: error: not valid JSON at line 1, column \d+/);
    expect(r.out).toBe("");
    noStack(r.err);
  });

  it("refuses a plan of another format version, naming the field and both versions", () => {
    const r = cli("simulate", file("old.json", edited((p) => (p.format = "fsmoe-plan/0"))));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/old\.json: error: field 'format' is "fsmoe-plan\/0" \(written by fsmoec test\), but this fsmoec reads 'fsmoe-plan\/1'/);
    noStack(r.err);
  });

  it("refuses a field of the wrong type, naming the field and the op", () => {
    const r = cli("simulate", file("type.json", edited((p) => (p.ops[3].predictedUs = "soon"))));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/type\.json: error: field 'ops\[3\]\.predictedUs' \(op 3 [a-z_]+ [a-z_.]+[^)]*\): .*expected number, received string/);
    noStack(r.err);
  });

  it("refuses a wait on a missing op, naming the op (FSM4011)", () => {
    const r = cli("simulate", file("wait.json", edited((p) => p.ops[5].waits.push(123456))));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/wait\.json: error FSM4011: malformed plan: op 5 \([^)]*\) waits for op 123456, which does not exist/);
    noStack(r.err);
  });

  it("refuses a file that is not a plan object, or is missing", () => {
    expect(cli("simulate", file("array.json", "[1, 2]")).err).toMatch(/the top level is an array, not a plan object/);
    expect(cli("simulate", file("other.json", '{"name": "x"}')).err).toMatch(/field 'format' is missing/);
    const missing = cli("simulate", join(dir, "nothing.json"));
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/nothing\.json: error: cannot read: no such file/);
  });

  it("reads a good plan back with parsePlan and lists at most ten problems of a bad one", () => {
    expect(parsePlan(JSON.stringify(good)).ok).toBe(true);
    const bad = parsePlan(edited((p) => p.ops.forEach((o: Record<string, unknown>) => (o.stream = "gpu"))));
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.problems.length).toBe(11);
      expect(bad.problems[10]!.message).toMatch(/more problems with fields/);
    }
  });

  it("rejects bad --skew and --interference values as usage errors", () => {
    expect(cli("simulate", "examples/tiny.moe", "--skew", "zipf").code).toBe(2);
    const r = cli("simulate", "examples/tiny.moe", "--interference", "0.5");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--interference expects a factor ≥ 1/);
  });
});

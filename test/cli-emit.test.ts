/**
 * `fsmoec emit PLAN.json`: emitters run on a plan read back from disk, and a plan that is
 * malformed, of another format version, or fails verification is refused with a message that
 * names the field or op (exit 1), never a stack trace.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cli } from "./cli.js";

describe("fsmoec emit", () => {
  const dir = mkdtempSync(join(tmpdir(), "fsmoe-emit-"));
  expect(cli("compile", "examples/tiny.moe", "-o", dir).code).toBe(0);
  const planFile = join(dir, "tiny_job", "plan.json");
  const plan = JSON.parse(readFileSync(planFile, "utf8")) as { ops: { waits: number[]; predictedUs: unknown }[]; format: string };

  it("writes the asked targets from a plan on disk", () => {
    const out = join(dir, "again");
    const r = cli("emit", planFile, "--emit", "svg,trace", "-o", out);
    expect(r.code).toBe(0);
    expect(existsSync(join(out, "tiny_job", "timeline.svg"))).toBe(true);
    expect(existsSync(join(out, "tiny_job", "trace.json"))).toBe(true);
  });

  it("refuses a plan of another format version, naming the field", () => {
    const bad = join(dir, "old.json");
    writeFileSync(bad, JSON.stringify({ ...plan, format: "fsmoe-plan/0" }));
    const r = cli("emit", bad, "-o", join(dir, "x"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("field 'format'");
  });

  it("refuses a field of the wrong type, naming its path", () => {
    const bad = join(dir, "typed.json");
    const ops = plan.ops.map((o, i) => (i === 3 ? { ...o, predictedUs: "soon" } : o));
    writeFileSync(bad, JSON.stringify({ ...plan, ops }));
    const r = cli("emit", bad, "-o", join(dir, "x"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("ops[3].predictedUs");
  });

  it("refuses a plan that fails verification, naming the op", () => {
    const bad = join(dir, "wait.json");
    const ops = plan.ops.map((o, i) => (i === 5 ? { ...o, waits: [...o.waits, 999_999] } : o));
    writeFileSync(bad, JSON.stringify({ ...plan, ops }));
    const r = cli("emit", bad, "-o", join(dir, "x"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/op 5\b/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it("refuses text that is not JSON", () => {
    const bad = join(dir, "broken.json");
    writeFileSync(bad, "{\n  \"format\": nope\n}");
    const r = cli("emit", bad, "-o", join(dir, "x"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("not valid JSON");
  });
});

/**
 * Golden cases of the compile stage: every spec/compile-cases/NAME.moe is checked and compiled
 * (each job with its strategy) and the rendered diagnostics of both stages compared with
 * spec/baselines/reference/compile/NAME.errors.txt. These cover what only `compile` reports:
 * profiles that cannot be read (FSM3009) or parsed (FSM3010) and plans that do not fit the
 * device (FSM3011).
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { check } from "../compiler/check/check.js";
import { compileProgram } from "../compiler/compile/index.js";
import { sortDiagnostics } from "../compiler/diagnostics/diagnostic.js";
import { renderText } from "../compiler/diagnostics/render.js";
import { compareBaseline, REFERENCE } from "./baselines.js";

const CASES = "spec/compile-cases";
const cases = readdirSync(CASES).filter((f) => f.endsWith(".moe")).sort();

describe("compile golden cases", () => {
  it.each(cases)("%s matches its baseline", (file) => {
    const r = check(`${CASES}/${file}`);
    const compiled = compileProgram(r, { version: "test" });
    const all = sortDiagnostics([...r.diagnostics, ...compiled.diagnostics]);
    const text = renderText(all, (n) => r.sources.get(n)) || "(no diagnostics)\n";
    expect(compareBaseline(`compile/${file.replace(/\.moe$/, "")}.errors.txt`, text)).toBeUndefined();
  });

  it("covers every diagnostic only compile reports", () => {
    const seen = new Set<string>();
    for (const f of readdirSync(`${REFERENCE}/compile`)) {
      for (const m of readFileSync(`${REFERENCE}/compile/${f}`, "utf8").matchAll(/ (FSM\d{4}): /g)) seen.add(m[1]!);
    }
    expect(["FSM3009", "FSM3010", "FSM3011"].filter((c) => !seen.has(c))).toEqual([]);
  });
});

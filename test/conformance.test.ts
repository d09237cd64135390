/**
 * The golden conformance suite: every spec/cases/NAME.moe is checked and its rendered
 * diagnostics compared with spec/baselines/reference/NAME.errors.txt; a case that checks clean
 * also has its Program (spans elided) compared with NAME.program.json.
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { check } from "../compiler/check/check.js";
import { renderText } from "../compiler/diagnostics/render.js";
import { messages } from "../compiler/diagnostics/messages.js";
import { compareBaseline, REFERENCE } from "./baselines.js";

const CASES = "spec/cases";
const cases = readdirSync(CASES).filter((f) => f.endsWith(".moe")).sort();

function stripSpans(key: string, value: unknown): unknown {
  return key === "span" || key === "spans" ? undefined : value;
}

describe("golden cases", () => {
  it.each(cases)("%s matches its baselines", (file) => {
    const name = file.replace(/\.moe$/, "");
    const r = check(`${CASES}/${file}`);
    const errors = renderText(r.diagnostics, (n) => r.sources.get(n)) || "(no diagnostics)\n";
    expect(compareBaseline(`${name}.errors.txt`, errors)).toBeUndefined();
    if (r.diagnostics.length === 0) {
      expect(compareBaseline(`${name}.program.json`, JSON.stringify(r.program, stripSpans, 2) + "\n")).toBeUndefined();
    }
  });

  /**
   * Codes `check` never reports on a golden case, each covered elsewhere:
   * - FSM1012 (file too large): a 16 MiB case is too big to keep; grammar/parse.test.ts and
   *   test/spec-doc.test.ts produce it from generated input.
   * - FSM3009, FSM3010, FSM3011 (profiles, memory fit): reported by `compile`, not `check`; they
   *   get compile golden cases of their own.
   * - FSM4xxx (plan verification): reported by the verifier on compiled plans
   *   (compiler/verify/ and its tests).
   * Codes from FSM3012 on are `check`'s again and need a case here.
   */
  const notFromCheck = (code: string) => code === "FSM1012" || code === "FSM3009" || code === "FSM3010" || code === "FSM3011" || code.startsWith("FSM4");

  it("covers every diagnostic in the catalog that check reports", () => {
    const seen = new Set<string>();
    for (const f of readdirSync(REFERENCE).filter((n) => n.endsWith(".errors.txt"))) {
      for (const m of readFileSync(`${REFERENCE}/${f}`, "utf8").matchAll(/ (FSM\d{4}): /g)) seen.add(m[1]!);
    }
    const missing = Object.keys(messages).filter((c) => !seen.has(c) && !notFromCheck(c));
    expect(missing).toEqual([]);
  });
});

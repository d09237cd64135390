/**
 * Rendering diagnostics as text: the header, the source line and the caret.
 */
import { describe, expect, it } from "vitest";
import { parse } from "../../grammar/parse.js";
import { renderText } from "./render.js";

function render(text: string): string {
  const r = parse(text, "t.moe");
  return renderText(r.diagnostics, () => r.source);
}

describe("renderText", () => {
  it("shows control characters in the source line as control pictures, keeping the caret in place", () => {
    const out = render("link l { bandwidth = 1 GB/s }\u0000\n");
    expect(out).toBe(
      ["t.moe:1:30: error FSM1002: NUL character in source", "    1 | link l { bandwidth = 1 GB/s }\u2400", "      |                              ^", ""].join("\n"),
    );
    expect(out).not.toContain("\u0000");
    const esc = render("link l { a = 1 \u001b }\n");
    expect(esc).toContain("    1 | link l { a = 1 \u241b }");
    expect(esc).not.toContain("\u001b");
  });

  it("expands tabs and keeps the caret under the span", () => {
    expect(render("link l {\ta = 1 $ }\n").split("\n").slice(1, 3)).toEqual(["    1 | link l {    a = 1 $ }", "      |                   ^"]);
  });
});

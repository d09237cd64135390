/**
 * The formatter (`fsmoec fmt`): where comments go, blank lines between blocks, and that
 * formatting is idempotent and keeps the AST on the cases that used to break it.
 */
import { describe, expect, it } from "vitest";
import type * as A from "./ast.js";
import { parse } from "./parse.js";
import { format } from "./print.js";

function fmt(text: string): string {
  const r = format(text);
  expect(r.diagnostics).toEqual([]);
  const out = r.text!;
  expect(format(out).text, "formatting is idempotent").toBe(out);
  expect(strip(parse(out).ast), "formatting keeps the AST").toEqual(strip(parse(text).ast));
  return out;
}

/** The AST without positions and comments. */
function strip(ast: A.FileNode): unknown {
  return JSON.parse(JSON.stringify(ast.items, (k, v) => (k === "span" || k === "pathSpan" ? undefined : v)));
}

describe("trailing comments", () => {
  it("stay with the last field of the line they end, not the first", () => {
    expect(fmt("model m {\n  layers=4,hidden = 1024 // the width\n  dtype = bf16\n}\n")).toBe(
      "model m {\n  layers = 4\n  hidden = 1024  // the width\n  dtype  = bf16\n}\n",
    );
  });

  it("stay with a field followed by a comma", () => {
    expect(fmt("link l {\n  bandwidth = 1 GB/s, // a\n  latency = 1 us\n}\n")).toBe("link l {\n  bandwidth = 1 GB/s  // a\n  latency   = 1 us\n}\n");
  });

  it("stay on the line of a top-level block's '}', and a blank line still follows the block", () => {
    expect(fmt("link a {\n  bandwidth = 1 GB/s\n} // end of a\nlink b { bandwidth = 2 GB/s }\n")).toBe(
      "link a {\n  bandwidth = 1 GB/s\n}  // end of a\n\nlink b {\n  bandwidth = 2 GB/s\n}\n",
    );
    expect(fmt("link a { bandwidth = 1 GB/s } /* a */\nlink b { bandwidth = 2 GB/s }\n")).toBe(
      "link a {\n  bandwidth = 1 GB/s\n}  /* a */\n\nlink b {\n  bandwidth = 2 GB/s\n}\n",
    );
  });

  it("of several lines after a '}' follow it on lines of their own, then a blank line", () => {
    expect(fmt("link a { bandwidth = 1 GB/s } /* one\n  two */\nlink b { bandwidth = 2 GB/s }\n")).toBe(
      "link a {\n  bandwidth = 1 GB/s\n}\n/* one\ntwo */\n\nlink b {\n  bandwidth = 2 GB/s\n}\n",
    );
  });
});

describe("comments above a block", () => {
  it("stay directly above it, a multi-line block comment as well as a line comment", () => {
    const text = "link a { bandwidth = 1 GB/s }\n// about b\nlink b { bandwidth = 1 GB/s }\n/* about c,\n   on two lines */\nlink c { bandwidth = 1 GB/s }\n";
    expect(fmt(text)).toBe(
      "link a {\n  bandwidth = 1 GB/s\n}\n// about b\nlink b {\n  bandwidth = 1 GB/s\n}\n/* about c,\n   on two lines */\nlink c {\n  bandwidth = 1 GB/s\n}\n",
    );
  });

  it("keep a blank line before them where the source has one", () => {
    expect(fmt("link a { bandwidth = 1 GB/s }\n\n/* about b\n */\nlink b { bandwidth = 1 GB/s }\n")).toBe(
      "link a {\n  bandwidth = 1 GB/s\n}\n\n/* about b\n */\nlink b {\n  bandwidth = 1 GB/s\n}\n",
    );
  });
});

describe("idempotence", () => {
  it("keeps the lines of an indented multi-line comment where they are relative to its '/*'", () => {
    const out = fmt("model m {\n      /* note\n         indented\n      */\n  layers = 2\n}\n");
    expect(out).toBe("model m {\n  /* note\n     indented\n  */\n  layers = 2\n}\n");
  });

  it("decides whether a list fits on one line the same way each time, block values in it included", () => {
    const out = fmt("train t {\n  pipeline = [\n    1,\n    {\n      forward = 2, backward = 1 },\n  ]\n}\n");
    expect(out).toBe("train t {\n  pipeline = [1, { forward = 2, backward = 1 }]\n}\n");
  });
});

describe("files with syntax errors", () => {
  it("are not formatted, and their diagnostics come sorted by position", () => {
    const r = format("link a { x = 1 y = 2 }\nlink { }\nlink c { z = $ }\n");
    expect(r.text).toBeNull();
    const starts = r.diagnostics.map((d) => d.span.start);
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
  });
});

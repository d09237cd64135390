/**
 * The lexer and parser through their front door, `parse()`: the AST of valid input, syntax
 * diagnostics (FSM1xxx) with their positions, error recovery, UTF-8 and NUL handling, the
 * nesting and file-size limits, and that no input makes it throw.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type * as A from "./ast.js";
import { unseparated } from "./cst-to-ast.js";
import { MAX_FILE_SIZE, MAX_NESTING, parse } from "./parse.js";

/** Each diagnostic as `CODE line:column message`, in the order reported. */
function diagnose(input: string | Uint8Array): string[] {
  const r = parse(input, "t.moe");
  return r.diagnostics.map((d) => {
    const p = r.source.position(d.span.start);
    return `${d.code} ${p.line}:${p.column} ${d.message}`;
  });
}

function codes(input: string | Uint8Array): string[] {
  return parse(input, "t.moe").diagnostics.map((d) => d.code);
}

function blocks(input: string): A.BlockNode[] {
  return parse(input, "t.moe").ast.items.filter((i): i is A.BlockNode => i.kind === "block");
}

function onlyField(input: string): A.FieldNode {
  const b = blocks(input);
  expect(b).toHaveLength(1);
  expect(b[0]!.body.fields).toHaveLength(1);
  return b[0]!.body.fields[0]!;
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const bytes = (...parts: (string | number[])[]) =>
  new Uint8Array(parts.flatMap((p) => (typeof p === "string" ? [...utf8(p)] : p)));

describe("valid input", () => {
  it("parses blocks, imports and fields into an AST in source order", () => {
    const r = parse('import "a.moe"\nlink l {\n  bandwidth = 10 GB/s\n  latency = 5 us\n}\nmodel m { layers = 2, hidden = 64 }\n', "t.moe");
    expect(r.diagnostics).toEqual([]);
    expect(r.ast.items.map((i) => (i.kind === "import" ? `import ${i.path}` : `${i.blockKind.text} ${i.name.text}`))).toEqual([
      "import a.moe",
      "link l",
      "model m",
    ]);
    const [, link, model] = r.ast.items as [A.ImportNode, A.BlockNode, A.BlockNode];
    expect(link.body.fields.map((f) => f.path[0]!.text)).toEqual(["bandwidth", "latency"]);
    expect(model.body.fields.map((f) => f.path[0]!.text)).toEqual(["layers", "hidden"]);
  });

  it("reads a number's unit, including a rate unit written with '/s' and the micro sign", () => {
    const units = ["10 GB/s", "5 us", "5 µs", "5 μs", "312 TFLOP/s", "80 GiB", "100 Gb/s"].map((v) => {
      const f = onlyField(`link l { x = ${v} }`);
      return f.value.kind === "number" ? `${f.value.text} ${f.value.unit?.text}` : f.value.kind;
    });
    expect(units).toEqual(["10 GB/s", "5 us", "5 µs", "5 μs", "312 TFLOP/s", "80 GiB", "100 Gb/s"]);
  });

  it("accepts '_' separators, decimals and exponents in numbers", () => {
    for (const text of ["16_384", "1.25", "1e-3", "2E+6", "1_000.000_1e2"]) {
      const f = onlyField(`link l { x = ${text} }`);
      expect(f.value).toMatchObject({ kind: "number", text });
    }
  });

  it("does not take a name on the next line as the unit of a number", () => {
    const b = blocks("link l {\n  x = 5\n  us = 3\n}");
    expect(b[0]!.body.fields.map((f) => f.path[0]!.text)).toEqual(["x", "us"]);
    expect(b[0]!.body.fields[0]!.value).toMatchObject({ kind: "number", text: "5", unit: undefined });
  });

  it("does not take the next field's name as a unit when fields are separated by a comma", () => {
    const b = blocks("link l { x = 5, us = 3 }");
    expect(b[0]!.body.fields.map((f) => f.path[0]!.text)).toEqual(["x", "us"]);
  });

  it("keeps operator chains flat, with multiplication binding tighter than addition", () => {
    const f = onlyField("m m { x = 1 + 2 * 3 - 4 }");
    expect(f.value.kind).toBe("binary");
    const v = f.value as A.BinaryNode;
    expect(v.operators).toEqual(["+", "-"]);
    expect(v.operands.map((o) => o.kind)).toEqual(["number", "binary", "number"]);
  });

  it("parses a preset with overrides, a phrase like 'every 2', lists, block values and dotted paths", () => {
    const b = blocks("t t {\n  c = dgx_h100 { nodes = 2 }\n  l = every 2\n  xs = [1, 2, 3,]\n  p = { forward = 4 }\n  a.b.c = x.y\n}");
    const [c, l, xs, p, dotted] = b[0]!.body.fields;
    expect(c!.value).toMatchObject({ kind: "ref", path: [{ text: "dgx_h100" }] });
    expect((c!.value as A.RefNode).override?.fields).toHaveLength(1);
    expect(l!.value).toMatchObject({ kind: "ref", argument: { kind: "number", text: "2" } });
    expect(xs!.value).toMatchObject({ kind: "list" });
    expect((xs!.value as A.ListNode).items).toHaveLength(3);
    expect(p!.value.kind).toBe("blockValue");
    expect(dotted!.path.map((s) => s.text)).toEqual(["a", "b", "c"]);
    expect((dotted!.value as A.RefNode).path.map((s) => s.text)).toEqual(["x", "y"]);
  });

  it("parses a nested block written without '='", () => {
    const f = onlyField("model m { moe { experts = 8 } }");
    expect(f.nested).toBe(true);
    expect(f.value.kind).toBe("blockValue");
  });

  it("resolves the escapes of a string", () => {
    const f = onlyField('c c { s = "a\\"b\\\\c\\nd\\te" }');
    expect(f.value).toMatchObject({ kind: "string", value: 'a"b\\c\nd\te' });
  });

  it("keeps comments for the formatter and marks those that trail code", () => {
    const r = parse("// head\nlink l { bandwidth = 1 GB/s } // tail\n/* block\n comment */\n", "t.moe");
    expect(r.diagnostics).toEqual([]);
    expect(r.ast.comments.map((c) => [c.text.slice(0, 7), c.trailing])).toEqual([
      ["// head", false],
      ["// tail", true],
      ["/* bloc", false],
    ]);
  });

  it("separates fields by line breaks or commas", () => {
    expect(codes("link l {\n  a = 1\n  b = 2\n}")).toEqual([]);
    expect(codes("link l { a = 1, b = 2 }")).toEqual([]);
    expect(codes("link l { a = 1,, b = 2, }")).toEqual([]);
  });

  it("parses an empty file and a file of only comments to no items", () => {
    expect(parse("").ast.items).toEqual([]);
    expect(parse("// nothing\n/* here */").ast.items).toEqual([]);
    expect(parse("").diagnostics).toEqual([]);
  });
});

describe("syntax errors", () => {
  it("recovers and reports several errors of different kinds in one file", () => {
    const text = [
      "link a { bandwidth = 1 GB/s latency = 2 us }",
      "link { bandwidth = 1 GB/s }",
      "link c { bandwidth = $ 3 GB/s }",
      "link e { bandwidth = }",
      'link f { s = "open',
      "}",
      "link g { x = 1 }",
    ].join("\n");
    // In source order; the unterminated string is an error value, so the '}' after it closes its block.
    expect(diagnose(text)).toEqual([
      "FSM1009 1:29 fields on one line must be separated by ','",
      "FSM1006 2:6 expected a name, found '{'",
      "FSM1003 3:22 unexpected character '$'",
      "FSM1007 4:22 expected a value (a number, a string, a name, '(', '[' or '{'), found '}'",
      "FSM1004 5:14 unterminated string: a string must end on its line",
    ]);
    expect(blocks(text).map((b) => b.name.text)).toEqual(["a", "c", "e", "f", "g"]);
  });

  it("keeps the blocks it could parse around the errors", () => {
    const b = blocks("link a { bandwidth = }\nlink b { bandwidth = 1 GB/s }\nlink c { = }\nlink d { latency = 1 us }");
    expect(b.map((x) => x.name.text)).toEqual(["a", "b", "c", "d"]);
  });

  it("reports a missing block name as an expected token", () => {
    expect(diagnose("link { bandwidth = 1 GB/s }")).toEqual(["FSM1006 1:6 expected a name, found '{'"]);
  });

  it("reports a field name followed by neither '=' nor '{'", () => {
    expect(diagnose("link l {\n  bandwidth 10\n}")[0]).toBe("FSM1007 2:13 expected '=' or '{' after the field name, found number 10");
  });

  it("reports a missing value before '}' and after an operator", () => {
    expect(diagnose("link l { bandwidth = }")).toEqual(["FSM1007 1:22 expected a value (a number, a string, a name, '(', '[' or '{'), found '}'"]);
    expect(diagnose("link l { bandwidth = 2 * }")).toEqual(["FSM1007 1:26 expected a value (a number, a string, a name, '(', '[' or '{'), found '}'"]);
  });

  it("reports fields sharing a line without a comma, at each following field", () => {
    expect(diagnose("m m { a = 1 b = 2 c = 3 }")).toEqual([
      "FSM1009 1:13 fields on one line must be separated by ','",
      "FSM1009 1:19 fields on one line must be separated by ','",
    ]);
  });

  it("reports a run of unexpected characters once, and each separate run", () => {
    expect(diagnose("link l { a = 1 ### }\nlink m { b = 2 @ }")).toEqual([
      "FSM1003 1:16 unexpected character '#'",
      "FSM1003 2:16 unexpected character '@'",
    ]);
    const [d] = parse("link l { a = 1 ### }").diagnostics;
    expect(d!.span.end - d!.span.start).toBe(3);
  });

  it("shows a control character in a message as an escape", () => {
    expect(diagnose("link l { a = 1 \u0007 }")).toEqual(["FSM1003 1:16 unexpected character '\\u0007'"]);
  });

  it("reports an unterminated string at its opening quote, and parses the lines after it", () => {
    const text = 'c c {\n  profile = "abc\n}\nlink l { bandwidth = 1 GB/s }';
    expect(diagnose(text)[0]).toBe("FSM1004 2:13 unterminated string: a string must end on its line");
    expect(blocks(text).map((b) => b.name.text)).toEqual(["c", "l"]);
  });

  it("reports an unterminated block comment once, at its '/*'", () => {
    expect(diagnose("link l { bandwidth = 1 GB/s }\n/* open\nlink m { }\n")).toEqual(["FSM1005 2:1 unterminated comment: '/*' has no matching '*/'"]);
  });

  it("reports each invalid escape in a string, at the backslash", () => {
    expect(diagnose('c c { p = "a\\qb\\x" }')).toEqual([
      "FSM1011 1:13 invalid escape '\\q' in string (allowed: \\\" \\\\ \\n \\t)",
      "FSM1011 1:16 invalid escape '\\x' in string (allowed: \\\" \\\\ \\n \\t)",
    ]);
  });

  it("reports a number literal that is not finite or too close to zero", () => {
    expect(codes("m m { a = 1e308 }")).toEqual([]);
    expect(codes("m m { a = 1e-300 }")).toEqual([]);
    expect(diagnose("m m { a = 1e309 }")).toEqual(["FSM1010 1:11 number 1e309 is out of range (at most 1.8e308, and no closer to zero than 1e-300)"]);
    expect(codes("m m { a = 1e-301 }")).toEqual(["FSM1010"]);
    expect(codes(`m m { a = ${"9".repeat(401)} }`)).toEqual(["FSM1010"]);
  });

  it("accepts a literal zero however it is written", () => {
    expect(codes("m m { a = 0, b = 0.000, c = 0e-999 }")).toEqual([]);
  });

  it("shortens a very long number in a message", () => {
    const [d] = parse(`m m { a = ${"9".repeat(500)} }`).diagnostics;
    expect(d!.message.length).toBeLessThan(120);
  });
});

describe("recovery without cascades", () => {
  it("names the missing ')' when a parenthesis is not closed before the next field (a token with a label)", () => {
    expect(diagnose("link l {\n  bandwidth = (10 + 2) * (3 GB/s\n  latency = 5 us\n}")).toEqual(["FSM1006 3:3 expected ')', found 'latency'"]);
    expect(diagnose("link l { bandwidth = 1 GB/s, latency = (5 us }")).toEqual(["FSM1006 1:46 expected ')', found '}'"]);
  });

  it("skips the rest of a line it cannot read instead of reading fields out of it", () => {
    const text = "link l {\n  bandwidth 10 GB/s\n  latency = 5 us\n}";
    expect(diagnose(text)).toEqual(["FSM1007 2:13 expected '=' or '{' after the field name, found number 10"]);
    expect(blocks(text)[0]!.body.fields.map((f) => [f.path[0]!.text, f.value.kind])).toEqual([
      ["bandwidth", "error"],
      ["latency", "number"],
    ]);
  });

  it("skips a bracketed group as a whole, so its '}' does not close the block", () => {
    const text = "model m {\n  moe 8 { experts = 2 }\n  layers = 4\n}\nlink l { bandwidth = 1 GB/s }";
    expect(diagnose(text)).toEqual(["FSM1007 2:7 expected '=' or '{' after the field name, found number 8"]);
    expect(blocks(text).map((b) => [b.name.text, b.body.fields.map((f) => f.path[0]!.text).join(" ")])).toEqual([
      ["m", "moe layers"],
      ["l", "bandwidth"],
    ]);
  });

  it("resumes after a comma on the same line", () => {
    const text = "link l { bandwidth = 1 GB/s +, latency = 5 us }";
    expect(codes(text)).toEqual(["FSM1007"]);
    expect(blocks(text)[0]!.body.fields.map((f) => [f.path[0]!.text, f.value.kind])).toEqual([
      ["bandwidth", "error"],
      ["latency", "number"],
    ]);
  });

  it("makes an unterminated string an error value, reported once, with no error at the next token", () => {
    const text = 'cluster c {\n  profile = "abc, nodes = 2\n  gpus_per_node = 8\n}';
    expect(diagnose(text)).toEqual(["FSM1004 2:13 unterminated string: a string must end on its line"]);
    expect(blocks(text)[0]!.body.fields.map((f) => [f.path[0]!.text, f.value.kind])).toEqual([
      ["profile", "error"],
      ["gpus_per_node", "number"],
    ]);
    expect(diagnose('import "lib.moe\nlink l { bandwidth = 1 GB/s }')).toEqual(["FSM1004 1:8 unterminated string: a string must end on its line"]);
    expect(parse('import "lib.moe\n').ast.items).toEqual([]);
  });

  it("makes a literal out of range an error value", () => {
    for (const text of ["1e400", "0.5e-400", "9".repeat(401)]) {
      const f = onlyField(`m m { a = ${text} }`);
      expect(f.value.kind).toBe("error");
    }
    expect(onlyField("m m { a = 2 * 1e400 GB }").value.kind).toBe("error");
  });

  it("returns diagnostics sorted by position", () => {
    const d = parse("link a { x = 1 y = 2 }\nlink { }\nlink c { z = $ }", "t.moe").diagnostics;
    const starts = d.map((x) => x.span.start);
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
    expect(d.map((x) => x.code)).toEqual(["FSM1009", "FSM1006", "FSM1003", "FSM1007"]);
  });
});

describe("positions", () => {
  it("points an error at end of file just after the last token, whatever whitespace follows", () => {
    for (const src of ["link l {", "link l {\n\n   ", "link l { // comment"]) {
      const d = parse(src, "t.moe").diagnostics;
      expect(d.map((x) => [x.code, x.message, x.span.start, x.span.end])).toEqual([["FSM1006", "expected a field or '}', found end of file", 8, 8]]);
    }
  });

  it("names end of file when a value, a name or an import path is cut off", () => {
    expect(diagnose("link l { bandwidth = 1 +")).toEqual(["FSM1007 1:25 expected a value (a number, a string, a name, '(', '[' or '{'), found end of file"]);
    expect(diagnose("link")).toEqual(["FSM1006 1:5 expected a name, found end of file"]);
    expect(diagnose("import")).toEqual(["FSM1006 1:7 expected a string, found end of file"]);
  });

  it("counts columns in code points, so characters outside the BMP count once", () => {
    expect(diagnose('c c { s = "😀😀", $ }')).toEqual(["FSM1003 1:17 unexpected character '$'"]);
  });

  it("gives every span offsets inside the text", () => {
    const text = 'link l { a = \n"x\n /* never closed';
    const r = parse(text);
    for (const d of r.diagnostics) {
      expect(d.span.start).toBeGreaterThanOrEqual(0);
      expect(d.span.end).toBeLessThanOrEqual(text.length);
      expect(d.span.start).toBeLessThanOrEqual(d.span.end);
    }
  });
});

describe("UTF-8 and NUL", () => {
  it("decodes valid UTF-8 bytes, multi-byte characters included", () => {
    const r = parse(bytes("// naïve — ok 😀\nlink l { latency = 5 µs }\n"), "t.moe");
    expect(r.diagnostics).toEqual([]);
    expect(r.ast.items).toHaveLength(1);
  });

  it("reports an invalid byte with its value at its line and column, and keeps parsing", () => {
    expect(diagnose(bytes("link l {\n  latency = 5 ", [0xb5], "s $\n}"))).toEqual([
      "FSM1001 2:15 invalid UTF-8 byte 0xB5",
      "FSM1003 2:18 unexpected character '$'",
    ]);
  });

  it("reports each invalid byte of a run separately", () => {
    expect(codes(bytes("link l { }", [0xff, 0xfe], "\n"))).toEqual(["FSM1001", "FSM1001"]);
  });

  it("rejects overlong encodings, encoded surrogates and sequences cut short", () => {
    expect(codes(bytes("// ", [0xc0, 0xaf], "\n"))).toEqual(["FSM1001", "FSM1001"]);
    expect(codes(bytes("// ", [0xed, 0xa0, 0x80], "\n"))).toEqual(["FSM1001", "FSM1001", "FSM1001"]);
  });

  it("reports a sequence cut short once: one diagnostic per maximal invalid subpart, as the WHATWG decoder replaces", () => {
    expect(diagnose(bytes("link l { }\n", [0xe2, 0x82]))).toEqual(["FSM1001 2:1 invalid UTF-8 sequence 0xE2 0x82 (incomplete)"]);
    expect(diagnose(bytes("// ", [0xf0, 0x9f, 0x98], "x\n"))).toEqual(["FSM1001 1:4 invalid UTF-8 sequence 0xF0 0x9F 0x98 (incomplete)"]);
    // Each subpart is one U+FFFD, so columns after it count as an editor shows them.
    expect(diagnose(bytes("// ", [0xe2, 0x82], [0xe2, 0x82], "\nlink l { a = 1 $ }"))).toEqual([
      "FSM1001 1:4 invalid UTF-8 sequence 0xE2 0x82 (incomplete)",
      "FSM1001 1:5 invalid UTF-8 sequence 0xE2 0x82 (incomplete)",
      "FSM1003 2:16 unexpected character '$'",
    ]);
    const mixed = [0x61, 0xf1, 0x80, 0x80, 0xe1, 0x80, 0xc2, 0x62];
    expect(parse(bytes("// ", mixed)).source.text).toBe("// " + new TextDecoder().decode(new Uint8Array(mixed)));
    expect(codes(bytes("// ", mixed))).toEqual(["FSM1001", "FSM1001", "FSM1001"]);
  });

  it("accepts a byte-order mark at the start of the file", () => {
    const r = parse(bytes([0xef, 0xbb, 0xbf], "link l { bandwidth = 1 GB/s }"), "t.moe");
    expect(r.diagnostics).toEqual([]);
    expect(r.ast.items).toHaveLength(1);
  });

  it("reports a NUL character at its line and column, in bytes or in text", () => {
    expect(diagnose(bytes("link l {\n  a = 1", [0], "\n}"))).toEqual(["FSM1002 2:8 NUL character in source"]);
    expect(diagnose("link l { a = 1 \u0000\u0000 }")).toEqual(["FSM1002 1:16 NUL character in source", "FSM1002 1:17 NUL character in source"]);
  });

  it("tells a NUL from other unexpected characters in the same run", () => {
    expect(codes("link l { a = 1 #\u0000# }")).toEqual(["FSM1003", "FSM1002", "FSM1003"]);
  });
});

describe("limits", () => {
  const nested = (n: number) => `m m { x = ${"(".repeat(n)}1${")".repeat(n)} }`;

  it("accepts nesting up to MAX_NESTING levels, the block's brace included", () => {
    expect(codes(nested(MAX_NESTING - 1))).toEqual([]);
  });

  it("reports nesting one level deeper than MAX_NESTING at the bracket that goes past it", () => {
    const text = nested(MAX_NESTING);
    const d = parse(text).diagnostics;
    expect(d.map((x) => x.code)).toEqual(["FSM1008"]);
    expect(d[0]!.message).toBe(`nesting deeper than ${MAX_NESTING} levels`);
    expect(d[0]!.span.start).toBe(text.indexOf("(") + MAX_NESTING - 1);
  });

  it("counts brackets, braces and parentheses alike", () => {
    const mixed = `m m { x = ${"[{(".repeat(Math.ceil(MAX_NESTING / 3))} }`;
    expect(codes(mixed)).toContain("FSM1008");
  });

  it("reports absurd nesting without overflowing the stack", () => {
    expect(() => parse(`m m { x = ${"[".repeat(20_000)} }`)).not.toThrow();
    expect(codes(`m m { x = ${"(".repeat(20_000)}`)).toEqual(["FSM1008"]);
  });

  it("checks the separation of many fields in linear time", () => {
    // n fields `f = 1` on one line, separated by n − 1 commas, except the last two.
    const n = 5000;
    const fields = Array.from({ length: n }, (_, i) => ({ span: { file: "t", start: 10 * i, end: 10 * i + 5 }, value: { kind: "number" } }));
    const offsets = Array.from({ length: n - 2 }, (_, i) => 10 * i + 7);
    let reads = 0;
    const commas = new Proxy(offsets, {
      get(target, key, receiver) {
        if (typeof key === "string" && /^\d+$/.test(key)) reads++;
        return Reflect.get(target, key, receiver);
      },
    });
    expect(unseparated(fields, commas, () => true)).toEqual([n - 1]);
    // Looking at every comma for every field read about n² / 2 of them.
    expect(reads).toBeLessThan(3 * n);
    const text = `m m { ${Array.from({ length: 40_000 }, (_, i) => `f${i} = ${i}`).join(", ")} }`;
    expect(codes(text)).toEqual([]);
  });

  it("parses long operator chains and many minus signs without deep recursion", () => {
    expect(codes(`m m { x = ${Array(5000).fill("1").join(" + ")} }`)).toEqual([]);
    expect(codes(`m m { x = ${"-".repeat(5000)}1 }`)).toEqual([]);
  });

  it("rejects a file larger than MAX_FILE_SIZE with FSM1012 and an empty AST", () => {
    const text = " ".repeat(MAX_FILE_SIZE + 1);
    const r = parse(text, "big.moe");
    expect(r.diagnostics.map((d) => [d.code, d.message, d.span])).toEqual([
      ["FSM1012", `file is too large (${MAX_FILE_SIZE + 1} bytes; the limit is ${MAX_FILE_SIZE})`, { file: "big.moe", start: 0, end: 0 }],
    ]);
    expect(r.ast.items).toEqual([]);
  });

  it("measures a byte input in bytes for the size limit", () => {
    const r = parse(new Uint8Array(MAX_FILE_SIZE + 1).fill(0x20), "big.moe");
    expect(r.diagnostics.map((d) => d.code)).toEqual(["FSM1012"]);
  });

  it("accepts a file of exactly MAX_FILE_SIZE", () => {
    const text = "// " + "x".repeat(MAX_FILE_SIZE - 3);
    expect(text.length).toBe(MAX_FILE_SIZE);
    expect(codes(text)).toEqual([]);
  });
});

describe("robustness", () => {
  it("never throws and keeps every span inside the text, for any input", () => {
    const alphabet = fc.constantFrom(..."link model moe { } [ ] ( ) = , . + - * / 1 2.5e3 GB/s us µs \" \\ // /* */ \n \t # \u0000 x_y every".split(" "));
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 60 }), (parts) => {
        const text = parts.join(" ");
        const r = parse(text);
        for (const d of r.diagnostics) {
          if (d.span.start < 0 || d.span.end > text.length || d.span.start > d.span.end) return false;
        }
        return true;
      }),
      { numRuns: 300, seed: 42 },
    );
  });

  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        parse(b);
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});

/**
 * Property tests of the front end (fast-check):
 *
 * (a) `check` never throws. Whatever it is given (arbitrary Unicode, lone surrogates, soups of the
 *     language's tokens, grammar-shaped nonsense, arbitrary bytes, mutilated valid programs and a
 *     table of pathological inputs: deep nesting, huge and tiny numbers, 100,000-operator chains,
 *     long reference chains) it returns diagnostics whose codes are in the catalog
 *     (/^FSM\d{4}$/) and whose spans (and related spans) lie inside a file it read; rendering them
 *     as text and JSON does not throw either.
 * (b) `format` is idempotent and preserves the AST (spans and comments removed) and the comments
 *     (in order) for every example, for std.moe, for random valid programs from test/generate.ts
 *     and for those programs with comments scattered between their tokens. The generated
 *     programs check clean, and their formatted text checks to the same Program.
 *
 * Runs are kept moderate so the file takes a few seconds; seeds are random (fast-check prints
 * the failing seed and the shrunk counterexample).
 */
import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { check, type CheckResult } from "../compiler/check/check.js";
import { memoryHost } from "../compiler/check/host.js";
import { schemas, type BlockSchema } from "../compiler/check/schema.js";
import { unitNames } from "../compiler/check/units.js";
import { messages } from "../compiler/diagnostics/messages.js";
import { renderText, toJson } from "../compiler/diagnostics/render.js";
import type * as A from "../grammar/ast.js";
import { parse } from "../grammar/parse.js";
import { format } from "../grammar/print.js";
import { moeLexer } from "../grammar/tokens.js";
import { generateProgram, generateProject, Rng, type GenerateOptions } from "./generate.js";

const ROOT = "main.moe";
/** A second file that token soups may import. */
const LIB = { "lib.moe": "link lib_link { bandwidth = 1 GB/s }\nimport \"main.moe\"\n" };

// ── Checking anything ────────────────────────────────────────────────────────────────────────

/** Check `input` as the root file (strings through a memory host, bytes through `text`). */
function checkInput(input: string | Uint8Array, extra: Record<string, string> = LIB): CheckResult {
  if (typeof input === "string") return check(ROOT, { host: memoryHost({ ...extra, [ROOT]: input }) });
  return check(ROOT, { host: memoryHost(extra), text: input });
}

/** What is wrong with a check result's diagnostics; empty when they are well formed. */
function problems(r: CheckResult): string[] {
  const out: string[] = [];
  const inFile = (what: string, code: string, span: { file: string; start: number; end: number }) => {
    const src = r.sources.get(span.file);
    if (!src) out.push(`${code}: ${what} in a file that was not read: ${span.file}`);
    else if (!Number.isInteger(span.start) || !Number.isInteger(span.end) || span.start < 0 || span.start > span.end || span.end > src.text.length) {
      out.push(`${code}: ${what} ${span.start}..${span.end} outside ${span.file} (length ${src.text.length})`);
    }
  };
  for (const d of r.diagnostics) {
    if (!/^FSM\d{4}$/.test(d.code)) out.push(`bad code ${String(d.code)}`);
    else if (!(d.code in messages)) out.push(`${d.code} is not in the catalog`);
    else if (d.severity !== messages[d.code].severity) out.push(`${d.code}: severity ${d.severity}`);
    if (typeof d.message !== "string" || d.message.trim() === "") out.push(`${d.code}: empty message`);
    inFile("span", d.code, d.span);
    for (const rel of d.related) inFile("related span", d.code, rel.span);
  }
  // Rendering for people and for editors must cope with every span too.
  const lookup = (n: string) => r.sources.get(n);
  renderText(r.diagnostics, lookup);
  toJson(r.diagnostics, lookup);
  return out;
}

function expectWellFormed(input: string | Uint8Array): CheckResult {
  const r = checkInput(input);
  expect(problems(r)).toEqual([]);
  return r;
}

// Vocabulary for the token soups: every block kind, field name, enum value, unit and std name.
function fieldNames(schema: BlockSchema, into: Set<string>): void {
  for (const [name, spec] of Object.entries(schema.fields)) {
    into.add(name);
    if (spec.type.t === "block") fieldNames(spec.type.schema, into);
    if (spec.type.t === "enum") for (const v of spec.type.values) into.add(v);
  }
}
const vocabulary = new Set<string>(["parallel", "pipeline", "forward", "backward", "auto", "all", "every", "after", "true", "false", "vary", "base"]);
for (const s of Object.values(schemas)) fieldNames(s, vocabulary);
const STD = readFileSync("compiler/std/std.moe", "utf8");
const STD_NAMES = [...STD.matchAll(/^(?:device|link|cluster) (\w+)/gm)].map((m) => m[1]!);
const KINDS = [...Object.keys(schemas), "modle", "layers", "import"];
const NAMES = [...vocabulary, ...STD_NAMES, "m", "t", "c", "x_1", "lib_link", "_"];
const UNITS = [...unitNames(), "GB / s", "Gbps", "us/s"];
const NUMBERS = [
  "0", "1", "2", "3", "8", "64", "4096", "2147483647", "2147483648", "1.5", "0.5", "1e-3", "16_384", "1_", "1e999999", "1e-999999",
  "1" + "0".repeat(399), "9".repeat(400), "0." + "0".repeat(398) + "1", "1e308", "1.8e308", "1e-300", "1e-301", "0e5", "00012",
];
const PUNCT = ["{", "}", "[", "]", "(", ")", "=", ",", ".", "+", "-", "*", "/"];
const TRIVIA = [" ", "\n", "\t", "\r\n", "\r", "\f", "// c\n", "/* c */", "/*", "*/", "/* a\n b */", '"', "\\", "\u0000", "\ufeff", "µs", "μs", "é", "\ud800", "\udc00", "🚀", "\u202e", "#", "@", "'"];
const STRINGS = ['"x"', '"lib.moe"', '"main.moe"', '"nope.moe"', '"fsmoe-paper-48"', '"a\\q"', '"a\\"b"', '"unterminated', '""', '"\\n\\t\\\\"'];

const soupToken = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...PUNCT) },
  { weight: 4, arbitrary: fc.constantFrom(...NAMES) },
  { weight: 2, arbitrary: fc.constantFrom(...KINDS) },
  { weight: 2, arbitrary: fc.constantFrom(...NUMBERS) },
  { weight: 1, arbitrary: fc.constantFrom(...UNITS) },
  { weight: 1, arbitrary: fc.constantFrom(...STRINGS) },
  { weight: 1, arbitrary: fc.constantFrom(...TRIVIA) },
  { weight: 1, arbitrary: fc.constantFrom("import", "every", "after") },
);
/** A soup of tokens with random separators: mostly nonsense, sometimes almost a program. */
const tokenSoup = fc.array(fc.tuple(soupToken, fc.constantFrom(" ", " ", "\n", "")), { maxLength: 150 }).map((ts) => ts.map(([t, s]) => t + s).join(""));

/** Grammar-shaped programs built from the language's vocabulary: they parse, and the checker has to judge them. */
const shaped = fc.letrec<{ expr: string; field: string; body: string; block: string; file: string }>((tie) => {
  const name = fc.constantFrom(...NAMES);
  const path = fc.array(name, { minLength: 1, maxLength: 3 }).map((p) => p.join("."));
  const number = fc.tuple(fc.constantFrom(...NUMBERS), fc.option(fc.constantFrom(...unitNames()), { nil: undefined })).map(([n, u]) => (u ? `${n} ${u}` : n));
  return {
    expr: fc.oneof(
      { depthSize: "small", maxDepth: 4 },
      number,
      path,
      fc.constantFrom(...STRINGS.slice(0, 5)),
      fc.tuple(tie("expr"), fc.constantFrom("+", "-", "*", "/"), tie("expr")).map(([a, o, b]) => `${a} ${o} ${b}`),
      tie("expr").map((e) => `(${e})`),
      tie("expr").map((e) => `-${e}`),
      fc.array(tie("expr"), { maxLength: 4 }).map((xs) => `[${xs.join(", ")}]`),
      tie("body"),
      fc.tuple(path, tie("body")).map(([p, b]) => `${p} ${b}`),
      fc.tuple(fc.constantFrom("every", "after"), fc.constantFrom(...NUMBERS)).map(([w, n]) => `${w} ${n}`),
    ),
    field: fc.tuple(path, fc.oneof(tie("expr").map((e) => ` = ${e}`), tie("body").map((b) => ` ${b}`))).map(([p, v]) => p + v),
    body: fc.array(tie("field"), { maxLength: 6 }).map((fs) => `{\n${fs.join("\n")}\n}`),
    block: fc.tuple(fc.constantFrom(...KINDS), name, tie("body")).map(([k, n, b]) => `${k} ${n} ${b}`),
    file: fc.array(fc.oneof({ weight: 5, arbitrary: tie("block") }, { weight: 1, arbitrary: fc.constantFrom('import "lib.moe"', 'import "main.moe"', 'import "nope.moe"', 'import "../x/../lib.moe"') }), { maxLength: 8 }).map((bs) => bs.join("\n")),
  };
}).file;

/** Random edits of a valid program: deleted, duplicated and inserted pieces. */
const mutated = (options: GenerateOptions) =>
  fc
  .record({
    seed: fc.integer({ min: 0, max: 1_000_000 }),
    edits: fc.array(fc.record({ at: fc.nat(), len: fc.nat({ max: 40 }), kind: fc.constantFrom("delete", "duplicate", "insert"), token: soupToken }), { minLength: 1, maxLength: 4 }),
  })
  .map(({ seed, edits }) => {
    let s = generateProgram(seed, { groups: 2, ...options });
    for (const e of edits) {
      const at = e.at % (s.length + 1);
      if (e.kind === "delete") s = s.slice(0, at) + s.slice(at + e.len);
      else if (e.kind === "duplicate") s = s.slice(0, at) + s.slice(at, at + e.len) + s.slice(at);
      else s = s.slice(0, at) + e.token + s.slice(at);
    }
    return s;
  });
const mutatedProgram = mutated({});

/** A valid program's bytes with some of them overwritten (invalid UTF-8, NULs, cut sequences). */
const corruptedBytes = fc
  .record({ seed: fc.integer({ min: 0, max: 1_000_000 }), hits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), cut: fc.boolean() })
  .map(({ seed, hits, cut }) => {
    const bytes = new TextEncoder().encode(generateProgram(seed, { groups: 1 }) + "// µs ✓ 🚀\n");
    for (const [at, b] of hits) bytes[at % bytes.length] = b;
    return cut ? bytes.subarray(0, bytes.length - 1) : bytes;
  });

/** Arbitrary UTF-16, lone surrogates included. */
const utf16 = fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 200 }).map((cs) => String.fromCharCode(...cs));

describe("check never throws and its diagnostics are well formed", () => {
  const prop = <T extends string | Uint8Array>(arb: fc.Arbitrary<T>, numRuns: number) =>
    fc.assert(
      fc.property(arb, (input) => {
        expect(problems(checkInput(input))).toEqual([]);
      }),
      { numRuns },
    );

  it("arbitrary Unicode strings", () => prop(fc.string({ unit: "binary", maxLength: 300 }), 200));
  it("arbitrary UTF-16 (lone surrogates)", () => prop(utf16, 150));
  it("soups of the language's tokens", () => prop(tokenSoup, 300));
  it("grammar-shaped programs from the language's vocabulary", () => prop(shaped, 80));
  it("valid programs with random edits", () => prop(mutatedProgram, 80));
  it("arbitrary bytes", () => prop(fc.uint8Array({ maxLength: 400 }), 200));
  it("valid programs with corrupted bytes", () => prop(corruptedBytes, 100));

  const moe = "moe { experts = 1, top_k = 1, expert_hidden = 8 }";
  const field = (value: string) => `model m {\n  layers = ${value}\n  hidden = 128\n  ${moe}\n}\n`;
  const pathological: [string, () => string | Uint8Array][] = [
    ["10,000 '('", () => "(".repeat(10_000)],
    ["10,000 '{a='", () => "{a=".repeat(10_000)],
    ["10,000 '['", () => "[".repeat(10_000)],
    ["a value in 10,000 parentheses", () => field("(".repeat(10_000) + "1" + ")".repeat(10_000))],
    ["nested blocks 10,000 deep", () => "model m " + "{ a ".repeat(10_000) + "}".repeat(10_000)],
    ["a list nested at the limit", () => field("[".repeat(63) + "1" + "]".repeat(63))],
    ["10,000 unmatched '}'", () => "}".repeat(10_000)],
    ["1e999999", () => field("1e999999")],
    ["1e-999999", () => field("1e-999999")],
    ["a 400-digit literal", () => field("1" + "0".repeat(399))],
    ["a 400-digit literal with a unit", () => `link l { bandwidth = ${"9".repeat(400)} GB/s }`],
    ["a 100,000-digit literal", () => field("7".repeat(100_000))],
    ["a 400-digit fraction", () => field("0." + "0".repeat(398) + "1")],
    ["0e999999999999 (zero with a huge exponent)", () => field("0e999999999999")],
    ["0e-999999999999", () => field("0e-999999999999")],
    ["1e999999999999999999999", () => field("1e999999999999999999999")],
    ["100,000 '1+'", () => field("1+".repeat(100_000) + "1")],
    ["10,000 '2*' (overflow)", () => field("2*".repeat(10_000) + "2")],
    ["10,000 '1/3*'", () => `device d { peak_flops = ${"1/3*".repeat(10_000)}1 TFLOP/s, memory = 1 GB }`],
    ["100,000 '-'", () => field("-".repeat(100_000) + "1")],
    ["a 10,000-segment dotted reference", () => field(Array.from({ length: 10_000 }, (_, i) => `a${i}`).join("."))],
    ["10,000 fields referring along a chain in one block", () => `model m {\n${Array.from({ length: 10_000 }, (_, i) => `  f${i} = f${i + 1}`).join("\n")}\n}`],
    ["every field of a block in one reference cycle", () => `model m {\n  layers = hidden\n  hidden = vocab\n  vocab = moe.experts\n  moe { experts = top_k, top_k = expert_hidden, expert_hidden = shared_hidden, shared_hidden = experts }\n}`],
    ["a 2,000-block reference chain", () => Array.from({ length: 2_000 }, (_, i) => `link l${i} { bandwidth = ${i === 1_999 ? "1 GB/s" : `2 * l${i + 1}.bandwidth / 2`} }`).join("\n")],
    ["a 2,000-block reference cycle", () => Array.from({ length: 2_000 }, (_, i) => `link l${i} { bandwidth = l${(i + 1) % 2_000}.bandwidth }`).join("\n")],
    ["a 500-deep chain of preset overrides", () => Array.from({ length: 500 }, (_, i) => `cluster c${i} { nodes = 1, gpus_per_node = 1, device = ${i === 0 ? "h100_sxm" : `c${i - 1}.device`} { memory = ${i + 1} GB }, intra = pcie4, inter = eth100 }`).join("\n")],
    ["a sweep over 10^7 jobs", () => `sweep s { base = t, vary { ${Array.from({ length: 7 }, (_, i) => `seed${i} = [${Array.from({ length: 10 }, (_, j) => j).join(", ")}]`).join("\n")} } }`],
    ["a 1,000,000-character name", () => "a".repeat(1_000_000) + " b {}"],
    ["a 1,000,000-character string", () => `cluster c { profile = "${"x".repeat(1_000_000)}" }`],
    ["1,000,000 newlines", () => "\n".repeat(1_000_000)],
    ["a file over the size limit", () => " ".repeat(16 * 1024 * 1024 + 1)],
    ["NUL, BOM and lone surrogates", () => "\ufeffmodel m { layers = \u0000 }\ud800 \udc00 \u0000"],
    ["invalid UTF-8 (overlong, truncated, surrogate, 0xFF)", () => new Uint8Array([0x6d, 0xc0, 0xaf, 0xe2, 0x82, 0x0a, 0xed, 0xa0, 0x80, 0xff, 0xfe, 0xf4, 0x90, 0x80, 0x80, 0xe2])],
    ["an unterminated comment", () => "model m { /* " + "x".repeat(10_000)],
    ["an unterminated string", () => 'cluster c { profile = "abc\n}'],
    ["imports of itself, a missing file and a directory", () => 'import "main.moe"\nimport "nope.moe"\nimport "."\nimport ""\nimport "lib.moe"'],
  ];
  it.each(pathological)("%s", (_, make) => {
    expectWellFormed(make());
  });
});

// ── Formatting ───────────────────────────────────────────────────────────────────────────────

/** A node without its positions and without the comments (which only the formatter reads). */
function strip(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strip);
  if (node !== null && typeof node === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) if (k !== "span" && k !== "pathSpan" && k !== "comments") out[k] = strip(v);
    return out;
  }
  return node;
}

/** The comments of a parsed file, each line trimmed (the formatter re-indents them). */
function commentTexts(ast: A.FileNode): string[] {
  return ast.comments.map((c) => c.text.split("\n").map((l) => l.trim()).join("\n"));
}

/** format(text) parses to the same AST with the same comments, and formatting it again changes nothing. */
function expectFormatStable(text: string, file = "<input>"): string {
  const before = parse(text, file);
  expect(before.diagnostics.map((d) => d.message)).toEqual([]);
  const once = format(text, file);
  expect(once.diagnostics).toEqual([]);
  expect(once.text).not.toBeNull();
  const after = parse(once.text!, file);
  expect(after.diagnostics.map((d) => d.message)).toEqual([]);
  expect(strip(after.ast)).toEqual(strip(before.ast));
  expect(commentTexts(after.ast)).toEqual(commentTexts(before.ast));
  expect(format(once.text!, file).text).toBe(once.text);
  return once.text!;
}

const programOptions = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  groups: fc.integer({ min: 1, max: 5 }),
  comments: fc.boolean(),
  multilineComments: fc.boolean(),
  exoticComments: fc.boolean(),
});

const examples = readdirSync("examples").filter((f) => f.endsWith(".moe")).sort();

describe("format is idempotent and preserves the AST", () => {
  it.each(examples)("examples/%s", (f) => {
    expectFormatStable(readFileSync(`examples/${f}`, "utf8"), f);
  });

  it("compiler/std/std.moe", () => {
    expectFormatStable(STD, "std.moe");
  });

  it("random valid programs", () => {
    fc.assert(
      fc.property(programOptions, ({ seed, ...opts }) => {
        expectFormatStable(generateProgram(seed, opts));
      }),
      { numRuns: 100 },
    );
  });

  it("random valid programs with comments scattered between tokens", () => {
    const scattered = fc
      .record({
        seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        at: fc.array(fc.tuple(fc.nat(), fc.constantFrom("/*c*/", " /* c */ ", "// c\n", "\n// c\n", "\n/* c */\n", "\n\n", "\n", "/* a\n   b */", "\n  /* a\n b\n*/ ")), { minLength: 1, maxLength: 5 }),
      })
      .map(({ seed, at }) => {
        const text = generateProgram(seed, { groups: 2, comments: false, exoticComments: false, crlf: 0 });
        const ends = moeLexer.tokenize(text).tokens.map((t) => (t.endOffset ?? t.startOffset) + 1);
        const inserts = at.map(([i, c]) => [ends[i % ends.length]!, c] as const).sort((a, b) => b[0] - a[0]);
        let out = text;
        for (const [pos, c] of inserts) out = out.slice(0, pos) + c + out.slice(pos);
        return out;
      })
      // A line break can end a field early (`5\nGB`): keep the ones that still parse.
      .filter((text) => parse(text).diagnostics.length === 0);
    fc.assert(
      fc.property(scattered, (text) => {
        expectFormatStable(text);
      }),
      { numRuns: 80 },
    );
  });

  it("format never throws, and what it formats is stable, for edited programs", () => {
    fc.assert(
      fc.property(mutatedProgram, (text) => {
        const r = format(text);
        if (r.text === null) expect(r.diagnostics.length).toBeGreaterThan(0);
        else expectFormatStable(text);
      }),
      { numRuns: 80 },
    );
  });
});

describe("generated programs", () => {
  it("check clean, with imports", () => {
    fc.assert(
      fc.property(programOptions, ({ seed, ...opts }) => {
        const p = generateProject(seed, opts);
        const r = check(p.root, { host: memoryHost(p.files) });
        const rendered = renderText(r.diagnostics, (n) => r.sources.get(n));
        expect(rendered).toBe("");
        expect(r.program.jobs.length).toBeGreaterThan(0);
      }),
      { numRuns: 80 },
    );
  });

  it("check to the same Program once formatted", () => {
    // A sweep point quotes its value as written; the formatter respaces it (`4_8/3` → `4_8 / 3`)
    // and drops comments and extra commas (`{ a = 1, }` → `{ a = 1 }`).
    const written = (t: string) =>
      t
        .replace(/\/\*[\s\S]*?\*\//g, "")
        .replace(/\s+/g, "")
        .replace(/,+/g, ",")
        .replace(/,([}\]])/g, "$1")
        .replace(/([{[]),/g, "$1");
    const noSpans = (k: string, v: unknown) =>
      k === "span" || k === "spans" ? undefined : k === "point" ? (v as [string, string][]).map(([f, t]) => [f, written(t)]) : v;
    fc.assert(
      fc.property(programOptions, ({ seed, ...opts }) => {
        const text = generateProgram(seed, { ...opts, multilineComments: false });
        const before = check(ROOT, { host: memoryHost({ [ROOT]: text }) });
        const formatted = format(text).text;
        expect(formatted).not.toBeNull();
        const after = check(ROOT, { host: memoryHost({ [ROOT]: formatted! }) });
        expect(after.diagnostics).toEqual([]);
        expect(JSON.stringify(after.program, noSpans)).toBe(JSON.stringify(before.program, noSpans));
      }),
      { numRuns: 30 },
    );
  });

  it("are deterministic in the seed and cover the language", () => {
    expect(generateProgram(42)).toBe(generateProgram(42));
    const many = Array.from({ length: 60 }, (_, i) => generateProgram(i, { groups: 3 })).join("\n");
    for (const needle of ["device ", "link ", "cluster ", "model ", "layer ", "train ", "sweep ", "attention", "ffn", "moe", "vary", "moe_layers", "every ", "after ", "parallel", "pipeline", "//", "/*", "TFLOP/s", "GB/s", "[", "= link {", "= device {", "dgx_", "model.", "cluster.", "\""]) {
      expect(many, needle).toContain(needle);
    }
    expect(new Rng(1).next()).toBe(new Rng(1).next());
  });
});

// ── Known counterexamples (minimal inputs found by the properties above) ─────────────────────

describe("minimal counterexamples", () => {
  it("format is idempotent on a multi-line block comment inside a block", () => {
    expectFormatStable("a b {/*\n*/}\n");
  });

  it("format is idempotent on a block comment inside a block inside a list", () => {
    expectFormatStable("a b { c = [{ d = 1 /*x*/ }] }\n");
  });

  it("check does not throw on a zero literal with a huge exponent", () => {
    expectWellFormed("link l { bandwidth = 0e999999999999 GB/s }");
  });
});

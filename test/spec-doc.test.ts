/**
 * spec/language.md is the reference of the language, and this suite keeps it honest:
 *
 * - every fenced block marked ```moe checks clean and is in the canonical format of
 *   `fsmoec fmt`, and every block marked ```moe FSMnnnn … produces exactly those diagnostic
 *   codes (as a set) and no others;
 * - every code of the catalog is documented, with its summary, in the "Diagnostics" section,
 *   and every code `check` can report has an example there (the few that no short example can
 *   show are produced here from generated input instead);
 * - every field of every block schema has a row in its "Fields of `KIND`" table, whose type,
 *   range and default cells are what schema.ts says and whose meaning holds the schema's doc;
 * - every std preset has a row with each figure as std.moe writes it, every unit has a row in
 *   the units table, and every layout rule's summary appears.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { check, MAX_SWEEP_JOBS } from "../compiler/check/check.js";
import { MAX_REFERENCE_DEPTH } from "../compiler/check/evaluate.js";
import { memoryHost } from "../compiler/check/host.js";
import { rules } from "../compiler/check/rules/index.js";
import { MAX_COUNT, MAX_LAYERS, pipelineBlockSchema, schemas, type BlockSchema, type FieldSpec, type FieldType } from "../compiler/check/schema.js";
import { COMPUTE, DIMENSIONLESS, RATE, SIZE, TIME, dimEquals, unitNames } from "../compiler/check/units.js";
import { messages } from "../compiler/diagnostics/messages.js";
import { renderText } from "../compiler/diagnostics/render.js";
import { stdPresets } from "../compiler/std/index.js";
import { MAX_FILE_SIZE, MAX_NESTING } from "../grammar/parse.js";
import { format } from "../grammar/print.js";

const DOC_PATH = "spec/language.md";
const doc = readFileSync(DOC_PATH, "utf8");
const lines = doc.split("\n");

// ── Fenced blocks ────────────────────────────────────────────────────────────────────────────

interface Fence {
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly info: string;
  readonly text: string;
}

function fences(): Fence[] {
  const out: Fence[] = [];
  let open: { line: number; info: string; marker: string; body: string[] } | undefined;
  lines.forEach((l, i) => {
    if (!open) {
      const m = /^(```+)\s*(.*)$/.exec(l);
      if (m) open = { line: i + 1, info: m[2]!.trim(), marker: m[1]!, body: [] };
      return;
    }
    if (l.trim() === open.marker) {
      out.push({ line: open.line, info: open.info, text: open.body.join("\n") + "\n" });
      open = undefined;
      return;
    }
    open.body.push(l);
  });
  if (open) throw new Error(`${DOC_PATH}:${open.line}: unclosed code fence`);
  return out;
}

const allFences = fences();
const moeFences = allFences.filter((f) => /^moe\b/.test(f.info));

/** The codes a ```moe block promises, or undefined when its info string is malformed. */
function expectedCodes(info: string): string[] | undefined {
  const m = /^moe((?:\s+FSM\d{4})*)\s*$/.exec(info);
  if (!m) return undefined;
  return [...new Set(m[1]!.trim().split(/\s+/).filter((s) => s !== ""))].sort();
}

function checkText(text: string) {
  return check("spec-example.moe", { host: memoryHost({ "spec-example.moe": text }) });
}

describe("spec/language.md examples", () => {
  it("has examples", () => {
    expect(moeFences.length).toBeGreaterThan(50);
  });

  for (const f of moeFences) {
    const codes = expectedCodes(f.info);
    const what = codes === undefined ? `malformed info string '${f.info}'` : codes.length === 0 ? "checks clean" : `reports ${codes.join(" ")}`;
    it(`line ${f.line}: ${what}`, () => {
      expect(codes, `${DOC_PATH}:${f.line}: write \`\`\`moe or \`\`\`moe FSMnnnn …`).toBeDefined();
      for (const c of codes!) expect(Object.keys(messages), `${DOC_PATH}:${f.line}: ${c} is not in the catalog`).toContain(c);
      const r = checkText(f.text);
      const actual = [...new Set(r.diagnostics.map((d) => d.code))].sort();
      const rendered = renderText(r.diagnostics, (n) => r.sources.get(n)) || "(no diagnostics)";
      expect(actual, `${DOC_PATH}:${f.line}:\n${rendered}`).toEqual(codes);
      if (codes!.length === 0) expect(format(f.text).text, `${DOC_PATH}:${f.line}: not in the canonical format`).toBe(f.text);
    });
  }
});

// ── Sections ─────────────────────────────────────────────────────────────────────────────────

/** The text of the section whose heading line matches `heading`, up to the next heading of the same or a higher level. */
function section(heading: RegExp): string {
  const start = lines.findIndex((l) => /^#{1,6} /.test(l) && heading.test(l));
  if (start < 0) throw new Error(`${DOC_PATH}: no heading matching ${heading}`);
  const level = /^(#+)/.exec(lines[start]!)![1]!.length;
  let end = start + 1;
  let inFence = false;
  for (; end < lines.length; end++) {
    const l = lines[end]!;
    if (/^```/.test(l)) inFence = !inFence;
    if (inFence) continue;
    const m = /^(#+) /.exec(l);
    if (m && m[1]!.length <= level) break;
  }
  return lines.slice(start, end).join("\n");
}

/** The cells of the table rows in a piece of markdown (header and delimiter rows skipped). */
function tableRows(text: string): string[][] {
  const rows: string[][] = [];
  for (const l of text.split("\n")) {
    if (!l.startsWith("|")) continue;
    const cells = l
      .replace(/^\|/, "")
      .replace(/\|\s*$/, "")
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
    if (cells.every((c) => /^:?-+:?$/.test(c))) {
      rows.pop(); // the header row above the delimiter row
      continue;
    }
    rows.push(cells);
  }
  return rows;
}

// ── Diagnostics ──────────────────────────────────────────────────────────────────────────────

/** Codes no short ```moe example can produce; the tests below produce them from generated input. */
const GENERATED = new Set(["FSM1001", "FSM1002", "FSM1012", "FSM2016"]);
/** FSM3xxx codes that compiling a job reports, not `check` (profiles, memory fit): no ```moe example shows them. */
const COMPILE = new Set(["FSM3009", "FSM3010", "FSM3011"]);

describe("the Diagnostics section", () => {
  const diagnostics = section(/^## .*Diagnostics/);

  it.each(Object.keys(messages))("documents %s with its summary", (code) => {
    const entry = section(new RegExp(`^### ${code}\\b`));
    expect(diagnostics).toContain(entry);
    expect(entry).toContain(messages[code as keyof typeof messages].summary);
  });

  it("documents no code that is not in the catalog", () => {
    const documented = [...diagnostics.matchAll(/^### (FSM\d{4})/gm)].map((m) => m[1]!);
    expect(documented.filter((c) => !(c in messages))).toEqual([]);
  });

  it("has a tested example for every code check can report", () => {
    const exampled = new Set(moeFences.flatMap((f) => expectedCodes(f.info) ?? []));
    const checkCodes = Object.keys(messages).filter((c) => /^FSM[123]/.test(c));
    expect(checkCodes.filter((c) => !exampled.has(c) && !GENERATED.has(c) && !COMPILE.has(c))).toEqual([]);
  });

  const codesOf = (r: ReturnType<typeof check>) => [...new Set(r.diagnostics.map((d) => d.code))];

  it("FSM1001: an invalid UTF-8 byte, even in a comment", () => {
    const bytes = new Uint8Array([...new TextEncoder().encode("// caf"), 0xe9, 0x0a]);
    expect(codesOf(check("spec-example.moe", { host: memoryHost({}), text: bytes }))).toEqual(["FSM1001"]);
  });

  it("FSM1002: a NUL character, shown as a control picture", () => {
    const r = checkText("link l { bandwidth = 1 GB/s }\u0000\n");
    expect(codesOf(r)).toEqual(["FSM1002"]);
    expect(renderText(r.diagnostics, (n) => r.sources.get(n))).toContain("    1 | link l { bandwidth = 1 GB/s }␀\n");
  });

  it("FSM1012: a file over the size limit", () => {
    expect(codesOf(checkText(" ".repeat(MAX_FILE_SIZE + 1)))).toEqual(["FSM1012"]);
  });

  it("FSM2016: a chain of references longer than the limit, reported once whatever the order", () => {
    const n = MAX_REFERENCE_DEPTH + 10;
    const blocks = Array.from({ length: n }, (_, i) => `link l${i} { bandwidth = l${i + 1}.bandwidth }`);
    blocks.push(`link l${n} { bandwidth = 1 GB/s }`);
    const r = checkText(blocks.join("\n") + "\n");
    expect(codesOf(r)).toEqual(["FSM2016"]);
    // The document shows it at l9 (line 10), the one link whose chain first exceeds the limit.
    expect(r.diagnostics.map((d) => r.sources.get(d.span.file)!.position(d.span.start))).toEqual([{ line: 10, column: 23 }]);
    const reversed = checkText([...blocks].reverse().join("\n") + "\n");
    expect(reversed.diagnostics.map((d) => reversed.sources.get(d.span.file)!.lineText(reversed.sources.get(d.span.file)!.position(d.span.start).line))).toEqual([
      "link l9 { bandwidth = l10.bandwidth }",
    ]);
  });
});

// ── Block schemas ────────────────────────────────────────────────────────────────────────────

const code = (s: string) => "`" + s + "`";

/** The type cell of a field's row. */
function typeCell(t: FieldType): string {
  switch (t.t) {
    case "int":
      return "integer";
    case "real":
      if (dimEquals(t.dim, DIMENSIONLESS)) return "number";
      if (dimEquals(t.dim, SIZE)) return "size";
      if (dimEquals(t.dim, TIME)) return "time";
      if (dimEquals(t.dim, RATE)) return "rate";
      if (dimEquals(t.dim, COMPUTE)) return "compute rate";
      return `quantity ${t.dim.join(",")}`;
    case "enum":
      return t.values.map(code).join(", ");
    case "bool":
      return "`true`, `false`";
    case "string":
      return "string";
    case "ref":
      return t.kinds.map(code).join(" or ");
    case "block":
      return "block";
    case "degree":
      return "`auto` or integer";
    case "pipeline":
      return "`auto`, integer, or block";
    case "moeLayers":
      return "`all`, `every N`, `after N`, or list";
    case "vary":
      return "block";
  }
}

/** The range cell of a field's row. */
function rangeCell(t: FieldType): string {
  switch (t.t) {
    case "int":
      return `${t.min} … ${t.max === MAX_COUNT ? "2³¹−1" : (t.max ?? "∞")}`;
    case "real":
      if (t.max !== undefined) return `${t.minExclusive ? "(" : "["}${t.min}, ${t.max}]`;
      return `${t.minExclusive ? ">" : "≥"} ${t.min}`;
    case "degree":
    case "pipeline":
      return "1 … 1024";
    default:
      return "—";
  }
}

/** The default cell: `required`, the default expression as schema.ts writes it, or a dash. */
function defaultCell(s: FieldSpec): string {
  if (s.required) return "required";
  return s.default !== undefined ? code(s.default) : "—";
}

/** Every block schema: the top-level kinds, the nested blocks they reach, and `pipeline = { … }`. */
function allSchemas(): BlockSchema[] {
  const seen = new Set<BlockSchema>();
  const walk = (s: BlockSchema) => {
    if (seen.has(s)) return;
    seen.add(s);
    for (const f of Object.values(s.fields)) if (f.type.t === "block") walk(f.type.schema);
  };
  for (const s of Object.values(schemas)) walk(s);
  walk(pipelineBlockSchema);
  return [...seen];
}

describe("the block tables", () => {
  for (const schema of allSchemas()) {
    describe(`Fields of \`${schema.kind}\``, () => {
      const rows = () => tableRows(section(new RegExp(`^#+ Fields of \`${schema.kind}\`$`)));

      it("lists exactly the schema's fields", () => {
        expect(rows().map((r) => r[0])).toEqual(Object.keys(schema.fields).map(code));
      });

      for (const [name, spec] of Object.entries(schema.fields)) {
        it(`documents ${name}`, () => {
          const row = rows().find((r) => r[0] === code(name));
          expect(row, `no row for ${name}`).toBeDefined();
          const [, type, range, dflt, meaning] = row!;
          expect({ type, range, dflt }).toEqual({ type: typeCell(spec.type), range: rangeCell(spec.type), dflt: defaultCell(spec) });
          expect(meaning).toContain(spec.doc);
          if (spec.appliesTo) {
            expect(meaning).toContain(`nly when ${code(spec.appliesTo.field)} is ${spec.appliesTo.values.map(code).join(" or ")}`);
          }
        });
      }
    });
  }
});

// ── Presets, units, rules, limits ────────────────────────────────────────────────────────────

describe("the std presets", () => {
  const std = stdPresets();
  const presets = section(/^## .*Standard presets/);
  const rows = tableRows(presets);

  for (const item of std.ast.items) {
    if (item.kind !== "block") continue;
    it(`documents ${item.blockKind.text} ${item.name.text} with its figures`, () => {
      const row = rows.find((r) => r[0] === code(item.name.text));
      expect(row, `no row for ${item.name.text}`).toBeDefined();
      for (const f of item.body.fields) {
        const written = std.source.text.slice(f.value.span.start, f.value.span.end);
        expect(row!.join(" | "), `${item.name.text}.${f.path[0]!.text}`).toContain(code(written));
      }
    });
  }
});

describe("the routers table", () => {
  const rows = tableRows(section(/^## .*Routers/));
  const moe = schemas.model.fields["moe"]!.type;
  const fields = moe.t === "block" ? Object.entries(moe.schema.fields) : [];
  const routers = fields.find(([name]) => name === "router")![1].type;
  it.each(routers.t === "enum" ? [...routers.values] : [])("lists %s with exactly its own fields", (router) => {
    const row = rows.find((r) => r[0] === code(router));
    expect(row, `no row for ${router}`).toBeDefined();
    const own = fields.filter(([, f]) => f.appliesTo?.field === "router" && f.appliesTo.values.includes(router)).map(([n]) => code(n));
    expect(row![2] === "—" ? [] : row![2]!.split(/,\s*/)).toEqual(own);
  });
});

describe("the units table", () => {
  const units = tableRows(section(/^### Units/));
  it.each(unitNames())("lists %s", (unit) => {
    expect(units.some((r) => r[0]!.split(/,\s*/).includes(code(unit)))).toBe(true);
  });
});

describe("the layout rules", () => {
  const text = section(/^## .*Layout rules/);
  it.each(rules.map((r) => [r.name, r.summary]))("documents %s", (_name, summary) => {
    expect(text).toContain(summary);
  });
});

describe("the limits", () => {
  it("states the nesting, sweep, reference, layer and file-size limits", () => {
    expect(doc).toContain(`${MAX_NESTING} levels`);
    expect(doc).toContain("own `{` counts as a level");
    expect(doc).toContain(`at most ${MAX_LAYERS.toLocaleString("en-US")} layers`);
    expect(doc).toContain(`${MAX_SWEEP_JOBS.toLocaleString("en-US")} jobs`);
    expect(doc).toContain(`${MAX_REFERENCE_DEPTH} references`);
    expect(doc).toContain(`${MAX_FILE_SIZE.toLocaleString("en-US")} bytes`);
  });
});

/**
 * The emitters (codegen/): every target is registered, deterministic, and its output is what
 * its format requires — DOT that Graphviz reads, Chrome trace events that match the plan's
 * timeline, an SVG timeline with a lane per stream and merged sub-pixel ops, and a TypeScript
 * module that type-checks on its own under strict settings with ts-morph's bundled compiler.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Project, ts } from "ts-morph";
import { describe, expect, it } from "vitest";
import { KINDS, events, layerSpans, subtract, union } from "../codegen/common.js";
import { emitDot } from "../codegen/dot.js";
import { targets } from "../codegen/index.js";
import { SVG_WIDTH, emitSvg } from "../codegen/svg.js";
import { TRACE_RANKS, emitTrace } from "../codegen/trace.js";
import { emitTs } from "../codegen/ts.js";
import { check } from "../compiler/check/check.js";
import { compileJob } from "../compiler/compile/compile.js";
import { timeline } from "../compiler/graph/timeline.js";
import { buildPlan } from "../compiler/plan/build.js";
import { PlanOp, type Plan } from "../compiler/plan/schema.js";

/** The plan of a file's first train job, compiled with the auto strategy. */
function planOf(file: string): Plan {
  const job = check(file).program.jobs[0]!;
  return buildPlan(compileJob(job, { strategy: "auto" }).compiled!, file, readFileSync(file, "utf8"), "test");
}

function has(tool: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const tiny = planOf("examples/tiny.moe");
const mixtral = planOf("examples/mixtral-8x7b.moe");

describe("the target registry", () => {
  it("has every target of the issue with its file name", () => {
    expect(targets.map((t) => [t.name, t.file])).toEqual([
      ["json", "plan.json"],
      ["listing", "plan.listing.txt"],
      ["dot", "plan.dot"],
      ["trace", "trace.json"],
      ["svg", "timeline.svg"],
      ["cuda", "plan.cu"],
      ["ts", "plan.ts"],
    ]);
  });

  it("gives byte-identical output when a target runs twice on the same plan", () => {
    for (const t of targets) expect(t.emit(tiny), t.name).toBe(t.emit(structuredClone(tiny)));
  });
});

describe("common", () => {
  it("lists every op kind of the schema once, for colours and legend order", () => {
    expect([...KINDS].sort()).toEqual([...PlanOp.shape.kind.options].sort());
  });

  it("interval union and difference", () => {
    expect(union([[3, 4], [0, 1], [1, 2], [5, 5]])).toEqual([[0, 2], [3, 4]]);
    expect(subtract([[0, 10]], [[1, 2], [4, 6], [9, 12]])).toEqual([[0, 1], [2, 4], [6, 9]]);
    expect(subtract([[0, 1], [2, 3]], [])).toEqual([[0, 1], [2, 3]]);
  });

  it("gives an event to every op waited for from another stream, and none to others", () => {
    const ev = events(tiny);
    const byId = new Map(tiny.ops.map((op) => [op.id, op]));
    const cross = new Set(tiny.ops.flatMap((op) => op.waits.filter((w) => byId.get(w)!.stream !== op.stream)));
    expect(ev.count).toBe(cross.size);
    for (const op of tiny.ops) expect(ev.recordOf[op.id]! >= 0).toBe(cross.has(op.id));
  });

  it("layer spans tile the time axis in order", () => {
    const t = timeline(mixtral);
    const spans = layerSpans(mixtral, t.start, t.end);
    for (let i = 1; i < spans.length; i++) expect(spans[i]!.start).toBeGreaterThanOrEqual(spans[i - 1]!.end);
    expect(spans.filter((s) => s.dir === "fwd" && s.layer >= 0).map((s) => s.layer)).toEqual(Array.from({ length: mixtral.job.model.layers }, (_, i) => i));
  });
});

describe("dot", () => {
  const text = emitDot(tiny);

  it("has a node per op in a cluster per stream and an edge per wait", () => {
    for (const op of tiny.ops) expect(text).toContain(`  op${op.id} [label=`);
    expect(text.match(/subgraph "cluster_/g)).toHaveLength(3);
    const waits = tiny.ops.reduce((n, op) => n + op.waits.length, 0);
    expect(text.match(/\[color="#333333"\];/g)).toHaveLength(waits);
  });

  it.skipIf(!has("dot"))("is read by Graphviz", () => {
    const out = execFileSync("dot", ["-Tsvg"], { input: text, maxBuffer: 1 << 28 }).toString();
    expect(out).toContain("<svg");
  });
});

describe("trace", () => {
  const trace = JSON.parse(emitTrace(tiny)) as { traceEvents: Record<string, unknown>[]; displayTimeUnit: string; otherData: Record<string, unknown> };
  const t = timeline(tiny);
  const world = tiny.job.cluster.nodes * tiny.job.cluster.gpusPerNode;
  const ranks = Math.min(world, TRACE_RANKS);

  it("names a process per rank and a thread per stream, in order", () => {
    expect(trace.displayTimeUnit).toBe("ms");
    const names = trace.traceEvents.filter((e) => e["ph"] === "M" && e["name"] === "process_name");
    expect(names.map((e) => e["pid"])).toEqual(Array.from({ length: ranks }, (_, i) => i));
    const threads = trace.traceEvents.filter((e) => e["ph"] === "M" && e["name"] === "thread_name" && e["pid"] === 0);
    expect(threads.map((e) => (e["args"] as { name: string }).name)).toEqual(["compute stream", "intra stream", "inter stream", "layers"]);
  });

  it("has an X event per op and rank at the timeline's start with the op's args", () => {
    const ops = trace.traceEvents.filter((e) => e["ph"] === "X" && e["cat"] !== "layer");
    expect(ops).toHaveLength(tiny.ops.length * ranks);
    for (const e of ops.filter((x) => x["pid"] === 0)) {
      const args = e["args"] as Record<string, unknown>;
      const op = tiny.ops[args["op"] as number]!;
      expect(e["ts"]).toBeCloseTo(t.start[op.id]!, 3);
      expect(e["dur"]).toBe(op.predictedUs);
      expect(e["tid"]).toBe(["compute", "intra", "inter"].indexOf(op.stream));
      expect(args).toMatchObject({ bytes: op.bytes, macs: op.macs, elements: op.elements, layer: op.layer, dir: op.dir, microBatch: op.microBatch, chunk: op.chunk, predictedUs: op.predictedUs, waits: op.waits });
      if (op.group) expect(args["group"]).toBe(op.group);
    }
  });

  it("pairs every flow start with a finish", () => {
    const starts = trace.traceEvents.filter((e) => e["ph"] === "s").map((e) => e["id"]);
    const ends = trace.traceEvents.filter((e) => e["ph"] === "f").map((e) => e["id"]);
    expect(starts.length).toBeGreaterThan(0);
    expect(ends).toEqual(starts);
    expect(new Set(starts).size).toBe(starts.length);
  });
});

describe("svg", () => {
  /** Tags are balanced and attributes quoted (a small well-formedness check without a parser). */
  function wellFormed(svg: string): void {
    const stack: string[] = [];
    for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)([^>]*?)(\/?)>/g)) {
      const [, close, name, attrs, self] = m;
      expect(attrs!.replace(/\s[\w:-]+="[^"]*"/g, "").trim(), m[0]).toBe("");
      if (close) expect(stack.pop(), m[0]).toBe(name);
      else if (!self) stack.push(name!);
    }
    expect(stack).toEqual([]);
    expect(svg.replace(/<[^>]*>/g, "")).not.toMatch(/[<>]|&(?!amp;|lt;|gt;|quot;)/);
  }

  it("is well-formed, 1600 px wide, with a lane per stream, a legend of the kinds and the exposed communication", () => {
    const svg = emitSvg(tiny);
    wellFormed(svg);
    expect(svg).toContain(`width="${SVG_WIDTH}"`);
    for (const lane of [">compute<", ">intra-node<", ">inter-node<", ">exposed comm<", ">time (ms)<"]) expect(svg).toContain(lane);
    for (const k of KINDS.filter((kind) => tiny.ops.some((op) => op.kind === kind))) expect(svg).toContain(`>${k}</text>`);
    expect(svg).toContain("tiny_job — auto — predicted");
  });

  it("merges ops narrower than a pixel, so a 2,000-op plan stays a few hundred rectangles per lane", () => {
    const svg = emitSvg(mixtral);
    wellFormed(svg);
    const rects = svg.match(/<rect /g)!.length;
    expect(mixtral.ops.length).toBeGreaterThan(2000);
    expect(rects).toBeLessThan(mixtral.ops.length);
    expect(svg).toMatch(/<title>\d+ ops #\d+–#\d+/);
  });

  it.skipIf(!has("rsvg-convert"))("renders with librsvg", () => {
    const dir = mkdtempSync(join(tmpdir(), "fsmoe-svg-"));
    writeFileSync(join(dir, "t.svg"), emitSvg(tiny));
    execFileSync("rsvg-convert", [join(dir, "t.svg"), "-o", join(dir, "t.png")]);
    expect(readFileSync(join(dir, "t.png")).subarray(1, 4).toString()).toBe("PNG");
  });
});

describe("ts", () => {
  const text = emitTs(tiny);

  /** Type-check files in memory with ts-morph's bundled TypeScript (strict, no emit). */
  function diagnostics(files: Record<string, string>): string[] {
    const project = new Project({
      useInMemoryFileSystem: true,
      compilerOptions: { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true },
    });
    for (const [name, content] of Object.entries(files)) project.createSourceFile(name, content);
    return project.getPreEmitDiagnostics().map((d) => `${d.getSourceFile()?.getBaseName()}:${d.getLineNumber()}: ${ts.flattenDiagnosticMessageText(d.getMessageText() as string | ts.DiagnosticMessageChain, "\n")}`);
  }

  it("imports nothing and exports the plan with its types", () => {
    expect(text).not.toMatch(/^\s*import\s/m);
    expect(text).toMatch(/^export interface Op \{/m);
    expect(text).toMatch(/^export interface Plan \{/m);
    expect(text).toMatch(/^export const plan: Plan = \{/m);
    expect(text).toMatch(/^export default plan;/m);
  });

  it("type-checks on its own and in a program that uses it (strict, noEmit), and the check is real", () => {
    const use = [
      `import plan, { type Op, type OpKind } from "./plan.js";`,
      `const kinds: OpKind[] = plan.ops.map((op: Op) => op.kind);`,
      `const exposed: number = plan.predicted.exposedCommunicationUs;`,
      `export const summary = { kinds, exposed, first: plan.ops[0]?.stream };`,
    ].join("\n");
    const bad = text.replace(`kind: "embed"`, `kind: "embedding"`);
    expect(bad).not.toBe(text);
    const found = diagnostics({ "plan.ts": text, "use.ts": use, "bad.ts": bad });
    expect(found.filter((d) => !d.startsWith("bad.ts:"))).toEqual([]);
    expect(found.join("\n")).toMatch(/^bad\.ts:\d+: .*embedding/m);
  });
});

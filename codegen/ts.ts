/**
 * The `ts` target: plan.ts, a typed, self-contained TypeScript module of the plan, built with
 * ts-morph (TOOLCHAIN.md §1: ts-morph@28, which bundles its own TypeScript 6.0.2).
 *
 * The types are derived from the zod schema of plan.json (compiler/plan/schema.ts) when the
 * module is written, so they cannot drift from it: `Plan`, `Op`, `Group`, `PlanBuffer`,
 * `Access` and `Layer` interfaces (every field readonly), and `OpKind`, `StreamName`, `Direction` unions; everything
 * else is spelled inline. The data is `export const plan: Plan = { … }`, so a program that
 * imports the module gets the plan checked against its types, with completion on every field.
 * The module imports nothing.
 *
 * ts-morph is a development dependency and is loaded only when this target runs, so the CLI
 * starts without it; without it installed, this target fails with a message saying so.
 */
import { createRequire } from "node:module";
import type * as TsMorph from "ts-morph";
import type { z } from "zod";
import { Plan as PlanSchema, PlanAccess, PlanBuffer, PlanGroup, PlanLayer, PlanOp, type Plan } from "../compiler/plan/schema.js";

type Schema = z.ZodType;

/** Schemas that become named declarations, with their name and doc comment. */
const NAMED: readonly { schema: Schema; name: string; doc: string }[] = [
  { schema: PlanOp.shape.kind, name: "OpKind", doc: "What an op does: a kernel kind or a collective." },
  { schema: PlanOp.shape.stream, name: "StreamName", doc: "The stream an op runs on: compute, intra-node or inter-node communication." },
  { schema: PlanOp.shape.dir, name: "Direction", doc: "Forward or backward." },
  { schema: PlanAccess, name: "Access", doc: "A byte range of a buffer that an op reads or writes." },
  { schema: PlanOp, name: "Op", doc: "One op of the SPMD op list, in issue order; `waits` are ids of earlier ops." },
  { schema: PlanGroup, name: "Group", doc: "A communication group: `size` ranks `stride` apart." },
  { schema: PlanBuffer, name: "PlanBuffer", doc: "A buffer at a fixed offset of the per-rank arena." },
  { schema: PlanLayer, name: "Layer", doc: "An MoE layer: capacity, pipeline degree and order per direction, gradients it carries." },
  { schema: PlanSchema, name: "Plan", doc: "The whole plan (plan.json)." },
];

/** The TypeScript type text of a zod schema; named schemas other than `self` are referenced by name. */
function typeOf(schema: Schema, self: Schema | undefined, indent: string): string {
  const named = NAMED.find((n) => n.schema === schema);
  if (named && schema !== self) return named.name;
  const s = schema as unknown as {
    type: string;
    shape?: Record<string, Schema>;
    options?: readonly (string | Schema)[];
    element?: Schema;
    values?: ReadonlySet<unknown>;
    unwrap?: () => Schema;
  };
  switch (s.type) {
    case "string":
      return "string";
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "enum":
      return (s.options as readonly string[]).map((o) => JSON.stringify(o)).join(" | ");
    case "literal":
      return [...s.values!].map((v) => JSON.stringify(v)).join(" | ");
    case "nullable":
      return `${typeOf(s.unwrap!(), self, indent)} | null`;
    case "array": {
      const inner = typeOf(s.element!, self, indent);
      return /^[\w.]+$/.test(inner) ? `readonly ${inner}[]` : `ReadonlyArray<${inner}>`;
    }
    case "union":
      return (s.options as readonly Schema[]).map((o) => typeOf(o, self, indent)).join(" | ");
    case "object": {
      const inner = `${indent}  `;
      const fields = Object.entries(s.shape!).map(([key, value]) => {
        const v = value as unknown as { type: string; unwrap: () => Schema };
        return v.type === "optional" ? `${inner}readonly ${key}?: ${typeOf(v.unwrap(), self, inner)};` : `${inner}readonly ${key}: ${typeOf(value, self, inner)};`;
      });
      return `{\n${fields.join("\n")}\n${indent}}`;
    }
    default:
      throw new Error(`ts: no TypeScript type for a zod ${s.type}`);
  }
}

const IDENT = /^[A-Za-z_$][\w$]*$/;

/** A TypeScript literal of plain data; values whose one-line form fits `width` stay on one line. */
function literal(value: unknown, indent: string, width = 400): string {
  const flat = oneLine(value);
  if (flat.length <= width || value === null || typeof value !== "object") return flat;
  const inner = `${indent}  `;
  if (Array.isArray(value)) return `[\n${value.map((v) => `${inner}${literal(v, inner, width)},`).join("\n")}\n${indent}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  return `{\n${entries.map(([k, v]) => `${inner}${IDENT.test(k) ? k : JSON.stringify(k)}: ${literal(v, inner, width)},`).join("\n")}\n${indent}}`;
}

function oneLine(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(oneLine).join(", ")}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return "{}";
  return `{ ${entries.map(([k, v]) => `${IDENT.test(k) ? k : JSON.stringify(k)}: ${oneLine(v)}`).join(", ")} }`;
}

let tsMorph: typeof TsMorph | undefined;

/** ts-morph, loaded on first use. */
function loadTsMorph(): typeof TsMorph {
  if (!tsMorph) {
    try {
      tsMorph = createRequire(import.meta.url)("ts-morph") as typeof TsMorph;
    } catch (e) {
      throw new Error(`the ts target needs the ts-morph package (npm i -D -E ts-morph@28.0.0): ${(e as Error).message}`);
    }
  }
  return tsMorph;
}

/** The plan.ts text of a plan. */
export function emitTs(plan: Plan): string {
  const { Project, IndentationText, QuoteKind } = loadTsMorph();
  const project = new Project({
    useInMemoryFileSystem: true,
    manipulationSettings: { indentationText: IndentationText.TwoSpaces, quoteKind: QuoteKind.Double },
  });
  const j = plan.job;
  const safe = (text: string) => text.replace(/\*\//g, "* /");
  const header = [
    "/**",
    ` * The plan of train job ${safe(j.name)} (${plan.strategy}, ${safe(plan.costModel.name)} costs): ${plan.ops.length} ops,`,
    ` * predicted ${(plan.predicted.iterationUs / 1000).toFixed(3)} ms per iteration on ${j.cluster.nodes * j.cluster.gpusPerNode} GPUs.`,
    ` * Generated by ${safe(plan.compiler)} from ${safe(plan.source.file)}; do not edit, regenerate with`,
    ` * \`fsmoec compile ${safe(plan.source.file)} --emit ts\`. Self-contained: the types mirror ${plan.format}.`,
    " */",
  ];
  const file = project.createSourceFile("plan.ts", header.join("\n") + "\n");
  for (const n of NAMED) {
    const shape = (n.schema as unknown as { type: string; shape?: Record<string, Schema> }).shape;
    if (!shape) {
      file.addTypeAlias({ isExported: true, name: n.name, type: typeOf(n.schema, n.schema, ""), docs: [n.doc] });
      continue;
    }
    file.addInterface({
      isExported: true,
      name: n.name,
      docs: [n.doc],
      properties: Object.entries(shape).map(([key, value]) => {
        const v = value as unknown as { type: string; unwrap: () => Schema };
        const optional = v.type === "optional";
        return { name: key, isReadonly: true, hasQuestionToken: optional, type: typeOf(optional ? v.unwrap() : value, undefined, "") };
      }),
    });
  }
  // Lay out the declarations with TypeScript's formatter before the (possibly large) data goes in.
  file.formatText({ indentSize: 2, convertTabsToSpaces: true });
  file.addStatements((w) => w.blankLine().write(`/** The plan of ${safe(j.name)}. */\nexport const plan: Plan = ${literal(plan, "")};`));
  file.addExportAssignment({ isExportEquals: false, expression: "plan" });
  // ts-morph's blank lines between declarations vary by kind; settle on exactly one.
  return file.getFullText().replace(/^( \*\/\n)(?!\n)/m, "$1\n").replace(/\n{3,}/g, "\n\n");
}

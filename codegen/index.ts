/**
 * The emitters, by `--emit` target (ARCHITECTURE.md, "codegen/"): each turns a plan into the
 * text of one file. Adding a target is adding a file and a line here.
 */
import type { Plan } from "../compiler/plan/schema.js";
import { emitJson } from "./json.js";
import { emitCuda } from "./cuda.js";
import { emitDot } from "./dot.js";
import { emitListing } from "./listing.js";
import { emitSvg } from "./svg.js";
import { emitTrace } from "./trace.js";
import { emitTs } from "./ts.js";

/** One output target. */
export interface Target {
  readonly name: string;
  /** The file name it writes in the job's output folder. */
  readonly file: string;
  readonly emit: (plan: Plan) => string;
}

/** Every target. */
export const targets: readonly Target[] = [
  { name: "json", file: "plan.json", emit: emitJson },
  { name: "listing", file: "plan.listing.txt", emit: emitListing },
  { name: "dot", file: "plan.dot", emit: emitDot },
  { name: "trace", file: "trace.json", emit: emitTrace },
  { name: "svg", file: "timeline.svg", emit: emitSvg },
  { name: "cuda", file: "plan.cu", emit: (plan) => emitCuda(plan) },
  { name: "ts", file: "plan.ts", emit: emitTs },
];

/** The default targets of `fsmoec compile`. */
export const DEFAULT_TARGETS = ["json", "listing"];

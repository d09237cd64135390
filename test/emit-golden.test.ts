/**
 * Golden files of the emitters (STYLE.md, "Golden files like TypeScript's baselines"): every
 * target for examples/tiny.moe, and the SVG timeline and the CUDA launch sequence for the other
 * examples (each file's first train job, auto strategy), compared with
 * spec/baselines/reference/emit/. A CUDA file too big to review as a golden file
 * (more than {@link UNROLL_LIMIT} ops, so table-driven) is kept as a summary instead: the
 * file with its table rows elided, plus its size and hash. Plans are built with compiler
 * version "test" so that a release does not change them.
 */
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { UNROLL_LIMIT, emitCuda } from "../codegen/cuda.js";
import { targets } from "../codegen/index.js";
import { emitSvg } from "../codegen/svg.js";
import { check } from "../compiler/check/check.js";
import { compileJob } from "../compiler/compile/compile.js";
import { buildPlan } from "../compiler/plan/build.js";
import type { Plan } from "../compiler/plan/schema.js";
import { compareBaseline } from "./baselines.js";

/** The plan of a file's first train job, compiled with the auto strategy. */
function planOf(file: string): Plan {
  const job = check(file).program.jobs[0]!;
  return buildPlan(compileJob(job, { strategy: "auto" }).compiled!, file, readFileSync(file, "utf8"), "test");
}

/** The golden file extension of each target. */
const EXTENSIONS: Readonly<Record<string, string>> = {
  json: "plan.json",
  listing: "listing.txt",
  dot: "dot",
  trace: "trace.json",
  svg: "svg",
  cuda: "cu",
  ts: "ts",
};

/** A reviewable summary of a table-driven plan.cu: table rows elided, size and hash kept. */
function cudaSummary(cu: string): string {
  const lines = cu.split("\n");
  const out: string[] = [`// summary of plan.cu: ${cu.length} bytes, ${lines.length - 1} lines, sha256 ${createHash("sha256").update(cu).digest("hex")}`];
  let rows = 0;
  for (const line of lines) {
    if (/^ {4}(\{.*\}|-?\d+),$/.test(line)) {
      rows++;
      continue;
    }
    if (rows > 0) out.push(`    // … ${rows} rows`);
    rows = 0;
    out.push(line);
  }
  return out.join("\n");
}

const stems = readdirSync("examples").filter((f) => f.endsWith(".moe")).map((f) => f.replace(/\.moe$/, "")).sort();

describe("emitter golden files", () => {
  const tiny = planOf("examples/tiny.moe");

  it.each(targets.map((t) => t.name))("tiny: %s matches its baseline", (name) => {
    const target = targets.find((t) => t.name === name)!;
    expect(EXTENSIONS[name], `no golden extension for target ${name}`).toBeDefined();
    expect(compareBaseline(`emit/tiny.${EXTENSIONS[name]}`, target.emit(tiny))).toBeUndefined();
  });

  it.each(stems.filter((s) => s !== "tiny"))("%s: the SVG timeline and the CUDA launch sequence match their baselines", (stem) => {
    const plan = planOf(`examples/${stem}.moe`);
    const svg = compareBaseline(`emit/${stem}.svg`, emitSvg(plan));
    const cu = emitCuda(plan);
    const cuda = plan.ops.length <= UNROLL_LIMIT ? compareBaseline(`emit/${stem}.cu`, cu) : compareBaseline(`emit/${stem}.cu.summary.txt`, cudaSummary(cu));
    expect([svg, cuda].filter((m) => m !== undefined)).toEqual([]);
  });
});

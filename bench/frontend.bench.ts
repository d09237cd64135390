/**
 * Front-end benchmarks (medians, never timed tests), run with `npx tsx bench/frontend.bench.ts`:
 * - parse + check of a generated 20,000-line file (test/generate.ts, fixed seed: many clusters,
 *   models, layers, train jobs and sweeps with comments, about 1% of groups with an unknown
 *   field), target < 300 ms;
 * - parse + check of each examples/*.moe, target < 50 ms each;
 * - parse alone and format alone of the big file (no target; they show where the time goes).
 * Every task runs for at least 300 ms after a warmup (tinybench). Prints a table with the
 * median, p75, sample count, target and ok / MISSED; exits 0 either way (bench/README.md).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Bench, type Task } from "tinybench";
import { check } from "../compiler/check/check.js";
import { memoryHost } from "../compiler/check/host.js";
import { parse } from "../grammar/parse.js";
import { format } from "../grammar/print.js";
import { generateLargeProgram } from "../test/generate.js";

const BIG_LINES = 20_000;
const BIG = "big.moe";

const bigText = generateLargeProgram(BIG_LINES, 20_240_601, 0.01);
const bigHost = memoryHost({ [BIG]: bigText });
const examples = readdirSync("examples")
  .filter((f) => f.endsWith(".moe"))
  .sort()
  .map((f) => ({ file: join("examples", f), text: readFileSync(join("examples", f), "utf8") }));

// What is measured: say it before timing it.
{
  const r = check(BIG, { host: bigHost });
  const ast = parse(bigText, BIG).ast;
  const kinds = new Map<string, number>();
  for (const item of ast.items) if (item.kind === "block") kinds.set(item.blockKind.text, (kinds.get(item.blockKind.text) ?? 0) + 1);
  const codes = [...new Set(r.diagnostics.map((d) => d.code))].join(", ");
  console.log(
    `big file: ${bigText.split("\n").length.toLocaleString("en-US")} lines, ${(bigText.length / 1024).toFixed(0)} KiB, ` +
      `${[...kinds].map(([k, n]) => `${n} ${k}`).join(", ")}; ${r.program.jobs.length} train jobs checked clean, ` +
      `${r.diagnostics.length} diagnostics${codes ? ` (${codes})` : ""}`,
  );
  for (const e of examples) {
    const x = check(e.file, { text: e.text });
    if (x.diagnostics.length > 0) console.log(`warning: ${e.file} has ${x.diagnostics.length} diagnostics`);
  }
}

interface Row {
  readonly task: Task;
  readonly target?: number;
}

async function measure(tasks: [string, () => unknown, number | undefined][], iterations: number): Promise<Row[]> {
  const bench = new Bench({ time: 300, iterations, warmup: true, warmupTime: 100, warmupIterations: 2 });
  for (const [name, fn] of tasks) bench.add(name, fn);
  await bench.run();
  return bench.tasks.map((task, i) => ({ task, target: tasks[i]![2] }));
}

const big = await measure(
  [
    [`parse+check ${BIG_LINES.toLocaleString("en-US")} lines`, () => check(BIG, { host: bigHost }), 300],
    [`parse ${BIG_LINES.toLocaleString("en-US")} lines`, () => parse(bigText, BIG), undefined],
    [`format ${BIG_LINES.toLocaleString("en-US")} lines`, () => format(bigText, BIG), undefined],
  ],
  5,
);
const small = await measure(
  examples.map((e) => [`parse+check ${e.file}`, () => check(e.file, { text: e.text }), 50] as [string, () => unknown, number]),
  20,
);

const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 1)} ms`;
const header = ["task", "median", "p75", "samples", "target", ""];
const rows = [...big, ...small].map(({ task, target }) => {
  const r = task.result;
  if (r.state !== "completed") return [task.name, r.state, "", "", target === undefined ? "" : `< ${target} ms`, "MISSED"];
  const { p50, p75, samplesCount } = r.latency;
  return [task.name, ms(p50), ms(p75), String(samplesCount), target === undefined ? "" : `< ${target} ms`, target === undefined ? "" : p50 < target ? "ok" : "MISSED"];
});
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
console.log();
console.log(line(header));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const r of rows) console.log(line(r));

/**
 * The reporting commands (cli/reports.ts): `fsmoec simulate`, `compare` and `sweep` print what
 * they promise, mark plans that do not fit instead of failing, report progress on long sweeps,
 * and write CSV, Markdown and SVG that are the same bytes every time.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli, tempDirs } from "./cli.js";
import { progressReporter } from "../cli/reports.js";

const tmp = tempDirs("fsmoec-reports-");


describe("fsmoec simulate", () => {
  it("prints the iteration time, the resources, exposed communication, the critical path and the closed-form check", () => {
    const r = cli("simulate", "examples/tiny.moe");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^simulate tiny_job: auto plan of examples\/tiny\.moe, \d+ ops on 2 × 2 /);
    expect(r.out).toMatch(/iteration +[\d.]+ ms simulated; the scheduler predicted [\d.]+ ms \(\+0\.00%\); lower bound [\d.]+ ms \([\d.]+×\)/);
    for (const row of ["compute", "intra-node links", "NICs"]) expect(r.out).toMatch(new RegExp(`\\n  ${row} +[\\d.]+ ms +[\\d.]+ ms +[\\d.]+%\\n`));
    expect(r.out).toMatch(/exposed communication [\d.]+ ms/);
    expect(r.out).toMatch(/critical path \d+ ops: /);
    expect(r.out).toMatch(/closed form \(FSMoE, per MoE block\): simulated span within 2\.0% on 8 of 8 blocks/);
  });

  it("says which assumption a skewed run breaks", () => {
    const r = cli("simulate", "bench/paper-grid.moe", "--job", "paper_grid_0034", "--skew", "zipf:1.5");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/ranks are not symmetric: under skew zipf:1\.5 ep rank 0 carries up to [\d.]+× the balanced volume/);
    expect(r.out).toMatch(/L0 fwd r=\d phased: .*skew: the slowest rank carries/);
  });
});

describe("fsmoec compare", () => {
  it("puts every strategy side by side with speedups, exposed communication, ratio to the bound and peak memory", () => {
    const r = cli("compare", "examples/tiny.moe");
    expect(r.code).toBe(0);
    const lines = r.out.split("\n");
    expect(lines[0]).toMatch(/^train tiny_job — 2 × 2 .*, cost model hardware, lower bound [\d.]+ ms$/);
    expect(lines[1]).toMatch(/strategy +iteration +× deepspeed +× tutel +simulated +exposed comm +\/ bound +peak memory/);
    for (const [k, s] of ["deepspeed", "tutel", "fsmoe", "auto"].entries()) expect(lines[2 + k]).toMatch(new RegExp(`^  ${s} +[\\d.]+ ms +[\\d.]+× +[\\d.]+× +[\\d.]+ ms +[\\d.]+ ms \\([\\d.]+%\\) +[\\d.]+× +[\\d.]+ MiB$`));
    expect(lines[2]).toMatch(/deepspeed +[\d.]+ ms +1\.000×/);
  });

  it("gives the same figures as JSON", () => {
    const r = cli("compare", "examples/tiny.moe", "--format", "json");
    expect(r.code).toBe(0);
    const [job] = JSON.parse(r.out).jobs;
    expect(Object.keys(job.strategies)).toEqual(["deepspeed", "tutel", "fsmoe", "auto"]);
    expect(job.strategies.deepspeed.speedupOverDeepspeed).toBe(1);
    expect(job.strategies.auto.iterationUs).toBeLessThanOrEqual(job.strategies.fsmoe.iterationUs);
    expect(job.strategies.fsmoe.boundRatio).toBeGreaterThanOrEqual(1);
  });
});

describe("fsmoec sweep", () => {
  it("writes CSV, Markdown and SVG of every job and prints the summary", () => {
    const out = tmp();
    const r = cli("sweep", "examples/layer-sweep.moe", "-o", out);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^sweep layer_sizes: 12 jobs × 4 strategies in [\d.]+ s\n/);
    expect(r.out).toMatch(/geomean speedup fsmoe over tutel +[\d.]+\n/);
    expect(r.err).toBe(`wrote ${join(out, "layer_sizes")}.{csv,md,svg}\n`);
    const csv = readFileSync(join(out, "layer_sizes.csv"), "utf8").trimEnd().split("\n");
    expect(csv.length).toBe(13);
    expect(csv[0]).toMatch(/^job,micro_batch,model\.hidden,model\.expert_hidden,lower_bound_us,deepspeed_us,tutel_us,fsmoe_us,auto_us,fsmoe_over_tutel,/);
    expect(csv[1]).toMatch(/^layer_sizes_01,2,1024,2 \* hidden,[\d.]+,/);
    const md = readFileSync(join(out, "layer_sizes.md"), "utf8");
    for (const h of ["# Sweep layer_sizes", "## Summary", "## Distributions", "## By parameter", "## Jobs"]) expect(md).toContain(h);
    const svg = readFileSync(join(out, "layer_sizes.svg"), "utf8");
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    for (const s of ["deepspeed", "tutel", "fsmoe", "auto"]) expect(svg).toContain(`>${s}</text>`);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
  });

  it("writes the same bytes every time", () => {
    const a = tmp();
    const b = tmp();
    expect(cli("sweep", "examples/layer-sweep.moe", "-o", a).code).toBe(0);
    expect(cli("sweep", "examples/layer-sweep.moe", "-o", b).code).toBe(0);
    for (const ext of ["csv", "md", "svg"]) expect(readFileSync(join(a, `layer_sizes.${ext}`))).toEqual(readFileSync(join(b, `layer_sizes.${ext}`)));
  });

  it("marks jobs whose plan needs more memory than the device as not fitting, and finishes the sweep", () => {
    const d = tmp();
    const src = readFileSync("examples/tiny.moe", "utf8").replace("memory = 16 GiB", "memory = 2 MiB");
    writeFileSync(join(d, "small.moe"), `${src}\nsweep sizes {\n  base = tiny_job\n  vary {\n    model.hidden = [64, 128]\n  }\n}\n`);
    const r = cli("sweep", join(d, "small.moe"), "-o", join(d, "out"));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/does not fit \/ failed +1 \/ 0/);
    const csv = readFileSync(join(d, "out", "sizes.csv"), "utf8").trimEnd().split("\n");
    expect(csv[1]).toMatch(/,ok$/);
    expect(csv[2]).toMatch(/,deepspeed does not fit; tutel does not fit; fsmoe does not fit; auto does not fit$/);
  });

  it("reports progress on stderr: one line per 10% when not on a terminal, one updating line on a terminal", () => {
    const out = tmp();
    const r = cli("sweep", "examples/layer-sweep.moe", "-o", out, "--progress", "lines");
    const lines = r.err.split("\n").filter((l) => l.startsWith("sweep layer_sizes:"));
    expect(lines.length).toBe(10);
    expect(lines[lines.length - 1]).toBe("sweep layer_sizes: 12/12 jobs (100%)");
    let tty = "";
    const p = progressReporter("tty", "sweep x", { out: () => {}, err: (s) => (tty += s) }, 200, true)!;
    for (let i = 1; i <= 200; i++) p(i, 200);
    expect(tty.startsWith("\rsweep x: 1/200 jobs (0%)\rsweep x: 2/200 jobs (1%)")).toBe(true);
    expect(tty.endsWith("\rsweep x: 200/200 jobs (100%)\n")).toBe(true);
    expect(tty.split("\n").length).toBe(2);
    expect(progressReporter("auto", "x", { out: () => {}, err: () => {} }, 12, false)).toBeUndefined();
  });

  it("says so when the file has no sweep, and refuses an unknown --sweep", () => {
    const none = cli("sweep", "examples/tiny.moe", "-o", tmp());
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/examples\/tiny\.moe: error: no sweep block expands to a train job/);
    const unknown = cli("sweep", "examples/layer-sweep.moe", "--sweep", "nope", "-o", tmp());
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/no sweep named 'nope' .*; sweeps: layer_sizes/);
    expect(existsSync(join("out", "sweep", "nope.csv"))).toBe(false);
  });
});

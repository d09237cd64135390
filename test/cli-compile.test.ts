import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli, tempDirs } from "./cli.js";
import { Plan } from "../compiler/plan/schema.js";

const tmp = tempDirs("fsmoec-cli-");


function readPlan(path: string): Plan {
  return Plan.parse(JSON.parse(readFileSync(path, "utf8")));
}

describe("fsmoec compile", () => {
  it("writes DIR/<job>/plan.json, valid against the Plan schema, and plan.listing.txt", () => {
    const dir = tmp();
    const r = cli("compile", "examples/tiny.moe", "-o", dir);
    expect(r.err).toMatch(/^wrote .*tiny_job\/ \(auto, predicted \d+\.\d\d ms\)\n$/);
    expect(r.code).toBe(0);
    expect(readdirSync(join(dir, "tiny_job")).sort()).toEqual(["plan.json", "plan.listing.txt"]);
    const plan = readPlan(join(dir, "tiny_job", "plan.json"));
    expect(plan.job.name).toBe("tiny_job");
    expect(plan.strategy).toBe("auto");
    expect(plan.source.file).toBe("examples/tiny.moe");
    const listing = readFileSync(join(dir, "tiny_job", "plan.listing.txt"), "utf8");
    expect(listing.startsWith("plan tiny_job: auto on 2 × 2 ")).toBe(true);
    expect(listing).toContain("ops (issue order)");
    // One listing line per op, after the header line.
    expect(listing.trimEnd().split("\n").slice(listing.split("\n").findIndex((l) => l.startsWith("ops (issue order)")) + 1)).toHaveLength(plan.ops.length);
  });

  it("writes only plan.json with --emit json", () => {
    const dir = tmp();
    const r = cli("compile", "examples/tiny.moe", "-o", dir, "--emit", "json");
    expect(r.code).toBe(0);
    expect(readdirSync(join(dir, "tiny_job"))).toEqual(["plan.json"]);
    readPlan(join(dir, "tiny_job", "plan.json"));
  });

  it("exits 2 on an unknown --emit target, naming it and the known targets, and writes nothing", () => {
    const dir = tmp();
    const r = cli("compile", "examples/tiny.moe", "-o", dir, "--emit", "bogus");
    expect(r.code).toBe(2);
    expect(r.err).toContain("unknown --emit target 'bogus'; targets: json, listing");
    expect(readdirSync(dir)).toEqual([]);
  });

  it("honours --schedule", () => {
    for (const s of ["fsmoe", "deepspeed"]) {
      const dir = tmp();
      const r = cli("compile", "examples/tiny.moe", "-o", dir, "--schedule", s);
      expect(r.code).toBe(0);
      expect(readPlan(join(dir, "tiny_job", "plan.json")).strategy).toBe(s);
      expect(readFileSync(join(dir, "tiny_job", "plan.listing.txt"), "utf8").startsWith(`plan tiny_job: ${s} `)).toBe(true);
    }
  });

  it("exits 2 on an unknown --schedule", () => {
    const r = cli("compile", "examples/tiny.moe", "-o", tmp(), "--schedule", "fastest");
    expect(r.code).toBe(2);
    expect(r.err).toContain("fastest");
  });

  it("picks one job with --job, and exits 2 naming a job the file does not have", () => {
    const dir = tmp();
    expect(cli("compile", "examples/layer-sweep.moe", "-o", dir, "--job", "layer_sizes_03", "--emit", "json").code).toBe(0);
    expect(readdirSync(dir)).toEqual(["layer_sizes_03"]);
    const bad = tmp();
    const r = cli("compile", "examples/tiny.moe", "-o", bad, "--job", "nosuch");
    expect(r.code).toBe(2);
    expect(r.err).toContain("no train job named 'nosuch' in examples/tiny.moe");
    expect(readdirSync(bad)).toEqual([]);
  });

  it("exits 1 with FSM3009 at the profile field for a cluster whose profile file is missing", () => {
    const dir = tmp();
    const file = join(dir, "job.moe");
    writeFileSync(file, readFileSync("examples/tiny.moe", "utf8").replace("nics_per_node = 1", 'nics_per_node = 1\n  profile = "missing.json"'));
    const out = join(dir, "out");
    const r = cli("compile", file, "-o", out);
    expect(r.code).toBe(1);
    expect(r.err).toContain("error FSM3009: cannot read profile 'missing.json': no such file");
    expect(r.err).toMatch(/job\.moe:11:\d+: error FSM3009/);
    expect(existsSync(join(out, "tiny_job"))).toBe(false);
  });

  it("exits 1 with FSM3010 for a malformed profile file, and the default command does too", () => {
    const dir = tmp();
    const file = join(dir, "job.moe");
    writeFileSync(file, readFileSync("examples/tiny.moe", "utf8").replace("nics_per_node = 1", 'nics_per_node = 1\n  profile = "p.json"'));
    writeFileSync(join(dir, "p.json"), JSON.stringify({ format: "fsmoe-profile/1", name: "x", description: "", entries: [] }));
    const r = cli("compile", file, "-o", join(dir, "out"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("error FSM3010: profile 'p.json' is malformed: entries: ");
    expect(cli(file, "-o", join(dir, "out")).code).toBe(1);
  });
});

describe("fsmoec compile --print-after", () => {
  const expectations: Record<string, (out: string) => void> = {
    lower: (out) => {
      const w = JSON.parse(out) as { job: string; layers: { moe: boolean }[]; shape: { capacity0: number } };
      expect(w.job).toBe("tiny_job");
      expect(w.layers.map((l) => l.moe)).toEqual([false, true, false, true]);
      expect(w.shape.capacity0).toBe(8);
    },
    cost: (out) => expect(out).toMatch(/^hardware: .*10 TFLOP\/s/),
    schedule: (out) => {
      expect(out).toMatch(/^schedule tiny_job: auto\n/);
      expect(out).toMatch(/\n {2}L1: C=\d+ forward r=\d+ /);
      expect(out).toMatch(/\n {2}L3: C=\d+ forward r=\d+ /);
      expect(out).toContain("  gradients: ");
    },
    graph: (out) => {
      expect(out).toMatch(/^plan tiny_job: auto /);
      expect(out).toContain("ops (issue order)");
    },
    verify: (out) => expect(out).toMatch(/^tiny_job: \d+ ops verified: acyclic, race-free, shapes consistent\n$/),
    memory: (out) => {
      expect(out).toMatch(/^memory tiny_job: persistent \d+ B, arena \d+ B, weights \d+ B, optimizer \d+ B, peak \d+ B\n/);
      expect(out).toContain("L0.dense_grad");
    },
    plan: (out) => {
      const plan = Plan.parse(JSON.parse(out));
      expect(plan.job.name).toBe("tiny_job");
    },
  };
  for (const [stage, expectation] of Object.entries(expectations)) {
    it(`prints the ${stage} stage of tiny and exits 0 without writing files`, () => {
      const dir = tmp();
      const r = cli("compile", "examples/tiny.moe", "-o", dir, "--print-after", stage);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expectation(r.out);
      expect(readdirSync(dir)).toEqual([]);
    });
  }

  it("exits 2 for a stage that does not exist", () => {
    const r = cli("compile", "examples/tiny.moe", "--print-after", "optimize");
    expect(r.code).toBe(2);
    expect(r.err).toContain("optimize");
  });
});

describe("fsmoec explain", () => {
  it("prints the candidate table with a * on each chosen row", () => {
    const r = cli("explain", "examples/tiny.moe");
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^train tiny_job: auto — /);
    const rows = lines.slice(1);
    expect(rows.length).toBeGreaterThan(3);
    expect(rows.every((l) => /^ {2}[* ] \S.* +(\d+\.\d{3} ms|—)( {2}.*)?$/.test(l))).toBe(true);
    const chosen = rows.filter((l) => l.startsWith("  * "));
    expect(chosen.some((l) => l.includes("whole iteration"))).toBe(true);
    expect(rows.some((l) => l.includes("layer 1"))).toBe(true);
    expect(rows.some((l) => l.includes("layer 3"))).toBe(true);
  });

  it("keeps only layer 1's rows and the rows for every layer with --layer 1", () => {
    const r = cli("explain", "examples/tiny.moe", "--layer", "1");
    expect(r.code).toBe(0);
    expect(r.out).toContain("layer 1");
    expect(r.out).not.toContain("layer 3");
    expect(r.out).toContain("every MoE layer");
    expect(r.out).toMatch(/\n {2}\* /);
  });

  it("exits 2 when --layer is not a layer index", () => {
    const r = cli("explain", "examples/tiny.moe", "--layer", "first");
    expect(r.code).toBe(2);
    expect(r.err).toContain("--layer expects a layer index, got 'first'");
  });

  it("says when a strategy considers no alternatives", () => {
    const r = cli("explain", "examples/tiny.moe", "--schedule", "deepspeed");
    expect(r.code).toBe(0);
    expect(r.out).toContain("train tiny_job: deepspeed — capacity C = max(C0 = 8, min_capacity = 4) = 8");
    expect(r.out).toContain("(this strategy considers no alternatives)");
  });
});

describe("fsmoec FILE (the summary)", () => {
  it("prints the summary with the speedup of auto over the other strategies and writes the plans to -o", () => {
    const dir = tmp();
    const r = cli("examples/tiny.moe", "-o", dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^train tiny_job\n/);
    expect(r.out).toMatch(/ {2}speedup of auto over deepspeed \d+\.\d\d ms \(\d+\.\d\d×\), tutel \d+\.\d\d ms \(\d+\.\d\d×\), fsmoe \d+\.\d\d ms \(\d+\.\d\d×\)\n/);
    expect(r.out).toMatch(/ {2}predicted \d+\.\d\d ms per iteration with auto/);
    expect(readdirSync(dir)).toEqual(["tiny_job"]);
    expect(readdirSync(join(dir, "tiny_job")).sort()).toEqual(["plan.json", "plan.listing.txt"]);
    expect(readPlan(join(dir, "tiny_job", "plan.json")).strategy).toBe("auto");
  });

  it("prints the summary and the diagnostics as one JSON document with --format json", () => {
    const r = cli("examples/tiny.moe", "-o", tmp(), "--format", "json");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as { diagnostics: unknown[]; jobs: { job: string; strategy: string; strategies: Record<string, { speedup: number }> }[] };
    expect(doc.diagnostics).toEqual([]);
    const s = doc.jobs;
    expect(s.map((x) => [x.job, x.strategy])).toEqual([["tiny_job", "auto"]]);
    expect(Object.keys(s[0]!.strategies).sort()).toEqual(["auto", "deepspeed", "fsmoe", "tutel"]);
    expect(s[0]!.strategies["auto"]!.speedup).toBe(1);
  });
});

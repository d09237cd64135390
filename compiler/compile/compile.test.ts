import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { emitJson } from "../../codegen/json.js";
import { emitListing } from "../../codegen/listing.js";
import { check, type CheckResult } from "../check/check.js";
import { memoryHost } from "../check/host.js";
import type { TrainJob } from "../check/program.js";
import { buildPlan } from "../plan/build.js";
import { Plan } from "../plan/schema.js";
import { unreducedGradients } from "../graph/iteration.js";
import { STRATEGY_NAMES, type StrategyName } from "../schedule/index.js";
import { formatBytes, compileJob, compileProgram, programText, type Compiled } from "./index.js";

const EXAMPLES = readdirSync("examples").filter((f) => f.endsWith(".moe")).sort();
const VERSION = "0.0.0-test";

const checked = new Map<string, CheckResult>();
function checkExample(file: string): CheckResult {
  let r = checked.get(file);
  if (!r) {
    r = check(`examples/${file}`);
    checked.set(file, r);
  }
  return r;
}

/** Every (example, job, strategy) compiles once; the tests below share the results. */
const compiledCache = new Map<string, Compiled>();
function compiled(file: string, job: TrainJob, strategy: StrategyName): Compiled {
  const key = `${file}/${job.name}/${strategy}`;
  let c = compiledCache.get(key);
  if (!c) {
    const res = compileJob(job, { strategy });
    expect(res.diagnostics, `${key}: diagnostics`).toEqual([]);
    expect(res.compiled, `${key}: no compiled plan`).toBeDefined();
    c = res.compiled!;
    compiledCache.set(key, c);
  }
  return c;
}

function planOf(file: string, c: Compiled): Plan {
  const r = checkExample(file);
  return buildPlan(c, `examples/${file}`, programText(r), VERSION);
}

// ── independent formulas (LANGUAGE.md "Training semantics"; SCHEDULING.md §1, §3), from job fields only

const DTYPE_BYTES = { fp32: 4, bf16: 2, fp16: 2, fp8: 1 } as const;

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
function lcmOf(a: number, b: number): number {
  return (a * b) / gcd(a, b);
}
function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}
/** capacity_factor as an exact ratio of integers: f = num / 10⁶. */
function factorMillionths(f: number): bigint {
  return BigInt(Math.round(f * 1_000_000));
}

/** T = micro_batch · seq_len / tp. */
function tokensPerRank(job: TrainJob): number {
  return (job.microBatch * job.seqLen) / job.parallel.tp;
}

/** C0 = ceil(k · f · T / E) (softmoe: slots · micro_batch / tp, at least 1). */
function capacity0(job: TrainJob): number {
  const moe = job.model.moe;
  if (moe.router === "softmoe") return Math.max(1, Math.ceil(((moe.slotsPerExpert ?? 1) * job.microBatch) / job.parallel.tp));
  const num = BigInt(moe.topK) * factorMillionths(moe.capacityFactor) * BigInt(tokensPerRank(job));
  const den = BigInt(moe.experts) * 1_000_000n;
  return Math.max(1, Number((num + den - 1n) / den));
}

/** Tutel's k · floor(f · ceil(T / E)) before alignment (its own routers only). */
function tutelBase(job: TrainJob): number {
  const moe = job.model.moe;
  if (moe.router === "softmoe" || moe.router === "expert_choice") return capacity0(job);
  const perExpert = BigInt(Math.ceil(tokensPerRank(job) / moe.experts));
  return Math.max(1, moe.topK * Number((factorMillionths(moe.capacityFactor) * perExpert) / 1_000_000n));
}

function expectedCapacity(job: TrainJob, strategy: StrategyName, layer: Plan["layers"][number]): number {
  const rf = layer.forward.degree;
  const rb = layer.backward.degree;
  switch (strategy) {
    case "deepspeed":
      return Math.max(capacity0(job), 4);
    case "tutel":
      return roundUp(tutelBase(job), rf);
    case "fsmoe":
    case "auto":
      return roundUp(capacity0(job), lcmOf(rf, rb));
  }
}

function gemms(activation: string): number {
  return activation === "swiglu" || activation === "geglu" ? 3 : 2;
}

/**
 * Every MoE collective and expert GEMM of a plan against the formulas: a dispatch or combine
 * all-to-all chunk moves E·C·M/r elements, an ESP AllGather or ReduceScatter chunk esp times
 * that, an expert chunk computes E·C·M·H·n_gemm/r MACs; the r chunks of each add up to the
 * unchunked size. Returns what it checked, for the callers' sanity checks.
 */
export function checkMoeSizes(job: TrainJob, plan: Plan): { a2a: number; esp: number; expert: number } {
  const moe = job.model.moe;
  const E = moe.experts;
  const M = job.model.hidden;
  const H = moe.expertHidden;
  const esp = job.parallel.esp;
  const bytes = DTYPE_BYTES[job.model.dtype];
  const layers = new Map(plan.layers.map((l) => [l.layer, l]));
  const families = new Map<string, { kind: string; total: number; chunks: Set<number>; r: number; whole: number }>();
  const seen = { a2a: 0, esp: 0, expert: 0 };
  for (const op of plan.ops) {
    const isA2a = op.kind === "all_to_all" && op.group === "ep";
    const isEsp = (op.kind === "all_gather" || op.kind === "reduce_scatter") && op.group === "esp";
    const isExpert = op.kind === "expert";
    if (!isA2a && !isEsp && !isExpert) continue;
    const l = layers.get(op.layer);
    expect(l, `op ${op.id} (${op.kind} ${op.role}) belongs to MoE layer ${op.layer}`).toBeDefined();
    const C = l!.capacity;
    const r = op.dir === "fwd" ? l!.forward.degree : l!.backward.degree;
    const unchunkedElements = E * C * M;
    const what = `op ${op.id} (${op.kind} ${op.role} L${op.layer} ${op.dir} mb${op.microBatch} chunk ${op.chunk}), C = ${C}, r = ${r}`;
    let whole: number;
    let amount: number;
    if (isA2a) {
      expect(op.elements, what).toBe((E * C * M) / r);
      expect(op.bytes, what).toBe(((E * C * M) / r) * bytes);
      expect(Number.isInteger(op.bytes), what).toBe(true);
      whole = unchunkedElements * bytes;
      amount = op.bytes;
      seen.a2a++;
    } else if (isEsp) {
      expect(esp, `${what}: ESP collectives only when esp > 1`).toBeGreaterThan(1);
      expect(op.elements, what).toBe((esp * E * C * M) / r);
      expect(op.bytes, what).toBe(((esp * E * C * M) / r) * bytes);
      whole = esp * unchunkedElements * bytes;
      amount = op.bytes;
      seen.esp++;
    } else {
      whole = E * C * M * H * gemms(moe.activation);
      amount = op.macs;
      seen.expert++;
    }
    // Experts of one chunk may be several ops (DeepSpeed runs local experts one by one): sum per chunk.
    const key = `${op.kind}|${op.role}|${op.layer}|${op.dir}|${op.microBatch}`;
    let fam = families.get(key);
    if (!fam) families.set(key, (fam = { kind: op.kind, total: 0, chunks: new Set(), r, whole }));
    fam.total += amount;
    fam.chunks.add(op.chunk);
  }
  const perChunk = new Map<string, number>();
  for (const op of plan.ops) {
    if (op.kind !== "expert") continue;
    const key = `${op.role}|${op.layer}|${op.dir}|${op.microBatch}|${op.chunk}`;
    perChunk.set(key, (perChunk.get(key) ?? 0) + op.macs);
  }
  for (const [key, macs] of perChunk) {
    const [, layer, dir] = key.split("|");
    const l = layers.get(Number(layer))!;
    const r = dir === "fwd" ? l.forward.degree : l.backward.degree;
    const expected = (E * l.capacity * M * H * gemms(moe.activation)) / r;
    expect(Math.abs(macs - expected) / expected, `expert chunk ${key}: ${macs} MACs, expected ${expected}`).toBeLessThan(1e-12);
  }
  for (const [key, fam] of families) {
    expect([...fam.chunks].sort((a, b) => a - b), `${key}: chunks`).toEqual(Array.from({ length: fam.r }, (_, i) => i));
    expect(Math.abs(fam.total - fam.whole) / fam.whole, `${key}: chunks add up to ${fam.total}, unchunked ${fam.whole}`).toBeLessThan(1e-12);
  }
  return seen;
}

// ── the tests

describe("compiling every example", () => {
  for (const file of EXAMPLES) {
    it(`compiles every job of ${file} under every strategy with no diagnostics, into a plan that validates against the Plan schema`, () => {
      const r = checkExample(file);
      expect(r.diagnostics).toEqual([]);
      expect(r.program.jobs.length).toBeGreaterThan(0);
      for (const job of r.program.jobs) {
        for (const s of STRATEGY_NAMES) {
          const c = compiled(file, job, s);
          expect(c.peakBytes, `${job.name} (${s}) fits device memory`).toBeLessThanOrEqual(job.cluster.device.memory);
          const plan = planOf(file, c);
          const parsed = Plan.safeParse(plan);
          expect(parsed.success ? [] : parsed.error.issues.slice(0, 5), `${job.name} (${s})`).toEqual([]);
          expect(plan.strategy).toBe(s);
          expect(plan.ops.length).toBeGreaterThan(0);
        }
      }
    });
  }

  it("fits DeepSeek-V3 with EP over 256 GPUs into 80 GB per GPU", () => {
    const job = checkExample("deepseek-v3.moe").program.jobs[0]!;
    const c = compiled("deepseek-v3.moe", job, job.schedule);
    expect(c.peakBytes).toBeLessThanOrEqual(job.cluster.device.memory);
  });
});

describe("the strategies' predictions on the examples", () => {
  for (const file of EXAMPLES) {
    it(`predicts fsmoe no slower than tutel and deepspeed, and auto no slower than fsmoe, for every job of ${file}`, () => {
      for (const job of checkExample(file).program.jobs) {
        const t = Object.fromEntries(STRATEGY_NAMES.map((s) => [s, compiled(file, job, s).timeline.makespanUs])) as Record<StrategyName, number>;
        const tag = `${job.name}: ${JSON.stringify(t)}`;
        expect(t.fsmoe, tag).toBeLessThanOrEqual(t.tutel);
        // The one exception, on tiny's toy cluster (10 Gb/s between nodes, layers a few µs long):
        // FSMoE's leftover rule — each gradient piece that fits no window goes to the next MoE
        // layer's gap, paying the all-reduce's α again — loses about 2% to DeepSpeed's single
        // bucket after the backward. auto, which also prices that bucket, matches DeepSpeed.
        if (file !== "tiny.moe") expect(t.fsmoe, tag).toBeLessThanOrEqual(t.deepspeed);
        expect(t.auto, tag).toBeLessThanOrEqual(t.fsmoe * (1 + 1e-9));
      }
    });
  }
});

describe("determinism", () => {
  for (const file of EXAMPLES) {
    it(`gives byte-identical plan.json and listing when ${file} is compiled twice`, () => {
      const once = () => {
        const r = check(`examples/${file}`);
        const job = r.program.jobs[0]!;
        const { results } = compileProgram(r, { version: VERSION, jobs: (j) => j.name === job.name });
        const plan = results[0]!.plan!;
        return { json: emitJson(plan), listing: emitListing(plan) };
      };
      const a = once();
      const b = once();
      expect(a.json === b.json, "plan.json differs between two compiles").toBe(true);
      expect(a.listing === b.listing, "listing differs between two compiles").toBe(true);
      expect(JSON.parse(a.json)).toBeTypeOf("object");
    });
  }
});

describe("capacity of each MoE layer", () => {
  for (const file of EXAMPLES) {
    it(`follows each strategy's rule for every job of ${file}: fsmoe and auto pad C0 to the lcm of their degrees, deepspeed max(C0, 4), tutel k·floor(f·ceil(T/E)) aligned to d`, () => {
      for (const job of checkExample(file).program.jobs) {
        for (const s of STRATEGY_NAMES) {
          const plan = planOf(file, compiled(file, job, s));
          expect(plan.capacity0, `${job.name} (${s}) C0`).toBe(capacity0(job));
          expect(plan.layers.map((l) => l.layer)).toEqual([...job.model.moeLayers]);
          for (const l of plan.layers) {
            const tag = `${job.name} (${s}) L${l.layer}: forward r = ${l.forward.degree}, backward r = ${l.backward.degree}`;
            expect(l.capacity, tag).toBe(expectedCapacity(job, s, l));
            if (s === "deepspeed") {
              expect([l.forward, l.backward].map((b) => [b.degree, b.order.kind]), tag).toEqual([[1, "serial"], [1, "serial"]]);
            }
            if (s === "tutel") {
              expect(l.backward.degree, tag).toBe(l.forward.degree);
              if (job.pipeline.forward === "auto") expect([1, 2, 4, 8], tag).toContain(l.forward.degree);
            }
            if (s === "fsmoe" && job.pipeline.forward === "auto") expect([1, 2, 4, 8], tag).toContain(l.forward.degree);
            if (s === "fsmoe" && job.pipeline.backward === "auto") expect([1, 2, 4, 8], tag).toContain(l.backward.degree);
          }
        }
      }
    });
  }
});

describe("byte and MAC counts of the MoE modules", () => {
  for (const file of EXAMPLES) {
    it(`match E·C·M/r per all-to-all chunk, esp times that per AllGather/ReduceScatter chunk and E·C·M·H·n_gemm/r per expert chunk in every plan of ${file}`, () => {
      const job = checkExample(file).program.jobs[0]!;
      for (const s of STRATEGY_NAMES) {
        const seen = checkMoeSizes(job, planOf(file, compiled(file, job, s)));
        const moeLayers = job.model.moeLayers.length;
        // Forward and backward each have a dispatch and a combine per micro-batch (and the recomputed forward).
        expect(seen.a2a, `${job.name} (${s})`).toBeGreaterThanOrEqual(4 * moeLayers * job.microBatches);
        expect(seen.expert, `${job.name} (${s})`).toBeGreaterThanOrEqual(2 * moeLayers * job.microBatches);
        if (job.parallel.esp > 1) expect(seen.esp, `${job.name} (${s})`).toBeGreaterThanOrEqual(4 * moeLayers * job.microBatches);
        else expect(seen.esp).toBe(0);
      }
    });
  }
});

// ── memory and profiles, through an in-memory file

const TINY = readFileSync("examples/tiny.moe", "utf8");

function withCluster(extra: string, device?: string): string {
  let text = TINY.replace("nics_per_node = 1", `nics_per_node = 1\n  ${extra}`);
  if (device !== undefined) text = text.replace(/device\s*=\s*device \{[^}]*\}/, `device = ${device}`);
  return text;
}

function checkText(files: Record<string, string>): { r: CheckResult; job: TrainJob; host: ReturnType<typeof memoryHost> } {
  const host = memoryHost(files);
  const r = check("job.moe", { host });
  expect(r.diagnostics).toEqual([]);
  return { r, job: r.program.jobs[0]!, host };
}

function spanText(r: CheckResult, span: { file: string; start: number; end: number }): string {
  return r.sources.get(span.file)!.text.slice(span.start, span.end);
}


describe("a plan that does not fit the device (FSM3011)", () => {
  const text = withCluster("", "device { peak_flops = 100 TFLOP/s, memory = 1 MiB }");

  it("reports FSM3011 at the device with the plan's peak, the device's memory and the breakdown, and still returns the plan", () => {
    const { r, job, host } = checkText({ "job.moe": text });
    const res = compileJob(job, { strategy: "fsmoe", host });
    expect(res.diagnostics.map((d) => d.code)).toEqual(["FSM3011"]);
    const d = res.diagnostics[0]!;
    const c = res.compiled!;
    expect(c).toBeDefined();
    expect(job.cluster.device.memory).toBe(2 ** 20);
    expect(c.peakBytes).toBeGreaterThan(job.cluster.device.memory);
    expect(c.peakBytes).toBe(c.memory.totalBytes + c.staticMemory.weightBytes + c.staticMemory.optimizerBytes);
    expect(spanText(r, d.span)).toBe("device");
    expect(d.related.map((x) => spanText(r, x.span))).toEqual(["tiny_job"]);
    expect(d.message).toContain("job 'tiny_job' needs ");
    expect(d.message).toContain(`needs ${formatBytes(c.peakBytes)} per GPU`);
    expect(d.message).toContain(`has ${formatBytes(job.cluster.device.memory)}`);
    expect(d.message).toMatch(/weights .*, optimizer states .*, gradients .*, activations and workspace .* \(peak of the fsmoe plan\)/);
  });

  it("reports it under every strategy", () => {
    const { job, host } = checkText({ "job.moe": text });
    for (const s of STRATEGY_NAMES) expect(compileJob(job, { strategy: s, host }).diagnostics.map((d) => d.code), s).toEqual(["FSM3011"]);
  });

  it("tells the needed amount apart from the device's memory in the message, however small the device", () => {
    const { job, host } = checkText({ "job.moe": text });
    const d = compileJob(job, { strategy: "fsmoe", host }).diagnostics[0]!;
    const m = /needs (.+?) per GPU but .+? has (.+?):/.exec(d.message);
    expect(m).not.toBeNull();
    expect(m![1]).not.toBe(m![2]);
  });
});

describe("cluster profiles", () => {
  it("reports a profile naming a missing file as FSM3009 at the profile field, listing the built-ins", () => {
    const { r, job, host } = checkText({ "job.moe": withCluster('profile = "nope.json"') });
    const res = compileJob(job, { strategy: "auto", host });
    expect(res.compiled).toBeUndefined();
    expect(res.diagnostics.map((d) => d.code)).toEqual(["FSM3009"]);
    const d = res.diagnostics[0]!;
    expect(spanText(r, d.span)).toBe('"nope.json"');
    expect(d.span).toEqual(job.cluster.spans["profile"]);
    expect(d.message).toBe("cannot read profile 'nope.json': no such file; built-in profiles: fsmoe-paper-16, fsmoe-paper-32, fsmoe-paper-48");
  });

  it("reports a profile file that is not JSON as FSM3010 at the profile field", () => {
    const { r, job, host } = checkText({ "job.moe": withCluster('profile = "p.json"'), "p.json": "{oops" });
    const res = compileJob(job, { strategy: "auto", host });
    expect(res.diagnostics.map((d) => d.code)).toEqual(["FSM3010"]);
    expect(spanText(r, res.diagnostics[0]!.span)).toBe('"p.json"');
    expect(res.diagnostics[0]!.message).toMatch(/^profile 'p\.json' is malformed: not JSON: /);
  });

  it("reports a malformed profile as FSM3010 with the JSON path of the problem", () => {
    const profile = {
      format: "fsmoe-profile/1",
      name: "mine",
      description: "",
      entries: [
        { op: "all_to_all", alphaUs: 10, betaUs: 0.001 },
        { op: "all_gather", alphaUs: -1, betaUs: 0.001 },
      ],
    };
    const { r, job, host } = checkText({ "job.moe": withCluster('profile = "p.json"'), "p.json": JSON.stringify(profile) });
    const res = compileJob(job, { strategy: "fsmoe", host });
    expect(res.diagnostics.map((d) => d.code)).toEqual(["FSM3010"]);
    expect(spanText(r, res.diagnostics[0]!.span)).toBe('"p.json"');
    expect(res.diagnostics[0]!.message).toMatch(/^profile 'p\.json' is malformed: entries\[1\]\.alphaUs: /);
  });

  it("reports an unknown key of a profile entry with its path", () => {
    const profile = { format: "fsmoe-profile/1", name: "mine", description: "", entries: [{ op: "all_to_all", alphaUs: 1, betaUs: 1, extra: 3 }] };
    const { job, host } = checkText({ "job.moe": withCluster('profile = "p.json"'), "p.json": JSON.stringify(profile) });
    const d = compileJob(job, { strategy: "fsmoe", host }).diagnostics;
    expect(d.map((x) => x.code)).toEqual(["FSM3010"]);
    expect(d[0]!.message).toMatch(/entries\[0\]/);
    expect(d[0]!.message).toContain("extra");
  });

  it("compiles with a valid profile file, pricing with its constants", () => {
    const profile = { format: "fsmoe-profile/1", name: "mine", description: "fitted here", entries: [{ op: "all_to_all", alphaUs: 50, betaUs: 0.001 }] };
    const { job, host } = checkText({ "job.moe": withCluster('profile = "p.json"'), "p.json": JSON.stringify(profile) });
    const res = compileJob(job, { strategy: "fsmoe", host });
    expect(res.diagnostics).toEqual([]);
    expect(res.compiled!.costModel.name).toBe("mine");
    const a2a = res.compiled!.graph.ops.find((o) => o.kind === "all_to_all")!;
    expect(a2a.predictedUs).toBeCloseTo(50 + 0.001 * a2a.elements, 9);
  });

  it("compiles with the built-in profile fsmoe-paper-48 under every strategy", () => {
    const { job, host } = checkText({ "job.moe": withCluster('profile = "fsmoe-paper-48"') });
    for (const s of STRATEGY_NAMES) {
      const res = compileJob(job, { strategy: s, host });
      expect(res.diagnostics, s).toEqual([]);
      expect(res.compiled!.costModel.name).toBe("fsmoe-paper-48");
      expect(Plan.safeParse(buildPlan(res.compiled!, "job.moe", "", VERSION)).success).toBe(true);
    }
  });
});

describe("gradient coverage", () => {
  it("has every strategy all-reduce every dense gradient range of every example, the embedding and LM head's included", () => {
    for (const file of EXAMPLES) {
      for (const job of checkExample(file).program.jobs) {
        for (const s of STRATEGY_NAMES) {
          const c = compiled(file, job, s);
          expect(unreducedGradients(c.workload, c.schedule), `${job.name} ${s}`).toEqual([]);
        }
      }
    }
  });
});

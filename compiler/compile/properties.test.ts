import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { check } from "../check/check.js";
import { memoryHost } from "../check/host.js";
import type { TrainJob } from "../check/program.js";
import type { Op } from "../graph/types.js";
import { STRATEGY_NAMES, type Schedule, type StrategyName } from "../schedule/index.js";
import { compileJob, type Compiled } from "./index.js";

// ── random valid configurations, written as .moe text

const ROUTERS = ["softmax_topk", "switch", "gshard", "sigmoid", "xmoe", "softmoe", "expert_choice"] as const;
const LAYOUTS = ["fsmoe-default", "ep-in-node", "ep-over-world", "edp"] as const;
const FACTORS = ["1.0", "1.2", "2.0"] as const;

/** Raw random choices; {@link derive} turns any of them into a configuration the checker accepts. */
interface Raw {
  readonly layer: boolean;
  readonly layers: number;
  readonly everyOther: boolean;
  readonly headsPerTp: number;
  readonly gqa: boolean;
  readonly hiddenPick: number;
  readonly vocab: 0 | 512 | 1000;
  readonly expertsPerEp: number;
  readonly topKPick: number;
  readonly expertHiddenPerEsp: number;
  readonly activation: "gelu" | "swiglu";
  readonly router: (typeof ROUTERS)[number];
  readonly slots: number;
  readonly routingDim: 0 | 16 | 64;
  readonly factor: (typeof FACTORS)[number];
  readonly nodes: number;
  readonly gpus: number;
  readonly layout: (typeof LAYOUTS)[number];
  readonly tpIsNode: boolean;
  readonly microBatch: number;
  readonly seqPerTp: number;
  readonly microBatches: number;
  readonly recompute: "none" | "selective" | "full";
  readonly pipeline: "auto" | number | readonly [number, number];
  readonly dtype: "bf16" | "fp32";
  readonly profile: boolean;
}

const raw: fc.Arbitrary<Raw> = fc.record({
  layer: fc.boolean(),
  layers: fc.integer({ min: 1, max: 4 }),
  everyOther: fc.boolean(),
  headsPerTp: fc.integer({ min: 1, max: 2 }),
  gqa: fc.boolean(),
  hiddenPick: fc.nat(),
  vocab: fc.constantFrom(0 as const, 512 as const, 1000 as const),
  expertsPerEp: fc.integer({ min: 1, max: 4 }),
  topKPick: fc.nat(),
  expertHiddenPerEsp: fc.integer({ min: 1, max: 4 }),
  activation: fc.constantFrom("gelu" as const, "swiglu" as const),
  router: fc.constantFrom(...ROUTERS),
  slots: fc.integer({ min: 1, max: 2 }),
  routingDim: fc.constantFrom(0 as const, 16 as const, 64 as const),
  factor: fc.constantFrom(...FACTORS),
  nodes: fc.integer({ min: 1, max: 4 }),
  gpus: fc.integer({ min: 1, max: 8 }),
  layout: fc.constantFrom(...LAYOUTS),
  tpIsNode: fc.boolean(),
  microBatch: fc.integer({ min: 1, max: 4 }),
  seqPerTp: fc.constantFrom(8, 16, 32),
  microBatches: fc.integer({ min: 1, max: 3 }),
  recompute: fc.constantFrom("none" as const, "selective" as const, "full" as const),
  pipeline: fc.oneof(fc.constant("auto" as const), fc.integer({ min: 1, max: 4 }), fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }))),
  dtype: fc.constantFrom("bf16" as const, "fp32" as const),
  profile: fc.boolean(),
});

/** A configuration: its .moe text and a one-line description. */
interface Config {
  readonly text: string;
  readonly summary: string;
}

function derive(x: Raw): Config {
  const N = x.nodes;
  const G = x.gpus;
  const world = N * G;
  // Layouts (ARCHITECTURE.md, "Parallel layout").
  let layout: string = x.layout;
  let par: { esp: number; ep: number; edp: number };
  if (x.layout === "ep-in-node") par = { esp: 1, ep: G, edp: N };
  else if (x.layout === "ep-over-world") par = { esp: 1, ep: world, edp: 1 };
  else if (x.layout === "edp" && N > 1) par = { esp: G, ep: 1, edp: N };
  else if (x.layout === "edp" && G > 1) par = { esp: 1, ep: 1, edp: G };
  else {
    layout = "fsmoe-default";
    par = { esp: G, ep: N, edp: 1 };
  }
  const tp = layout === "fsmoe-default" ? G : x.tpIsNode ? G : 1;
  const model = !x.layer;
  const heads = tp * x.headsPerTp;
  const hiddens = Array.from({ length: 16 }, (_, i) => 64 * (i + 1)).filter((h) => !model || h % heads === 0);
  const hidden = hiddens[x.hiddenPick % hiddens.length]!;
  let experts = par.ep * x.expertsPerEp;
  if (x.router === "gshard" && experts < 2) experts = 2 * par.ep;
  const maxK = Math.min(experts, 4);
  const topK = x.router === "switch" ? 1 : x.router === "gshard" ? 2 : 1 + (x.topKPick % maxK);
  const expertHidden = 64 * par.esp * x.expertHiddenPerEsp;
  const routerFields =
    x.router === "softmoe" ? `, slots_per_expert = ${x.slots}` : x.router === "xmoe" && x.routingDim > 0 ? `, routing_dim = ${x.routingDim}` : "";
  const moeFields = `experts = ${experts}, top_k = ${topK}, expert_hidden = ${expertHidden}, activation = ${x.activation}, router = ${x.router}, capacity_factor = ${x.factor}${routerFields}`;
  const layers = model ? x.layers : 1;
  const everyOther = model && layers >= 2 && x.everyOther;
  const kvHeads = x.gqa && heads % 2 === 0 ? heads / 2 : heads;
  const modelBlock = model
    ? [
        "model m {",
        `  layers = ${layers}`,
        `  hidden = ${hidden}`,
        ...(x.vocab > 0 ? [`  vocab = ${x.vocab}`] : []),
        `  attention { heads = ${heads}, kv_heads = ${kvHeads}, kind = ${kvHeads < heads ? "gqa" : "mha"} }`,
        `  moe { ${moeFields} }`,
        ...(everyOther ? ["  moe_layers = every 2"] : []),
        `  dtype = ${x.dtype}`,
        "}",
      ]
    : [`layer m { hidden = ${hidden}, ${moeFields}, dtype = ${x.dtype} }`];
  const parallel = layout === "fsmoe-default" ? "" : `  parallel { tp = ${tp}, esp = ${par.esp}, ep = ${par.ep}, edp = ${par.edp} }`;
  const pipeline = x.pipeline === "auto" ? "auto" : typeof x.pipeline === "number" ? String(x.pipeline) : `{ forward = ${x.pipeline[0]}, backward = ${x.pipeline[1]} }`;
  const text = [
    "cluster c {",
    `  nodes = ${N}`,
    `  gpus_per_node = ${G}`,
    "  device = device { peak_flops = 100 TFLOP/s, memory = 80 GiB, memory_bandwidth = 2 TB/s }",
    "  intra = link { bandwidth = 50 GB/s, latency = 3 us }",
    "  inter = link { bandwidth = 100 Gb/s, latency = 10 us }",
    ...(x.profile ? ['  profile = "fsmoe-paper-48"'] : []),
    "}",
    ...modelBlock,
    "train j {",
    "  model = m",
    "  cluster = c",
    `  micro_batch = ${x.microBatch}`,
    `  seq_len = ${tp * x.seqPerTp}`,
    `  micro_batches = ${x.microBatches}`,
    ...(parallel ? [parallel] : []),
    `  pipeline = ${pipeline}`,
    `  recompute = ${x.recompute}`,
    "}",
    "",
  ].join("\n");
  const summary =
    `${model ? `model ${layers}L${everyOther ? " every 2" : ""}` : "layer"} M=${hidden} E=${experts} k=${topK} H=${expertHidden} ${x.activation} ${x.router} f=${x.factor} ${x.dtype}; ` +
    `${N}×${G} ${layout} tp ${tp} esp ${par.esp} ep ${par.ep} edp ${par.edp}; B=${x.microBatch} L=${tp * x.seqPerTp} ×${x.microBatches}; ` +
    `pipeline ${pipeline}, recompute ${x.recompute}${x.profile ? ", fsmoe-paper-48" : ", hardware"}`;
  return { text, summary };
}

function checkConfig(cfg: Config): TrainJob {
  const r = check("prop.moe", { host: memoryHost({ "prop.moe": cfg.text }) });
  expect(r.diagnostics.map((d) => `${d.code} ${d.message}`), `${cfg.summary}\n${cfg.text}`).toEqual([]);
  expect(r.program.jobs).toHaveLength(1);
  return r.program.jobs[0]!;
}

// ── the a2a formula, from the job's fields only

const DTYPE_BYTES = { fp32: 4, bf16: 2, fp16: 2, fp8: 1 } as const;

/** Every dispatch/combine chunk moves E·C·M/r elements; each family's r chunks add up to E·C·M. */
function a2aMismatches(job: TrainJob, schedule: Schedule, ops: readonly Op[]): string[] {
  const E = job.model.moe.experts;
  const M = job.model.hidden;
  const b = DTYPE_BYTES[job.model.dtype];
  const out: string[] = [];
  const sums = new Map<string, { sum: number; whole: number; chunks: number; r: number }>();
  for (const op of ops) {
    if (op.kind !== "all_to_all") continue;
    const l = schedule.layers.get(op.layer);
    if (!l) {
      out.push(`all-to-all op ${op.id} in layer ${op.layer}, which is not an MoE layer`);
      continue;
    }
    const r = op.dir === "fwd" ? l.forward.degree : l.backward.degree;
    const expected = ((E * l.capacity * M) / r) * b;
    if (op.group !== "ep" || op.bytes !== expected || op.elements * b !== expected) {
      out.push(`op ${op.id} (${op.role} L${op.layer} ${op.dir} chunk ${op.chunk}) moves ${op.bytes} B on ${op.group}; expected E·C·M/r·b = ${E}·${l.capacity}·${M}/${r}·${b} = ${expected}`);
    }
    const key = `${op.role}|${op.layer}|${op.dir}|${op.microBatch}`;
    const s = sums.get(key) ?? { sum: 0, whole: E * l.capacity * M * b, chunks: 0, r };
    s.sum += op.bytes;
    s.chunks++;
    sums.set(key, s);
  }
  for (const [key, s] of sums) {
    if (s.chunks !== s.r || Math.abs(s.sum - s.whole) > 1e-9 * s.whole) out.push(`${key}: ${s.chunks} chunks of r = ${s.r} add up to ${s.sum} B, unchunked ${s.whole} B`);
  }
  return out;
}

/** C0 = ceil(k · f · T / E) with T = micro_batch · seq_len / tp (softmoe: slots · micro_batch / tp), at least 1. */
function capacity0(job: TrainJob): number {
  const moe = job.model.moe;
  const tp = job.parallel.tp;
  if (moe.router === "softmoe") return Math.max(1, Math.ceil(((moe.slotsPerExpert ?? 1) * job.microBatch) / tp));
  const f = BigInt(Math.round(moe.capacityFactor * 1_000_000));
  const num = BigInt(moe.topK) * f * BigInt((job.microBatch * job.seqLen) / tp);
  const den = BigInt(moe.experts) * 1_000_000n;
  return Math.max(1, Number((num + den - 1n) / den));
}

/** Each strategy's capacity rule (SCHEDULING.md §3, baselines): which layers break it, as sentences. */
function capacityMismatches(job: TrainJob, strategy: StrategyName, schedule: Schedule): string[] {
  const moe = job.model.moe;
  const c0 = capacity0(job);
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const out: string[] = [];
  for (const l of schedule.layers.values()) {
    const rf = l.forward.degree;
    const rb = l.backward.degree;
    let expected: number;
    if (strategy === "deepspeed") expected = Math.max(c0, 4);
    else if (strategy === "tutel") {
      const native = moe.router !== "softmoe" && moe.router !== "expert_choice";
      const perExpert = Math.ceil((job.microBatch * job.seqLen) / job.parallel.tp / moe.experts);
      const base = native ? Math.max(1, moe.topK * Number((BigInt(Math.round(moe.capacityFactor * 1_000_000)) * BigInt(perExpert)) / 1_000_000n)) : c0;
      expected = Math.ceil(base / rf) * rf;
    } else {
      const m = (rf * rb) / gcd(rf, rb);
      expected = Math.ceil(c0 / m) * m;
    }
    if (l.capacity !== expected) out.push(`L${l.layer}: C = ${l.capacity} with r = ${rf}/${rb}, expected ${expected} (C0 = ${c0})`);
  }
  return out;
}

// ── the properties

/** Runs per property; FSMOE_PROPERTY_RUNS raises it for a longer local search. */
const NUM_RUNS = Number(process.env["FSMOE_PROPERTY_RUNS"] ?? 60);

describe("random valid configurations", () => {
  it("derives configurations the checker accepts", () => {
    fc.assert(
      fc.property(raw, (x) => {
        checkConfig(derive(x));
      }),
      { numRuns: 100 },
    );
  });

  it("compile under every strategy into verified plans where auto is never slower than fsmoe, capacities follow each strategy's rule and all-to-all sizes follow E·C·M/r", () => {
    const exceptions = { tutel: [] as string[], deepspeed: [] as string[] };
    // The same, among configurations that leave the degrees to the strategies (pipeline = auto).
    const free = { tutel: [] as string[], deepspeed: [] as string[] };
    const worst = { tutel: { ratio: 1, line: "" }, deepspeed: { ratio: 1, line: "" } };
    let runs = 0;
    let freeRuns = 0;
    fc.assert(
      fc.property(raw, (x) => {
        const cfg = derive(x);
        const job = checkConfig(cfg);
        const got = new Map<StrategyName, Compiled>();
        for (const s of STRATEGY_NAMES) {
          const res = compileJob(job, { strategy: s });
          const verification = res.diagnostics.filter((d) => d.code.startsWith("FSM4"));
          expect(verification.map((d) => `${d.code} ${d.message}`), `${s}: ${cfg.summary}`).toEqual([]);
          expect(res.diagnostics.map((d) => `${d.code} ${d.message}`), `${s}: ${cfg.summary}`).toEqual([]);
          const c = res.compiled!;
          expect(a2aMismatches(job, c.schedule, c.graph.ops), `${s}: ${cfg.summary}`).toEqual([]);
          expect(capacityMismatches(job, s, c.schedule), `${s}: ${cfg.summary}`).toEqual([]);
          got.set(s, c);
        }
        const t = (s: StrategyName) => got.get(s)!.timeline.makespanUs;
        expect(t("auto"), `auto ${t("auto")} µs vs fsmoe ${t("fsmoe")} µs: ${cfg.summary}`).toBeLessThanOrEqual(t("fsmoe") * (1 + 1e-9));
        runs++;
        if (x.pipeline === "auto") freeRuns++;
        for (const other of ["tutel", "deepspeed"] as const) {
          if (t("fsmoe") <= t(other)) continue;
          const line = `fsmoe ${t("fsmoe").toFixed(3)} µs > ${other} ${t(other).toFixed(3)} µs (${(t("fsmoe") / t(other)).toFixed(3)}×): ${cfg.summary}`;
          exceptions[other].push(line);
          if (x.pipeline === "auto") {
            free[other].push(line);
            if (t("fsmoe") / t(other) > worst[other].ratio) worst[other] = { ratio: t("fsmoe") / t(other), line };
          }
        }
      }),
      { numRuns: NUM_RUNS },
    );
    // Not asserted: SCHEDULING.md makes no promise that fsmoe beats the baselines on every configuration.
    const lines = [
      `${runs} random configurations: fsmoe slower than tutel on ${exceptions.tutel.length}, slower than deepspeed on ${exceptions.deepspeed.length}` +
        ` (of the ${freeRuns} with pipeline = auto: ${free.tutel.length} and ${free.deepspeed.length}, at worst ${worst.tutel.ratio.toFixed(3)}× and ${worst.deepspeed.ratio.toFixed(3)}×)`,
    ];
    // One example of each: the worst where the strategies chose their own degrees, else the first.
    for (const other of ["tutel", "deepspeed"] as const) {
      const example = worst[other].line || exceptions[other][0];
      if (example) lines.push(`  e.g. ${example}`);
    }
    console.log(lines.join("\n"));
  });
});

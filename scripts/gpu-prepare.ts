/**
 * `npx tsx scripts/gpu-prepare.ts [DIR]` (default scripts/gpu-check): what the GPU check
 * (scripts/gpu-check.sh) consumes on a machine that has a GPU but maybe no Node. It compiles
 * small MoE layer jobs into plans (plan.json, as `fsmoec compile` writes them), runs each plan's
 * host reference on the native addon and stores every rank's outputs, input gradients, weight
 * gradients, routing decisions and loss in fsmoe-tensors/1 files (native/tools/tensors.h); it
 * adds a sweep of bigger one-GPU plans for the profile fit, and the shapes of the router and
 * GEMM benchmarks, all listed in DIR/manifest.json (`fsmoe-gpu-check/1`). The folder is small
 * (under 2 MB) and committed, so the check runs from a checkout.
 *
 * Cases cover every strategy, router and activation the cuda backend runs, one rank (plain and
 * through a one-rank NCCL communicator), four ranks with ESP and EP (loopback collectives), two
 * small model jobs over tp 2 (embedding, GQA or MLA attention, dense FFN, shared experts, LM head
 * and loss), and bf16 GEMMs judged within 2e-2 instead of 1e-4.
 */
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Plan } from "../compiler/plan/schema.js";
import type { StrategyName } from "../compiler/schedule/index.js";
import { checkedJob, layerJobSource, modelJobSource, type LayerJobSpec, type ModelJobSpec } from "../runtime/replay/fixtures.js";
import { planFor, reference, type NativeRank } from "../runtime/replay/index.js";

/** The manifest's format tag (native/tools/fsmoe-replay.cc reads it). */
export const MANIFEST_FORMAT = "fsmoe-gpu-check/1";

/** One replay-vs-reference case. */
export interface CaseSpec {
  readonly name: string;
  /** A layer job's fields, or (with `model`) a model job's. */
  readonly spec: LayerJobSpec | ModelJobSpec;
  /** The spec is a model job (modelJobSource) rather than a layer job. */
  readonly model?: boolean;
  readonly strategy: StrategyName;
  /** Further runs of the same plan and reference: precision and communicator. */
  readonly runs: readonly { readonly suffix: string; readonly precision: "fp32" | "bf16"; readonly comm: "auto" | "loopback" | "nccl" }[];
  readonly note: string;
}

const FP32 = { suffix: "", precision: "fp32", comm: "auto" } as const;
const BF16 = { suffix: "-bf16", precision: "bf16", comm: "auto" } as const;

/** The cases: small enough that plans and references stay a few hundred kB. */
export const CASES: readonly CaseSpec[] = [
  {
    name: "one-rank",
    spec: { nodes: 1, gpus: 1, seqLen: 32 },
    strategy: "fsmoe",
    runs: [FP32, BF16, { suffix: "-nccl", precision: "fp32", comm: "nccl" }],
    note: "1 rank, softmax top-2, gelu; -nccl: collectives through a one-rank NCCL communicator",
  },
  {
    name: "fsmoe-esp-ep",
    spec: { nodes: 2, gpus: 2, seqLen: 32, microBatches: 2, pipeline: "2" },
    strategy: "fsmoe",
    runs: [FP32, BF16],
    note: "4 ranks (ESP over the node, EP over the rail), pipeline degree 2, 2 micro-batches: all-to-all, all-gather, reduce-scatter, all-reduce",
  },
  {
    name: "deepspeed-switch-relu",
    spec: { nodes: 1, gpus: 4, parallel: "esp = 1, ep = 4", router: "switch", topK: 1, activation: "relu", capacityFactor: 1.25 },
    strategy: "deepspeed",
    runs: [FP32],
    note: "4 ranks EP inside the node, DeepSpeed's einsum dispatch and combine, serial experts, switch router",
  },
  {
    name: "tutel-gshard-swiglu",
    spec: { nodes: 2, gpus: 2, parallel: "esp = 1, ep = 4", router: "gshard", activation: "swiglu", microBatches: 2 },
    strategy: "tutel",
    runs: [FP32, BF16],
    note: "4 ranks EP over the world, Tutel's schedule, gshard top-2 with random second-expert drops, swiglu (3 GEMMs)",
  },
  {
    name: "sigmoid-groups-geglu",
    spec: { nodes: 2, gpus: 2, experts: 8, router: "sigmoid", routerFields: "groups = 2, topk_groups = 1, route_scale = 2.5", activation: "geglu", recompute: "full" },
    strategy: "fsmoe",
    runs: [FP32],
    note: "4 ranks, sigmoid router with expert bias and group limits, geglu, full recomputation",
  },
  {
    name: "model-tp2",
    model: true,
    // One MoE layer between two dense ones: bf16 expert operands change its output continuously, but
    // would flip a later MoE layer's routing decisions (which bf16 cases must keep identical).
    spec: { nodes: 2, gpus: 2, layers: 3, moeLayers: "[1]", attention: "heads = 4, kv_heads = 2, kind = gqa", sharedExperts: 1, microBatches: 2 },
    strategy: "fsmoe",
    runs: [FP32, BF16],
    note: "a model job on 4 ranks (tp = esp = 2): vocabulary-parallel embedding, GQA attention, dense FFN layers around an MoE layer with a shared expert, LM head and cross-entropy",
  },
  {
    name: "model-mla-deepspeed",
    model: true,
    spec: { nodes: 2, gpus: 2, layers: 2, moeLayers: "[1]", attention: "kind = mla, heads = 4, q_lora_rank = 16, kv_lora_rank = 12, qk_nope_dim = 8, rope_dim = 4, v_head_dim = 6" },
    strategy: "deepspeed",
    runs: [FP32],
    note: "a model job with multi-head latent attention on 4 ranks (tp = 2), DeepSpeed's einsum dispatch and combine",
  },
];

/** One-GPU plans of growing size: the profile's sweep (no reference; the GPU times them). */
export function sweepSpecs(): { name: string; spec: LayerJobSpec }[] {
  const out: { name: string; spec: LayerJobSpec }[] = [];
  for (const activation of ["gelu", "swiglu"] as const)
    for (const hidden of [512, 1024, 2048])
      for (const seqLen of [1024, 4096])
        out.push({
          name: `sweep-${activation}-h${hidden}-t${seqLen}`,
          spec: { nodes: 1, gpus: 1, hidden, expertHidden: 2 * hidden, experts: 8, topK: 2, seqLen, microBatch: 1, activation, pipeline: "2", capacityFactor: 1.25 },
        });
  return out;
}

/** Router shapes (tokens, hidden, experts, top-k) for our kernels against a plain PyTorch router. */
export const ROUTER_SHAPES = [
  { tokens: 4096, hidden: 1024, experts: 8, topK: 2, capacityFactor: 1.25 },
  { tokens: 16384, hidden: 2048, experts: 8, topK: 2, capacityFactor: 1.25 },
  { tokens: 16384, hidden: 4096, experts: 64, topK: 8, capacityFactor: 1.25 },
] as const;

/** Expert GEMM shapes (rows = tokens per expert, hidden → expert hidden). */
export const GEMM_SHAPES = [
  { m: 4096, n: 14336, k: 4096, batch: 1, dtype: "bf16" },
  { m: 2048, n: 4096, k: 4096, batch: 8, dtype: "bf16" },
  { m: 4096, n: 4096, k: 4096, batch: 1, dtype: "fp32" },
] as const;

// ── fsmoe-tensors/1 ─────────────────────────────────────────────────────────────────────────

/** A rank's tensors and decisions, as the addon reports them. */
export type TensorRank = Pick<NativeRank, "loss" | "lossScale" | "tensors" | "ints">;

/** The bytes of an fsmoe-tensors/1 file (native/tools/tensors.h). */
export function encodeTensors(ranks: readonly TensorRank[], rankIds: readonly number[] = ranks.map((_, i) => i)): Buffer {
  const chunks: Buffer[] = [];
  let offset = 0;
  const put = (a: Float32Array | Int32Array) => {
    const b = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    chunks.push(Buffer.from(b)); // little-endian on every platform Node runs the prepare on (checked below)
    const at = offset;
    offset += b.length;
    return { offset: at, length: a.length };
  };
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error("fsmoe-tensors/1 is little-endian; this machine is not");
  const header = {
    format: "fsmoe-tensors/1",
    ranks: ranks.map((r, i) => ({
      rank: rankIds[i]!,
      loss: r.loss,
      lossScale: r.lossScale,
      tensors: Object.entries(r.tensors).map(([name, a]) => ({ name, ...put(a) })),
      ints: Object.entries(r.ints).map(([name, a]) => ({ name, ...put(a) })),
    })),
  };
  let text = JSON.stringify(header);
  while ((12 + Buffer.byteLength(text)) % 4 !== 0) text += " ";
  const head = Buffer.alloc(12);
  head.write("FSMOETNS", 0, "latin1");
  head.writeUInt32LE(Buffer.byteLength(text), 8);
  return Buffer.concat([head, Buffer.from(text, "utf8"), ...chunks]);
}

/** Parse an fsmoe-tensors/1 file. */
export function decodeTensors(bytes: Buffer): { rank: number; loss: number; lossScale: number; tensors: Record<string, Float32Array>; ints: Record<string, Int32Array> }[] {
  if (bytes.length < 12 || bytes.toString("latin1", 0, 8) !== "FSMOETNS") throw new Error("not an fsmoe-tensors/1 file");
  const h = bytes.readUInt32LE(8);
  const header = JSON.parse(bytes.toString("utf8", 12, 12 + h)) as {
    format: string;
    ranks: { rank: number; loss: number; lossScale: number; tensors: { name: string; offset: number; length: number }[]; ints: { name: string; offset: number; length: number }[] }[];
  };
  if (header.format !== "fsmoe-tensors/1") throw new Error(`format ${header.format}`);
  const data = bytes.subarray(12 + h);
  const view = <T extends Float32Array | Int32Array>(Ctor: { new (b: ArrayBuffer): T }, o: number, n: number): T => new Ctor(data.buffer.slice(data.byteOffset + o, data.byteOffset + o + 4 * n) as ArrayBuffer);
  return header.ranks.map((r) => ({
    rank: r.rank,
    loss: r.loss,
    lossScale: r.lossScale,
    tensors: Object.fromEntries(r.tensors.map((t) => [t.name, view(Float32Array, t.offset, t.length)])),
    ints: Object.fromEntries(r.ints.map((t) => [t.name, view(Int32Array, t.offset, t.length)])),
  }));
}

// ── The folder ──────────────────────────────────────────────────────────────────────────────

function compile(spec: LayerJobSpec | ModelJobSpec, strategy: StrategyName, what: string, model = false): Plan {
  const source = model ? modelJobSource({ ...(spec as ModelJobSpec), schedule: strategy }) : layerJobSource({ ...(spec as LayerJobSpec), schedule: strategy });
  const job = checkedJob(source);
  const { plan, diagnostics } = planFor(job, strategy, "gpu-prepare", `${what}.moe`, source);
  if (!plan) throw new Error(`${what} does not compile: ${diagnostics.map((d) => d.message).join("; ")}`);
  return plan;
}

/** Write the prepared folder; returns its size in bytes. */
export async function prepare(
  dir: string,
  options: {
    cases?: readonly CaseSpec[];
    /** The sweep's jobs (default sweepSpecs()); [] for none. */
    sweep?: readonly { name: string; spec: LayerJobSpec }[];
    router?: readonly object[];
    gemm?: readonly object[];
    log?: (line: string) => void;
  } = {},
): Promise<number> {
  const log = options.log ?? (() => {});
  rmSync(join(dir, "cases"), { recursive: true, force: true });
  rmSync(join(dir, "sweep"), { recursive: true, force: true });
  mkdirSync(join(dir, "cases"), { recursive: true });
  mkdirSync(join(dir, "sweep"), { recursive: true });
  const cases: object[] = [];
  for (const c of options.cases ?? CASES) {
    const plan = compile(c.spec, c.strategy, c.name, c.model);
    const text = JSON.stringify(plan);
    const ref = await reference(text);
    if (!ref.ok) throw new Error(`${c.name}: the host reference failed: ${ref.error}`);
    writeFileSync(join(dir, "cases", `${c.name}.plan.json`), text);
    writeFileSync(join(dir, "cases", `${c.name}.ref.bin`), encodeTensors(ref.ranks));
    for (const run of c.runs)
      cases.push({
        name: c.name + run.suffix,
        plan: `cases/${c.name}.plan.json`,
        expected: `cases/${c.name}.ref.bin`,
        precision: run.precision,
        comm: run.comm,
        tolerance: run.precision === "bf16" ? 2e-2 : 1e-4,
        world: plan.job.cluster.nodes * plan.job.cluster.gpusPerNode,
        note: c.note,
      });
    log(`case ${c.name}: ${plan.ops.length} ops on ${plan.job.cluster.nodes * plan.job.cluster.gpusPerNode} rank(s), ${c.strategy}`);
  }
  const sweep: object[] = [];
  for (const s of options.sweep ?? sweepSpecs()) {
    const plan = compile(s.spec, "fsmoe", s.name);
    writeFileSync(join(dir, "sweep", `${s.name}.plan.json`), JSON.stringify(plan));
    sweep.push({ name: s.name, plan: `sweep/${s.name}.plan.json`, comm: "auto" });
    log(`sweep ${s.name}: ${plan.ops.length} ops, arena ${(plan.memory.arenaBytes / 2 ** 20).toFixed(1)} MiB`);
  }
  const manifest = {
    format: MANIFEST_FORMAT,
    generatedBy: "scripts/gpu-prepare.ts",
    tolerances: { fp32: 1e-4, bf16: 2e-2 },
    cases,
    sweep,
    router: options.router ?? ROUTER_SHAPES,
    gemm: options.gemm ?? GEMM_SHAPES,
  };
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  const size = (d: string): number => readdirSync(d).reduce((s, f) => s + (statSync(join(d, f)).isDirectory() ? size(join(d, f)) : statSync(join(d, f)).size), 0);
  return size(dir);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const dir = process.argv[2] ?? "scripts/gpu-check";
  prepare(dir, { log: (l) => console.log(l) })
    .then((bytes) => console.log(`wrote ${dir}/manifest.json (${(bytes / 1024).toFixed(0)} kB in all)`))
    .catch((e: Error) => {
      console.error(`gpu-prepare: ${e.message}`);
      process.exit(1);
    });
}

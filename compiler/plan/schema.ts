/**
 * plan.json, defined once (ARCHITECTURE.md, "plan.json"): this zod schema is the single source
 * of the plan's types, the validator of plans read back (simulate, emitters, the runtime), and
 * the published JSON Schema (spec/plan.schema.json, written by `npm run schema`).
 */
import { z } from "zod";

/** The plan format this compiler writes and reads. */
export const PLAN_FORMAT = "fsmoe-plan/1";

const int = z.number().int();
const nonNegative = z.number().finite().min(0);

export const PlanGroup = z
  .object({ name: z.string(), size: int.min(1), stride: int.min(1), span: z.enum(["intra", "inter", "both"]), membersPerNode: int.min(1), nodes: int.min(1) })
  .strict();

export const PlanBuffer = z
  .object({ id: int.min(0), name: z.string(), bytes: int.min(0), persistent: z.boolean(), offset: int.min(0) })
  .strict();

export const PlanAccess = z.object({ buffer: int.min(0), offset: nonNegative, bytes: nonNegative, write: z.boolean() }).strict();

export const PlanOp = z
  .object({
    id: int.min(0),
    kind: z.enum([
      "embed", "lm_head", "loss", "attention", "dense_ffn", "shared_expert", "norm",
      "gate", "order", "dispatch_gemm", "expert", "combine_gemm", "iorder",
      "all_to_all", "all_gather", "reduce_scatter", "all_reduce",
    ]),
    stream: z.enum(["compute", "intra", "inter"]),
    layer: int.min(-1),
    dir: z.enum(["fwd", "bwd"]),
    microBatch: int.min(0),
    chunk: int.min(-1),
    role: z.string(),
    waits: z.array(int.min(0)),
    accesses: z.array(PlanAccess),
    elements: nonNegative,
    macs: nonNegative,
    bytes: nonNegative,
    group: z.string().optional(),
    reduce: z.enum(["sum", "max"]).optional(),
    expert: int.min(0).optional(),
    predictedUs: nonNegative,
  })
  .strict();

const Order = z.union([z.object({ kind: z.enum(["serial", "single-comm", "phased"]) }).strict(), z.object({ kind: z.literal("interleaved"), lookahead: int.min(1) }).strict()]);
const GradPart = z.object({ source: int.min(-1), offset: int.min(0), elements: int.min(0) }).strict();
const GradBucket = z.object({ parts: z.array(GradPart) }).strict();

export const PlanLayer = z
  .object({
    layer: int.min(0),
    capacity: int.min(1),
    forward: z.object({ degree: int.min(1), order: Order }).strict(),
    backward: z.object({ degree: int.min(1), order: Order }).strict(),
    gapGradients: z.array(GradBucket),
  })
  .strict();

/** Attention of every layer of a model (null for a layer job); the fields of the other kinds are null. */
export const PlanAttention = z
  .object({
    kind: z.enum(["mha", "gqa", "mla"]),
    heads: int.min(1),
    kvHeads: int.min(1).nullable(),
    headDim: int.min(1).nullable(),
    qLoraRank: int.min(1).nullable(),
    kvLoraRank: int.min(1).nullable(),
    qkNopeDim: int.min(1).nullable(),
    ropeDim: int.min(1).nullable(),
    vHeadDim: int.min(1).nullable(),
  })
  .strict();

/**
 * The checked model: everything a runtime needs to compute what the plan's ops stand for —
 * shapes, the router and its fields (defaults applied), attention, the dense FFN and the shared
 * experts (native/README.md, "The model").
 */
export const PlanModel = z
  .object({
    name: z.string(),
    kind: z.enum(["model", "layer"]),
    layers: int.min(1),
    hidden: int.min(1),
    vocab: int.min(1).nullable(),
    moeLayers: z.array(int.min(0)),
    experts: int.min(1),
    topK: int.min(1),
    expertHidden: int.min(1),
    activation: z.string(),
    router: z.string(),
    /** softmax_topk: renormalize the top-k probabilities. */
    normalize: z.boolean(),
    /** Expert groups and how many of them a token may use (DeepSeek's group-limited routing); 1 and 1 without limits. */
    groups: int.min(1),
    topkGroups: int.min(1),
    /** Scale of the combine weights (softmax_topk, sigmoid). */
    routeScale: z.number().finite().positive(),
    capacityFactor: nonNegative,
    sharedExperts: int.min(0),
    sharedHidden: int.min(1),
    attention: PlanAttention.nullable(),
    ffn: z.object({ hidden: int.min(1), activation: z.string() }).strict().nullable(),
    dtype: z.string(),
  })
  .strict();

/** The whole plan. */
export const Plan = z
  .object({
    format: z.literal(PLAN_FORMAT),
    compiler: z.string(),
    source: z.object({ file: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict(),
    job: z
      .object({
        name: z.string(),
        model: PlanModel,
        cluster: z.object({ name: z.string(), nodes: int.min(1), gpusPerNode: int.min(1), device: z.string(), deviceMemory: nonNegative }).strict(),
        microBatch: int.min(1),
        seqLen: int.min(1),
        microBatches: int.min(1),
        parallel: z.object({ tp: int.min(1), esp: int.min(1), ep: int.min(1), edp: int.min(1) }).strict(),
        recompute: z.string(),
        seed: int.min(0),
      })
      .strict(),
    strategy: z.enum(["deepspeed", "tutel", "fsmoe", "auto"]),
    costModel: z.object({ name: z.string(), description: z.string() }).strict(),
    capacity0: int.min(1),
    groups: z.array(PlanGroup),
    buffers: z.array(PlanBuffer),
    memory: z
      .object({ arenaBytes: int.min(0), weightBytes: int.min(0), optimizerBytes: int.min(0), peakBytes: int.min(0), deviceBytes: nonNegative })
      .strict(),
    layers: z.array(PlanLayer),
    gradients: z
      .object({
        stream: z.enum(["compute", "intra", "inter"]),
        window: z.array(z.object({ layer: int.min(0), buckets: z.array(GradBucket) }).strict()),
        immediate: z.array(z.object({ layer: int.min(0), buckets: z.array(GradBucket) }).strict()),
        tail: z.array(GradBucket),
      })
      .strict(),
    ops: z.array(PlanOp),
    predicted: z
      .object({
        iterationUs: nonNegative,
        lowerBoundUs: nonNegative,
        busyUs: z.object({ compute: nonNegative, intra: nonNegative, inter: nonNegative }).strict(),
        exposedCommunicationUs: nonNegative,
      })
      .strict(),
  })
  .strict();

export type Plan = z.infer<typeof Plan>;
export type PlanOp = z.infer<typeof PlanOp>;

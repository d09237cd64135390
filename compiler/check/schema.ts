/**
 * The block kinds of the language and their fields (LANGUAGE.md, "Block kinds"): type, range,
 * whether required, and the default. Defaults are `.moe` expressions, evaluated in the block's
 * own scope exactly like written values, so a default can depend on other fields
 * (`head_dim = hidden / heads`) and spec/language.md can print it as written.
 */
import { COMPUTE, DIMENSIONLESS, RATE, SIZE, TIME, type Dim } from "./units.js";

/** The kinds a top-level block can have. */
export type BlockKind = "device" | "link" | "cluster" | "model" | "layer" | "train" | "sweep";

/** What a field accepts. */
export type FieldType =
  | { readonly t: "int"; readonly min: number; readonly max?: number }
  | { readonly t: "real"; readonly dim: Dim; readonly min: number; readonly minExclusive: boolean; readonly max?: number }
  | { readonly t: "enum"; readonly values: readonly string[] }
  | { readonly t: "bool" }
  | { readonly t: "string" }
  | { readonly t: "ref"; readonly kinds: readonly BlockKind[] }
  | { readonly t: "block"; readonly schema: BlockSchema }
  | { readonly t: "degree" }
  | { readonly t: "pipeline" }
  | { readonly t: "moeLayers" }
  | { readonly t: "vary" };

/** One field of a block. */
export interface FieldSpec {
  readonly type: FieldType;
  readonly required?: boolean;
  /** A `.moe` expression evaluated in the block's scope when the field is not written. */
  readonly default?: string;
  /** The field exists only when a sibling enum has one of these values (router fields). */
  readonly appliesTo?: { readonly field: string; readonly values: readonly string[] };
  readonly doc: string;
}

/** The fields of a block kind or nested block. */
export interface BlockSchema {
  readonly kind: string;
  readonly fields: Readonly<Record<string, FieldSpec>>;
}

/** The largest count: 2³¹ − 1 (LANGUAGE.md, "Ranges"). */
export const MAX_COUNT = 2 ** 31 - 1;

/**
 * The most layers a model may have. Real models have fewer than a thousand; the bound keeps
 * every per-layer structure the compiler builds (the MoE layer indices, the per-layer plan) small.
 */
export const MAX_LAYERS = 100_000;

const count = (min = 1): FieldType => ({ t: "int", min, max: MAX_COUNT });
const positive = (dim: Dim): FieldType => ({ t: "real", dim, min: 0, minExclusive: true });
const nonNegative = (dim: Dim): FieldType => ({ t: "real", dim, min: 0, minExclusive: false });
const fraction: FieldType = { t: "real", dim: DIMENSIONLESS, min: 0, minExclusive: true, max: 1 };

/** Activation functions: relu and gelu use 2 GEMMs, swiglu and geglu 3. */
export const ACTIVATIONS = ["relu", "gelu", "swiglu", "geglu"] as const;
/** Routers (LANGUAGE.md, "Routers"). */
export const ROUTERS = ["softmax_topk", "gshard", "switch", "sigmoid", "xmoe", "softmoe", "expert_choice"] as const;
/** Element types. */
export const DTYPES = ["fp32", "bf16", "fp16", "fp8"] as const;
/** Scheduling strategies (SCHEDULING.md §3). */
export const SCHEDULES = ["deepspeed", "tutel", "fsmoe", "auto"] as const;

const routerOnly = (...values: string[]) => ({ field: "router", values });

const moeFields: Record<string, FieldSpec> = {
  experts: { type: count(), required: true, doc: "Routed experts." },
  top_k: { type: count(), required: true, doc: "Experts each token is sent to." },
  expert_hidden: { type: count(), required: true, doc: "Hidden size of one expert's FFN." },
  activation: { type: { t: "enum", values: ACTIVATIONS }, default: "gelu", doc: "Expert FFN activation." },
  router: { type: { t: "enum", values: ROUTERS }, default: "softmax_topk", doc: "How tokens choose experts." },
  capacity_factor: { type: positive(DIMENSIONLESS), default: "1.0", doc: "Expert capacity as a multiple of the even share of tokens." },
  shared_experts: { type: count(0), default: "0", doc: "Experts every token goes through (DeepSeek style)." },
  shared_hidden: { type: count(), default: "expert_hidden", doc: "Hidden size of one shared expert." },
  aux_loss: { type: nonNegative(DIMENSIONLESS), default: "0.01", doc: "Load-balancing loss coefficient (DeepSpeed's default, baselines.md §2.4)." },
  router_dtype: { type: { t: "enum", values: DTYPES }, default: "fp32", doc: "Element type of the gate's logits." },
  normalize: { type: { t: "bool" }, default: "true", appliesTo: routerOnly("softmax_topk"), doc: "Renormalize the top-k weights to sum to 1." },
  groups: { type: count(), default: "1", appliesTo: routerOnly("softmax_topk", "sigmoid"), doc: "Expert groups for group-limited routing." },
  topk_groups: { type: count(), default: "groups", appliesTo: routerOnly("softmax_topk", "sigmoid"), doc: "Groups each token may use." },
  route_scale: { type: positive(DIMENSIONLESS), default: "1.0", appliesTo: routerOnly("softmax_topk", "sigmoid"), doc: "Factor on the routing weights (DeepSeek-V3: 2.5)." },
  bias_update_rate: { type: positive(DIMENSIONLESS), default: "0.001", appliesTo: routerOnly("sigmoid"), doc: "Expert-bias step of aux-loss-free balancing (Megatron's default u = 1e-3)." },
  routing_dim: { type: count(), default: "256", appliesTo: routerOnly("xmoe"), doc: "Dimension of the routing hypersphere (Tutel's cosine router projects to 256)." },
  slots_per_expert: { type: count(), default: "1", appliesTo: routerOnly("softmoe"), doc: "Soft-MoE slots per expert." },
};

const moeSchema: BlockSchema = { kind: "moe", fields: moeFields };

const attentionSchema: BlockSchema = {
  kind: "attention",
  fields: {
    kind: { type: { t: "enum", values: ["mha", "gqa", "mla"] }, default: "mha", doc: "Multi-head, grouped-query or multi-head latent attention." },
    heads: { type: count(), default: "hidden / 128", doc: "Attention heads (query heads)." },
    kv_heads: { type: count(), default: "heads", appliesTo: { field: "kind", values: ["mha", "gqa"] }, doc: "Key/value heads (GQA)." },
    head_dim: { type: count(), default: "hidden / heads", appliesTo: { field: "kind", values: ["mha", "gqa"] }, doc: "Dimension of one head." },
    q_lora_rank: { type: count(), default: "hidden", appliesTo: { field: "kind", values: ["mla"] }, doc: "MLA query compression rank." },
    kv_lora_rank: { type: count(), default: "hidden / 4", appliesTo: { field: "kind", values: ["mla"] }, doc: "MLA key/value compression rank." },
    qk_nope_dim: { type: count(), default: "hidden / heads", appliesTo: { field: "kind", values: ["mla"] }, doc: "MLA per-head query/key dimension without rotary part." },
    rope_dim: { type: count(), default: "qk_nope_dim / 2", appliesTo: { field: "kind", values: ["mla"] }, doc: "MLA per-head rotary dimension." },
    v_head_dim: { type: count(), default: "qk_nope_dim", appliesTo: { field: "kind", values: ["mla"] }, doc: "MLA per-head value dimension." },
  },
};

const ffnSchema: BlockSchema = {
  kind: "ffn",
  fields: {
    hidden: { type: count(), default: "4 * model.hidden", doc: "Hidden size of the dense FFN." },
    activation: { type: { t: "enum", values: ACTIVATIONS }, default: "moe.activation", doc: "Activation of the dense FFN." },
  },
};

const parallelSchema: BlockSchema = {
  kind: "parallel",
  fields: {
    esp: { type: count(), default: "cluster.gpus_per_node", doc: "Expert sharding: each expert's FFN hidden dimension split over esp ranks." },
    ep: { type: count(), default: "cluster.nodes", doc: "Expert parallelism: experts spread over ep ranks." },
    edp: { type: count(), doc: "Expert data parallelism: replicas of each expert shard (default world / (esp · ep))." },
    tp: { type: count(), default: "esp", doc: "Tensor + sequence parallelism of attention and dense layers." },
  },
};

const pipelineSchema: BlockSchema = {
  kind: "pipeline",
  fields: {
    forward: { type: { t: "degree" }, default: "auto", doc: "Pipeline degree of the forward pass (auto or an integer)." },
    backward: { type: { t: "degree" }, default: "auto", doc: "Pipeline degree of the backward pass (auto or an integer)." },
  },
};

/** The schemas of the top-level block kinds. */
export const schemas: Readonly<Record<BlockKind, BlockSchema>> = {
  device: {
    kind: "device",
    fields: {
      peak_flops: { type: positive(COMPUTE), required: true, doc: "Dense peak for the model's dtype." },
      memory: { type: positive(SIZE), required: true, doc: "Device memory." },
      memory_bandwidth: { type: positive(RATE), doc: "Device memory bandwidth." },
      efficiency: { type: fraction, default: "1.0", doc: "Fraction of peak_flops large GEMMs reach." },
    },
  },
  link: {
    kind: "link",
    fields: {
      bandwidth: { type: positive(RATE), required: true, doc: "Bandwidth in one direction." },
      latency: { type: nonNegative(TIME), default: "0 us", doc: "Latency of one message." },
      efficiency: { type: fraction, default: "1.0", doc: "Fraction of the bandwidth collectives reach." },
    },
  },
  cluster: {
    kind: "cluster",
    fields: {
      nodes: { type: count(), required: true, doc: "Nodes." },
      gpus_per_node: { type: count(), required: true, doc: "GPUs in one node." },
      device: { type: { t: "ref", kinds: ["device"] }, required: true, doc: "The GPU." },
      intra: { type: { t: "ref", kinds: ["link"] }, required: true, doc: "One GPU's link inside its node." },
      inter: { type: { t: "ref", kinds: ["link"] }, required: true, doc: "One NIC's link between nodes." },
      nics_per_node: { type: count(), default: "1", doc: "NICs of a node, shared by its GPUs." },
      profile: { type: { t: "string" }, doc: "A built-in profile name or a profile file path." },
    },
  },
  model: {
    kind: "model",
    fields: {
      layers: { type: { t: "int", min: 1, max: MAX_LAYERS }, required: true, doc: "Transformer layers (at most 100,000)." },
      hidden: { type: count(), required: true, doc: "Model (embedding) dimension." },
      vocab: { type: count(), doc: "Vocabulary size; without it, no embedding or LM head is counted." },
      attention: { type: { t: "block", schema: attentionSchema }, doc: "Attention of every layer." },
      ffn: { type: { t: "block", schema: ffnSchema }, doc: "Dense FFN of the layers that are not MoE." },
      moe: { type: { t: "block", schema: moeSchema }, required: true, doc: "The MoE layers." },
      moe_layers: { type: { t: "moeLayers" }, default: "all", doc: "Which layers are MoE: all, every N, after N, or a list." },
      dtype: { type: { t: "enum", values: DTYPES }, default: "bf16", doc: "Element type of weights and activations." },
    },
  },
  layer: {
    kind: "layer",
    fields: {
      hidden: { type: count(), required: true, doc: "Model dimension." },
      ...moeFields,
      dtype: { type: { t: "enum", values: DTYPES }, default: "bf16", doc: "Element type." },
    },
  },
  train: {
    kind: "train",
    fields: {
      model: { type: { t: "ref", kinds: ["model", "layer"] }, required: true, doc: "The model or layer to train." },
      cluster: { type: { t: "ref", kinds: ["cluster"] }, required: true, doc: "The cluster." },
      micro_batch: { type: count(), required: true, doc: "Sequences per tensor-parallel group per micro-batch." },
      seq_len: { type: count(), required: true, doc: "Tokens per sequence." },
      micro_batches: { type: count(), default: "1", doc: "Micro-batches per iteration (gradient accumulation)." },
      parallel: { type: { t: "block", schema: parallelSchema }, doc: "Parallel layout." },
      schedule: { type: { t: "enum", values: SCHEDULES }, default: "auto", doc: "Scheduling strategy." },
      pipeline: { type: { t: "pipeline" }, default: "auto", doc: "Pipeline degree: auto, an integer, or { forward, backward }." },
      gradients: { type: { t: "enum", values: ["after_backward", "overlap", "adaptive"] }, default: "adaptive", doc: "Gradient all-reduce placement." },
      recompute: { type: { t: "enum", values: ["none", "selective", "full"] }, default: "selective", doc: "Activation recomputation." },
      optimizer_sharding: { type: { t: "bool" }, default: "true", doc: "Shard fp32 Adam states over data-parallel replicas." },
      seed: { type: count(0), default: "0", doc: "Seed of every random value a run uses." },
    },
  },
  sweep: {
    kind: "sweep",
    fields: {
      base: { type: { t: "ref", kinds: ["train"] }, required: true, doc: "The train job to vary." },
      vary: { type: { t: "vary" }, required: true, doc: "field = [values…]: the cartesian product of train jobs." },
    },
  },
};

/** The schema of the `pipeline = { … }` block value. */
export const pipelineBlockSchema = pipelineSchema;

/** True for a top-level block kind. */
export function isBlockKind(s: string): s is BlockKind {
  return Object.prototype.hasOwnProperty.call(schemas, s);
}

/**
 * The checked Program: what the front end hands to lowering (ARCHITECTURE.md, "Data
 * structures"). Units are normalized to bytes, seconds and FLOP/s; defaults are applied; every
 * count is an exact integer. `spans` maps a field's source name to where its value was written
 * (or to the block, for defaults), so later stages can point at the source.
 */
import type { Span } from "../diagnostics/span.js";

/** Where each field's value came from. */
export type Spans = Readonly<Record<string, Span>>;

/** A GPU (LANGUAGE.md, "Block kinds": device). */
export interface Device {
  readonly name: string;
  readonly peakFlops: number;
  readonly memory: number;
  readonly memoryBandwidth: number | null;
  readonly efficiency: number;
  readonly span: Span;
  readonly spans: Spans;
}

/** A link: one GPU's inside the node, or one NIC's between nodes. */
export interface Link {
  readonly name: string;
  readonly bandwidth: number;
  readonly latency: number;
  readonly efficiency: number;
  readonly span: Span;
  readonly spans: Spans;
}

/** Nodes of GPUs with their links. */
export interface Cluster {
  readonly name: string;
  readonly nodes: number;
  readonly gpusPerNode: number;
  readonly device: Device;
  readonly intra: Link;
  readonly inter: Link;
  readonly nicsPerNode: number;
  readonly profile: string | null;
  readonly span: Span;
  readonly spans: Spans;
}

/**
 * Attention of every layer. `mha` and `gqa` have key/value heads of `headDim`; `mla` has the
 * lora ranks and per-head dimensions instead (null where they do not apply).
 */
export type Attention = {
  readonly heads: number;
  readonly spans: Spans;
} & (
  | {
      readonly kind: "mha" | "gqa";
      readonly kvHeads: number;
      readonly headDim: number;
      readonly qLoraRank: null;
      readonly kvLoraRank: null;
      readonly qkNopeDim: null;
      readonly ropeDim: null;
      readonly vHeadDim: null;
    }
  | {
      readonly kind: "mla";
      readonly kvHeads: null;
      readonly headDim: null;
      readonly qLoraRank: number;
      readonly kvLoraRank: number;
      readonly qkNopeDim: number;
      readonly ropeDim: number;
      readonly vHeadDim: number;
    }
);

/** The dense FFN of non-MoE layers. */
export interface Ffn {
  readonly hidden: number;
  readonly activation: string;
  readonly spans: Spans;
}

/** The MoE block: experts, routing and the router's own fields (null where they do not apply). */
export interface Moe {
  readonly experts: number;
  readonly topK: number;
  readonly expertHidden: number;
  readonly activation: "relu" | "gelu" | "swiglu" | "geglu";
  readonly router: "softmax_topk" | "gshard" | "switch" | "sigmoid" | "xmoe" | "softmoe" | "expert_choice";
  readonly capacityFactor: number;
  readonly sharedExperts: number;
  readonly sharedHidden: number;
  readonly auxLoss: number;
  readonly routerDtype: string;
  readonly normalize: boolean | null;
  readonly groups: number | null;
  readonly topkGroups: number | null;
  readonly routeScale: number | null;
  readonly biasUpdateRate: number | null;
  readonly routingDim: number | null;
  readonly slotsPerExpert: number | null;
  readonly spans: Spans;
}

/** `moe_layers` as written (LANGUAGE.md, "Block kinds"). */
export interface MoeLayerSpec {
  readonly indices: readonly number[] | "all";
  readonly every?: number;
  readonly after?: number;
}

/** A model, or a standalone `layer` (one MoE layer, no attention). */
export interface Model {
  readonly name: string;
  readonly kind: "model" | "layer";
  readonly layers: number;
  readonly hidden: number;
  readonly vocab: number | null;
  readonly attention: Attention | null;
  readonly ffn: Ffn | null;
  readonly moe: Moe;
  /** Indices of the MoE layers, ascending. */
  readonly moeLayers: readonly number[];
  /** `moe_layers` as written: a list, or all layers thinned by `every N` or `after N`. */
  readonly moeLayerSpec: MoeLayerSpec;
  readonly dtype: "fp32" | "bf16" | "fp16" | "fp8";
  readonly span: Span;
  readonly spans: Spans;
}

/** A pipeline degree: an integer, or chosen by the strategy. */
export type Degree = number | "auto";

/** The parallel layout (LANGUAGE.md, "Training semantics"). */
export interface Parallel {
  readonly tp: number;
  readonly esp: number;
  readonly ep: number;
  /** NaN when the default world / (esp · ep) is not whole (a layout error, FSM3007). */
  readonly edp: number;
  /** The `parallel` block, or the train job when it has none: the span of every defaulted field. */
  readonly span: Span;
  readonly spans: Spans;
}

/** One training job: a model on a cluster with a schedule. */
export interface TrainJob {
  readonly name: string;
  readonly model: Model;
  readonly cluster: Cluster;
  readonly microBatch: number;
  readonly seqLen: number;
  readonly microBatches: number;
  readonly parallel: Parallel;
  readonly schedule: "deepspeed" | "tutel" | "fsmoe" | "auto";
  readonly pipeline: { readonly forward: Degree; readonly backward: Degree };
  readonly gradients: "after_backward" | "overlap" | "adaptive";
  readonly recompute: "none" | "selective" | "full";
  readonly optimizerSharding: boolean;
  readonly seed: number;
  /** For jobs expanded from a sweep: the sweep and the value of each varied path. */
  readonly sweep: { readonly name: string; readonly point: readonly (readonly [string, string])[] } | null;
  readonly span: Span;
  readonly spans: Spans;
}

/** The checked program of one root file (with its imports). */
export interface Program {
  /** The root file and every file it imports, in load order. */
  readonly files: readonly string[];
  /** Train jobs in source order, sweeps expanded in place. Only jobs without errors. */
  readonly jobs: readonly TrainJob[];
}

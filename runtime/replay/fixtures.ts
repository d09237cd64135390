/**
 * Small host-sized jobs written as .moe source, for the replay tests and benchmarks: one
 * function that spells an MoE layer job, one that spells a model job (embedding, attention,
 * dense FFN and MoE layers, LM head and loss), each with a given cluster, layout, router and
 * schedule, and one that checks a source into a TrainJob.
 */
import { check } from "../../compiler/check/check.js";
import type { TrainJob } from "../../compiler/check/program.js";
import { renderText } from "../../compiler/diagnostics/render.js";

/** A layer job's fields; unset ones take the values below or the language's defaults. */
export interface LayerJobSpec {
  readonly nodes?: number;
  readonly gpus?: number;
  readonly hidden?: number;
  readonly experts?: number;
  readonly topK?: number;
  readonly expertHidden?: number;
  readonly activation?: "relu" | "gelu" | "swiglu" | "geglu";
  readonly router?: "softmax_topk" | "gshard" | "switch" | "sigmoid";
  /** Extra router fields, as .moe text ("normalize = false, groups = 2"). */
  readonly routerFields?: string;
  readonly capacityFactor?: number;
  readonly microBatch?: number;
  readonly seqLen?: number;
  readonly microBatches?: number;
  /** The parallel block's fields, as .moe text ("esp = 1, ep = 4"); empty: the defaults. */
  readonly parallel?: string;
  /** `pipeline` as .moe text ("2", "auto", "{ forward = 2, backward = 4 }"). */
  readonly pipeline?: string;
  readonly schedule?: "deepspeed" | "tutel" | "fsmoe" | "auto";
  readonly recompute?: "none" | "selective" | "full";
  readonly seed?: number;
  /** The cluster's cost profile: a built-in name or a profile file (relative to the working directory). */
  readonly profile?: string;
}

/** The cluster block both job kinds share: 2 × 2 by default, made-up figures, and the spec's profile if any. */
function clusterSource(s: LayerJobSpec): string {
  return `cluster host_cluster {
  nodes         = ${s.nodes ?? 2}
  gpus_per_node = ${s.gpus ?? 2}
  device        = device { peak_flops = 10 TFLOP/s, memory = 16 GiB, memory_bandwidth = 100 GB/s }
  intra         = link { bandwidth = 10 GB/s, latency = 2 us }
  inter         = link { bandwidth = 10 Gb/s, latency = 10 us }
  nics_per_node = 1${s.profile ? `\n  profile       = ${JSON.stringify(s.profile)}` : ""}
}
`;
}

/** The train block both job kinds share, of model `model`, with `seqLen` when the spec sets none. */
function trainSource(s: LayerJobSpec, model: string, seqLen: number): string {
  return `train host_job {
  model         = ${model}
  cluster       = host_cluster
  micro_batch   = ${s.microBatch ?? 2}
  seq_len       = ${s.seqLen ?? seqLen}
  micro_batches = ${s.microBatches ?? 1}${s.parallel ? `\n  parallel { ${s.parallel} }` : ""}
  schedule      = ${s.schedule ?? "fsmoe"}
  pipeline      = ${s.pipeline ?? "auto"}
  recompute     = ${s.recompute ?? "selective"}
  seed          = ${s.seed ?? 7}
}
`;
}

/** The .moe source of a layer job. */
export function layerJobSource(s: LayerJobSpec): string {
  const fields = s.routerFields ? `\n  ${s.routerFields.split(/,\s*/).join("\n  ")}` : "";
  return `${clusterSource(s)}
layer host_layer {
  hidden          = ${s.hidden ?? 32}
  experts         = ${s.experts ?? 4}
  top_k           = ${s.topK ?? 2}
  expert_hidden   = ${s.expertHidden ?? 64}
  activation      = ${s.activation ?? "gelu"}
  router          = ${s.router ?? "softmax_topk"}${fields}
  capacity_factor = ${s.capacityFactor ?? 1.0}
  dtype           = fp32
}

${trainSource(s, "host_layer", 16)}`;
}

/** Check a source with exactly one train job; throws with the rendered diagnostics when it does not check clean. */
export function checkedJob(source: string, file = "host_job.moe"): TrainJob {
  const r = check(file, { text: source });
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0 || r.program.jobs.length !== 1) throw new Error(`the job does not check:\n${renderText(errors, (n) => r.sources.get(n))}`);
  return r.program.jobs[0]!;
}

/** A small model job's fields (a pre-norm transformer with a vocabulary); unset ones take the values below. */
export interface ModelJobSpec extends Omit<LayerJobSpec, "routerFields"> {
  readonly layers?: number;
  readonly vocab?: number;
  /** `attention { … }` fields as .moe text (default "heads = 4, kind = mha"). */
  readonly attention?: string;
  /** The dense FFN's hidden size and activation (layers that are not MoE). */
  readonly ffnHidden?: number;
  readonly ffnActivation?: "relu" | "gelu" | "swiglu" | "geglu";
  readonly sharedExperts?: number;
  readonly sharedHidden?: number;
  /** `moe_layers` as .moe text ("every 2", "all", "[1, 3]"). */
  readonly moeLayers?: string;
  /** Extra fields of the moe block, as .moe text. */
  readonly moeFields?: string;
}

/** The .moe source of a model job: embedding, attention, dense FFN or MoE layers, LM head and loss. */
export function modelJobSource(s: ModelJobSpec): string {
  const extra = [
    ...(s.sharedExperts ? [`shared_experts  = ${s.sharedExperts}`, `shared_hidden   = ${s.sharedHidden ?? 32}`] : []),
    ...(s.moeFields ? s.moeFields.split(/,\s*/) : []),
  ];
  return `${clusterSource(s)}
model host_model {
  layers     = ${s.layers ?? 4}
  hidden     = ${s.hidden ?? 32}
  vocab      = ${s.vocab ?? 64}
  attention { ${s.attention ?? "heads = 4, kind = mha"} }
  ffn { hidden = ${s.ffnHidden ?? 64}, activation = ${s.ffnActivation ?? "gelu"} }
  moe {
    experts         = ${s.experts ?? 4}
    top_k           = ${s.topK ?? 2}
    expert_hidden   = ${s.expertHidden ?? 32}
    activation      = ${s.activation ?? "gelu"}
    router          = ${s.router ?? "softmax_topk"}
    capacity_factor = ${s.capacityFactor ?? 1.0}${extra.map((f) => `\n    ${f}`).join("")}
  }
  moe_layers = ${s.moeLayers ?? "every 2"}
  dtype      = fp32
}

${trainSource(s, "host_model", 8)}`;
}

/**
 * The static task graph (ARCHITECTURE.md, "TaskGraph / Plan"): SPMD ops on streams, ordered by
 * program order on each stream and by events across streams, reading and writing byte ranges
 * of named buffers, with collectives on communicators. One op list serves every rank; ranks
 * differ only in group membership, so the graph has the same size for 16 or 16,384 GPUs.
 */

/** The CUDA streams of a rank: compute, intra-node communication, inter-node communication. */
export type Stream = "compute" | "intra" | "inter";

/** Every stream, in a fixed order (the index is the stream's id). */
export const STREAMS: readonly Stream[] = ["compute", "intra", "inter"];

/** Forward or backward. */
export type Direction = "fwd" | "bwd";

/** What an op does. Collective kinds run on a communicator; the others are kernels. */
export type OpKind =
  | "embed" | "lm_head" | "loss"
  | "attention" | "dense_ffn" | "shared_expert" | "norm"
  | "gate" | "order" | "dispatch_gemm" | "expert" | "combine_gemm" | "iorder"
  | "all_to_all" | "all_gather" | "reduce_scatter" | "all_reduce";

/** The op kinds that are collectives. */
export const COLLECTIVES: ReadonlySet<OpKind> = new Set<OpKind>(["all_to_all", "all_gather", "reduce_scatter", "all_reduce"]);

/**
 * A communicator: ranks grouped by a stride in rank space (LANGUAGE.md, "Training
 * semantics": rank = (edp_i · ep + ep_i) · esp + esp_i). Members of rank r's group are
 * base(r) + i · stride for i < size, where base(r) clears r's position inside the group.
 */
export interface Group {
  readonly name: string;
  readonly size: number;
  readonly stride: number;
  /** Which links its traffic crosses: inside one node, across nodes (one member per node), or both. */
  readonly span: "intra" | "inter" | "both";
  /** Members that share a node, and nodes the group spans. */
  readonly membersPerNode: number;
  readonly nodes: number;
}

/** A byte range of a buffer an op reads or writes. */
export interface Access {
  readonly buffer: number;
  readonly offset: number;
  readonly bytes: number;
  readonly write: boolean;
}

/** A named allocation of the rank's arena; offsets are assigned by the memory planner. */
export interface Buffer {
  readonly id: number;
  readonly name: string;
  readonly bytes: number;
  /** Lives for the whole iteration (weights, gradients) rather than from first to last use. */
  readonly persistent: boolean;
}

/** One kernel launch or collective. */
export interface Op {
  readonly id: number;
  readonly kind: OpKind;
  readonly stream: Stream;
  /** Transformer layer, or -1 for embedding/head/loss and the iteration's trailing all-reduces. */
  readonly layer: number;
  readonly dir: Direction;
  readonly microBatch: number;
  /** Pipeline chunk inside an MoE block, or -1. */
  readonly chunk: number;
  /** What the op stands for in the unified abstraction ("dispatch", "esp_allgather", "grad_allreduce", …). */
  readonly role: string;
  /** Ops (on other streams) whose completion this op waits for: an event each. */
  readonly waits: readonly number[];
  readonly accesses: readonly Access[];
  /** Elements moved (collectives, memory-bound kernels) or multiply-accumulates (GEMMs). */
  readonly elements: number;
  readonly macs: number;
  /** Bytes moved by a collective per rank (its buffer size), 0 for kernels. */
  readonly bytes: number;
  /** The communicator of a collective (absent or undefined for kernels). */
  readonly group?: string | undefined;
  /** An all-reduce's reduction: absent means a sum; "max" takes the largest (runtimes honor it; this compiler emits none). */
  readonly reduce?: "sum" | "max" | undefined;
  /**
   * The one local expert an expert op computes (DeepSpeed's loop over local experts); absent when
   * it computes all of them. Its buffer accesses still declare the whole chunk: a local expert's
   * rows are strided through it (native/README.md, "Access signatures").
   */
  readonly expert?: number | undefined;
  readonly predictedUs: number;
}

/** The task graph of one rank (shared by all ranks: SPMD). */
export interface TaskGraph {
  readonly groups: readonly Group[];
  readonly buffers: readonly Buffer[];
  /** In issue order: the order in which the host enqueues ops (each stream's FIFO order follows it). */
  readonly ops: readonly Op[];
}

/**
 * Per-rank op sequences for verification: the SPMD list expanded for a set of ranks, with
 * optional per-rank overrides, so that a fault on one rank is representable.
 */
export interface RankPrograms {
  readonly worldSize: number;
  readonly groups: readonly Group[];
  readonly buffers: readonly Buffer[];
  /** rank → its ops in issue order (ids unique within a rank). */
  readonly ranks: ReadonlyMap<number, readonly Op[]>;
}

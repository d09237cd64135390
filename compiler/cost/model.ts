/**
 * The cost model interface (SCHEDULING.md §2): every op costs t = α + β · n, with n the
 * elements a collective moves or the MACs a GEMM computes, α and β per op class and group.
 * A model is built from hardware figures ({@link hardwareModel}) or from a fitted profile
 * (profiles.ts); strategies and the graph price every op through it, in microseconds.
 */
import type { Direction, Group, OpKind } from "../graph/types.js";

/** The classes of ops a cost model prices. */
export type OpClass =
  | "all_to_all" | "all_gather" | "reduce_scatter" | "all_reduce"
  | "expert_gemm" | "dense_gemm" | "memory";

/** What a cost query needs to know about an op. */
export interface CostQuery {
  readonly cls: OpClass;
  readonly dir: Direction;
  /** Elements for collectives and memory-bound kernels, MACs for GEMMs. */
  readonly n: number;
  readonly group?: Group;
  /** GEMMs per expert FFN (2 or 3): the FSMoE profiles fit each separately. */
  readonly gemms?: number;
  /** The op's kind, when a profile fits kinds of one class separately (the host profiles do). */
  readonly kind?: OpKind;
}

/**
 * A machine whose ranks share one pool of CPU cores (the host backend: ranks are threads of one
 * process): the simulator runs the ops that are running across all ranks at min(1, cores /
 * running) of their speed alone, and charges every op the executor's own cost per op.
 */
export interface SharedCores {
  /** Cores every rank of the job shares. */
  readonly cores: number;
  /** CPU time the executor spends per op and rank beside the op's own work (issuing, queues, events), µs. */
  readonly dispatchUs: number;
  /** CPU time per hand-off between threads — an op waiting for another stream's op, a collective's rendezvous — that wakes a sleeping thread, µs; default 0. */
  readonly handoffUs?: number;
}

/** α (µs) and β (µs per element or MAC) of one op class. */
export interface Linear {
  readonly alphaUs: number;
  readonly betaUs: number;
}

/** A cost model: prices ops and says where its constants come from. */
export interface CostModel {
  /** "hardware" or the profile's name. */
  readonly name: string;
  readonly description: string;
  /**
   * Compute kernels run this many times slower while a communication kernel runs on the same
   * GPU (communication takes SMs); 1 means none. The scheduler's timeline ignores it; the
   * simulator applies it.
   */
  readonly interference: number;
  /** Set when the profile was fitted on a machine whose ranks share CPU cores; the scheduler's timeline ignores it, the simulator applies it. */
  readonly sharedCores?: SharedCores | null;
  /** α and β for a query's class, group and direction. */
  linear(q: Omit<CostQuery, "n">): Linear;
}

/** The time of one op in microseconds: α + β · n (0 for an empty op). */
export function costUs(model: CostModel, q: CostQuery): number {
  if (q.n <= 0) return 0;
  if (q.group && q.group.size === 1 && q.cls !== "expert_gemm" && q.cls !== "dense_gemm" && q.cls !== "memory") return 0;
  const l = model.linear(q);
  return l.alphaUs + l.betaUs * q.n;
}

/**
 * The Schedule: what a strategy decides (ARCHITECTURE.md, "Data structures"): per MoE layer
 * and direction the pipeline degree and issue order, the padded capacity, and where each piece
 * of the dense-gradient all-reduce goes. Each strategy also returns the candidates it priced
 * and rejected, which `fsmoec explain` prints.
 */
import type { BlockStyle, GradPiece } from "../graph/moe-block.js";
import type { Stream } from "../graph/types.js";

/** The strategies (SCHEDULING.md §3). */
export type StrategyName = "deepspeed" | "tutel" | "fsmoe" | "auto";

/** Degree and issue order of one MoE block. */
export interface BlockPlan {
  readonly degree: number;
  readonly style: BlockStyle;
}

/** The plan of one MoE layer. */
export interface LayerPlan {
  readonly layer: number;
  /** C: slots per expert per rank, C0 padded to what the degrees need. */
  readonly capacity: number;
  readonly forward: BlockPlan;
  readonly backward: BlockPlan;
  /** Gradient all-reduce pieces in this layer's backward MoE block, between its dispatch and combine phases. */
  readonly gapGrads: readonly GradPiece[];
}

/** Where each piece of the dense-gradient all-reduce goes. */
export interface GradientPlan {
  /** Pieces issued on the inter stream at the start of layer ℓ's dense backward (its attention window). */
  readonly window: ReadonlyMap<number, readonly GradPiece[]>;
  /** Pieces issued right after layer ℓ's gradients are produced (DDP-style overlap). */
  readonly immediate: ReadonlyMap<number, readonly GradPiece[]>;
  /** Pieces issued after the whole backward, in order. */
  readonly tail: readonly GradPiece[];
  /** The stream the gradient all-reduces run on. */
  readonly stream: Stream;
}

/** A priced alternative a strategy considered. */
export interface Candidate {
  /** What was varied: "layer 3 backward", "gradients", "whole iteration". */
  readonly scope: string;
  readonly description: string;
  readonly predictedUs: number;
  readonly chosen: boolean;
  /** Why it lost, or why it could not be used (a deadlocking issue order). */
  readonly note?: string;
}

/** A strategy's decisions for one job. */
export interface Schedule {
  readonly strategy: StrategyName;
  /** MoE layers by index. */
  readonly layers: ReadonlyMap<number, LayerPlan>;
  readonly gradients: GradientPlan;
  readonly candidates: readonly Candidate[];
  /** Notes on choices the evidence left open, printed by explain. */
  readonly notes: readonly string[];
}

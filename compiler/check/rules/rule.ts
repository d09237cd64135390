/**
 * The shape of a layout rule (STYLE.md: one file per rule): a pure function from a checked model
 * or train job to the diagnostics it finds. The rules run after every field has been evaluated.
 * A model rule needs only the model (or layer), so it runs on every model and layer block of the
 * program, used or not, and on the model of every train job; a job rule needs the parallel
 * layout and the cluster, so it runs on train jobs only.
 */
import type { Diagnostic } from "../../diagnostics/diagnostic.js";
import type { Model, TrainJob } from "../program.js";

interface RuleInfo {
  readonly name: string;
  /** What the rule enforces, for spec/language.md. */
  readonly summary: string;
}

/** A rule on a model or layer alone. */
export interface ModelRule extends RuleInfo {
  readonly scope: "model";
  readonly check: (model: Model) => Diagnostic[];
}

/** A rule on a train job: its model on its cluster with its parallel layout. */
export interface JobRule extends RuleInfo {
  readonly scope: "job";
  readonly check: (job: TrainJob) => Diagnostic[];
}

/** One layout rule. */
export type Rule = ModelRule | JobRule;

/**
 * The shape of a layout rule (STYLE.md: one file per rule): a pure function from a checked
 * train job to the diagnostics it finds. The rules run after every field has been evaluated.
 */
import type { Diagnostic } from "../../diagnostics/diagnostic.js";
import type { TrainJob } from "../program.js";

/** One layout rule. */
export interface Rule {
  readonly name: string;
  /** What the rule enforces, for spec/language.md. */
  readonly summary: string;
  readonly check: (job: TrainJob) => Diagnostic[];
}

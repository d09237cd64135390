import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { JobRule } from "./rule.js";

/** The routed experts spread evenly over the expert-parallel group. FSM3002. */
export const expertsDivideRule: JobRule = {
  name: "expertsDivide",
  scope: "job",
  summary: "experts is a multiple of ep.",
  check(job) {
    const { experts } = job.model.moe;
    const { ep } = job.parallel;
    return experts % ep === 0 ? [] : [diagnostic("FSM3002", job.parallel.spans["ep"]!, { experts, ep })];
  },
};

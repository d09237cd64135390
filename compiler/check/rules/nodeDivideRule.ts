import { diagnostic, type Diagnostic } from "../../diagnostics/diagnostic.js";
import type { Rule } from "./rule.js";

/** tp and esp divide the GPUs of a node, so their groups never straddle nodes. FSM3003. */
export const nodeDivideRule: Rule = {
  name: "nodeDivide",
  summary: "tp and esp divide gpus_per_node.",
  check(job) {
    const out: Diagnostic[] = [];
    const gpus = job.cluster.gpusPerNode;
    for (const what of ["tp", "esp"] as const) {
      const value = job.parallel[what];
      if (gpus % value !== 0) out.push(diagnostic("FSM3003", job.parallel.spans[what]!, { what, value, gpus }));
    }
    return out;
  },
};

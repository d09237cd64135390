import { diagnostic, type Diagnostic } from "../../diagnostics/diagnostic.js";
import type { JobRule } from "./rule.js";

/**
 * tp and esp divide the GPUs of a node, so their groups never straddle nodes. FSM3003. A tp
 * that is not written is esp (its default), and is not reported beside it.
 */
export const nodeDivideRule: JobRule = {
  name: "nodeDivide",
  scope: "job",
  summary: "tp and esp divide gpus_per_node.",
  check(job) {
    const out: Diagnostic[] = [];
    const gpus = job.cluster.gpusPerNode;
    const { spans, span } = job.parallel;
    const tpDefaulted = spans["tp"] === span;
    for (const what of ["tp", "esp"] as const) {
      const value = job.parallel[what];
      if (what === "tp" && tpDefaulted && value === job.parallel.esp) continue;
      if (gpus % value !== 0) out.push(diagnostic("FSM3003", spans[what]!, { what, value, gpus }));
    }
    return out;
  },
};

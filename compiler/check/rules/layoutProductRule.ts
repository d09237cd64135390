import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { Rule } from "./rule.js";

/**
 * esp · ep · edp covers the cluster exactly, and a defaulted edp comes out whole
 * (LANGUAGE.md, "Training semantics"). FSM3001, FSM3007.
 */
export const layoutProductRule: Rule = {
  name: "layoutProduct",
  summary: "esp · ep · edp equals nodes · gpus_per_node; the default edp = world / (esp · ep) is whole.",
  check(job) {
    const { esp, ep, edp, spans } = job.parallel;
    const { nodes, gpusPerNode } = job.cluster;
    const world = nodes * gpusPerNode;
    if (!Number.isInteger(edp)) return [diagnostic("FSM3007", spans["esp"]!, { world, esp, ep })];
    if (esp * ep * edp !== world) {
      return [diagnostic("FSM3001", spans["edp"]!, { esp, ep, edp, product: esp * ep * edp, world, nodes, gpus: gpusPerNode })];
    }
    return [];
  },
};

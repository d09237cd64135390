import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { JobRule } from "./rule.js";

/**
 * esp · ep · edp covers the cluster exactly, and a defaulted edp comes out whole
 * (LANGUAGE.md, "Training semantics"). FSM3001, FSM3007. Products are exact (bigint): with
 * counts up to 2³¹ − 1 they can exceed 2⁵³, where doubles round.
 */
export const layoutProductRule: JobRule = {
  name: "layoutProduct",
  scope: "job",
  summary: "esp · ep · edp equals nodes · gpus_per_node; the default edp = world / (esp · ep) is whole.",
  check(job) {
    const { esp, ep, edp, spans } = job.parallel;
    const { nodes, gpusPerNode } = job.cluster;
    const world = BigInt(nodes) * BigInt(gpusPerNode);
    if (!Number.isInteger(edp)) return [diagnostic("FSM3007", spans["esp"]!, { world: world.toString(), esp, ep })];
    const product = BigInt(esp) * BigInt(ep) * BigInt(edp);
    if (product !== world) {
      return [diagnostic("FSM3001", spans["edp"]!, { esp, ep, edp, product: product.toString(), world: world.toString(), nodes, gpus: gpusPerNode })];
    }
    return [];
  },
};

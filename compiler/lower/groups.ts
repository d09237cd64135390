/**
 * Communicators of a job (LANGUAGE.md, "Training semantics"; ARCHITECTURE.md, "Parallel
 * layout"). Rank order, innermost first, is esp, ep, edp; attention's tensor-parallel group is
 * the tp consecutive ranks; dense parameters are replicated over the world / tp ranks that share
 * a tp position ("dp"). Each group is a stride and a size, and its span says which links its
 * traffic crosses.
 */
import type { TrainJob } from "../check/program.js";
import type { Group } from "../graph/types.js";

/** The groups a plan uses, by role. */
export interface Groups {
  readonly tp: Group;
  readonly esp: Group;
  readonly ep: Group;
  readonly edp: Group;
  readonly dp: Group;
}

/** A group of `size` ranks spaced `stride` apart on a cluster of `gpusPerNode`-GPU nodes. */
export function group(name: string, size: number, stride: number, gpusPerNode: number): Group {
  const membersPerNode = size === 1 ? 1 : stride >= gpusPerNode ? 1 : Math.max(1, Math.min(size, Math.floor(gpusPerNode / stride)));
  const nodes = Math.max(1, Math.ceil(size / membersPerNode));
  const span = nodes === 1 ? "intra" : membersPerNode === 1 ? "inter" : "both";
  return { name, size, stride, span, membersPerNode, nodes };
}

/** The groups of a job's layout. */
export function groupsOf(job: TrainJob): Groups {
  const { tp, esp, ep, edp } = job.parallel;
  const g = job.cluster.gpusPerNode;
  const world = job.cluster.nodes * g;
  return {
    tp: group("tp", tp, 1, g),
    esp: group("esp", esp, 1, g),
    ep: group("ep", ep, esp, g),
    edp: group("edp", edp, esp * ep, g),
    dp: group("dp", world / tp, tp, g),
  };
}

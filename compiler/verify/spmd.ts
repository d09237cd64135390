/**
 * SPMD expansion (ARCHITECTURE.md, "TaskGraph / Plan": the verifier works on per-rank op
 * sequences, the SPMD list expanded plus optional per-rank overrides, so a fault on one rank is
 * representable and caught). Ranks without an override share the graph's op array; the
 * verifier notices the sharing and checks a shared sequence once.
 */
import type { Op, RankPrograms, TaskGraph } from "../graph/types.js";

/** Rewrites one rank's op sequence (reorders, drops or edits ops). */
export type Override = (ops: readonly Op[]) => readonly Op[];

/** The per-rank programs of `ranks` in a world of `worldSize`, with `overrides` applied. */
export function expandSpmd(
  graph: TaskGraph,
  ranks: readonly number[],
  worldSize: number,
  overrides: ReadonlyMap<number, Override> = new Map(),
): RankPrograms {
  const programs = new Map<number, readonly Op[]>();
  for (const rank of ranks) {
    const override = overrides.get(rank);
    programs.set(rank, override ? override(graph.ops) : graph.ops);
  }
  return { worldSize, groups: graph.groups, buffers: graph.buffers, ranks: programs };
}

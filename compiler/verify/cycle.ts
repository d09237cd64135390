/**
 * Acyclicity (ARCHITECTURE.md, "The pipeline": the plan is acyclic; SCHEDULING.md §3, auto
 * point 2): program order on each stream (a CUDA stream is a FIFO: an op starts only after the
 * op issued before it on the same stream) plus event waits must not form a cycle, or the rank
 * hangs. This is what rejects interleaving only the inter stream — C1 waits for RS1, RS1 is
 * queued behind AG_r, AG_r waits for D_r, D_r is queued behind C1 — on a single rank. FSM4001.
 */
import { STREAMS } from "../graph/types.js";
import type { RankCheck } from "./check.js";
import { describeOp, issue } from "./issue.js";
import { cycleOf } from "./order.js";

/** The happens-before graph of the rank has no cycle; reports one cycle with its ops. */
export const cycleCheck: RankCheck = {
  name: "cycle",
  summary: "program order on each stream plus event waits form no cycle",
  check({ ops, hb, where }) {
    const cycle = cycleOf(hb);
    if (!cycle) return [];
    const { nodes, edges } = cycle;
    // Each op is described in full the first time it is named, by id after that.
    const named = new Set<number>();
    const name = (v: number): string => {
      if (named.has(v)) return `op ${ops[v]!.id}`;
      named.add(v);
      return describeOp(ops[v]!);
    };
    const steps = nodes.map((v, i) => {
      const w = nodes[(i + 1) % nodes.length]!;
      const a = name(v);
      const b = name(w);
      return hb.edgeKind[edges[i]!] === "wait" ? `${a} waits for ${b}` : `${a} is queued behind ${b} on ${STREAMS[hb.stream[v]!]}`;
    });
    return [issue("FSM4001", { cycle: steps.join("; ") }, nodes.map((v) => ops[v]!.id), where)];
  },
};

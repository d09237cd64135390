/**
 * Cross-rank deadlock (ARCHITECTURE.md, "The pipeline": a plan proven free of collective-order
 * deadlocks). A collective completes only when every member has reached it, so the k-th
 * collective of a communicator instance is one event shared by its members. The graph has a
 * node per (rank, op), per-rank program order on each stream and event waits as edges, and the
 * k-th collective of each instance on all its members merged into one node; a cycle means the
 * ranks wait for each other forever — e.g. two ranks issuing collectives of two communicators
 * in opposite orders on one stream. Only ranks in `programs.ranks` take part. FSM4004.
 */
import { STREAMS, type RankPrograms } from "../graph/types.js";
import type { CommunicatorSequences } from "./communicators.js";
import { DigraphBuilder, findCycle, topologicalOrder } from "./digraph.js";
import { describeCollective, describeOp, issue, type VerifyIssue } from "./issue.js";
import type { HappensBefore } from "./order.js";

/** The merged cross-rank graph is acyclic; reports one cycle with every op in it. */
export function deadlockIssues(
  programs: RankPrograms,
  orders: ReadonlyMap<number, HappensBefore>,
  sequences: ReadonlyMap<string, CommunicatorSequences>,
): VerifyIssue[] {
  const ranks = [...programs.ranks.keys()].sort((a, b) => a - b);
  const offset = new Map<number, number>();
  let total = 0;
  for (const r of ranks) {
    offset.set(r, total);
    total += programs.ranks.get(r)!.length;
  }
  const rankOf = new Int32Array(total);
  ranks.forEach((r) => rankOf.fill(r, offset.get(r)!, offset.get(r)! + programs.ranks.get(r)!.length));

  // Merge the k-th collective of every instance over its members into the first member's node.
  const rep = new Int32Array(total);
  for (let i = 0; i < total; i++) rep[i] = i;
  // Merged node → its communicator's members and their sequences, and which collective it is.
  const merged = new Map<number, { name: string; present: number[]; seqs: number[][]; k: number }>();
  for (const { comm, byRank } of sequences.values()) {
    const present = comm.members.filter((m) => programs.ranks.has(m));
    const seqs = present.map((m) => byRank.get(m) ?? []);
    const bases = present.map((m) => offset.get(m)!);
    const common = Math.min(...seqs.map((s) => s.length));
    for (let k = 0; k < common; k++) {
      const head = bases[0]! + seqs[0]![k]!;
      for (let j = 1; j < present.length; j++) rep[bases[j]! + seqs[j]![k]!] = head;
      merged.set(head, { name: comm.name, present, seqs, k });
    }
  }
  const membersOf = (m: { present: number[]; seqs: number[][]; k: number }): [number, number][] =>
    m.present.map((r, j) => [r, m.seqs[j]![m.k]!]);

  // Per edge (by builder index): the rank whose order it comes from, whether it is a wait, and
  // the op index of its target on that rank — parallel arrays, as there are hundreds of thousands.
  let capacity = 0;
  for (const r of ranks) capacity += orders.get(r)!.graph.preds.length;
  const builder = new DigraphBuilder(total, capacity);
  const edgeRank = new Int32Array(capacity);
  const edgeWait = new Uint8Array(capacity);
  const edgeTo = new Int32Array(capacity);
  for (const r of ranks) {
    const hb = orders.get(r)!;
    const base = offset.get(r)!;
    const g = hb.graph;
    for (let v = 0; v < g.nodes; v++) {
      for (let e = g.predStart[v]!; e < g.predStart[v + 1]!; e++) {
        const from = rep[base + g.preds[e]!]!;
        const to = rep[base + v]!;
        if (from === to) continue;
        const k = builder.edge(from, to);
        edgeRank[k] = r;
        edgeWait[k] = hb.edgeKind[g.edgeIds[e]!] === "wait" ? 1 : 0;
        edgeTo[k] = v;
      }
    }
  }
  const graph = builder.build();
  const cycle = findCycle(graph, topologicalOrder(graph));
  if (!cycle) return [];

  const opOf = (rank: number, i: number) => programs.ranks.get(rank)![i]!;
  // Each node is described in full the first time it is named, briefly after that.
  const named = new Set<number>();
  const describe = (node: number): string => {
    const full = !named.has(node);
    named.add(node);
    const m = merged.get(node);
    const rank = rankOf[node]!;
    if (!m) {
      const op = opOf(rank, node - offset.get(rank)!);
      return `rank ${rank} ${full ? describeOp(op) : `op ${op.id}`}`;
    }
    const members = membersOf(m);
    const [r0, i0] = members[0]!;
    const first = opOf(r0, i0);
    const chunk = first.chunk >= 0 ? ` chunk ${first.chunk}` : "";
    const list = full ? ` (${members.map(([r, i]) => `rank ${r} op ${opOf(r, i).id}`).join(", ")})` : "";
    return `${describeCollective(first)}${chunk} on ${m.name}${list}`;
  };
  const steps = cycle.nodes.map((node, i) => {
    const next = cycle.nodes[(i + 1) % cycle.nodes.length]!;
    const edge = cycle.edges[i]!;
    const rank = edgeRank[edge]!;
    const a = describe(node);
    const b = describe(next);
    const stream = STREAMS[orders.get(rank)!.stream[edgeTo[edge]!]!];
    return edgeWait[edge] ? `on rank ${rank}, ${a} waits for ${b}` : `on rank ${rank}, ${a} is queued behind ${b} on ${stream}`;
  });
  const ids: number[] = [];
  const opRanks: number[] = [];
  for (const node of cycle.nodes) {
    const m = merged.get(node);
    const members: [number, number][] = m ? membersOf(m) : [[rankOf[node]!, node - offset.get(rankOf[node]!)!]];
    for (const [r, i] of members) {
      ids.push(opOf(r, i).id);
      opRanks.push(r);
    }
  }
  return [issue("FSM4004", { cycle: steps.join("; ") }, ids, {}, opRanks)];
}

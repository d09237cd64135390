/**
 * Collective order across ranks (ARCHITECTURE.md, "The pipeline": identical collective order
 * per communicator on every rank). NCCL matches the k-th call on a communicator on each member
 * with the k-th on every other member, whatever it is; if the members' sequences differ, the
 * job hangs or silently mixes data. For each communicator instance, every member must issue the
 * same sequence — same kind, bytes, role, layer, direction, micro-batch and chunk. The first
 * mismatch against the lowest-numbered member is reported, with both ranks' ops. FSM4003.
 */
import type { Op, RankPrograms } from "../graph/types.js";
import type { CommunicatorSequences } from "./communicators.js";
import { describeOp, issue, type VerifyIssue } from "./issue.js";

/** Two collectives NCCL would match with each other and that move the same data. */
function same(a: Op, b: Op): boolean {
  return (
    a === b ||
    a.kind === b.kind && a.bytes === b.bytes && a.role === b.role && a.layer === b.layer && a.dir === b.dir && a.microBatch === b.microBatch && a.chunk === b.chunk
  );
}

/** Every member of every communicator instance issues the same collectives on it in the same order. */
export function collectiveOrderIssues(programs: RankPrograms, sequences: ReadonlyMap<string, CommunicatorSequences>): VerifyIssue[] {
  const out: VerifyIssue[] = [];
  for (const { comm, byRank } of sequences.values()) {
    const present = comm.members.filter((m) => programs.ranks.has(m));
    if (present.length < 2) continue;
    const ref = present[0]!;
    const refOps = programs.ranks.get(ref)!;
    const refSeq = byRank.get(ref) ?? [];
    let worst: { k: number; member: number } | undefined;
    for (const member of present.slice(1)) {
      const ops = programs.ranks.get(member)!;
      const seq = byRank.get(member) ?? [];
      const n = Math.max(seq.length, refSeq.length);
      for (let k = 0; k < n; k++) {
        const a = refSeq[k];
        const b = seq[k];
        if (a !== undefined && b !== undefined && same(refOps[a]!, ops[b]!)) continue;
        if (!worst || k < worst.k) worst = { k, member };
        break;
      }
    }
    if (!worst) continue;
    const { k, member } = worst;
    const a = refSeq[k];
    const b = (byRank.get(member) ?? [])[k];
    const name = (rank: number, i: number | undefined, len: number) =>
      i === undefined ? `nothing (rank ${rank} issues only ${len} collective${len === 1 ? "" : "s"} on it)` : describeOp(programs.ranks.get(rank)![i]!);
    const ids: number[] = [];
    const ranks: number[] = [];
    if (a !== undefined) {
      ids.push(refOps[a]!.id);
      ranks.push(ref);
    }
    if (b !== undefined) {
      ids.push(programs.ranks.get(member)![b]!.id);
      ranks.push(member);
    }
    out.push(
      issue(
        "FSM4003",
        {
          comm: comm.name,
          index: k + 1,
          first: name(ref, a, refSeq.length),
          rankA: ref,
          second: name(member, b, (byRank.get(member) ?? []).length),
          rankB: member,
        },
        ids,
        {},
        ranks,
      ),
    );
  }
  return out;
}

/**
 * Communicator membership (ARCHITECTURE.md, "Parallel layout"): every group's instances must
 * lie inside the world (FSM4012), and every member of an instance some verified rank uses must
 * itself be verified, or the collective order and deadlock checks would pass a collective that
 * no one answers (FSM4005).
 */
import type { RankPrograms } from "../graph/types.js";
import { groupMembers, validGroup, type CommunicatorSequences } from "./communicators.js";
import { issue, type VerifyIssue } from "./issue.js";

/** Every group's size and stride give instances inside a world of `programs.worldSize` ranks. */
export function groupFitIssues(programs: RankPrograms): VerifyIssue[] {
  const out: VerifyIssue[] = [];
  const world = programs.worldSize;
  for (const group of programs.groups) {
    const args = { group: group.name, size: group.size, stride: group.stride, world };
    if (!validGroup(group)) {
      out.push(issue("FSM4012", { ...args, detail: "size and stride must be positive whole numbers" }, []));
      continue;
    }
    for (let r = 0; r < world; r++) {
      const members = groupMembers(group, r);
      const last = members[members.length - 1]!;
      if (last < world) continue;
      out.push(issue("FSM4012", { ...args, detail: `rank ${r}'s instance would include rank ${last}` }, []));
      break;
    }
  }
  return out;
}

/** Every member of every communicator instance in use has a program. */
export function missingMemberIssues(programs: RankPrograms, sequences: ReadonlyMap<string, CommunicatorSequences>): VerifyIssue[] {
  const out: VerifyIssue[] = [];
  for (const { comm, byRank } of sequences.values()) {
    const user = Math.min(...byRank.keys());
    for (const member of comm.members) {
      if (programs.ranks.has(member)) continue;
      out.push(issue("FSM4005", { comm: comm.name, rank: user, member }, [], { rank: user }));
    }
  }
  return out;
}

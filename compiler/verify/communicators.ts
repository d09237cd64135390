/**
 * Communicator instances (ARCHITECTURE.md, "Parallel layout"; LANGUAGE.md, "Training
 * semantics"): a Group is a formula, not a member list. Rank r's instance of a group of size
 * `size` and stride `stride` has members base + i·stride, i < size, where
 * base = r − (⌊r / stride⌋ mod size)·stride clears r's position inside the group. An instance
 * is named by its group and its member set, e.g. `rail{1,3}`.
 */
import { COLLECTIVES, type Group, type RankPrograms } from "../graph/types.js";

/** One instance of a group: the ranks that call its collectives together. */
export interface Communicator {
  /** `group@base`: unique per instance. */
  readonly key: string;
  readonly group: Group;
  readonly members: readonly number[];
  /** For messages: `rail{1,3}`, or `world{0,1,…,15}` for large groups. */
  readonly name: string;
}

/** A group whose size and stride are positive whole numbers (FSM4012 reports the others). */
export function validGroup(group: Group): boolean {
  return Number.isInteger(group.size) && group.size >= 1 && Number.isInteger(group.stride) && group.stride >= 1;
}

/** The members of rank r's instance of a group, ascending. */
export function groupMembers(group: Group, rank: number): number[] {
  const base = rank - (Math.floor(rank / group.stride) % group.size) * group.stride;
  return Array.from({ length: group.size }, (_, i) => base + i * group.stride);
}

/** Rank r's instance of a group. */
export function communicatorOf(group: Group, rank: number): Communicator {
  const members = groupMembers(group, rank);
  const shown = members.length <= 8 ? members.join(",") : `${members[0]},${members[1]},…,${members[members.length - 1]}`;
  return { key: `${group.name}@${members[0]}`, group, members, name: `${group.name}{${shown}}` };
}

/** Each member's collectives on one communicator instance, as indices into its op sequence. */
export interface CommunicatorSequences {
  readonly comm: Communicator;
  /** rank → indices of its collectives on this instance, in issue order (ranks that issue none are absent). */
  readonly byRank: Map<number, number[]>;
}

/**
 * The collectives of every rank in `programs`, by communicator instance (in order of first use
 * by ascending rank). Collectives without a known group are left out (structure reports them).
 */
export function collectiveSequences(programs: RankPrograms): Map<string, CommunicatorSequences> {
  const groups = new Map(programs.groups.map((g) => [g.name, g]));
  const out = new Map<string, CommunicatorSequences>();
  for (const rank of [...programs.ranks.keys()].sort((a, b) => a - b)) {
    const ops = programs.ranks.get(rank)!;
    const mine = new Map<string, CommunicatorSequences>();
    ops.forEach((op, i) => {
      if (!COLLECTIVES.has(op.kind) || op.group === undefined) return;
      let entry = mine.get(op.group);
      if (!entry) {
        const group = groups.get(op.group);
        // Unknown groups and groups without a valid size and stride are reported elsewhere.
        if (!group || !validGroup(group)) return;
        const comm = communicatorOf(group, rank);
        entry = out.get(comm.key);
        if (!entry) out.set(comm.key, (entry = { comm, byRank: new Map() }));
        mine.set(op.group, entry);
      }
      let seq = entry.byRank.get(rank);
      if (!seq) entry.byRank.set(rank, (seq = []));
      seq.push(i);
    });
  }
  return out;
}

/**
 * The plan verifier (ARCHITECTURE.md, "The pipeline": TaskGraph ── compiler/verify/): proves a
 * plan acyclic, race-free, with the same collective order per communicator on every rank, free
 * of cross-rank deadlocks, and with accesses, collective sizes and chunks consistent. Returns
 * issues; never throws on a bad plan.
 */
import type { Op, RankPrograms, TaskGraph } from "../graph/types.js";
import { DEFAULT_MAX_ISSUES, type RankContext, type VerifyOptions } from "./check.js";
import { consequenceChecks, rankChecks } from "./checks.js";
import { collectiveOrderIssues } from "./collectiveOrder.js";
import { collectiveSequences } from "./communicators.js";
import { deadlockIssues } from "./deadlock.js";
import type { VerifyIssue, Where } from "./issue.js";
import { groupFitIssues, missingMemberIssues } from "./membership.js";
import { happensBefore, type HappensBefore } from "./order.js";

function runRankChecks(
  ops: readonly Op[],
  hb: HappensBefore,
  plan: Pick<TaskGraph, "buffers" | "groups">,
  where: Where,
  options: VerifyOptions,
): VerifyIssue[] {
  const ctx: RankContext = {
    ops,
    hb,
    buffers: new Map(plan.buffers.map((b) => [b.id, b])),
    groups: new Map(plan.groups.map((g) => [g.name, g])),
    where,
    options,
  };
  return rankChecks.flatMap((c) => c.check(ctx));
}

/** The consequence checks of one sequence (see checks.ts), for a plan otherwise clean. */
function runConsequenceChecks(ops: readonly Op[], hb: HappensBefore, plan: Pick<TaskGraph, "buffers" | "groups">, where: Where, options: VerifyOptions): VerifyIssue[] {
  const ctx: RankContext = { ops, hb, buffers: new Map(plan.buffers.map((b) => [b.id, b])), groups: new Map(plan.groups.map((g) => [g.name, g])), where, options };
  return consequenceChecks.flatMap((c) => c.check(ctx));
}

/**
 * Verify per-rank programs: the per-rank checks on each distinct op sequence (ranks that share
 * one array, as {@link expandSpmd} gives ranks without an override, are checked once and the
 * issue names the first of them), then group fit, missing members, collective order per
 * communicator instance and, unless a rank already has a cycle of its own, cross-rank deadlock.
 */
export function verify(programs: RankPrograms, options: VerifyOptions = {}): VerifyIssue[] {
  const issues: VerifyIssue[] = [];
  const sharing = new Map<readonly Op[], number[]>();
  for (const rank of [...programs.ranks.keys()].sort((a, b) => a - b)) {
    const ops = programs.ranks.get(rank)!;
    const list = sharing.get(ops);
    if (list) list.push(rank);
    else sharing.set(ops, [rank]);
  }
  const orders = new Map<number, HappensBefore>();
  for (const [ops, ranks] of sharing) {
    const hb = happensBefore(ops);
    for (const r of ranks) orders.set(r, hb);
    issues.push(...runRankChecks(ops, hb, programs, { rank: ranks[0]!, sharedWith: ranks.length - 1 }, options));
  }
  const sequences = collectiveSequences(programs);
  issues.push(...groupFitIssues(programs), ...missingMemberIssues(programs, sequences), ...collectiveOrderIssues(programs, sequences));
  if (!issues.some((i) => i.code === "FSM4001")) issues.push(...deadlockIssues(programs, orders, sequences));
  if (issues.length === 0) {
    for (const [ops, ranks] of sharing) issues.push(...runConsequenceChecks(ops, orders.get(ranks[0]!)!, programs, { rank: ranks[0]!, sharedWith: ranks.length - 1 }, options));
  }
  return issues.slice(0, options.maxIssues ?? DEFAULT_MAX_ISSUES);
}

/**
 * Verify the SPMD task graph itself: the per-rank checks on its one op list, standing for every
 * rank. The cross-rank checks have nothing to find here: every member of a communicator
 * instance runs this identical sequence, so all members issue the same collectives in the same
 * order, and a cycle through merged collectives projects onto a cycle of this one sequence (each
 * rank's edges are the same edges), which the cycle check already reports.
 */
export function verifyGraph(graph: TaskGraph, options: VerifyOptions = {}): VerifyIssue[] {
  const hb = happensBefore(graph.ops);
  const issues = runRankChecks(graph.ops, hb, graph, {}, options);
  if (issues.length === 0) issues.push(...runConsequenceChecks(graph.ops, hb, graph, {}, options));
  return issues.slice(0, options.maxIssues ?? DEFAULT_MAX_ISSUES);
}

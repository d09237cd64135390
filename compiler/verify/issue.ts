/**
 * What the plan verifier reports (ARCHITECTURE.md, "The pipeline": compiler/verify/): one
 * problem in a plan, with a catalog code (FSM4xxx), a message that names the ops involved, and
 * the ops' ids so that tools can point at them.
 */
import { formatMessage, type Code } from "../diagnostics/messages.js";
import type { Op } from "../graph/types.js";

/** One problem found in a plan. */
export interface VerifyIssue {
  readonly code: Code;
  /** Names every op involved by id, kind, role, layer, direction, chunk and stream. */
  readonly message: string;
  /** The ids of the ops involved (ids are per rank; see `ranks` for cross-rank issues). */
  readonly ops: readonly number[];
  /** The rank the issue was found on, for single-rank issues of a per-rank verification. */
  readonly rank?: number;
  /** For issues that span ranks (collective order, cross-rank deadlock): the rank of each entry of `ops`. */
  readonly ranks?: readonly number[];
}

/**
 * An op as messages name it: `op 57 (all_to_all combine L3 bwd chunk 1, inter)`. The layer is
 * left out for -1 (embedding, head, trailing all-reduces), the chunk for -1, the micro-batch
 * for 0.
 */
export function describeOp(op: Op): string {
  const parts = [op.kind, op.role];
  if (op.layer >= 0) parts.push(`L${op.layer}`);
  parts.push(op.dir);
  if (op.microBatch !== 0) parts.push(`mb ${op.microBatch}`);
  if (op.chunk >= 0) parts.push(`chunk ${op.chunk}`);
  return `op ${op.id} (${parts.join(" ")}, ${op.stream})`;
}

/** What a collective stands for, without its chunk: `all_to_all dispatch L3 fwd`. */
export function describeCollective(op: Op): string {
  const parts = [op.kind, op.role];
  if (op.layer >= 0) parts.push(`L${op.layer}`);
  parts.push(op.dir);
  if (op.microBatch !== 0) parts.push(`mb ${op.microBatch}`);
  return parts.join(" ");
}

/**
 * Where a single-rank issue was found, as the `{where}` hole of a template: empty for the SPMD
 * graph, " on rank 3", or " on rank 3 (and 5 more ranks with the same program)" when several
 * ranks share one op sequence and the check ran once for all of them.
 */
export interface Where {
  readonly rank?: number;
  readonly sharedWith?: number;
}

/** The `{where}` text of a {@link Where}. */
export function whereText(where: Where): string {
  if (where.rank === undefined) return "";
  const more = where.sharedWith ?? 0;
  return more > 0 ? ` on rank ${where.rank} (and ${more} more rank${more === 1 ? "" : "s"} with the same program)` : ` on rank ${where.rank}`;
}

/** Build an issue from a catalog code and its template's arguments. */
export function issue(
  code: Code,
  args: Readonly<Record<string, string | number>>,
  ops: readonly number[],
  where: Where = {},
  ranks?: readonly number[],
): VerifyIssue {
  const message = formatMessage(code, { ...args, where: whereText(where) });
  const out: { -readonly [K in keyof VerifyIssue]: VerifyIssue[K] } = { code, message, ops };
  if (where.rank !== undefined) out.rank = where.rank;
  if (ranks !== undefined) out.ranks = ranks;
  return out;
}

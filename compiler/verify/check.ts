/**
 * The shape of a per-rank plan check (STYLE.md: one file per rule; ARCHITECTURE.md, "The
 * pipeline": compiler/verify/): a pure function from one rank's op sequence, with its
 * happens-before relation already built, to the issues it finds. Cross-rank checks
 * (communicators, collective order, deadlock) take the whole RankPrograms instead.
 */
import type { Buffer, Direction, Group, Op } from "../graph/types.js";
import type { VerifyIssue, Where } from "./issue.js";
import type { HappensBefore } from "./order.js";

/**
 * The size a collective must have in all, from the workload (SCHEDULING.md §1: capacity
 * rounded up to a multiple of the lcm of the degrees, so the chunks of a collective add up to
 * it exactly): the collectives with this layer, direction and role (per micro-batch, or only
 * the given one) must move `totalBytes` in all.
 */
export interface Shape {
  readonly layer: number;
  readonly dir: Direction;
  readonly role: string;
  readonly totalBytes: number;
  readonly microBatch?: number;
}

/** What the caller can tell the verifier. */
export interface VerifyOptions {
  /** Expected totals of chunked collectives (see {@link Shape}). */
  readonly shapes?: readonly Shape[];
  /** Stop after this many issues (default 200); a broken plan can otherwise race everywhere. */
  readonly maxIssues?: number;
}

/** The default of {@link VerifyOptions.maxIssues}. */
export const DEFAULT_MAX_ISSUES = 200;

/** One rank's op sequence, as the per-rank checks see it. */
export interface RankContext {
  readonly ops: readonly Op[];
  readonly hb: HappensBefore;
  readonly buffers: ReadonlyMap<number, Buffer>;
  readonly groups: ReadonlyMap<string, Group>;
  /** Where the sequence runs, for messages (empty for the SPMD graph). */
  readonly where: Where;
  readonly options: VerifyOptions;
}

/** One per-rank check. */
export interface RankCheck {
  readonly name: string;
  /** What the check proves, for the reference. */
  readonly summary: string;
  readonly check: (ctx: RankContext) => VerifyIssue[];
}

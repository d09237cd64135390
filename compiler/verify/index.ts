/**
 * The plan verifier's public surface (ARCHITECTURE.md, "The pipeline": compiler/verify/).
 */
export { verify, verifyGraph } from "./verify.js";
export { expandSpmd, type Override } from "./spmd.js";
export type { VerifyOptions, Shape, RankCheck, RankContext } from "./check.js";
export { describeOp, type VerifyIssue } from "./issue.js";
export { happensBefore, before, type HappensBefore } from "./order.js";
export { communicatorOf, groupMembers, type Communicator } from "./communicators.js";
export { rankChecks } from "./checks.js";

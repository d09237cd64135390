/**
 * The memory planner's public surface (ARCHITECTURE.md, "The pipeline": compiler/memory/).
 */
export { planMemory, align, ALIGNMENT, type MemoryPlan } from "./plan.js";
export { checkPlacement, placementProblems } from "./check.js";
export { bufferLifetimes, lifetimesOverlap, type Lifetime } from "./lifetimes.js";
export { bufferUsage, mustNotShare, rowsConflict, type Usage } from "./reuse.js";

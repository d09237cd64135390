/**
 * The per-rank checks, in the order they run (STYLE.md: adding a check is adding a file and a
 * line here). The cross-rank checks run after them, from verify.ts.
 */
import { boundsCheck } from "./bounds.js";
import { bytesCheck } from "./bytes.js";
import type { RankCheck } from "./check.js";
import { chunksCheck } from "./chunks.js";
import { cycleCheck } from "./cycle.js";
import { initializedCheck } from "./initialized.js";
import { raceCheck } from "./race.js";
import { shapesCheck } from "./shapes.js";
import { structureCheck } from "./structure.js";

/**
 * Checks whose findings are consequences of the others' (an access out of bounds or a swapped
 * collective also leaves a read uninitialized): they run only when nothing else was found.
 */
export const consequenceChecks: readonly RankCheck[] = [initializedCheck];

/** Every per-rank check. */
export const rankChecks: readonly RankCheck[] = [structureCheck, cycleCheck, raceCheck, boundsCheck, bytesCheck, chunksCheck, shapesCheck];

/**
 * The strategies, by name (SCHEDULING.md §3). Adding a strategy is adding a file and a line here.
 */
import { auto } from "./auto.js";
import { deepspeed } from "./deepspeed.js";
import { fsmoe } from "./fsmoe.js";
import type { Strategy } from "./strategy.js";
import { tutel } from "./tutel.js";
import type { StrategyName } from "./types.js";

/** Every strategy. */
export const strategies: Readonly<Record<StrategyName, Strategy>> = { deepspeed, tutel, fsmoe, auto };

/** Strategy names in the order reports list them. */
export const STRATEGY_NAMES: readonly StrategyName[] = ["deepspeed", "tutel", "fsmoe", "auto"];

export type { Strategy, StrategyOptions } from "./strategy.js";
export type * from "./types.js";

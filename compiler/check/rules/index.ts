/**
 * The layout rules, in the order they run (LANGUAGE.md, "What is checked where"). Adding a
 * rule is adding a file and a line here.
 */
import { expertsDivideRule } from "./expertsDivideRule.js";
import { headsDivideRule } from "./headsDivideRule.js";
import { layoutProductRule } from "./layoutProductRule.js";
import { moeLayersRule } from "./moeLayersRule.js";
import { nodeDivideRule } from "./nodeDivideRule.js";
import { routerGroupsRule } from "./routerGroupsRule.js";
import { routerTopKRule } from "./routerTopKRule.js";
import type { JobRule, ModelRule, Rule } from "./rule.js";
import { shardsDivideRule } from "./shardsDivideRule.js";
import { topKRule } from "./topKRule.js";

export type { JobRule, ModelRule, Rule } from "./rule.js";

/** Every layout rule. */
export const rules: readonly Rule[] = [
  layoutProductRule,
  nodeDivideRule,
  expertsDivideRule,
  topKRule,
  routerTopKRule,
  shardsDivideRule,
  headsDivideRule,
  moeLayersRule,
  routerGroupsRule,
];

/** The rules on a model or layer alone. */
export const modelRules: readonly ModelRule[] = rules.filter((r): r is ModelRule => r.scope === "model");
/** The rules that need a train job. */
export const jobRules: readonly JobRule[] = rules.filter((r): r is JobRule => r.scope === "job");

/**
 * The layout rules, in the order they run (LANGUAGE.md, "What is checked where"). Adding a
 * rule is adding a file and a line here.
 */
import { expertsDivideRule } from "./expertsDivideRule.js";
import { layoutProductRule } from "./layoutProductRule.js";
import { moeLayersRule } from "./moeLayersRule.js";
import { nodeDivideRule } from "./nodeDivideRule.js";
import { routerGroupsRule } from "./routerGroupsRule.js";
import type { Rule } from "./rule.js";
import { shardsDivideRule } from "./shardsDivideRule.js";
import { topKRule } from "./topKRule.js";

export type { Rule } from "./rule.js";

/** Every layout rule. */
export const rules: readonly Rule[] = [layoutProductRule, nodeDivideRule, expertsDivideRule, topKRule, shardsDivideRule, moeLayersRule, routerGroupsRule];

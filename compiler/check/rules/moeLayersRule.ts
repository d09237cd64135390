import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { ModelRule } from "./rule.js";

/** `moe_layers` names only layers the model has, and at least one. FSM3006. */
export const moeLayersRule: ModelRule = {
  name: "moeLayers",
  scope: "model",
  summary: "moe_layers indices lie in 0 … layers − 1, `after N` leaves at least one MoE layer, and some layer is MoE.",
  check(m) {
    if (m.kind === "layer") return [];
    const span = m.spans["moe_layers"]!;
    const spec = m.moeLayerSpec;
    const indices = spec.indices;
    if (indices !== "all") {
      const bad = indices.find((i) => i >= m.layers);
      if (bad !== undefined) return [diagnostic("FSM3006", span, { detail: `names layer ${bad}, but the model has layers 0 … ${m.layers - 1}` })];
      const seen = new Set<number>();
      const dup = indices.find((i) => seen.size === seen.add(i).size);
      if (dup !== undefined) return [diagnostic("FSM3006", span, { detail: `names layer ${dup} twice` })];
    }
    if (spec.after !== undefined && spec.after >= m.layers) {
      return [diagnostic("FSM3006", span, { detail: `after ${spec.after} leaves no MoE layer in a model of ${m.layers} layers` })];
    }
    if (m.moeLayers.length === 0) return [diagnostic("FSM3006", span, { detail: `selects no layer of the model's ${m.layers}` })];
    return [];
  },
};

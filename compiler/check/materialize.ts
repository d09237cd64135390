/**
 * Turning evaluated instances into the plain Program objects of `program.ts`: snake_case
 * fields become camelCase, quantities become numbers in base units, names become strings or
 * booleans, and each object records where its fields were written.
 */
import type { Span } from "../diagnostics/span.js";
import type { Evaluator } from "./evaluate.js";
import type { Cluster, Model, MoeLayerSpec, Moe, Spans, TrainJob } from "./program.js";
import { toNumber } from "./rational.js";
import type { FieldType } from "./schema.js";
import type { Instance, Value } from "./values.js";

/** `gpus_per_node` → `gpusPerNode`. */
export function camel(name: string): string {
  let c = camelCache.get(name);
  if (c === undefined) {
    c = name.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());
    camelCache.set(name, c);
  }
  return c;
}

const camelCache = new Map<string, string>();

function spansOf(inst: Instance): Spans {
  const out: Record<string, Span> = {};
  for (const name of Object.keys(inst.schema.fields)) out[name] = inst.written(name)?.span ?? inst.anchor;
  return out;
}

function plain(ev: Evaluator, v: Value, type: FieldType): unknown {
  switch (v.k) {
    case "num":
      return toNumber(v.q);
    case "name":
      if (type.t === "bool") return v.name === "true";
      return v.name;
    case "str":
      return v.s;
    case "none":
      return null;
    case "inst":
      return record(ev, v.inst);
    case "pipeline":
      return { forward: plain(ev, v.forward, { t: "degree" }), backward: plain(ev, v.backward, { t: "degree" }) };
    case "list":
      return v.items.map((i) => plain(ev, i, type));
    case "layers":
      return v;
  }
}

/** Every field of an evaluated instance as a plain object (camelCase keys, `spans`, `span`, `name`). */
export function record(ev: Evaluator, inst: Instance): Record<string, unknown> {
  // An instance's values never change once evaluated, and many jobs share one model or
  // cluster: materialize each instance once.
  const hit = records.get(inst);
  if (hit) return hit;
  const out: Record<string, unknown> = { name: inst.name };
  for (const [name, spec] of Object.entries(inst.schema.fields)) {
    const v = ev.field(inst, name);
    out[camel(name)] = v === null ? null : plain(ev, v, spec.type);
  }
  out["span"] = inst.anchor;
  out["spans"] = spansOf(inst);
  records.set(inst, out);
  return out;
}

const records = new WeakMap<Instance, Record<string, unknown>>();

/** The indices of the MoE layers from a `moe_layers` value (ranges are checked by a rule). */
export function moeLayerIndices(layers: number, sel: MoeLayerSpec): number[] {
  if (sel.indices !== "all") return [...new Set(sel.indices)].sort((a, b) => a - b);
  const out: number[] = [];
  for (let i = 0; i < layers; i++) {
    if (sel.every !== undefined ? i % sel.every === sel.every - 1 : sel.after !== undefined ? i >= sel.after : true) out.push(i);
  }
  return out;
}

const MOE_KEYS = [
  "experts", "topK", "expertHidden", "activation", "router", "capacityFactor", "sharedExperts", "sharedHidden", "auxLoss",
  "routerDtype", "normalize", "groups", "topkGroups", "routeScale", "biasUpdateRate", "routingDim", "slotsPerExpert",
] as const;

/** A model or layer instance (evaluated without error) as Program data. */
export function modelOf(ev: Evaluator, inst: Instance): Model {
  return modelRecord(record(ev, inst), inst.schema.kind);
}

function modelRecord(r: Record<string, unknown>, kind: string): Model {
  if (kind === "layer") {
    const moe: Record<string, unknown> = { spans: r["spans"] };
    for (const k of MOE_KEYS) moe[k] = r[k];
    return {
      name: r["name"] as string,
      kind: "layer",
      layers: 1,
      hidden: r["hidden"] as number,
      vocab: null,
      attention: null,
      ffn: null,
      moe: moe as unknown as Moe,
      moeLayers: [0],
      moeLayerSpec: { indices: [0] },
      dtype: r["dtype"] as Model["dtype"],
      span: r["span"] as Span,
      spans: r["spans"] as Spans,
    };
  }
  const v = r["moeLayers"] as MoeLayerSpec;
  const sel: MoeLayerSpec = { indices: v.indices, ...(v.every !== undefined && { every: v.every }), ...(v.after !== undefined && { after: v.after }) };
  return { ...(r as unknown as Model), kind: "model", moeLayers: moeLayerIndices(r["layers"] as number, sel), moeLayerSpec: sel };
}

/**
 * A train job as Program data. `edp` defaults to world / (esp · ep), or NaN when that is not
 * whole, which a layout rule reports (FSM3007).
 */
export function trainJob(ev: Evaluator, inst: Instance, name: string, sweep: TrainJob["sweep"]): TrainJob {
  const r = record(ev, inst);
  const modelValue = ev.field(inst, "model");
  const modelInst = modelValue && modelValue.k === "inst" ? modelValue.inst : undefined;
  const model = modelRecord(r["model"] as Record<string, unknown>, modelInst?.schema.kind ?? "model");
  const cluster = r["cluster"] as unknown as Cluster;
  const parallel = r["parallel"] as Record<string, unknown>;
  // Exactly: the world and esp · ep can exceed 2⁵³, where a double quotient may round to a whole number.
  const world = BigInt(cluster.nodes) * BigInt(cluster.gpusPerNode);
  const group = BigInt(parallel["esp"] as number) * BigInt(parallel["ep"] as number);
  const edp = (parallel["edp"] as number | null) ?? (world % group === 0n ? Number(world / group) : Number.NaN);
  return {
    ...(r as unknown as TrainJob),
    name,
    model,
    cluster,
    parallel: { ...(parallel as unknown as TrainJob["parallel"]), edp },
    sweep,
  };
}

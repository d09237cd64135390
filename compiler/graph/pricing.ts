/**
 * Pricing ops while building: maps an op kind to its cost class and asks the cost model
 * (SCHEDULING.md §2). Collectives are priced on their group; GEMMs by MACs; memory-bound
 * kernels (routing, order, norms, loss, embedding) by elements.
 */
import { costUs, type CostModel, type OpClass } from "../cost/model.js";
import type { Direction, Group, OpKind } from "./types.js";

/** The cost class of an op kind. */
export function opClass(kind: OpKind): OpClass {
  switch (kind) {
    case "all_to_all":
    case "all_gather":
    case "reduce_scatter":
    case "all_reduce":
      return kind;
    case "expert":
      return "expert_gemm";
    case "attention":
    case "dense_ffn":
    case "shared_expert":
    case "lm_head":
    case "dispatch_gemm":
    case "combine_gemm":
      return "dense_gemm";
    case "gate":
    case "order":
    case "iorder":
    case "embed":
    case "loss":
    case "norm":
      return "memory";
  }
}

/** Prices ops of one workload under one cost model. */
export class Pricer {
  constructor(
    readonly model: CostModel,
    private readonly groups: ReadonlyMap<string, Group>,
    private readonly gemms: number,
  ) {}

  /** Microseconds for an op of `kind` moving `elements` or computing `macs`. */
  price(kind: OpKind, dir: Direction, elements: number, macs: number, group?: string): number {
    if (kind === "gate") {
      // The router GEMM plus the routing function over its scores.
      return costUs(this.model, { cls: "dense_gemm", dir, n: macs, kind }) + costUs(this.model, { cls: "memory", dir, n: elements, kind });
    }
    const cls = opClass(kind);
    const n = cls === "expert_gemm" || cls === "dense_gemm" ? macs : elements;
    const g = group === undefined ? undefined : this.groups.get(group);
    return costUs(this.model, { cls, dir, n, kind, ...(g && { group: g }), ...(cls === "expert_gemm" && { gemms: this.gemms }) });
  }

  group(name: string): Group {
    return this.groups.get(name)!;
  }
}

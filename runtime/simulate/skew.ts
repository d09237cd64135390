/**
 * Load imbalance for the simulator (the imbalance mode): per-expert loads follow a
 * skew instead of FSMoE's balanced assumption, and every collective waits for its slowest rank.
 *
 * The model, stated once:
 * - expert e (0-based) receives a share s_e of the routed token slots; `zipf:S` gives
 *   s_e ∝ 1 / (e + 1)^S, `loads:a,b,…` gives the shares directly (normalised). A token picks k
 *   distinct experts, so no share can exceed 1/k: larger shares are capped and the excess is
 *   spread over the others in proportion (water-filling);
 * - experts sit on the ranks of the expert-parallel group in blocks (ep rank j holds experts
 *   j·E/ep … (j+1)·E/ep − 1), so the hottest experts share a rank; the ranks of an ESP group
 *   hold the same experts and see the same load;
 * - ep rank j receives ep · k · T · Σ s_e slots (T tokens per rank) where the plan budgeted
 *   E · C (C the layer's padded capacity, which already holds f − 1 of headroom). Tokens beyond
 *   the capacity are carried, not dropped (a dropless or capacity-growing implementation), and
 *   the padding is still sent, so that rank's volume is max(1, received / (E · C)) times the
 *   plan's. Under token dropping shapes stay static and skew changes no time at all;
 * - the dispatch and combine all-to-alls, the ESP AllGather and ReduceScatter and the expert
 *   GEMMs of every MoE block then take the time of the slowest rank: their sizes are scaled by
 *   the largest factor over the ranks;
 * - expert-choice and Soft MoE routers balance expert loads by construction: skew leaves them be.
 */
import type { Plan } from "../../compiler/plan/schema.js";

/** A parsed `--skew` value. */
export type Skew = { readonly kind: "zipf"; readonly s: number } | { readonly kind: "loads"; readonly loads: readonly number[] };

/** Parse `zipf:1.2`, `loads:4,1,1,1` or `none`; a string says what is wrong. */
export function parseSkew(text: string): Skew | null | string {
  const t = text.trim();
  if (t === "none" || t === "uniform") return null;
  const zipf = /^zipf:(.+)$/.exec(t);
  if (zipf) {
    const s = Number(zipf[1]);
    if (!Number.isFinite(s) || s < 0) return `zipf expects a non-negative exponent, got '${zipf[1]}'`;
    return { kind: "zipf", s };
  }
  const loads = /^loads:(.+)$/.exec(t);
  if (loads) {
    const xs = loads[1]!.split(",").map((x) => Number(x.trim()));
    if (xs.some((x) => !Number.isFinite(x) || x < 0) || xs.every((x) => x === 0)) return `loads expects non-negative numbers, not all zero, got '${loads[1]}'`;
    return { kind: "loads", loads: xs };
  }
  return `unknown skew '${t}' (expected zipf:S, loads:a,b,… or none)`;
}

/** The skew as text (`zipf:1.2`). */
export function skewText(skew: Skew | null): string {
  if (!skew) return "none";
  return skew.kind === "zipf" ? `zipf:${skew.s}` : `loads:${skew.loads.join(",")}`;
}

/** Per-expert shares of the routed slots (sum 1, each ≤ 1/k). */
export function expertShares(skew: Skew | null, experts: number, topK: number): number[] {
  let raw: number[];
  if (!skew) raw = new Array<number>(experts).fill(1);
  else if (skew.kind === "zipf") raw = Array.from({ length: experts }, (_, e) => 1 / Math.pow(e + 1, skew.s));
  else {
    if (skew.loads.length !== experts) {
      // Loads given for fewer (or more) experts than the model has: repeat (or cut) the pattern.
      raw = Array.from({ length: experts }, (_, e) => skew.loads[e % skew.loads.length]!);
    } else raw = [...skew.loads];
  }
  const total = raw.reduce((a, b) => a + b, 0);
  const shares = raw.map((x) => x / total);
  // Water-fill: cap at 1/k, hand the excess to the uncapped experts in proportion to their shares.
  const cap = 1 / Math.max(1, topK);
  const capped = new Array<boolean>(experts).fill(false);
  for (let round = 0; round < experts; round++) {
    let excess = 0;
    let free = 0;
    for (let e = 0; e < experts; e++) {
      if (!capped[e] && shares[e]! > cap) {
        excess += shares[e]! - cap;
        shares[e] = cap;
        capped[e] = true;
      }
    }
    if (excess <= 0) break;
    for (let e = 0; e < experts; e++) if (!capped[e]) free += shares[e]!;
    if (free <= 0) break;
    for (let e = 0; e < experts; e++) if (!capped[e]) shares[e]! += (excess * shares[e]!) / free;
  }
  return shares;
}

/** What skew does to one MoE layer: the slowest rank's volume over the plan's, and which rank that is. */
export interface LayerSkew {
  readonly layer: number;
  /** ≥ 1: the factor the slowest rank's all-to-all, ESP and expert sizes are scaled by. */
  readonly factor: number;
  /** The ep rank with the largest load. */
  readonly rank: number;
  /** That rank's received slots over the plan's budget E · C (may be < 1: headroom absorbs it). */
  readonly load: number;
}

/** Routers whose expert loads are balanced by construction (experts pick tokens, or slots mix all tokens). */
export const BALANCED_ROUTERS: ReadonlySet<string> = new Set(["expert_choice", "softmoe"]);

/** The skew factor of each MoE layer of a plan (empty without skew, or under a router that balances by construction). */
export function layerSkews(plan: Pick<Plan, "job" | "layers">, skew: Skew | null): LayerSkew[] {
  if (!skew || BALANCED_ROUTERS.has(plan.job.model.router)) return [];
  const { job } = plan;
  const E = job.model.experts;
  const k = job.model.topK;
  const ep = job.parallel.ep;
  const T = (job.microBatch * job.seqLen) / job.parallel.tp;
  const shares = expertShares(skew, E, k);
  const local = Math.max(1, Math.floor(E / ep));
  const perRank: number[] = [];
  for (let j = 0; j < ep; j++) {
    let s = 0;
    for (let e = j * local; e < Math.min(E, (j + 1) * local); e++) s += shares[e]!;
    perRank.push(s);
  }
  let rank = 0;
  for (let j = 1; j < ep; j++) if (perRank[j]! > perRank[rank]!) rank = j;
  return plan.layers.map((l) => {
    const load = (ep * k * T * perRank[rank]!) / (E * l.capacity);
    return { layer: l.layer, factor: Math.max(1, load), rank, load };
  });
}

/** The roles whose sizes follow the expert load (without a "recompute." prefix). */
export const SKEWED_ROLES: ReadonlySet<string> = new Set(["dispatch", "combine", "esp_allgather", "esp_reducescatter", "expert"]);

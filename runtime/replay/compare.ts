/**
 * Judging a replay against the reference (ARCHITECTURE.md, "Runtime": equality is judged per
 * tensor as ‖x − ref‖ / ‖ref‖ ≤ 1e-5 with identical routing decisions). Tensors are compared
 * rank by rank under the names both paths report: for a layer job `out.mbK` (the layer output)
 * and `dx.mbK` (the input gradient); for a model `logits.mbK` (the rank's vocabulary shard) and
 * `loss.mbK` (its tokens' losses); and every gradient after the all-reduces (`grad.LN.router`,
 * `grad.LN.expert`, `grad.LN.attention`, `grad.LN.attention_norm`, `grad.LN.ffn_norm`,
 * `grad.LN.dense_ffn`, `grad.LN.shared_expert`, `grad.embedding`, `grad.lm_head`,
 * `grad.final_norm`). Routing decisions `route.LN.mbK` (expert and slot of every token's
 * choices) must be equal; the loss is judged against Σ |y ⊙ cotangent| (a model: Σ |loss|).
 */
import type { NativeRank } from "./addon.js";

/** The tolerance of the issue: fp32 relative error per tensor. */
export const TOLERANCE = 1e-5;

/** One tensor of one rank. */
export interface TensorCheck {
  readonly rank: number;
  readonly name: string;
  readonly elements: number;
  readonly relError: number;
  readonly ok: boolean;
}

/** One routing decision table of one rank. */
export interface RoutingCheck {
  readonly rank: number;
  readonly name: string;
  readonly decisions: number;
  readonly mismatches: number;
}

/** The verdict. */
export interface Comparison {
  readonly ok: boolean;
  readonly tolerance: number;
  readonly tensors: readonly TensorCheck[];
  readonly routing: readonly RoutingCheck[];
  readonly loss: { readonly replay: number; readonly reference: number; readonly relError: number; readonly ok: boolean };
  /** Tensors or tables the reference has and the replay did not report (each a failure). */
  readonly missing: readonly string[];
  readonly maxRelError: number;
}

/** ‖x − ref‖ / ‖ref‖ (‖x‖ when ref is zero). */
export function relativeError(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (x.length !== ref.length) return Infinity;
  let d = 0;
  let r = 0;
  let n = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = x[i]!;
    const b = ref[i]!;
    if (!Number.isFinite(a)) return Infinity;
    d += (a - b) * (a - b);
    r += b * b;
    n += a * a;
  }
  return r > 0 ? Math.sqrt(d / r) : Math.sqrt(n);
}

/** Compare every rank's replay with the reference. */
export function compare(replay: readonly NativeRank[], reference: readonly NativeRank[], tolerance = TOLERANCE): Comparison {
  const tensors: TensorCheck[] = [];
  const routing: RoutingCheck[] = [];
  const missing: string[] = [];
  let loss = 0;
  let refLoss = 0;
  let scale = 0;
  for (let r = 0; r < reference.length; r++) {
    const ref = reference[r]!;
    const got = replay[r];
    refLoss += ref.loss;
    scale += ref.lossScale;
    if (!got) {
      missing.push(`rank ${r}`);
      continue;
    }
    loss += got.loss;
    for (const [name, want] of Object.entries(ref.tensors)) {
      const x = got.tensors[name];
      if (!x) {
        missing.push(`rank ${r} ${name}`);
        continue;
      }
      const e = relativeError(x, want);
      tensors.push({ rank: r, name, elements: want.length, relError: e, ok: e <= tolerance });
    }
    for (const [name, want] of Object.entries(ref.ints)) {
      const x = got.ints[name];
      if (!x) {
        missing.push(`rank ${r} ${name}`);
        continue;
      }
      let mismatches = x.length === want.length ? 0 : Math.max(x.length, want.length) / 2;
      for (let i = 0; i + 1 < Math.min(x.length, want.length); i += 2) if (x[i] !== want[i] || x[i + 1] !== want[i + 1]) mismatches++;
      routing.push({ rank: r, name, decisions: want.length / 2, mismatches });
    }
  }
  const lossError = Math.abs(loss - refLoss) / Math.max(scale, Number.MIN_VALUE);
  const maxRelError = tensors.reduce((m, t) => Math.max(m, t.relError), 0);
  const lossOk = lossError <= tolerance;
  const ok = missing.length === 0 && lossOk && tensors.every((t) => t.ok) && routing.every((t) => t.mismatches === 0) && tensors.length > 0;
  return { ok, tolerance, tensors, routing, loss: { replay: loss, reference: refLoss, relError: lossError, ok: lossOk }, missing, maxRelError };
}

/**
 * A fast timing of one MoE block for the strategies' inner searches: the same ops, lanes,
 * dependencies and costs as `moeBlock` builds (graph/moe-block.ts), but as plain numbers, so
 * a search can price thousands of (degree, order, load) candidates in milliseconds. A test
 * holds it equal to timing the real block graph.
 */
import type { BlockStyle } from "../graph/moe-block.js";
import type { Pricer } from "../graph/pricing.js";
import type { Direction } from "../graph/types.js";
import { moeSizes } from "../lower/shapes.js";
import type { Workload } from "../lower/workload.js";

/** Time (µs) of one block with a gradient all-reduce of `gradElements` in its gap (0: none). */
export function fastBlockTime(w: Workload, pricer: Pricer, dir: Direction, style: BlockStyle, r: number, capacity: number, gradElements = 0): number {
  const s = w.shape;
  const z = moeSizes(s, capacity);
  const serial = style.kind === "serial";
  const einsum = serial || s.router === "softmoe";
  const gate = pricer.price("gate", dir, z.gateElements, dir === "fwd" ? z.gateMacs : 2 * z.gateMacs);
  const order = einsum ? pricer.price("dispatch_gemm", dir, 0, z.einsumMacs) : pricer.price("order", dir, z.orderElements, 0);
  const iorder = einsum ? pricer.price("combine_gemm", dir, 0, z.einsumMacs) : pricer.price("iorder", dir, z.orderElements, 0);
  const pre = dir === "fwd" ? gate + order : iorder;
  const post = dir === "fwd" ? iorder : order + gate;
  const a = pricer.price("all_to_all", dir, z.a2aElements / r, 0, "ep");
  const esp = s.esp > 1;
  const g = esp ? pricer.price("all_gather", dir, z.espElements / r, 0, "esp") : 0;
  const sc = esp ? pricer.price("reduce_scatter", dir, z.espElements / r, 0, "esp") : 0;
  const perExpert = serial ? s.localExperts : 1;
  const e = perExpert * pricer.price("expert", dir, 0, z.expertMacs / r / perExpert);
  const grad = gradElements > 0 ? pricer.price("all_reduce", "bwd", gradElements, 0, "dp") : 0;
  if (serial) return pre + r * (2 * a + g + e + sc) + grad + post;

  // Lane clocks: compute, intra, inter. The single-comm style carries AG and RS on inter.
  const intraOnInter = style.kind === "single-comm";
  let compute = pre;
  let intra = 0;
  let inter = 0;
  const fEnd = new Float64Array(r);
  const gEnd = new Float64Array(r);
  const eEnd = new Float64Array(r);
  const sEnd = new Float64Array(r);
  let lastEnd = 0;
  // Compute lane: E_i after G_i (or F_i); it is fed in chunk order, so it can be resolved lazily.
  let nextExpert = 0;
  const runExperts = (upTo: number) => {
    while (nextExpert < upTo) {
      const ready = esp ? gEnd[nextExpert]! : fEnd[nextExpert]!;
      compute = Math.max(compute, ready) + e;
      eEnd[nextExpert] = compute;
      nextExpert++;
    }
  };
  const first = (i: number) => {
    inter = Math.max(inter, pre) + a;
    fEnd[i] = inter;
    if (esp) {
      if (intraOnInter) {
        inter += g;
        gEnd[i] = inter;
      } else {
        intra = Math.max(intra, fEnd[i]!) + g;
        gEnd[i] = intra;
      }
    }
  };
  const last = (i: number) => {
    runExperts(i + 1);
    let ready = eEnd[i]!;
    if (esp) {
      if (intraOnInter) {
        inter = Math.max(inter, ready) + sc;
        sEnd[i] = inter;
      } else {
        intra = Math.max(intra, ready) + sc;
        sEnd[i] = intra;
      }
      ready = sEnd[i]!;
    }
    inter = Math.max(inter, ready) + a;
    lastEnd = Math.max(lastEnd, inter);
  };
  const lookahead = style.kind === "interleaved" ? Math.max(1, Math.min(r, style.lookahead)) : r;
  for (let i = 0; i < lookahead; i++) first(i);
  let gradDone = false;
  const gradSlot = () => {
    if (!gradDone) {
      inter += grad;
      gradDone = true;
    }
  };
  for (let i = lookahead; i < r; i++) {
    last(i - lookahead);
    first(i);
  }
  gradSlot();
  for (let i = r - lookahead; i < r; i++) last(i);
  runExperts(r);
  return Math.max(Math.max(lastEnd, compute) + post, intra, inter);
}

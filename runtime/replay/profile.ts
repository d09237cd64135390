/**
 * `fsmoec profile --backend host` (ARCHITECTURE.md, "Runtime": profiling, the paper's online
 * profiling): time every op class on the host backend over a sweep of sizes, fit t = α + β·n by
 * least squares per class (and per group for collectives, per direction and GEMM count for the
 * expert FFN), and return a profile (`fsmoe-profile/1`, compiler/cost/profiles.ts) that a
 * cluster's `profile` field can name, so that predicted and measured times can be compared on
 * the same machine.
 */
import type { Profile, ProfileEntry } from "../../compiler/cost/profiles.js";
import type { Plan } from "../../compiler/plan/schema.js";
import { checkedJob, layerJobSource, type LayerJobSpec } from "./fixtures.js";
import { planFor, replay } from "./index.js";

/** One measured op: its class key, size (elements or MACs) and median time over ranks. */
export interface Sample {
  readonly op: ProfileEntry["op"];
  readonly group?: string;
  readonly dir?: "fwd" | "bwd";
  readonly gemms?: number;
  readonly n: number;
  readonly us: number;
}

/** A fitted line with its quality. */
export interface Fit {
  readonly alphaUs: number;
  readonly betaUs: number;
  /** Coefficient of determination of the fit (1: exact). */
  readonly r2: number;
  readonly samples: number;
}

/** Least squares t = α + β·n with α, β ≥ 0 (a negative intercept refits through the origin, a negative slope gives the mean). */
export function fitLine(points: readonly { n: number; us: number }[]): Fit {
  const k = points.length;
  const mean = (f: (p: { n: number; us: number }) => number) => points.reduce((s, p) => s + f(p), 0) / Math.max(1, k);
  const mn = mean((p) => p.n);
  const mt = mean((p) => p.us);
  const sxx = points.reduce((s, p) => s + (p.n - mn) ** 2, 0);
  const sxy = points.reduce((s, p) => s + (p.n - mn) * (p.us - mt), 0);
  let beta = sxx > 0 ? sxy / sxx : 0;
  let alpha = mt - beta * mn;
  if (beta < 0) {
    beta = 0;
    alpha = mt;
  } else if (alpha < 0) {
    alpha = 0;
    const snn = points.reduce((s, p) => s + p.n * p.n, 0);
    beta = snn > 0 ? points.reduce((s, p) => s + p.n * p.us, 0) / snn : 0;
  }
  const ssTot = points.reduce((s, p) => s + (p.us - mt) ** 2, 0);
  const ssRes = points.reduce((s, p) => s + (p.us - alpha - beta * p.n) ** 2, 0);
  return { alphaUs: alpha, betaUs: beta, r2: ssTot > 0 ? 1 - ssRes / ssTot : 1, samples: k };
}

/**
 * The samples of one replayed plan: per op, the median over ranks of its mean time — for
 * collectives the transfer alone, without the wait for peers that the schedule's dependencies
 * (and so the simulation) account for.
 */
export function samplesOf(plan: Plan, opUs: readonly Float64Array[]): Sample[] {
  const gemms = plan.job.model.activation === "swiglu" || plan.job.model.activation === "geglu" ? 3 : 2;
  const out: Sample[] = [];
  for (const op of plan.ops) {
    const times = opUs.map((r) => r[op.id]!).sort((a, b) => a - b);
    const us = times[times.length >> 1]!;
    switch (op.kind) {
      case "all_to_all":
      case "all_gather":
      case "reduce_scatter":
      case "all_reduce":
        if (op.group !== undefined && plan.groups.find((g) => g.name === op.group)!.size > 1) out.push({ op: op.kind, group: op.group, n: op.elements, us });
        break;
      case "expert":
        out.push({ op: "expert_gemm", dir: op.dir, gemms, n: op.macs, us });
        break;
      case "gate":
        // The router GEMM dominates the gate: its line prices the host's small dense GEMMs.
        if (op.dir === "fwd") out.push({ op: "dense_gemm", n: op.macs, us });
        break;
      case "order":
      case "iorder":
        out.push({ op: "memory", n: op.elements, us });
        break;
      default:
        break;
    }
  }
  return out;
}

/** Group samples by class key and fit each. */
export function fitSamples(samples: readonly Sample[]): (ProfileEntry & { r2: number; samples: number })[] {
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const key = JSON.stringify([s.op, s.group ?? null, s.dir ?? null, s.gemms ?? null]);
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const out: (ProfileEntry & { r2: number; samples: number })[] = [];
  for (const list of groups.values()) {
    const s = list[0]!;
    const f = fitLine(list);
    out.push({
      op: s.op,
      ...(s.group !== undefined && { group: s.group }),
      ...(s.dir !== undefined && { dir: s.dir }),
      ...(s.gemms !== undefined && { gemms: s.gemms }),
      alphaUs: Math.round(f.alphaUs * 1000) / 1000,
      betaUs: f.betaUs,
      r2: f.r2,
      samples: f.samples,
    });
  }
  return out.sort((a, b) => a.op.localeCompare(b.op) || (a.group ?? "").localeCompare(b.group ?? "") || (a.dir ?? "").localeCompare(b.dir ?? "") || (a.gemms ?? 0) - (b.gemms ?? 0));
}

/** The sweep: 4 ranks (2 nodes × 2, ESP over the node, EP over the rail), hidden 32…256, 32 or 128 tokens per rank, 2- and 3-GEMM experts. */
export function sweepSpecs(): LayerJobSpec[] {
  const out: LayerJobSpec[] = [];
  for (const activation of ["gelu", "swiglu"] as const)
    for (const hidden of [32, 64, 128, 256])
      for (const seqLen of [32, 128]) out.push({ nodes: 2, gpus: 2, hidden, expertHidden: 2 * hidden, seqLen, microBatch: 2, activation, pipeline: "2", schedule: "fsmoe" });
  return out;
}

/** Profile the host backend: replay the sweep, fit, and return the profile with each fit's quality. */
export async function profileHost(
  options: { iterations?: number; name?: string; specs?: readonly LayerJobSpec[]; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ profile: Profile; fits: ReturnType<typeof fitSamples> }> {
  const specs = options.specs ?? sweepSpecs();
  const samples: Sample[] = [];
  for (const [i, spec] of specs.entries()) {
    const job = checkedJob(layerJobSource(spec));
    const { plan, diagnostics } = planFor(job, "fsmoe");
    if (!plan) throw new Error(`the profiling job does not compile: ${diagnostics.map((d) => d.message).join("; ")}`);
    const r = await replay(plan, { iterations: options.iterations ?? 5, timeoutMs: 60_000 });
    if (!r.ok) throw new Error(r.error);
    samples.push(...samplesOf(plan, r.ranks.map((x) => x.workUs)));
    options.onProgress?.(i + 1, specs.length);
  }
  const fits = fitSamples(samples);
  const profile: Profile = {
    format: "fsmoe-profile/1",
    name: options.name ?? "host",
    description: `Fitted on the host backend (fp32 kernels, ranks as threads, in-process collectives) by fsmoec profile: ${specs.length} layer jobs on 4 ranks, α in µs, β in µs per element or MAC.`,
    entries: fits.map(({ r2: _r2, samples: _n, ...e }) => e),
  };
  return { profile, fits };
}

/**
 * Replays whose ranks are MPI processes (ARCHITECTURE.md, "Runtime"; native/README.md,
 * "Transports"): under `mpirun -np W`, every process replays its own rank with the same executor,
 * verifies that rank against the reference (which every process runs: it is cheap), and the
 * processes exchange a small JSON report so that each knows the combined verdict, loss, iteration
 * times and trace, and rank 0 can print them.
 */
import type { NativeAddon, NativeRank } from "./addon.js";
import { compare, type Comparison } from "./compare.js";
import { reference, replay, type ReplayOptions } from "./index.js";

/** This process's place in an MPI job. */
export interface MpiJob {
  readonly rank: number;
  readonly size: number;
}

/** The MPI job this process belongs to, undefined when ranks are threads, or the reason MPI cannot be used. */
export function mpiJob(addon: NativeAddon): MpiJob | { readonly error: string } | undefined {
  const m = typeof addon.mpi === "function" ? addon.mpi() : null;
  if (!m) return undefined;
  if (m.error) return { error: m.error };
  return { rank: m.rank, size: m.size };
}

/** What one process tells the others after its run. */
export interface ProcessReport {
  readonly rank: number;
  readonly loss: number;
  readonly iterationUs: readonly number[];
  readonly startUs: readonly number[];
  readonly endUs: readonly number[];
  readonly verify?: { readonly comparison: Comparison; readonly referenceLoss: number; readonly lossScale: number };
}

/** The combined outcome of every process, or the failure of this one (its peers cannot finish: abort the job). */
export type MpiOutcome =
  | { readonly ranks: readonly NativeRank[]; readonly iterationUs: readonly number[]; readonly comparison?: Comparison }
  | { readonly error: string };

/** Replay this process's rank (and verify it), then combine every process's report. */
export async function replayOverMpi(addon: NativeAddon, text: string, options: ReplayOptions, verify: boolean): Promise<MpiOutcome> {
  const [run, ref] = await Promise.all([replay(text, options), verify ? reference(text) : undefined]);
  if (!run.ok) return { error: run.error };
  if (ref && !ref.ok) return { error: ref.error };
  const first = run.firstRank ?? 0;
  const mine = run.ranks[0];
  if (!mine || run.ranks.length !== 1) return { error: `expected one rank from this MPI process, got ${run.ranks.length}` };
  let verified: ProcessReport["verify"];
  if (ref) {
    const want = ref.ranks[first];
    if (!want) return { error: `the reference has no rank ${first}` };
    const c = compare([mine], [want]);
    verified = {
      comparison: { ...c, tensors: c.tensors.map((t) => ({ ...t, rank: first })), routing: c.routing.map((t) => ({ ...t, rank: first })), missing: c.missing.map((m) => m.replace(/^rank 0\b/, `rank ${first}`)) },
      referenceLoss: want.loss,
      lossScale: want.lossScale,
    };
  }
  const report: ProcessReport = { rank: first, loss: mine.loss, iterationUs: run.iterationUs, startUs: Array.from(mine.startUs), endUs: Array.from(mine.endUs), ...(verified && { verify: verified }) };
  let texts: string[];
  try {
    texts = addon.mpiAllgather(JSON.stringify(report), 4 * (options.timeoutMs ?? 10_000) + 120_000);
  } catch (e) {
    return { error: (e as Error).message };
  }
  const reports = texts.map((t) => JSON.parse(t) as ProcessReport).sort((a, b) => a.rank - b.rank);
  return combine(reports, verify);
}

/** Every process's report as one outcome: ranks in order, per-iteration times the slowest process's, one verdict. */
export function combine(reports: readonly ProcessReport[], verify: boolean): MpiOutcome {
  const ranks: NativeRank[] = reports.map((r) => ({
    loss: r.loss,
    lossScale: r.verify?.lossScale ?? 0,
    tensors: {},
    ints: {},
    opUs: new Float64Array(0),
    workUs: new Float64Array(0),
    cpuUs: new Float64Array(0),
    prologueUs: 0,
    startUs: Float64Array.from(r.startUs),
    endUs: Float64Array.from(r.endUs),
  }));
  const iterations = Math.max(0, ...reports.map((r) => r.iterationUs.length));
  const iterationUs = Array.from({ length: iterations }, (_, i) => Math.max(...reports.map((r) => r.iterationUs[i] ?? 0)));
  if (!verify) return { ranks, iterationUs };
  const parts = reports.map((r) => r.verify);
  if (parts.some((p) => !p)) return { error: "an MPI process sent no verification" };
  const tensors = parts.flatMap((p) => p!.comparison.tensors);
  const routing = parts.flatMap((p) => p!.comparison.routing);
  const missing = parts.flatMap((p) => p!.comparison.missing);
  const loss = reports.reduce((s, r) => s + r.loss, 0);
  const refLoss = parts.reduce((s, p) => s + p!.referenceLoss, 0);
  const scale = parts.reduce((s, p) => s + p!.lossScale, 0);
  const tolerance = parts[0]!.comparison.tolerance;
  const relError = Math.abs(loss - refLoss) / Math.max(scale, Number.MIN_VALUE);
  const lossOk = relError <= tolerance;
  const ok = missing.length === 0 && lossOk && tensors.length > 0 && tensors.every((t) => t.ok) && routing.every((t) => t.mismatches === 0);
  const comparison: Comparison = {
    ok,
    tolerance,
    tensors,
    routing,
    loss: { replay: loss, reference: refLoss, relError, ok: lossOk },
    missing,
    maxRelError: tensors.reduce((m, t) => Math.max(m, t.relError), 0),
  };
  return { ranks, iterationUs, comparison };
}

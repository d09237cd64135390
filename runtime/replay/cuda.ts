/**
 * The CUDA backend through the addon (ARCHITECTURE.md, "Runtime": native/src/cuda): replay a plan
 * on a GPU with `runCuda` and judge it against the host reference with the GPU check's
 * tolerances (fp32 1e-4, bf16 GEMM operands 2e-2). The addon has the backend where nvcc was found
 * when it was built; elsewhere, and on machines without a device, the run's error starts with
 * "no CUDA device: ". Every function takes the addon as an argument (default: the built one), so
 * tests can pass an addon linked against the CPU stand-in of the CUDA runtime.
 */
import type { Plan } from "../../compiler/plan/schema.js";
import { requireAddon, type NativeAddon, type NativeCudaResult, type NativeRank } from "./addon.js";
import { compare, type Comparison } from "./compare.js";

/** Options of a CUDA replay. */
export interface CudaReplayOptions {
  /** Timed CUDA graph launches (and up to 5 timed eager iterations); default 1. */
  readonly iterations?: number;
  /** How long the GPU or a peer may take before the run fails (ms, default 300 000). */
  readonly timeoutMs?: number;
  /** bf16: expert and dispatch/combine GEMM operands rounded to bf16, fp32 accumulation. */
  readonly precision?: "fp32" | "bf16";
  /** loopback: every rank in this process on one GPU; nccl: this process is one rank of a launcher's world; auto: nccl under a launcher. */
  readonly comm?: "auto" | "loopback" | "nccl";
  /** cuBLAS (dlopened) or the built-in GEMM kernel; auto: cuBLAS when it loads. */
  readonly gemm?: "auto" | "cublas" | "builtin";
  /** false: no CUDA graph; the results and times come from eager iterations. */
  readonly graph?: boolean;
}

/** The tolerance a CUDA replay is judged with: fp32 1e-4 (GPU reductions reorder sums), bf16 operands 2e-2. */
export const CUDA_TOLERANCE: Readonly<Record<"fp32" | "bf16", number>> = { fp32: 1e-4, bf16: 2e-2 };

/** Whether an error says that no CUDA device (or no CUDA backend) is here, as opposed to a failed run. */
export function isNoDevice(error: string): boolean {
  return error.startsWith("no CUDA device") || error.startsWith("no usable CUDA device");
}

function optionsJson(o: CudaReplayOptions): string {
  return JSON.stringify({
    iterations: o.iterations ?? 1,
    timeoutMs: o.timeoutMs ?? 300_000,
    precision: o.precision ?? "fp32",
    comm: o.comm ?? "auto",
    gemm: o.gemm ?? "auto",
    graph: o.graph ?? true,
  });
}

/** An addon that predates runCuda answers this instead of throwing. */
function missing(): NativeCudaResult {
  return { ok: false, error: "the native runtime was built without runCuda (an older build); rebuild it with `npm run build:native`" };
}

/** Replay a plan on the CUDA backend (validated by the addon's loader first). */
export function replayCuda(plan: Plan | string, options: CudaReplayOptions = {}, addon: NativeAddon = requireAddon()): Promise<NativeCudaResult> {
  if (typeof addon.runCuda !== "function") return Promise.resolve(missing());
  return addon.runCuda(typeof plan === "string" ? plan : JSON.stringify(plan), optionsJson(options));
}

/** The outcome of `verifyCuda`: the GPU run, the verdict against the host reference, or the error that stopped either. */
export type CudaVerification =
  | { readonly ok: boolean; readonly comparison: Comparison; readonly replay: Extract<NativeCudaResult, { ok: true }> }
  | { readonly ok: false; readonly error: string };

/**
 * Replay on the GPU, then run the reference on the host and compare (`fsmoec run --backend cuda
 * --verify`). The reference runs only after the GPU run succeeded; under a launcher (comm nccl)
 * only the ranks this process ran are compared.
 */
export async function verifyCuda(plan: Plan | string, options: CudaReplayOptions = {}, addon: NativeAddon = requireAddon()): Promise<CudaVerification> {
  const text = typeof plan === "string" ? plan : JSON.stringify(plan);
  const run = await replayCuda(text, options, addon);
  if (!run.ok) return { ok: false, error: run.error };
  const ref = await addon.reference(text);
  if (!ref.ok) return { ok: false, error: `the host reference: ${ref.error}` };
  const here: NativeRank[] = [];
  for (const r of run.ranksHere) {
    const x = ref.ranks[r];
    if (!x) return { ok: false, error: `the cuda backend reported rank ${r}, the reference has ${ref.ranks.length} ranks` };
    here.push(x);
  }
  const comparison = compare(run.ranks, here, CUDA_TOLERANCE[options.precision ?? "fp32"]);
  return { ok: comparison.ok, comparison, replay: run };
}

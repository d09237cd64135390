/**
 * Loading the native host runtime (ARCHITECTURE.md, "Runtime"; native/): the Node-API addon
 * that cmake-js builds into native/build/Release/. A missing or broken build is a message that
 * names the command that builds it, never a stack trace.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The command that builds the addon. */
export const BUILD_COMMAND = "npm run build:native";

/** Where cmake-js puts the addon. */
export const ADDON_PATH = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "native", "build", "Release", "fsmoec_native.node");

/** One rank's tensors (last iteration), loss and op times, as the addon returns them. */
export interface NativeRank {
  readonly loss: number;
  /** Σ |y ⊙ cotangent|: the scale the loss is judged against. */
  readonly lossScale: number;
  readonly tensors: Readonly<Record<string, Float32Array>>;
  readonly ints: Readonly<Record<string, Int32Array>>;
  /** Mean measured time of each op (by op id), µs. */
  readonly opUs: Float64Array;
  /** The same without a collective's wait for its peers: its transfer alone (kernels: equal to opUs). */
  readonly workUs: Float64Array;
  /** Mean CPU time of the thread that ran each op, µs: its cost on a core of its own, without waits or time slices lost to other threads (empty with empty kernels). */
  readonly cpuUs: Float64Array;
  /** Mean CPU time of the rank's thread before each iteration's ops: generating its inputs and zeroing its gradients, µs (not part of the measured iteration). */
  readonly prologueUs: number;
  /** Start and end of each op in the last iteration, µs from the iteration's start. */
  readonly startUs: Float64Array;
  readonly endUs: Float64Array;
}

/** The result of a run or a reference: every rank's view, or the error that stopped it. */
export type NativeResult =
  | {
      readonly ok: true;
      readonly iterationUs: readonly number[];
      /** CPU time of the whole process (every rank's threads) during each iteration, µs. */
      readonly iterationCpuUs: readonly number[];
      readonly ranks: readonly NativeRank[];
      /** ranks[i] is rank firstRank + i (over MPI: this process's rank). */
      readonly firstRank?: number;
      /** Set when ranks are MPI processes: how many the job has. */
      readonly processes?: number;
    }
  | { readonly ok: false; readonly error: string };

/** What the CUDA backend adds to a run's result: where it ran and how long its phases took. */
export interface NativeCudaRun {
  /** The plan ranks this process ran, in `ranks` order (loopback: all of them). */
  readonly ranksHere: readonly number[];
  /** "NVIDIA H200 (sm_90, 132 SMs, 141 GiB)". */
  readonly device: string;
  /** "cuBLAS (libcublas.so.13)" or "built-in". */
  readonly gemm: string;
  /** "loopback (4 ranks on one GPU)" or "NCCL …, rank 1 of 8". */
  readonly comm: string;
  /** µs: setup, the warm-up iteration, the mean eager iteration, graph capture, the mean graph launch. */
  readonly timing: {
    readonly setupUs: number;
    readonly firstUs: number;
    readonly eagerUs: number;
    readonly captureUs: number;
    readonly graphUs: number;
    readonly eagerIterations: number;
    readonly graphIterations: number;
    /** How the op times were taken: "graph" or "eager". */
    readonly profileSource: string;
  };
}

/** The result of `runCuda`: a run's result with the CUDA details, or the error ("no CUDA device: …" where there is none). */
export type NativeCudaResult = (Extract<NativeResult, { ok: true }> & NativeCudaRun) | { readonly ok: false; readonly error: string };

/** What `cudaDevice` says: whether the CUDA backend is compiled in, and the first device or why there is none. */
export interface NativeCudaDevice {
  readonly compiled: boolean;
  readonly ok: boolean;
  readonly error?: string;
  readonly count?: number;
  readonly name?: string;
  readonly computeCapability?: number;
  readonly smCount?: number;
  readonly memoryBytes?: number;
}

/** What `validate` says about a plan. */
export interface NativeValidation {
  readonly ok: boolean;
  readonly error?: string;
  readonly ops?: number;
  readonly world?: number;
  readonly arenaBytes?: number;
}

/** The addon's functions. Plans and options travel as JSON text. */
export interface NativeAddon {
  validate(plan: string, options?: string): NativeValidation;
  run(plan: string, options?: string): Promise<NativeResult>;
  reference(plan: string, options?: string): Promise<NativeResult>;
  philox(counter: readonly number[], key: readonly number[]): number[];
  uniform(seed: number, tensor: string, index: number, a: number): number;
  /** The host's measured fp32 peak, GFLOP/s: `threads` threads of register-resident multiply-add chains for about `seconds` each, best of three. */
  peakGflops(threads: number, seconds: number): number;
  /** backends: the comma-separated backends this build has ("host" or "host,cuda"). */
  buildInfo(): { readonly cuda: boolean; readonly mpi: boolean; readonly hardwareThreads: number; readonly backends: string };
  /** This process's rank and the job's size when an MPI launcher started it (and the build has MPI); null otherwise. */
  mpi(): { readonly rank: number; readonly size: number; readonly error?: string } | null;
  /** Every MPI process's text, in rank order (throws on a timeout or without MPI). */
  mpiAllgather(text: string, timeoutMs: number): string[];
  /** MPI_Finalize (once; a no-op without MPI). */
  mpiFinalize(): void;
  /** MPI_Abort of the whole job with this exit code (a no-op without MPI). */
  mpiAbort(code: number): void;
  /** Replay on the CUDA backend; options { iterations, timeoutMs, precision, comm, gemm, graph } as JSON (runtime/replay/cuda.ts). Absent in builds older than it. */
  runCuda?(plan: string, options?: string): Promise<NativeCudaResult>;
  /** The CUDA device (nothing runs). Absent in builds older than it. */
  cudaDevice?(): NativeCudaDevice;
}

let cached: { addon?: NativeAddon; error?: string } | undefined;

/**
 * The addon (from `path`; by default from $FSMOEC_ADDON_PATH when set, e.g. a build elsewhere or
 * the tests' build against the CPU stand-in of the CUDA runtime, else where cmake-js builds it),
 * or a message saying why it cannot be loaded and how to build it.
 */
export function loadAddon(path?: string): { addon?: NativeAddon; error?: string } {
  const override = process.env.FSMOEC_ADDON_PATH;
  if (path === undefined && override) return loadAddonFrom(override);
  return loadAddonFrom(path ?? ADDON_PATH);
}

/** Loads (and, for the default build, caches) the addon at `path`; Node caches every path's module itself. */
function loadAddonFrom(path: string): { addon?: NativeAddon; error?: string } {
  if (path === ADDON_PATH && cached) return cached;
  let r: { addon?: NativeAddon; error?: string };
  if (!existsSync(path)) {
    r = { error: `the native host runtime is not built (no ${path}); run \`${BUILD_COMMAND}\`` };
  } else {
    try {
      r = { addon: createRequire(import.meta.url)(path) as NativeAddon };
    } catch (e) {
      r = { error: `the native host runtime at ${path} cannot be loaded (${(e as Error).message}); rebuild it with \`${BUILD_COMMAND}\`` };
    }
  }
  if (path === ADDON_PATH) cached = r;
  return r;
}

/** The addon; throws an Error with the build command when it is missing. */
export function requireAddon(): NativeAddon {
  const r = loadAddon();
  if (!r.addon) throw new Error(r.error);
  return r.addon;
}

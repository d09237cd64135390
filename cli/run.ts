/**
 * `fsmoec run FILE --backend host|cuda [--verify] [--precision fp32|bf16] [--schedule S]
 * [--iterations N] [--shrink] [--trace FILE]` (ARCHITECTURE.md, "The CLI" and "Runtime"): compile
 * a job (or read a plan.json), replay it on the native host runtime or on a GPU through the
 * addon's CUDA backend, and with --verify judge it against the unscheduled host reference (host
 * 1e-5; cuda 1e-4 fp32, 2e-2 bf16). A thin shell over runtime/replay. Exit codes: 0 ok; 1 errors
 * in the input (diagnostics, or a plan the runtime rejects before running it); 2 usage; 3 a
 * runtime failure (the addon is not built, no CUDA device, a collective timed out, verification
 * failed, a file could not be written). The replay runs off the event loop, so the command
 * finishes asynchronously and also sets process.exitCode when it is done. Under `mpirun -np W`
 * (an addon built with MPI) each process replays its own rank on the host backend
 * (runtime/replay/mpi.ts) and rank 0 reports.
 */
import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { check } from "../compiler/check/check.js";
import type { TrainJob } from "../compiler/check/program.js";
import { programText } from "../compiler/compile/index.js";
import { hasErrors, sortDiagnostics } from "../compiler/diagnostics/diagnostic.js";
import { renderText } from "../compiler/diagnostics/render.js";
import type { Plan } from "../compiler/plan/schema.js";
import { STRATEGY_NAMES, type StrategyName } from "../compiler/schedule/index.js";
import { chromeTrace, loadAddon, planFor, shrink, verify, replay, type Comparison } from "../runtime/replay/index.js";
import { replayCuda, verifyCuda, type CudaReplayOptions } from "../runtime/replay/cuda.js";
import type { NativeCudaRun } from "../runtime/replay/addon.js";
import type { Io } from "./compile.js";
import { Exit } from "./exit.js";
import { writeFileAtomic } from "./io.js";
import { linksOf, pricerOf, simulate } from "../runtime/simulate/index.js";
import { mpiJob, replayOverMpi } from "../runtime/replay/mpi.js";

interface RunFlags {
  readonly backend: string;
  readonly verify?: boolean;
  readonly precision: string;
  readonly schedule?: string;
  readonly job?: string;
  readonly iterations: string;
  readonly shrink?: boolean;
  readonly trace?: string;
  readonly timeout: string;
  readonly format: string;
  readonly skip?: string;
}

/** What the command settles on before running: the plan (and its text) and what --shrink did. */
interface Prepared {
  readonly plan: Plan;
  readonly text: string;
  readonly notes: readonly string[];
  /** The checked (and shrunk) job, when the plan was compiled here. */
  readonly job?: TrainJob;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Register `run` on the CLI (`profile` is in profile.ts). */
export function registerRunCommands(cli: Command, io: Io, setExit: (code: number) => void, version: string): void {
  const finish = (code: number) => {
    setExit(code);
    if (code !== Exit.ok) process.exitCode = code;
  };
  cli
    .command("run <file>")
    .description("replay a job's plan on a backend (host: real fp32 math; cuda: one GPU, every rank in this process); --verify compares it with the unscheduled host reference")
    .addOption(new Option("--backend <backend>", "where to run (cuda: exit 3 with 'no CUDA device' where there is none)").choices(["host", "cuda"]).default("host"))
    .option("--verify", "compare outputs, loss, every gradient and the routing with the reference (tolerance: host 1e-5, cuda 1e-4 fp32 / 2e-2 bf16)")
    .addOption(new Option("--precision <precision>", "cuda: bf16 rounds expert and dispatch/combine GEMM operands to bf16 (fp32 accumulation)").choices(["fp32", "bf16"]).default("fp32"))
    .addOption(new Option("--schedule <strategy>", "override the file's schedule").choices([...STRATEGY_NAMES]))
    .option("--job <name>", "the train job to run (needed when the file has several)")
    .option("--iterations <n>", "iterations to run and time", "1")
    .option("--shrink", "scale the job to host size, keeping its structure (at most 8 ranks, hidden at most 256, fp32)")
    .option("--trace <file>", "write a Chrome trace of the last iteration")
    .option("--timeout <ms>", "how long a collective may wait for its peers", "10000")
    .addOption(new Option("--format <format>", "how to report").choices(["text", "json"]).default("text"))
    // Seeded faults for tests: RANK:OP[,RANK:OP…], ops that a rank skips.
    .addOption(new Option("--skip <faults>").hideHelp())
    .addHelpText(
      "after",
      "\nRanks run as threads of this process, or as MPI processes when the native runtime was built with MPI and\n" +
        "mpirun starts the command: mpirun -np W fsmoec run FILE --backend host --verify (W: the job's ranks;\n" +
        "rank 0 prints the report; set FSMOEC_TRANSPORT=threads to run every rank as threads in each process).\n",
    )
    .action(async (file: string, flags: RunFlags) => {
      try {
        finish(await runCommand(file, flags, io, version));
      } catch (e) {
        io.err(`fsmoec: internal error: ${(e as Error).message}\n`);
        finish(Exit.runtime);
      } finally {
        loadAddon().addon?.mpiFinalize?.();
      }
    });
}

async function runCommand(file: string, flags: RunFlags, processIo: Io, version: string): Promise<number> {
  // Under mpirun every process runs this command; rank 0 reports, the others only their own failures.
  const mpi = loadAddon().addon ? mpiJob(loadAddon().addon!) : undefined;
  const io: Io = mpi && "rank" in mpi && mpi.rank !== 0 ? { out: () => {}, err: () => {} } : processIo;
  if (mpi && "error" in mpi) {
    io.err(`fsmoec: error: ${mpi.error}\n`);
    return Exit.runtime;
  }
  if (!mpi && loadAddon().addon && !loadAddon().addon!.buildInfo().mpi && (process.env.OMPI_COMM_WORLD_SIZE ?? process.env.PMI_SIZE) !== undefined)
    io.err(`fsmoec: note: started by an MPI launcher, but the native runtime was built without MPI: this process runs every rank as threads\n`);
  const skip = parseSkip(flags.skip);
  if (typeof skip === "string") {
    io.err(`fsmoec: error: ${skip}\n`);
    return Exit.usage;
  }
  const iterations = Number(flags.iterations);
  const timeoutMs = Number(flags.timeout);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 100_000) {
    io.err(`fsmoec: error: --iterations expects a whole number from 1 to 100000, got '${flags.iterations}'\n`);
    return Exit.usage;
  }
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    io.err(`fsmoec: error: --timeout expects milliseconds, got '${flags.timeout}'\n`);
    return Exit.usage;
  }
  const cuda = flags.backend === "cuda";
  if (!cuda && flags.precision !== "fp32") {
    io.err(`fsmoec: error: --precision ${flags.precision} needs --backend cuda (the host backend computes in fp32)\n`);
    return Exit.usage;
  }
  const loaded = loadAddon();
  if (!loaded.addon) {
    io.err(`fsmoec: error: ${loaded.error}\n`);
    return Exit.runtime;
  }
  const prepared = prepare(file, flags, io, version);
  if (typeof prepared === "number") return prepared;
  const { plan, text } = prepared;
  const valid = loaded.addon.validate(text, limitsFor(flags));
  if (!valid.ok) {
    io.err(`${file}: error: the ${flags.backend} backend rejects this plan: ${valid.error}\n`);
    return Exit.inputErrors;
  }
  const options = { iterations, timeoutMs, ...(skip.length > 0 && { skip }) };
  const world = plan.job.cluster.nodes * plan.job.cluster.gpusPerNode;
  if (mpi && cuda) {
    io.err(`fsmoec: error: --backend cuda runs every rank of the plan in one process on one GPU; across processes use fsmoe-replay with --comm nccl (native/src/cuda/README.md)\n`);
    return Exit.usage;
  }
  if (mpi && world !== mpi.size) {
    io.err(`fsmoec: error: this job has ${world} ranks but mpirun started ${mpi.size} processes; run it with mpirun -np ${world} (one rank per process), or without mpirun (ranks as threads)\n`);
    return Exit.usage;
  }
  const json: Record<string, unknown> = { job: plan.job.name, strategy: plan.strategy, backend: flags.backend, ranks: plan.job.cluster.nodes * plan.job.cluster.gpusPerNode, ops: plan.ops.length, shrink: flags.shrink ? prepared.notes : [], notes: flags.shrink ? [] : prepared.notes };
  let ranks;
  let iterationUs: readonly number[];
  let comparison: Comparison | undefined;
  let gpu: NativeCudaRun | undefined;
  if (cuda) {
    const o: CudaReplayOptions = { iterations, timeoutMs, precision: flags.precision as "fp32" | "bf16", comm: "loopback" };
    const v = flags.verify ? await verifyCuda(text, o, loaded.addon) : await replayCuda(text, o, loaded.addon);
    if ("error" in v) {
      io.err(`fsmoec: error: ${v.error}\n`);
      return Exit.runtime;
    }
    const r = "replay" in v ? v.replay : v;
    if ("comparison" in v) comparison = v.comparison;
    gpu = r;
    ranks = r.ranks;
    iterationUs = r.iterationUs;
    json.cuda = { precision: flags.precision, device: r.device, gemm: r.gemm, comm: r.comm, timing: r.timing };
  } else if (mpi) {
    json.processes = mpi.size;
    const m = await replayOverMpi(loaded.addon, text, flags.verify ? options : { ...options, capture: false }, flags.verify === true);
    if ("error" in m) {
      // This process's failure: say it here (whatever its rank), then end the job, whose peers wait on it.
      processIo.err(`fsmoec: error: ${m.error}\n`);
      loaded.addon.mpiAbort(Exit.runtime);
      return Exit.runtime;
    }
    ranks = m.ranks;
    iterationUs = m.iterationUs;
    comparison = m.comparison;
  } else if (flags.verify) {
    const v = await verify(text, options);
    if ("error" in v) {
      io.err(`fsmoec: error: ${v.error}\n`);
      return Exit.runtime;
    }
    ranks = v.replay.ranks;
    iterationUs = v.replay.iterationUs;
    comparison = v.comparison;
  } else {
    const r = await replay(text, { ...options, capture: false });
    if (!r.ok) {
      io.err(`fsmoec: error: ${r.error}\n`);
      return Exit.runtime;
    }
    ranks = r.ranks;
    iterationUs = r.iterationUs;
  }
  const measured = median(iterationUs);
  json.iterationUs = iterationUs;
  json.medianIterationUs = measured;
  json.predictedIterationUs = plan.predicted.iterationUs;
  // A host profile says the ranks share CPU cores: the simulator's figure is the one to compare.
  const pricer = prepared.job ? pricerOf(prepared.job) : null;
  const simulated = prepared.job && pricer?.model.sharedCores ? simulate({ plan, links: linksOf(prepared.job.cluster), pricer, origin: `cluster '${prepared.job.cluster.name}'` }).run.makespanUs : undefined;
  if (simulated !== undefined) json.simulatedIterationUs = simulated;
  json.loss = ranks.reduce((s, r) => s + r.loss, 0);
  if (flags.format === "text") {
    io.out(`run ${plan.job.name} (${plan.strategy}) on the ${flags.backend} backend: ${mpi ? `${mpi.size} MPI processes` : `${json.ranks} ranks`}, ${plan.ops.length} ops per rank, ${plan.job.microBatches} micro-batch${plan.job.microBatches === 1 ? "" : "es"}\n`);
    for (const n of prepared.notes) io.out(`  ${flags.shrink ? "shrunk" : "note"}: ${n}\n`);
    io.out(`  ${iterations} iteration${iterations === 1 ? "" : "s"}: ${(measured / 1000).toFixed(3)} ms per iteration (median), predicted ${(plan.predicted.iterationUs / 1000).toFixed(3)} ms for ${plan.job.cluster.name}; loss ${Number(json.loss).toPrecision(8)}\n`);
    if (simulated !== undefined)
      io.out(`  simulated ${(simulated / 1000).toFixed(3)} ms with profile '${plan.costModel.name}' (its ranks share ${pricer!.model.sharedCores!.cores} CPU cores): ${(((simulated - measured) / measured) * 100).toFixed(1)}% against the measured median\n`);
    if (gpu) {
      const t = gpu.timing;
      io.out(`  cuda: ${gpu.device}; ${flags.precision}; GEMM ${gpu.gemm}; comm ${gpu.comm}\n`);
      io.out(`  cuda: first ${(t.firstUs / 1000).toFixed(3)} ms, eager ${(t.eagerUs / 1000).toFixed(3)} ms, CUDA graph ${(t.graphUs / 1000).toFixed(3)} ms per iteration (capture ${(t.captureUs / 1000).toFixed(3)} ms)\n`);
    }
  }
  if (flags.trace) {
    try {
      writeFileAtomic(flags.trace, JSON.stringify(chromeTrace(plan, ranks)) + "\n");
      if (flags.format === "text") io.err(`wrote ${flags.trace}\n`);
    } catch (e) {
      io.err(`fsmoec: error: cannot write ${flags.trace}: ${(e as Error).message}\n`);
      return Exit.runtime;
    }
  }
  if (comparison) {
    json.verify = verifyJson(comparison);
    if (flags.format === "text") printVerify(comparison, io);
  }
  if (flags.format === "json") io.out(JSON.stringify(json, null, 2) + "\n");
  return comparison && !comparison.ok ? Exit.runtime : Exit.ok;
}

/** The loader's limits for the run: a GPU's for an unverified cuda run, the host's (the loader's defaults) when the host runs it or its reference. */
function limitsFor(flags: RunFlags): string | undefined {
  return flags.backend === "cuda" && !flags.verify ? JSON.stringify({ maxWorld: 64, maxArenaBytes: 2 ** 40, maxTotalBytes: 2 ** 42 }) : undefined;
}

/** Compile the job (shrunk if asked) or read the plan file. A number is the exit code of a failure already reported. */
function prepare(file: string, flags: RunFlags, io: Io, version: string): Prepared | number {
  if (file.endsWith(".json")) {
    if (flags.shrink) {
      io.err(`fsmoec: error: --shrink needs a .moe file (a plan's shapes are fixed)\n`);
      return Exit.usage;
    }
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      io.err(`${file}: error: cannot read: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}\n`);
      return Exit.inputErrors;
    }
    let plan: Plan;
    try {
      plan = JSON.parse(text) as Plan;
    } catch {
      // The native loader says where the JSON breaks.
      const v = loadAddon().addon!.validate(text);
      io.err(`${file}: error: the host backend rejects this plan: ${v.error ?? "malformed JSON"}\n`);
      return Exit.inputErrors;
    }
    const v = loadAddon().addon!.validate(text, limitsFor(flags));
    if (!v.ok) {
      io.err(`${file}: error: the ${flags.backend} backend rejects this plan: ${v.error}\n`);
      return Exit.inputErrors;
    }
    return { plan, text, notes: [] };
  }
  const r = check(file);
  if (hasErrors(r.diagnostics)) {
    io.err(renderText(sortDiagnostics([...r.diagnostics]), (n) => r.sources.get(n)));
    return Exit.inputErrors;
  }
  const jobs = r.program.jobs.filter((j) => flags.job === undefined || j.name === flags.job);
  if (jobs.length !== 1) {
    io.err(
      flags.job !== undefined
        ? `fsmoec: error: no train job named '${flags.job}' in ${file}\n`
        : `fsmoec: error: ${file} has ${jobs.length} train jobs; run needs exactly one (use --job NAME: ${r.program.jobs.map((j) => j.name).slice(0, 8).join(", ")})\n`,
    );
    return Exit.usage;
  }
  let job: TrainJob = jobs[0]!;
  let notes: readonly string[] = [];
  if (flags.shrink) {
    const s = shrink(job);
    job = s.job;
    notes = s.notes;
  } else if (job.model.dtype !== "fp32") {
    // The runtime's plans are fp32 (cuda: --precision bf16 rounds GEMM operands): a job already small enough runs as it is, in fp32.
    notes = [`dtype ${job.model.dtype} → fp32 (${flags.backend === "cuda" ? "the cuda backend runs fp32 plans; --precision bf16 rounds GEMM operands" : "the host backend computes in fp32"})`];
    job = { ...job, model: { ...job.model, dtype: "fp32" } };
  }
  const strategy = (flags.schedule ?? job.schedule) as StrategyName;
  const { plan, diagnostics } = planFor(job, strategy, version, r.program.files[0] ?? file, programText(r));
  if (!plan) {
    io.err(renderText(sortDiagnostics([...diagnostics]), (n) => r.sources.get(n)));
    return Exit.inputErrors;
  }
  return { plan, text: JSON.stringify(plan), notes, job };
}

/** --skip RANK:OP[,RANK:OP…]: seeded faults (a rank skips an op); a string is the usage error. */
function parseSkip(text: string | undefined): { rank: number; op: number }[] | string {
  if (text === undefined) return [];
  const out: { rank: number; op: number }[] = [];
  for (const part of text.split(",")) {
    const m = /^(\d+):(\d+)$/.exec(part.trim());
    if (!m) return `--skip expects RANK:OP[,RANK:OP…], got '${text}'`;
    out.push({ rank: Number(m[1]), op: Number(m[2]) });
  }
  return out;
}

function verifyJson(c: Comparison): object {
  return {
    ok: c.ok,
    tolerance: c.tolerance,
    maxRelError: c.maxRelError,
    loss: c.loss,
    missing: c.missing,
    tensors: c.tensors.map((t) => ({ rank: t.rank, name: t.name, relError: t.relError, ok: t.ok })),
    routing: c.routing,
  };
}

function printVerify(c: Comparison, io: Io): void {
  const decisions = c.routing.reduce((n, r) => n + r.decisions, 0);
  const mismatched = c.routing.reduce((n, r) => n + r.mismatches, 0);
  const ranks = new Set(c.tensors.map((t) => t.rank)).size;
  io.out(
    `verify: ${c.ok ? "PASS" : "FAIL"} — ${c.tensors.length} tensors on ${ranks} rank${ranks === 1 ? "" : "s"}, max ‖x − ref‖/‖ref‖ = ${c.maxRelError.toExponential(2)} (tolerance ${c.tolerance.toExponential(0)}); ` +
      `routing ${mismatched === 0 ? "identical" : `DIFFERS in ${mismatched}`} (${decisions} decisions); loss ${c.loss.replay.toPrecision(8)} vs ${c.loss.reference.toPrecision(8)}${c.loss.ok ? "" : " (DIFFERS)"}\n`,
  );
  const byName = new Map<string, number>();
  for (const t of c.tensors) byName.set(t.name, Math.max(byName.get(t.name) ?? 0, t.relError));
  const width = Math.max(0, ...[...byName.keys()].map((n) => n.length));
  for (const [name, e] of byName) io.out(`  ${name.padEnd(width)}  ${e.toExponential(2)}${e <= c.tolerance ? "" : "  FAIL"}\n`);
  for (const m of c.missing) io.out(`  missing: ${m}\n`);
}

/**
 * The simulator (ARCHITECTURE.md, "runtime/simulate"): a discrete-event simulation of a plan on
 * its cluster — FIFO streams and events, per GPU a compute resource and its intra-node link,
 * the node's NICs shared by concurrent inter-node ops, communication kernels slowing
 * concurrent compute, and an imbalance mode in which expert loads follow a skew and each
 * collective waits for its slowest rank. It reports the iteration time, busy and idle time per
 * resource, exposed communication, the critical path, the lower bound, and where and why it
 * departs from the scheduler (its timeline and FSMoE's closed form).
 */
import type { Plan } from "../../compiler/plan/schema.js";
import { checkBlocks, type BlockCheck } from "./blocks.js";
import type { SharedCores } from "../../compiler/cost/model.js";
import { criticalPath, runEngine, type EngineResult } from "./engine.js";
import { prepare, type Prepared, type SimulationInput, type SimulationOptions } from "./input.js";
import { BALANCED_ROUTERS, skewText, type LayerSkew, type Skew } from "./skew.js";

export { AGREEMENT, checkBlocks, type BlockCheck } from "./blocks.js";
export { criticalPath, runEngine, type Busy, type CoreSharing, type Effect, type EngineResult } from "./engine.js";
export { inputFromCompiled, inputFromPlan, linkBytes, linksOf, prepare, pricerOf, type Links, type Prepared, type SimulationInput, type SimulationOptions } from "./input.js";
export { BALANCED_ROUTERS, expertShares, layerSkews, parseSkew, skewText, type LayerSkew, type Skew } from "./skew.js";

/** The options a simulation ran with, all filled in. */
export interface ResolvedOptions {
  readonly contention: boolean;
  readonly interference: number;
  readonly skew: Skew | null;
  /** The ranks share CPU cores (a host profile), or null. */
  readonly sharedCores: SharedCores | null;
}

/** A simulated plan. */
export interface Simulation {
  readonly plan: Plan;
  readonly options: ResolvedOptions;
  /** Where the link figures came from. */
  readonly origin: string;
  readonly prepared: Prepared;
  readonly run: EngineResult;
  /** Op indices from the first to the last op of the critical path. */
  readonly criticalPath: readonly number[];
  readonly skew: readonly LayerSkew[];
  /** Every MoE block against FSMoE's closed form. */
  readonly blocks: readonly BlockCheck[];
}

/** Fill in the defaults: contention on, no interference, no skew, no shared cores. */
export function resolveOptions(o: SimulationOptions = {}): ResolvedOptions {
  return { contention: o.contention ?? true, interference: Math.max(1, o.interference ?? 1), skew: o.skew ?? null, sharedCores: o.sharedCores ?? null };
}

/** Simulate a plan. */
export function simulate(input: SimulationInput, options: SimulationOptions = {}): Simulation {
  // Without an explicit factor, the cost model's own interference (a profile may fit one).
  // Likewise its shared cores (a host profile fits them).
  const o = resolveOptions({
    ...options,
    interference: options.interference ?? input.pricer?.model.interference,
    sharedCores: options.sharedCores === undefined ? (input.pricer?.model.sharedCores ?? null) : options.sharedCores,
  });
  const prepared = prepare(input, o);
  const world = input.plan.job.cluster.nodes * input.plan.job.cluster.gpusPerNode;
  const cores = o.sharedCores ? { perRank: o.sharedCores.cores / world, dispatchUs: o.sharedCores.dispatchUs, handoffUs: o.sharedCores.handoffUs ?? 0 } : null;
  const run = runEngine(prepared, o.contention, o.interference, cores);
  return {
    plan: input.plan,
    options: o,
    origin: input.origin,
    prepared,
    run,
    criticalPath: run.ok ? criticalPath(run) : [],
    skew: prepared.skew,
    blocks: run.ok ? checkBlocks(input.plan, prepared, run, prepared.skew) : [],
  };
}

/** Why the simulation's iteration time differs from the scheduler's prediction (empty when it does not). */
export function departures(sim: Simulation): string[] {
  const out: string[] = [];
  const r = sim.run;
  const ms = (x: number) => `${(x / 1000).toFixed(3)} ms`;
  if (sim.skew.some((s) => s.factor > 1)) {
    const worst = sim.skew.reduce((a, b) => (b.factor > a.factor ? b : a));
    out.push(`ranks are not symmetric: under skew ${skewText(sim.options.skew)} ep rank ${worst.rank} carries up to ${worst.factor.toFixed(2)}× the balanced volume, and every all-to-all, ESP collective and expert GEMM waits for it`);
  } else if (sim.options.skew && BALANCED_ROUTERS.has(sim.plan.job.model.router)) {
    out.push(`the ${sim.plan.job.model.router} router balances expert loads by construction: the skew changes nothing`);
  } else if (sim.skew.length > 0) {
    out.push(`the skew fits in the capacity headroom (largest load ${Math.max(...sim.skew.map((s) => s.load)).toFixed(2)} of the padded capacity): no op grew`);
  }
  if (r.nic.ops > 0) out.push(`contention on the NIC: ${r.nic.ops} ops shared it with another op, adding ${ms(r.nic.addedUs)} to their durations`);
  if (r.intra.ops > 0) out.push(`contention on the intra-node links: ${r.intra.ops} ops shared them with another op, adding ${ms(r.intra.addedUs)}`);
  if (sim.options.sharedCores) {
    const c = sim.options.sharedCores;
    const world = sim.plan.job.cluster.nodes * sim.plan.job.cluster.gpusPerNode;
    out.push(`the ${world} ranks share ${c.cores} CPU core${c.cores === 1 ? "" : "s"} (a host profile): every op pays the executor's ${c.dispatchUs.toFixed(2)} µs per op${c.handoffUs ? ` and ${c.handoffUs.toFixed(2)} µs per hand-off between threads` : ""}, and ${r.cores.ops} ops ran slower because the ranks' running ops outnumbered the cores, adding ${ms(r.cores.addedUs)}`);
  }
  if (r.interference.ops > 0) out.push(`interference ${sim.options.interference}: ${r.interference.ops} compute kernels ran beside a communication kernel, adding ${ms(r.interference.addedUs)}`);
  return out;
}

/**
 * What the simulator runs on (ARCHITECTURE.md, "runtime/simulate"): a plan, plus what the plan
 * alone does not say — the link figures that let it share a node's NICs and a GPU's intra-node
 * links between concurrent ops, and the cost model that re-prices ops whose size skew changes.
 * From a `.moe` file both come from the checked job; from a plan.json they come from the plan's
 * source when that file is still there with the same hash, and otherwise are absent (then every
 * op that crosses a link is taken to saturate it, and skew scales whole op times).
 *
 * `prepare` turns this into flat arrays: per op its stream, its time alone (the plan's
 * predictedUs, scaled by skew), its waits, and the fraction of each shared link it needs.
 */
import { createHash } from "node:crypto";
import { check } from "../../compiler/check/check.js";
import type { Cluster, TrainJob } from "../../compiler/check/program.js";
import { programText, type Compiled } from "../../compiler/compile/index.js";
import { costModelFor } from "../../compiler/cost/index.js";
import type { SharedCores } from "../../compiler/cost/model.js";
import { hasErrors } from "../../compiler/diagnostics/diagnostic.js";
import { Pricer } from "../../compiler/graph/pricing.js";
import { COLLECTIVES, type OpKind } from "../../compiler/graph/types.js";
import { lower } from "../../compiler/lower/workload.js";
import type { Plan, PlanOp } from "../../compiler/plan/schema.js";
import { layerSkews, SKEWED_ROLES, type LayerSkew, type Skew } from "./skew.js";

/** The shared links' capacities, from the cluster. */
export interface Links {
  /** All NICs of one node together, bytes per µs (bandwidth × efficiency × NICs). */
  readonly nicBytesPerUs: number;
  /** One GPU's intra-node link, bytes per µs (bandwidth × efficiency). */
  readonly intraBytesPerUs: number;
}

/** A plan with what the simulator needs beyond it. */
export interface SimulationInput {
  readonly plan: Plan;
  /** Link capacities, or null when unknown (then every link-crossing op saturates its link). */
  readonly links: Links | null;
  /** The job's cost model, or null (then skew scales an op's whole time, α included). */
  readonly pricer: Pricer | null;
  /** Where the link figures came from, for the report. */
  readonly origin: string;
}

/** How to simulate. */
export interface SimulationOptions {
  /** Share the NICs and intra-node links between concurrent ops (max-min fair). Default true. */
  readonly contention?: boolean;
  /** Compute kernels run this many times slower while a communication kernel runs (≥ 1; default 1: none). */
  readonly interference?: number;
  /** Per-expert load skew (default none: FSMoE's balanced loads). */
  readonly skew?: Skew | null;
  /** Ranks share CPU cores (default: the cost model's, which a host profile sets; null: none). */
  readonly sharedCores?: SharedCores | null;
}

/** The link figures of a cluster. */
export function linksOf(cluster: Cluster): Links {
  return {
    nicBytesPerUs: (cluster.inter.bandwidth * cluster.inter.efficiency * cluster.nicsPerNode) / 1e6,
    intraBytesPerUs: (cluster.intra.bandwidth * cluster.intra.efficiency) / 1e6,
  };
}

/** The pricer of a checked job (its cost model over its groups). */
export function pricerOf(job: TrainJob): Pricer | null {
  const w = lower(job);
  const cost = costModelFor(job, w.bytes);
  if (!cost.model) return null;
  return new Pricer(cost.model, new Map(Object.values(w.groups).map((g) => [g.name, g])), w.shape.gemms);
}

/** The input for a job compiled here, with its plan. */
export function inputFromCompiled(c: Compiled, plan: Plan): SimulationInput {
  return { plan, links: linksOf(c.job.cluster), pricer: c.pricer, origin: `links of cluster '${c.job.cluster.name}'` };
}

/**
 * The input for a plan read from a file: the link figures and cost model come from its source
 * when the source file is readable and hashes as the plan says; otherwise they are absent.
 */
export function inputFromPlan(plan: Plan): SimulationInput {
  const none = (why: string): SimulationInput => ({ plan, links: null, pricer: null, origin: `no link figures (${why}): every op that crosses a link is taken to saturate it` });
  let r: ReturnType<typeof check>;
  try {
    r = check(plan.source.file);
  } catch {
    return none(`cannot read the source ${plan.source.file}`);
  }
  if (r.program.files.length === 0 || r.sources.size === 0 || hasErrors(r.diagnostics)) return none(`the source ${plan.source.file} is missing or does not check`);
  const hash = createHash("sha256").update(programText(r)).digest("hex");
  if (hash !== plan.source.sha256) return none(`the source ${plan.source.file} changed since the plan was compiled`);
  const job = r.program.jobs.find((j) => j.name === plan.job.name);
  if (!job) return none(`no job '${plan.job.name}' in ${plan.source.file}`);
  return { plan, links: linksOf(job.cluster), pricer: pricerOf(job), origin: `links of cluster '${job.cluster.name}' in ${plan.source.file}` };
}

/** Stream indices: compute, intra, inter (the order of STREAMS). */
const STREAM_INDEX = { compute: 0, intra: 1, inter: 2 } as const;

/** The plan as flat arrays, ready for the engine. Indices are positions in `plan.ops`. */
export interface Prepared {
  readonly n: number;
  readonly stream: Uint8Array;
  /** Time alone (µs): predictedUs, scaled where skew applies. */
  readonly base: Float64Array;
  /** Waits as a CSR: op i waits for waits[waitStart[i] … waitStart[i+1]). */
  readonly waitStart: Int32Array;
  readonly waits: Int32Array;
  /** 1 for collectives (communication kernels), 0 for compute kernels. */
  readonly comm: Uint8Array;
  /** Fraction of the node's NICs (and of the GPU's intra link) the op needs when alone, 0 … 1. */
  readonly nicUse: Float64Array;
  readonly intraUse: Float64Array;
  /** Each stream's ops in issue order. */
  readonly lists: readonly Int32Array[];
  /** The skew factors applied, per MoE layer. */
  readonly skew: readonly LayerSkew[];
}

/** Bytes one op moves over a GPU's intra link (per rank) and over its node's NICs (per node). */
export function linkBytes(op: Pick<PlanOp, "kind" | "bytes" | "group">, group: Plan["groups"][number] | undefined, gpusPerNode: number): { intra: number; nic: number } {
  if (!group || !COLLECTIVES.has(op.kind as OpKind) || group.size <= 1) return { intra: 0, nic: 0 };
  const P = group.size;
  const m = group.membersPerNode;
  const b = op.bytes;
  if (op.kind === "all_to_all") {
    // (m − 1)/P of the buffer to peers on the node; (P − m)/P through the NICs, from each of the node's G ranks.
    return { intra: (b * (m - 1)) / P, nic: group.nodes > 1 ? (gpusPerNode * b * (P - m)) / P : 0 };
  }
  // Rings: (P − 1)/P of the buffer per hop (twice for all-reduce); one inter-node hop per ring and node,
  // G/m rings of the same kind on each node at once.
  const frac = ((op.kind === "all_reduce" ? 2 : 1) * (P - 1)) / P;
  return { intra: m > 1 ? frac * b : 0, nic: group.nodes > 1 ? (gpusPerNode / m) * frac * b : 0 };
}

/** Flatten a simulation input under options. */
export function prepare(input: SimulationInput, options: SimulationOptions = {}): Prepared {
  const { plan, links, pricer } = input;
  const ops = plan.ops;
  const n = ops.length;
  // Compiled plans number ops by position; a Map is needed only when a plan does not.
  let dense = true;
  for (let i = 0; i < n && dense; i++) if (ops[i]!.id !== i) dense = false;
  const index = new Map<number, number>();
  if (!dense) ops.forEach((op, i) => index.set(op.id, i));
  const groups = new Map(plan.groups.map((g) => [g.name, g]));
  const G = plan.job.cluster.gpusPerNode;
  const skew = layerSkews(plan, options.skew ?? null);
  const factorOf = new Map(skew.map((s) => [s.layer, s.factor]));
  const grown: { kind: string; dir: string; group: string | undefined; elements: number; macs: number; f: number; extra: number }[] = [];

  const stream = new Uint8Array(n);
  const base = new Float64Array(n);
  const comm = new Uint8Array(n);
  const nicUse = new Float64Array(n);
  const intraUse = new Float64Array(n);
  const waitStart = new Int32Array(n + 1);
  let totalWaits = 0;
  for (const op of ops) totalWaits += op.waits.length;
  const waits = new Int32Array(totalWaits);
  const counts = [0, 0, 0];
  let w = 0;
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    const s = STREAM_INDEX[op.stream];
    stream[i] = s;
    counts[s]!++;
    waitStart[i] = w;
    for (const id of op.waits) waits[w++] = dense ? (id < n ? id : -1) : (index.get(id) ?? -1);
    let us = op.predictedUs;
    const f = factorOf.size > 0 ? factorOf.get(op.layer) : undefined;
    if (f !== undefined && f > 1 && SKEWED_ROLES.has(op.role.startsWith("recompute.") ? op.role.slice(10) : op.role) && (op.kind === "expert" || COLLECTIVES.has(op.kind as OpKind))) {
      if (pricer) {
        // Chunks repeat across layers and micro-batches: price each distinct one once.
        // (A short list compared field by field: number-to-string keys cost more than the pricing.)
        let hit = grown.find((g) => g.kind === op.kind && g.dir === op.dir && g.group === op.group && g.elements === op.elements && g.macs === op.macs && g.f === f);
        if (!hit) {
          const extra = pricer.price(op.kind as OpKind, op.dir, op.elements * f, op.macs * f, op.group) - pricer.price(op.kind as OpKind, op.dir, op.elements, op.macs, op.group);
          hit = { kind: op.kind, dir: op.dir, group: op.group, elements: op.elements, macs: op.macs, f, extra };
          grown.push(hit);
        }
        us = Math.max(us, us + hit.extra);
      } else us *= f;
    }
    base[i] = us;
    const isComm = COLLECTIVES.has(op.kind as OpKind);
    comm[i] = isComm ? 1 : 0;
    if (isComm && us > 0) {
      const lb = linkBytes(op, op.group === undefined ? undefined : groups.get(op.group), G);
      if (links) {
        nicUse[i] = lb.nic > 0 ? Math.min(1, lb.nic / us / links.nicBytesPerUs) : 0;
        intraUse[i] = lb.intra > 0 ? Math.min(1, lb.intra / us / links.intraBytesPerUs) : 0;
      } else {
        nicUse[i] = lb.nic > 0 ? 1 : 0;
        intraUse[i] = lb.intra > 0 ? 1 : 0;
      }
    }
  }
  waitStart[n] = w;
  const lists = counts.map((c) => new Int32Array(c));
  const fill = [0, 0, 0];
  for (let i = 0; i < n; i++) lists[stream[i]!]![fill[stream[i]!]!++] = i;
  return { n, stream, base, waitStart, waits, comm, nicUse, intraUse, lists, skew };
}

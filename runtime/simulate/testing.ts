/**
 * Fixtures for the simulator's tests (test/simulate-*.test.ts, test/reports-*.test.ts):
 * compiled plans of the examples (checked files cached), and synthetic plans built on the
 * tiny example's plan with ops of our choosing.
 */
import { check } from "../../compiler/check/check.js";
import type { TrainJob } from "../../compiler/check/program.js";
import { compileJob, programText, type Compiled } from "../../compiler/compile/index.js";
import { buildPlan } from "../../compiler/plan/build.js";
import type { Plan, PlanOp } from "../../compiler/plan/schema.js";
import type { StrategyName } from "../../compiler/schedule/index.js";
import { inputFromCompiled, type SimulationInput } from "./index.js";

const jobs = new Map<string, { jobs: readonly TrainJob[]; text: string }>();

/** The checked jobs of a file (cached). */
export function jobsOf(file: string): readonly TrainJob[] {
  let e = jobs.get(file);
  if (!e) {
    const r = check(file);
    e = { jobs: r.program.jobs, text: programText(r) };
    jobs.set(file, e);
  }
  return e.jobs;
}

/** A job compiled under a strategy, its plan, and the simulator's input for it. */
export function compiled(file: string, strategy: StrategyName, job?: TrainJob): { c: Compiled; plan: Plan; input: SimulationInput } {
  const j = job ?? jobsOf(file)[0]!;
  const c = compileJob(j, { strategy }).compiled!;
  const plan = buildPlan(c, file, jobs.get(file)!.text, "test");
  return { c, plan, input: inputFromCompiled(c, plan) };
}

/** An op of a synthetic plan. */
export interface SyntheticOp {
  readonly stream: PlanOp["stream"];
  readonly kind: PlanOp["kind"];
  readonly us: number;
  readonly waits?: readonly number[];
  readonly group?: string;
  readonly bytes?: number;
  readonly role?: string;
  readonly layer?: number;
  readonly chunk?: number;
  readonly dir?: PlanOp["dir"];
}

/**
 * A plan with the given ops on the tiny example's cluster (2 nodes × 2 GPUs), with the groups
 * `intra2` (one node), `rail` (one GPU per node, across nodes) and `world` (both).
 */
export function syntheticPlan(ops: readonly SyntheticOp[]): Plan {
  const base = compiled("examples/tiny.moe", "fsmoe").plan;
  return {
    ...base,
    groups: [
      { name: "intra2", size: 2, stride: 1, span: "intra", membersPerNode: 2, nodes: 1 },
      { name: "rail", size: 2, stride: 2, span: "inter", membersPerNode: 1, nodes: 2 },
      { name: "world", size: 4, stride: 1, span: "both", membersPerNode: 2, nodes: 2 },
    ],
    buffers: [],
    ops: ops.map((o, id) => ({
      id,
      kind: o.kind,
      stream: o.stream,
      layer: o.layer ?? -1,
      dir: o.dir ?? "fwd",
      microBatch: 0,
      chunk: o.chunk ?? -1,
      role: o.role ?? "x",
      waits: [...(o.waits ?? [])],
      accesses: [],
      elements: 0,
      macs: 0,
      bytes: o.bytes ?? 0,
      ...(o.group !== undefined && { group: o.group }),
      predictedUs: o.us,
    })),
  };
}

/**
 * The `cuda` target: plan.cu, a per-rank CUDA C++ launch sequence over the runtime's C API
 * (native/include/fsmoe_runtime.h; ARCHITECTURE.md, "Runtime"). It defines
 * `fsmoe_plan_<job>(rt, rank, failed_op)`, which issues one iteration: it looks up the three
 * streams and the communicators of the groups the ops use, then for every op in plan order
 * waits for the events of the ops it depends on on other streams (see common.ts `events`),
 * launches the op (a kernel by kind, or a collective on its group's communicator) and records
 * its event. Every call's status is checked; a failure is reported with the op id.
 *
 * The plan's data (groups, buffers, ops, byte ranges) are static tables. Plans of up to
 * {@link UNROLL_LIMIT} ops also spell every op out as a few calls, which reads like the
 * listing; bigger plans are issued by one loop over the tables, which keeps the file and its
 * compile time small. The text comes from codegen/templates/plan.cu.hbs, compiled once with
 * `{ noEscape: true, strict: true }` (TOOLCHAIN.md, pitfall 6): no HTML escaping of C++, and a
 * field the template names but the view lacks is an error, not an empty string.
 */
import { readFileSync } from "node:fs";
import Handlebars from "handlebars";
import { DTYPES } from "../compiler/check/schema.js";
import { PlanOp, type Plan } from "../compiler/plan/schema.js";
import { COLLECTIVES, events, identifier, type OpKind } from "./common.js";

/** Plans with at most this many ops get an unrolled launch sequence; bigger ones a loop over tables. */
export const UNROLL_LIMIT = 400;

/** The runtime API version the generated files are written for (FSMOE_RUNTIME_API_VERSION). */
export const RUNTIME_API_VERSION = 1;

/** The schema's op kinds, in fsmoe_op_kind order (native/include/fsmoe_runtime.h follows the schema). */
const KIND_ORDER: readonly OpKind[] = PlanOp.shape.kind.options;

/** fsmoe_dtype values: the language's dtypes in their declared order. */
const DTYPE_IDS: ReadonlyMap<string, number> = new Map(DTYPES.map((d, i) => [d, i]));
const SPANS: Readonly<Record<string, string>> = { intra: "FSMOE_SPAN_INTRA", inter: "FSMOE_SPAN_INTER", both: "FSMOE_SPAN_BOTH" };
const STREAM_IDS: Readonly<Record<PlanOp["stream"], string>> = { compute: "FSMOE_STREAM_COMPUTE", intra: "FSMOE_STREAM_INTRA", inter: "FSMOE_STREAM_INTER" };

function dtypeId(dtype: string): number {
  const id = DTYPE_IDS.get(dtype);
  if (id === undefined) throw new Error(`cuda: no fsmoe_dtype for dtype ${dtype}`);
  return id;
}

/** The fsmoe_op_kind constant of a kind. */
function kindConst(kind: OpKind): string {
  return `FSMOE_OP_${kind.toUpperCase()}`;
}

/** The runtime function that launches a compute kind (`expert` is the expert GEMMs). */
function kernelFn(kind: OpKind): string {
  return `fsmoe_launch_${kind === "expert" ? "expert_gemm" : kind}`;
}

/** A C string literal; anything outside printable ASCII as octal escapes (never greedy). */
export function cString(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, "utf8")) {
    if (b === 0x22) out += '\\"';
    else if (b === 0x5c) out += "\\\\";
    else if (b === 0x3f) out += "\\?"; // no trigraphs
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\${b.toString(8).padStart(3, "0")}`;
  }
  return out + '"';
}

/** A non-negative integer of the plan as a C literal (the schema allows any non-negative number). */
function uint(x: number, what: string): string {
  if (!Number.isSafeInteger(x) || x < 0) throw new Error(`cuda: ${what} is ${x}, not a whole number of at most 2^53`);
  return String(x);
}

/** A double literal that C++ reads back as the same value. */
function real(x: number): string {
  const s = String(x);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

/** A one-line comment text (no line breaks). */
function comment(s: string): string {
  return s.replace(/[\r\n]+/g, " ");
}

let template: Handlebars.TemplateDelegate | undefined;

/** The compiled template, compiled on first use and kept. */
function planTemplate(): Handlebars.TemplateDelegate {
  template ??= Handlebars.compile(readFileSync(new URL("./templates/plan.cu.hbs", import.meta.url), "utf8"), { noEscape: true, strict: true });
  return template;
}

/** Check that a collective touches what the runtime call expects; the emitter refuses other shapes. */
function checkCollective(op: PlanOp): void {
  const pattern = op.accesses.map((a) => (a.write ? "w" : "r")).join("");
  const ok = op.kind === "all_reduce" ? /^w+$/.test(pattern) : pattern === "rw";
  if (!ok) throw new Error(`cuda: op ${op.id} (${op.kind}) touches ${pattern || "nothing"}; expected ${op.kind === "all_reduce" ? "only writes" : "one read then one write"}`);
  if (op.group === undefined) throw new Error(`cuda: op ${op.id} (${op.kind}) has no group`);
}

/** The plan.cu text of a plan. `unroll` overrides the choice by size (tests use it). */
export function emitCuda(plan: Plan, options: { unroll?: boolean } = {}): string {
  const j = plan.job;
  const ev = events(plan);
  const groupIndex = new Map(plan.groups.map((g, i) => [g.name, i]));
  const bufferOffset = new Map(plan.buffers.map((b) => [b.id, b.offset]));
  const unrolled = options.unroll ?? plan.ops.length <= UNROLL_LIMIT;

  const ops: string[] = [];
  const accesses: string[] = [];
  const steps: string[] = [];
  const waits: string[] = [];
  const sequence: { comment: string; lines: string[] }[] = [];
  const used = new Set<number>();
  let maxTensors = 1;
  for (const [index, op] of plan.ops.entries()) {
    const group = op.group === undefined ? -1 : groupIndex.get(op.group);
    if (group === undefined) throw new Error(`cuda: op ${op.id} names unknown group ${op.group}`);
    if (COLLECTIVES.has(op.kind)) {
      checkCollective(op);
      used.add(group);
    }
    ops.push(
      `{${op.id}, ${kindConst(op.kind)}, ${STREAM_IDS[op.stream]}, ${op.layer}, ${op.dir === "fwd" ? "FSMOE_FWD" : "FSMOE_BWD"}, ${op.microBatch}, ${op.chunk}, ${group}, ` +
        `${uint(op.elements, `op ${op.id} elements`)}u, ${uint(op.macs, `op ${op.id} macs`)}u, ${uint(op.bytes, `op ${op.id} bytes`)}u, ${real(op.predictedUs)}, ${cString(op.role)}}`,
    );
    const firstAccess = accesses.length;
    for (const a of op.accesses) {
      const base = bufferOffset.get(a.buffer);
      if (base === undefined) throw new Error(`cuda: op ${op.id} touches unknown buffer ${a.buffer}`);
      accesses.push(`{${uint(base + a.offset, `op ${op.id} access offset`)}u, ${uint(a.bytes, `op ${op.id} access bytes`)}u, ${a.buffer}, ${a.write ? 1 : 0}}`);
    }
    maxTensors = Math.max(maxTensors, op.accesses.length);
    const opWaits = ev.waitsOf[op.id] ?? [];
    const record = ev.recordOf[op.id] ?? -1;
    steps.push(`{${firstAccess}, ${op.accesses.length}, ${waits.length}, ${opWaits.length}, ${record}}`);
    waits.push(...opWaits.map(String));
    if (unrolled) {
      const s = op.stream;
      const lines: string[] = [];
      for (const w of opWaits) lines.push(`FSMOE_TRY(${op.id}, wait_event(rt, ${s}, ${w}));`);
      lines.push(`FSMOE_TRY(${op.id}, resolve(rt, ${firstAccess}, ${op.accesses.length}, t));`);
      const n = op.accesses.length;
      const call = (() => {
        switch (op.kind) {
          case "all_to_all":
          case "all_gather":
          case "reduce_scatter":
            return `fsmoe_${op.kind}(rt, comm[${group}], t[0].data, t[0].bytes, t[1].data, t[1].bytes, kDtype, ${s})`;
          case "all_reduce":
            return `fsmoe_all_reduce(rt, comm[${group}], t, ${n}, kDtype, ${s})`;
          default:
            return `${kernelFn(op.kind)}(rt, &kOps[${index}], t, ${n}, ${s})`;
        }
      })();
      lines.push(`FSMOE_TRY(${op.id}, ${call});`);
      if (record >= 0) lines.push(`FSMOE_TRY(${op.id}, record_event(rt, ${s}, ${record}));`);
      const where = `${op.layer >= 0 ? `L${op.layer}` : "-"} ${op.dir} mb${op.microBatch}${op.chunk >= 0 ? ` c${op.chunk}` : ""}`;
      const size = op.macs > 0 ? `${op.macs} MAC` : op.bytes > 0 ? `${op.bytes} B` : `${op.elements} el`;
      sequence.push({
        comment: comment(`#${op.id} ${s}: ${op.role === op.kind ? op.kind : `${op.kind} ${op.role}`} ${where}${op.group ? ` @${op.group}` : ""}, ${size}, ${op.predictedUs} us`),
        lines,
      });
    }
  }

  const view = {
    file: "plan.cu",
    fn: `fsmoe_plan_${identifier(j.name)}`,
    job: comment(j.name),
    strategy: plan.strategy,
    costModel: comment(plan.costModel.name),
    compiler: comment(plan.compiler),
    source: comment(plan.source.file),
    sha256: plan.source.sha256,
    device: comment(j.cluster.device),
    apiVersion: RUNTIME_API_VERSION,
    unrolled,
    unrollLimit: UNROLL_LIMIT,
    numOps: plan.ops.length,
    numEvents: ev.count,
    numGroups: plan.groups.length,
    numBuffers: plan.buffers.length,
    maxTensors,
    dtype: `${dtypeId(j.model.dtype)} /* ${j.model.dtype} */`,
    predictedMs: (plan.predicted.iterationUs / 1000).toFixed(3),
    predictedUs: real(plan.predicted.iterationUs),
    cFormat: cString(plan.format),
    cJob: cString(j.name),
    cStrategy: cString(plan.strategy),
    cSha256: cString(plan.source.sha256),
    nodes: j.cluster.nodes,
    gpusPerNode: j.cluster.gpusPerNode,
    world: j.cluster.nodes * j.cluster.gpusPerNode,
    tp: j.parallel.tp,
    esp: j.parallel.esp,
    ep: j.parallel.ep,
    edp: j.parallel.edp,
    layers: j.model.layers,
    hidden: j.model.hidden,
    vocab: j.model.vocab ?? -1,
    experts: j.model.experts,
    topK: j.model.topK,
    expertHidden: j.model.expertHidden,
    capacity0: plan.capacity0,
    microBatch: j.microBatch,
    seqLen: j.seqLen,
    microBatches: j.microBatches,
    seed: uint(j.seed, "seed"),
    arenaBytes: uint(plan.memory.arenaBytes, "arena bytes"),
    groups: plan.groups.map((g) => `{${cString(g.name)}, ${g.size}, ${g.stride}, ${SPANS[g.span]}, ${g.membersPerNode}, ${g.nodes}}`),
    usedGroups: [...[...used].sort((a, b) => a - b), -1].join(", "),
    buffers: plan.buffers.map((b) => `{${cString(b.name)}, ${uint(b.offset, `buffer ${b.id} offset`)}u, ${uint(b.bytes, `buffer ${b.id} bytes`)}u, ${b.persistent ? 1 : 0}}`),
    ops,
    accesses,
    steps,
    waits,
    sequence,
    kernels: KIND_ORDER.filter((k) => !COLLECTIVES.has(k)).map((k) => ({ kind: kindConst(k), fn: kernelFn(k) })),
  };
  return planTemplate()(view);
}

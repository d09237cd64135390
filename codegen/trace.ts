/**
 * The `trace` target: the predicted timeline as Chrome Trace Event JSON, which opens in Perfetto
 * (ui.perfetto.dev) and chrome://tracing (ARCHITECTURE.md, "codegen/"; times from
 * compiler/graph/timeline.ts, the same evaluation as the listing).
 *
 * - One process per rank, `pid` = rank. The plan is SPMD, so every rank runs the same ops at the
 *   same predicted times; the trace shows ranks 0 … min(world, 8) − 1 (the first node or so)
 *   as identical tracks, enough to see the collectives line up across ranks without making the
 *   file world-size times larger. `otherData.ranksShown` says how many are shown.
 * - One thread per stream (`tid` 0 compute, 1 intra, 2 inter, in that order), and a fourth,
 *   `layers`, with one slice per layer span (forward or backward of a layer for a micro-batch).
 * - Each op is an `X` (complete) event: `ts`/`dur` in µs, name `kind` or `kind role`, category
 *   the kind, and args with the op's id, kind, role, bytes, MACs, elements, layer, direction,
 *   micro-batch, chunk, group (with the ranks of this rank's instance of it), predicted µs and
 *   the ops it waits for.
 * - Each cross-stream wait is a flow arrow (`s` on the op waited for, `f` on the waiting op).
 *
 * One event per line, in a fixed order, so the file is deterministic and diffs well.
 */
import { timeline } from "../compiler/graph/timeline.js";
import type { Plan } from "../compiler/plan/schema.js";
import { STREAMS, groupRanks, layerSpans, ns, opName } from "./common.js";

/** The most ranks a trace shows (identical SPMD tracks). */
export const TRACE_RANKS = 8;

/** A short list of ranks: `0,2` or `0,8,16,…,504 (64 ranks)`. */
function rankList(ranks: readonly number[]): string {
  if (ranks.length <= 8) return ranks.join(",");
  return `${ranks.slice(0, 3).join(",")},…,${ranks[ranks.length - 1]} (${ranks.length} ranks)`;
}

/** The Chrome trace JSON text of a plan. */
export function emitTrace(plan: Plan): string {
  const t = timeline(plan);
  const j = plan.job;
  const world = j.cluster.nodes * j.cluster.gpusPerNode;
  const ranks = Math.min(world, TRACE_RANKS);
  const groups = new Map(plan.groups.map((g) => [g.name, g]));
  const byId = new Map(plan.ops.map((op) => [op.id, op]));
  const spans = layerSpans(plan, t.start, t.end);
  const LAYERS_TID = STREAMS.length;
  const events: unknown[] = [];
  for (let rank = 0; rank < ranks; rank++) {
    const node = Math.floor(rank / j.cluster.gpusPerNode);
    const local = rank % j.cluster.gpusPerNode;
    events.push({ name: "process_name", ph: "M", pid: rank, tid: 0, args: { name: `rank ${rank} (node ${node}, gpu ${local})` } });
    events.push({ name: "process_sort_index", ph: "M", pid: rank, tid: 0, args: { sort_index: rank } });
    STREAMS.forEach((stream, tid) => {
      events.push({ name: "thread_name", ph: "M", pid: rank, tid, args: { name: `${stream} stream` } });
      events.push({ name: "thread_sort_index", ph: "M", pid: rank, tid, args: { sort_index: tid } });
    });
    events.push({ name: "thread_name", ph: "M", pid: rank, tid: LAYERS_TID, args: { name: "layers" } });
    events.push({ name: "thread_sort_index", ph: "M", pid: rank, tid: LAYERS_TID, args: { sort_index: LAYERS_TID } });
  }
  let flow = 0;
  for (let rank = 0; rank < ranks; rank++) {
    for (const s of spans) {
      events.push({
        name: `${s.label} ${s.dir}${s.recompute ? " (recompute)" : ""}`,
        cat: "layer",
        ph: "X",
        ts: ns(s.start),
        dur: ns(s.end - s.start),
        pid: rank,
        tid: LAYERS_TID,
        args: { layer: s.layer, dir: s.dir, microBatch: s.microBatch, recompute: s.recompute },
      });
    }
    for (const op of plan.ops) {
      const tid = STREAMS.indexOf(op.stream);
      const group = op.group !== undefined ? groups.get(op.group) : undefined;
      events.push({
        name: opName(op),
        cat: op.kind,
        ph: "X",
        ts: ns(t.start[op.id]!),
        dur: op.predictedUs,
        pid: rank,
        tid,
        args: {
          op: op.id,
          kind: op.kind,
          role: op.role,
          bytes: op.bytes,
          macs: op.macs,
          elements: op.elements,
          layer: op.layer,
          dir: op.dir,
          microBatch: op.microBatch,
          chunk: op.chunk,
          ...(op.group !== undefined && { group: op.group }),
          ...(group && { groupRanks: rankList(groupRanks(group, rank)) }),
          predictedUs: op.predictedUs,
          waits: op.waits,
        },
      });
      for (const w of op.waits) {
        const from = byId.get(w);
        if (!from || from.stream === op.stream) continue;
        const id = flow++;
        events.push({ name: "wait", cat: "wait", ph: "s", id, ts: ns(t.start[w]!), pid: rank, tid: STREAMS.indexOf(from.stream) });
        events.push({ name: "wait", cat: "wait", ph: "f", bp: "e", id, ts: ns(t.start[op.id]!), pid: rank, tid });
      }
    }
  }
  const other = {
    job: j.name,
    strategy: plan.strategy,
    costModel: plan.costModel.name,
    source: plan.source.file,
    compiler: plan.compiler,
    worldSize: world,
    ranksShown: ranks,
    note: "SPMD plan: every rank runs the same ops at the same predicted times",
    predictedIterationUs: plan.predicted.iterationUs,
    lowerBoundUs: plan.predicted.lowerBoundUs,
    exposedCommunicationUs: plan.predicted.exposedCommunicationUs,
  };
  return `{"traceEvents":[\n${events.map((e) => JSON.stringify(e)).join(",\n")}\n],\n"displayTimeUnit":"ms",\n"otherData":${JSON.stringify(other)}}\n`;
}

/**
 * Turning a compiled job into plan.json (ARCHITECTURE.md, "plan.json"): the format version,
 * the source's hash, the checked job, the cost model, groups, buffers with their arena
 * offsets, the ops, each MoE layer's degrees, order and gradient slots, and the prediction.
 * The same input gives byte-identical JSON: key order is fixed here and times are rounded to
 * nanoseconds.
 */
import { createHash } from "node:crypto";
import type { Compiled } from "../compile/compile.js";
import type { GradPiece } from "../graph/moe-block.js";
import { PLAN_FORMAT, type Plan } from "./schema.js";

/** Round microseconds to nanoseconds, so that printed plans are stable and short. */
export function roundUs(us: number): number {
  return Math.round(us * 1000) / 1000;
}

function buckets(list: readonly GradPiece[] | undefined): Plan["layers"][number]["gapGradients"] {
  return (list ?? []).map((b) => ({ parts: b.parts.map((p) => ({ source: p.source, offset: p.offset, elements: p.elements })) }));
}

/** The plan of a compiled job. `sourceText` is the text of the root file and its imports, in load order. */
export function buildPlan(c: Compiled, sourceFile: string, sourceText: string, compilerVersion: string): Plan {
  const { job, workload: w, schedule, graph, timeline: t, memory } = c;
  const m = job.model;
  const sortedWindows = (map: ReadonlyMap<number, readonly GradPiece[]>) =>
    [...map].sort((a, b) => b[0] - a[0]).map(([layer, list]) => ({ layer, buckets: buckets(list) }));
  return {
    format: PLAN_FORMAT,
    compiler: `fsmoec ${compilerVersion}`,
    source: { file: sourceFile, sha256: createHash("sha256").update(sourceText).digest("hex") },
    job: {
      name: job.name,
      model: {
        name: m.name,
        kind: m.kind,
        layers: m.layers,
        hidden: m.hidden,
        vocab: m.vocab,
        moeLayers: [...m.moeLayers],
        experts: m.moe.experts,
        topK: m.moe.topK,
        expertHidden: m.moe.expertHidden,
        activation: m.moe.activation,
        router: m.moe.router,
        normalize: m.moe.normalize ?? true,
        groups: m.moe.groups ?? 1,
        topkGroups: m.moe.topkGroups ?? m.moe.groups ?? 1,
        routeScale: m.moe.routeScale ?? 1,
        capacityFactor: m.moe.capacityFactor,
        sharedExperts: m.moe.sharedExperts,
        sharedHidden: m.moe.sharedHidden,
        attention: m.attention
          ? {
              kind: m.attention.kind,
              heads: m.attention.heads,
              kvHeads: m.attention.kvHeads,
              headDim: m.attention.headDim,
              qLoraRank: m.attention.qLoraRank,
              kvLoraRank: m.attention.kvLoraRank,
              qkNopeDim: m.attention.qkNopeDim,
              ropeDim: m.attention.ropeDim,
              vHeadDim: m.attention.vHeadDim,
            }
          : null,
        ffn: m.ffn ? { hidden: m.ffn.hidden, activation: m.ffn.activation } : null,
        dtype: m.dtype,
      },
      cluster: { name: job.cluster.name, nodes: job.cluster.nodes, gpusPerNode: job.cluster.gpusPerNode, device: job.cluster.device.name, deviceMemory: job.cluster.device.memory },
      microBatch: job.microBatch,
      seqLen: job.seqLen,
      microBatches: job.microBatches,
      parallel: { tp: job.parallel.tp, esp: job.parallel.esp, ep: job.parallel.ep, edp: job.parallel.edp },
      recompute: job.recompute,
      seed: job.seed,
    },
    strategy: schedule.strategy,
    costModel: { name: c.costModel.name, description: c.costModel.description },
    capacity0: w.shape.capacity0,
    groups: graph.groups.map((g) => ({ name: g.name, size: g.size, stride: g.stride, span: g.span, membersPerNode: g.membersPerNode, nodes: g.nodes })),
    buffers: graph.buffers.map((b) => ({ id: b.id, name: b.name, bytes: b.bytes, persistent: b.persistent, offset: memory.offsets.get(b.id) ?? 0 })),
    memory: {
      arenaBytes: memory.totalBytes,
      weightBytes: c.staticMemory.weightBytes,
      optimizerBytes: c.staticMemory.optimizerBytes,
      peakBytes: c.peakBytes,
      deviceBytes: job.cluster.device.memory,
    },
    layers: [...schedule.layers.values()]
      .sort((a, b) => a.layer - b.layer)
      .map((l) => ({
        layer: l.layer,
        capacity: l.capacity,
        forward: { degree: l.forward.degree, order: l.forward.style },
        backward: { degree: l.backward.degree, order: l.backward.style },
        gapGradients: buckets(l.gapGrads),
      })),
    gradients: {
      stream: schedule.gradients.stream,
      window: sortedWindows(schedule.gradients.window),
      immediate: sortedWindows(schedule.gradients.immediate),
      tail: buckets(schedule.gradients.tail),
    },
    ops: graph.ops.map((o) => ({
      id: o.id,
      kind: o.kind,
      stream: o.stream,
      layer: o.layer,
      dir: o.dir,
      microBatch: o.microBatch,
      chunk: o.chunk,
      role: o.role,
      waits: [...o.waits],
      accesses: o.accesses.map((a) => ({ buffer: a.buffer, offset: a.offset, bytes: a.bytes, write: a.write })),
      elements: o.elements,
      macs: o.macs,
      bytes: o.bytes,
      ...(o.group !== undefined && { group: o.group }),
      ...(o.reduce !== undefined && { reduce: o.reduce }),
      ...(o.expert !== undefined && { expert: o.expert }),
      predictedUs: roundUs(o.predictedUs),
    })),
    predicted: {
      iterationUs: roundUs(t.makespanUs),
      lowerBoundUs: roundUs(c.lowerBoundUs),
      busyUs: { compute: roundUs(t.busyUs.compute), intra: roundUs(t.busyUs.intra), inter: roundUs(t.busyUs.inter) },
      exposedCommunicationUs: roundUs(Math.max(0, t.makespanUs - t.busyUs.compute)),
    },
  };
}

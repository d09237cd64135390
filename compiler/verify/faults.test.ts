import { describe, expect, it } from "vitest";
import { check } from "../check/check.js";
import { compileJob, type Compiled } from "../compile/index.js";
import { GraphBuilder, type OpSpec } from "../graph/builder.js";
import { moeBlock, type BlockContext, type BlockStyle } from "../graph/moe-block.js";
import type { Op, Stream, TaskGraph } from "../graph/types.js";
import { moeSizes, padCapacity } from "../lower/shapes.js";
import { expandSpmd } from "./spmd.js";
import { describeOp } from "./issue.js";
import { happensBefore, before } from "./order.js";
import { verify, verifyGraph } from "./verify.js";

/** The tiny example (2 nodes × 2 GPUs) compiled with the fsmoe strategy: a real plan to break. */
function tinyFsmoe(): Compiled {
  const r = check("examples/tiny.moe");
  expect(r.diagnostics).toEqual([]);
  const res = compileJob(r.program.jobs[0]!, { strategy: "fsmoe" });
  expect(res.diagnostics).toEqual([]);
  return res.compiled!;
}

const WORLD = 4;
const RANKS = [0, 1, 2, 3];

/** A copy of `ops` with the ops at issue positions i and j exchanged. */
function swapAt(ops: readonly Op[], i: number, j: number): Op[] {
  const out = [...ops];
  [out[i], out[j]] = [out[j]!, out[i]!];
  return out;
}

describe("faults seeded into a real compiled plan (tiny, fsmoe)", () => {
  const c = tinyFsmoe();
  const graph = c.graph;
  const ops = graph.ops;

  it("starts from a plan that verifies clean, alone and expanded over all four ranks", () => {
    expect(verifyGraph(graph)).toEqual([]);
    expect(verify(expandSpmd(graph, RANKS, WORLD))).toEqual([]);
  });

  it("reports a race (FSM4002) naming both ops when an AllGather no longer waits for its dispatch", () => {
    const ag = ops.find((o) => o.kind === "all_gather" && o.role === "esp_allgather" && o.dir === "fwd")!;
    expect(ag.stream).toBe("intra");
    const dispatch = ops.find((o) => o.kind === "all_to_all" && o.role === "dispatch" && o.layer === ag.layer && o.dir === "fwd" && o.microBatch === ag.microBatch && o.chunk === ag.chunk)!;
    expect(dispatch.stream).toBe("inter");
    expect(ag.waits).toContain(dispatch.id);
    const broken: TaskGraph = { ...graph, ops: ops.map((o) => (o.id === ag.id ? { ...o, waits: o.waits.filter((w) => w !== dispatch.id) } : o)) };
    const issues = verifyGraph(broken);
    expect(issues.map((i) => i.code)).toEqual(["FSM4002"]);
    expect(issues[0]!.ops).toEqual([dispatch.id, ag.id]);
    expect(issues[0]!.message).toContain(`${describeOp(dispatch)} writes and ${describeOp(ag)} reads`);
    expect(issues[0]!.message).toMatch(/^data race on buffer 'L\d+\.fwd\.mb0\.recv' \(id \d+\)/);
  });

  it("reports a consumer issued ahead of its producer on the same stream as a read of unwritten bytes (FSM4013)", () => {
    // The sequence-parallel ReduceScatter that writes attention's output, and the next op on the
    // intra stream that reads it: swapped, the reader runs first on every rank and no race shows it.
    const rs = ops.findIndex((o) => o.kind === "reduce_scatter" && o.role === "attention_sp_reducescatter");
    const out = ops[rs]!.accesses.find((a) => a.write)!.buffer;
    const reader = ops.findIndex((o, i) => i > rs && o.stream === ops[rs]!.stream && o.accesses.some((a) => a.buffer === out && !a.write));
    expect(reader).toBeGreaterThan(rs);
    const swapped = swapAt(ops, rs, reader).map((o) => ({ ...o, waits: o.waits.filter((w) => w !== ops[rs]!.id) }));
    const issues = verifyGraph({ ...graph, ops: swapped });
    expect(issues.map((i) => i.code)).toEqual(["FSM4013"]);
    expect(issues[0]!.ops).toEqual([ops[reader]!.id]);
    expect(issues[0]!.message).toContain("before anything has written them");
  });

  it("reports a swap of two collectives on one communicator on one rank as a collective-order mismatch (FSM4003) between that rank and its peer", () => {
    // The first two adjacent collectives of the tp group on one stream whose swap leaves rank 1 free of
    // a cycle of its own: only the cross-rank check can see the fault.
    const tp = ops.map((o, i) => ({ o, i })).filter(({ o }) => o.group === "tp");
    let pick: { i: number; j: number } | undefined;
    for (let k = 0; k + 1 < tp.length && !pick; k++) {
      const a = tp[k]!;
      const b = tp[k + 1]!;
      if (a.o.stream !== b.o.stream) continue;
      if (!verifyGraph({ ...graph, ops: swapAt(ops, a.i, b.i) }).some((x) => x.code === "FSM4001")) pick = { i: a.i, j: b.i };
    }
    expect(pick).toBeDefined();
    const [first, second] = [ops[pick!.i]!, ops[pick!.j]!];
    const issues = verify(expandSpmd(graph, RANKS, WORLD, new Map([[1, (o: readonly Op[]) => swapAt(o, pick!.i, pick!.j)]])));
    expect(issues.map((i) => i.code)).toEqual(["FSM4003"]);
    // tp{0,1}: rank 0 is the reference member and issues `first` where rank 1 now issues `second`.
    expect(issues[0]!.ranks).toEqual([0, 1]);
    expect(issues[0]!.ops).toEqual([first.id, second.id]);
    expect(issues[0]!.message).toMatch(/^collective order differs on communicator tp\{0,1\}: collective #\d+ is /);
    expect(issues[0]!.message).toContain(`is ${describeOp(first)} on rank 0 but ${describeOp(second)} on rank 1`);
  });

  it("reports a dispatch and combine swapped on one rank's rail as a mismatch on ep{1,3}, and as the cycle it makes on that rank", () => {
    const ep = ops.map((o, i) => ({ o, i })).filter(({ o }) => o.group === "ep");
    const d = ep[0]!;
    const cmb = ep.find(({ o }) => o.role === "combine" && o.layer === d.o.layer && o.dir === d.o.dir && o.microBatch === d.o.microBatch && o.chunk === d.o.chunk)!;
    expect(d.o.role).toBe("dispatch");
    const issues = verify(expandSpmd(graph, RANKS, WORLD, new Map([[1, (o: readonly Op[]) => swapAt(o, d.i, cmb.i)]])));
    expect(issues.map((i) => i.code).sort()).toEqual(["FSM4001", "FSM4003"]);
    const order = issues.find((i) => i.code === "FSM4003")!;
    expect(order.ranks).toEqual([1, 3]);
    expect(order.message).toContain("communicator ep{1,3}: collective #1 is ");
    expect(order.message).toContain(`${describeOp(cmb.o)} on rank 1 but ${describeOp(d.o)} on rank 3`);
    const cycle = issues.find((i) => i.code === "FSM4001")!;
    expect(cycle.rank).toBe(1);
    expect(cycle.ops).toContain(d.o.id);
    expect(cycle.ops).toContain(cmb.o.id);
  });

  it("reports collectives of two communicators swapped on one rank's stream as a cross-rank deadlock (FSM4004)", () => {
    // A combine on ep followed directly on inter by a gradient all-reduce on dp: rank 1 issues them the other way round.
    const inter = ops.map((o, i) => ({ o, i })).filter(({ o }) => o.stream === "inter");
    let pick: { i: number; j: number } | undefined;
    for (let k = 0; k + 1 < inter.length && !pick; k++) {
      const a = inter[k]!;
      const b = inter[k + 1]!;
      if (a.o.group !== "ep" || b.o.group !== "dp") continue;
      if (!verifyGraph({ ...graph, ops: swapAt(ops, a.i, b.i) }).some((x) => x.code === "FSM4001")) pick = { i: a.i, j: b.i };
    }
    expect(pick).toBeDefined();
    const [a2a, allReduce] = [ops[pick!.i]!, ops[pick!.j]!];
    const issues = verify(expandSpmd(graph, RANKS, WORLD, new Map([[1, (o: readonly Op[]) => swapAt(o, pick!.i, pick!.j)]])));
    expect(issues.map((i) => i.code)).toEqual(["FSM4004"]);
    expect(issues[0]!.ranks).toContain(1);
    expect(issues[0]!.ranks).toContain(3);
    expect(issues[0]!.message).toContain(`${a2a.kind} ${a2a.role} L${a2a.layer} ${a2a.dir}`);
    expect(issues[0]!.message).toContain("on ep{1,3}");
    expect(issues[0]!.message).toContain(`${allReduce.kind} ${allReduce.role} L${allReduce.layer} ${allReduce.dir}`);
    expect(issues[0]!.message).toContain("on dp{1,3}");
  });
});

// ── a mismatched interleaving built with the real block builder

/** What a stream lane holds, by stage and chunk. */
interface Chunks {
  readonly D: number[];
  readonly AG: number[];
  readonly E: number[];
  readonly RS: number[];
  readonly C: number[];
}

/** The issue order of an interleaved lane with lookahead ℓ: first ℓ "first" ops, then alternate, then the rest of the "last" ops. */
function interleaved<T>(first: readonly T[], last: readonly T[], lookahead: number): T[] {
  const r = first.length;
  const out: T[] = first.slice(0, lookahead);
  for (let i = lookahead; i < r; i++) out.push(last[i - lookahead]!, first[i]!);
  out.push(...last.slice(r - lookahead));
  return out;
}

/**
 * One forward MoE block of the tiny example at degree r, built with the real GraphBuilder and
 * real sizes and prices: Order, r chunks D → AG → E → RS → C, then I-Order. The ops are
 * created here and placed on their lanes by `lanes`, which says the order of each stream.
 */
function mismatchedBlock(r: number, lanes: (c: Chunks) => Record<"inter" | "intra", number[]>) {
  const c = tinyFsmoe();
  const w = c.workload;
  const s = w.shape;
  const capacity = padCapacity(s.capacity0, r);
  const z = moeSizes(s, capacity);
  const bytes = w.bytes;
  const b = new GraphBuilder(Object.values(w.groups));
  const a2aBytes = z.a2aElements * bytes;
  const espBytes = z.espElements * bytes;
  const buffers: TaskGraph["buffers"][number][] = [];
  const buf = (name: string, n: number) => {
    const id = b.buffer(name, n);
    buffers.push({ id, name, bytes: n, persistent: false });
    return id;
  };
  const input = buf("input", s.tokens * s.hidden * bytes);
  const orderBuf = buf("order", a2aBytes);
  const recv = buf("recv", a2aBytes);
  const gathered = buf("gathered", espBytes);
  const expertOut = buf("expert_out", espBytes);
  const rsOut = buf("rs_out", a2aBytes);
  const comb = buf("combined", a2aBytes);
  const out = buf("out", s.tokens * s.hidden * bytes);
  const slice = (buffer: number, total: number, i: number, write: boolean) => ({ buffer, offset: (total / r) * i, bytes: total / r, write });
  const spec = (kind: OpSpec["kind"], stream: Stream, role: string, chunk: number, deps: number[], accesses: OpSpec["accesses"], elements: number, macs: number, group?: string): OpSpec => ({
    kind,
    stream,
    layer: 1,
    dir: "fwd",
    microBatch: 0,
    chunk,
    role,
    deps,
    accesses,
    elements,
    macs,
    bytes: group ? elements * bytes : 0,
    group,
    predictedUs: c.pricer.price(kind, "fwd", elements, macs, group),
  });
  const order = b.add(spec("order", "compute", "order", -1, [], [{ buffer: input, offset: 0, bytes: s.tokens * s.hidden * bytes, write: false }, { buffer: orderBuf, offset: 0, bytes: a2aBytes, write: true }], z.orderElements, 0));
  const ch: Chunks = { D: [], AG: [], E: [], RS: [], C: [] };
  for (let i = 0; i < r; i++) {
    ch.D.push(b.create(spec("all_to_all", "inter", "dispatch", i, [order], [slice(orderBuf, a2aBytes, i, false), slice(recv, a2aBytes, i, true)], z.a2aElements / r, 0, "ep")));
    ch.AG.push(b.create(spec("all_gather", "intra", "esp_allgather", i, [ch.D[i]!], [slice(recv, a2aBytes, i, false), slice(gathered, espBytes, i, true)], z.espElements / r, 0, "esp")));
    ch.E.push(b.create(spec("expert", "compute", "expert", i, [ch.AG[i]!], [slice(gathered, espBytes, i, false), slice(expertOut, espBytes, i, true)], 0, z.expertMacs / r)));
    ch.RS.push(b.create(spec("reduce_scatter", "intra", "esp_reducescatter", i, [ch.E[i]!], [slice(expertOut, espBytes, i, false), slice(rsOut, a2aBytes, i, true)], z.espElements / r, 0, "esp")));
    ch.C.push(b.create(spec("all_to_all", "inter", "combine", i, [ch.RS[i]!], [slice(rsOut, a2aBytes, i, false), slice(comb, a2aBytes, i, true)], z.a2aElements / r, 0, "ep")));
  }
  const laneOrder = lanes(ch);
  for (const id of ch.E) b.place(id);
  for (const id of laneOrder.inter) b.place(id);
  for (const id of laneOrder.intra) b.place(id);
  const iorder = b.add(spec("iorder", "compute", "iorder", -1, ch.C, [{ buffer: comb, offset: 0, bytes: a2aBytes, write: false }, { buffer: out, offset: 0, bytes: s.tokens * s.hidden * bytes, write: true }], z.orderElements, 0));
  return { b, ch, buffers, groups: Object.values(w.groups), lanes: { compute: [order, ...ch.E, iorder], ...laneOrder } };
}

/**
 * The same ops as a TaskGraph issued lane after lane (compute, intra, inter), each op waiting for
 * its latest dependency on every other stream — what the plan would hold if nothing refused the
 * lane orders.
 */
function byHand(built: ReturnType<typeof mismatchedBlock>): TaskGraph {
  const { b, lanes } = built;
  const sequence = [...lanes.compute, ...lanes.intra, ...lanes.inter];
  const id = new Map(sequence.map((draft, i) => [draft, i] as const));
  const ops: Op[] = sequence.map((draft, i) => {
    const s = b.spec(draft);
    const latest = new Map<Stream, number>();
    for (const d of s.deps) {
      const dep = b.spec(d);
      if (dep.stream === s.stream) continue;
      latest.set(dep.stream, Math.max(latest.get(dep.stream) ?? -1, id.get(d)!));
    }
    return {
      id: i,
      kind: s.kind,
      stream: s.stream,
      layer: s.layer,
      dir: s.dir,
      microBatch: s.microBatch,
      chunk: s.chunk,
      role: s.role,
      waits: [...latest.values()].sort((x, y) => x - y),
      accesses: s.accesses,
      elements: s.elements,
      macs: s.macs,
      bytes: s.bytes,
      group: s.group,
      predictedUs: s.predictedUs,
    };
  });
  return { groups: built.groups, buffers: built.buffers, ops };
}

describe("interleaving only the inter stream (SCHEDULING.md §3, auto point 2)", () => {
  const R = 4;
  const onlyInter = (c: Chunks) => ({ inter: interleaved(c.D, c.C, 1), intra: [...c.AG, ...c.RS] });

  it("makes the block builder's finish() report the stuck lane heads: C1 waiting for RS1, AG2 waiting for D2 queued behind C1, E2 waiting for AG2", () => {
    const built = mismatchedBlock(R, onlyInter);
    const f = built.b.finish();
    expect(f.ok).toBe(false);
    if (f.ok) return;
    const heads = f.stuck.map((s) => `${s.kind} ${s.role} chunk ${s.chunk} (${s.stream})`);
    // Lanes in STREAMS order: compute, intra, inter (chunks are 0-based).
    expect(heads).toEqual(["expert expert chunk 1 (compute)", "all_gather esp_allgather chunk 1 (intra)", "all_to_all combine chunk 0 (inter)"]);
  });

  it("makes verifyGraph report a happens-before cycle (FSM4001) through a combine, its ReduceScatter, a later AllGather and its dispatch when the graph is built by hand", () => {
    const built = mismatchedBlock(R, onlyInter);
    const g = byHand(built);
    const issues = verifyGraph(g);
    expect(issues.map((i) => i.code)).toEqual(["FSM4001"]);
    const idOf = (role: string, chunk: number) => g.ops.find((o) => o.role === role && o.chunk === chunk)!.id;
    // C1 → RS1 (wait), RS1 behind the AllGathers (intra), AG2 → D2 (wait), D2 behind C1 (inter).
    expect(issues[0]!.ops).toEqual(expect.arrayContaining([idOf("combine", 0), idOf("esp_reducescatter", 0), idOf("esp_allgather", 1), idOf("dispatch", 1)]));
    const cycle = issues[0]!.message;
    expect(cycle).toMatch(/^happens-before cycle, the plan deadlocks: /);
    expect(cycle).toContain("(all_to_all combine L1 fwd chunk 0, inter)");
    expect(cycle).toMatch(/waits for op \d+ \(reduce_scatter esp_reducescatter L1 fwd chunk 0, intra\)/);
    expect(cycle).toMatch(/waits for op \d+ \(all_to_all dispatch L1 fwd chunk 1, inter\)/);
    expect(cycle).toContain("on intra");
    expect(cycle).toContain("on inter");
  });

  it("finishes and verifies clean when the intra stream is interleaved the same way, for every lookahead", () => {
    for (let l = 1; l < R; l++) {
      const built = mismatchedBlock(R, (c) => ({ inter: interleaved(c.D, c.C, l), intra: interleaved(c.AG, c.RS, l) }));
      const f = built.b.finish();
      expect(f.ok, `lookahead ${l}`).toBe(true);
      if (!f.ok) continue;
      expect(verifyGraph(f.graph), `lookahead ${l}`).toEqual([]);
      expect(verifyGraph(byHand(built)), `lookahead ${l}, issued lane after lane`).toEqual([]);
    }
  });

  it("is never produced by moeBlock itself: its interleaved style finishes for every degree and lookahead", () => {
    const c = tinyFsmoe();
    for (let r = 2; r <= 6; r++) {
      for (let l = 1; l < r; l++) {
        const b = new GraphBuilder(Object.values(c.workload.groups));
        const grad = b.buffer("grad", 1 << 20, true);
        const ctx: BlockContext = {
          b,
          pricer: c.pricer,
          w: c.workload,
          layer: 1,
          microBatch: 0,
          gradBuffer: () => grad,
          gradReady: () => -1,
          expertGrad: b.buffer("expert_grad", 1 << 20, true),
          routerGrad: { buffer: grad, offset: 0, bytes: 1, write: true },
          rolePrefix: "",
        };
        const style: BlockStyle = { kind: "interleaved", lookahead: l };
        moeBlock(ctx, "fwd", style, r, padCapacity(c.workload.shape.capacity0, r), { inputOp: -1, inputBuffer: b.buffer("in", 1 << 20) }, []);
        const f = b.finish();
        expect(f.ok, `r = ${r}, lookahead ${l}`).toBe(true);
        if (f.ok) {
          const hb = happensBefore(f.graph.ops);
          expect(verifyGraph(f.graph), `r = ${r}, lookahead ${l}`).toEqual([]);
          // Every combine follows its own dispatch.
          const idx = (role: string, chunk: number) => f.graph.ops.findIndex((o) => o.role === role && o.chunk === chunk);
          for (let i = 0; i < r; i++) expect(before(hb, idx("dispatch", i), idx("combine", i))).toBe(true);
        }
      }
    }
  });
});

/**
 * The `svg` target: a picture of the predicted timeline, laid out like a profiler view
 * (ARCHITECTURE.md, "codegen/"; times from compiler/graph/timeline.ts). Hand-built SVG, no
 * dependencies, deterministic (it is golden-tested as text).
 *
 * From top to bottom: a title (job, strategy, predicted iteration time) and a line of context
 * (model, cluster, layout, lower bound, exposed communication); a pass strip (forward and
 * backward of each micro-batch, then the gradient all-reduce tail); a layer strip (which layer each stretch of time belongs to,
 * forward shaded blue, backward orange, recomputation violet, with thin vertical lines at layer boundaries through
 * the lanes); one lane per stream (compute, intra-node, inter-node) with every op a rectangle
 * coloured by its kind; a red band marking exposed communication (time when a link is busy and
 * the compute stream is idle, also tinted on the compute lane); a time axis in ms; a legend.
 *
 * Ops narrower than a pixel are merged, lane by lane and in issue order, into groups at most
 * two pixels wide, drawn in the colour of the kind that takes most of the group's time; a group
 * or op is drawn at least one pixel wide so that short kernels stay visible. Every rectangle
 * has a tooltip (`<title>`).
 */
import { timeline } from "../compiler/graph/timeline.js";
import type { Plan, PlanOp } from "../compiler/plan/schema.js";
import { KINDS, KIND_COLOURS, STREAMS, layerSpans, ns, opName, size, subtract, union, where, type Interval, type OpKind, type StreamName } from "./common.js";

/** Width of the picture in px. */
export const SVG_WIDTH = 1600;

const LEFT = 118;
const RIGHT = 24;
const PLOT = SVG_WIDTH - LEFT - RIGHT;
const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";
const LANE = 36;
const LANE_GAP = 6;
const PASS_STRIP = 16;
const LAYER_STRIP = 18;
const EXPOSED = 10;
/** Merged groups of sub-pixel ops span at most this many px. */
const GROUP_PX = 2;

const FWD = ["#dbe8f5", "#c3d8ee"];
const BWD = ["#fbe3cf", "#f6cfae"];
const RECOMPUTE = ["#e8e0f2", "#d8cbea"];
const SYNC = "#dddddd";
const EXPOSED_COLOUR = "#d62728";

/** A coordinate with at most one decimal. */
function n(x: number): string {
  const s = (Math.round(x * 10) / 10).toFixed(1);
  return s.endsWith(".0") ? s.slice(0, -2) : s;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Milliseconds with three decimals. */
function ms(us: number): string {
  return `${(us / 1000).toFixed(3)} ms`;
}

/** A rough text width for the fitting of labels (DejaVu Sans is about 0.6 em per character). */
function textWidth(s: string, px: number): number {
  return s.length * px * 0.6;
}

/** Black or white text on a fill. */
function ink(hex: string): string {
  const v = parseInt(hex.slice(1), 16);
  const luma = 0.299 * (v >> 16) + 0.587 * ((v >> 8) & 255) + 0.114 * (v & 255);
  return luma < 150 ? "#ffffff" : "#1a1a1a";
}

/** A step of 1, 2 or 5 × 10^k giving about `count` ticks over `span`. */
function tickStep(span: number, count: number): number {
  const raw = span / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** A short label for an op drawn wide enough to carry one. */
function shortLabel(op: PlanOp): string {
  const layer = op.layer >= 0 ? ` L${op.layer}` : "";
  switch (op.kind) {
    case "all_to_all":
      return `${op.role.slice(op.role.lastIndexOf(".") + 1)}${layer}`;
    case "all_gather":
      return `AG${layer}`;
    case "reduce_scatter":
      return `RS${layer}`;
    case "all_reduce":
      return `AR${layer}`;
    default:
      return `${op.kind}${layer}`;
  }
}

/** One drawn rectangle of a lane: an op, or a group of sub-pixel ops. */
interface Block {
  x0: number;
  x1: number;
  ops: PlanOp[];
}

/** The SVG text of a plan's predicted timeline. */
export function emitSvg(plan: Plan): string {
  const t = timeline(plan);
  const j = plan.job;
  const p = plan.predicted;
  const total = t.makespanUs > 0 ? t.makespanUs : 1;
  const x = (us: number) => LEFT + (us / total) * PLOT;

  const byStream = new Map<StreamName, PlanOp[]>(STREAMS.map((s) => [s, []]));
  for (const op of plan.ops) byStream.get(op.stream)!.push(op);
  const lanes = STREAMS.filter((s) => byStream.get(s)!.length > 0);

  // Exposed communication: a link busy while compute is idle.
  const busyOf = (ops: readonly PlanOp[]): Interval[] => union(ops.map((op) => [t.start[op.id]!, t.end[op.id]!] as const));
  const compute = busyOf(byStream.get("compute")!);
  const comm = busyOf(plan.ops.filter((op) => op.stream !== "compute"));
  const exposed = subtract(comm, compute);
  const exposedBlocks: [number, number][] = [];
  for (const [a, b] of exposed) {
    const x0 = x(a);
    const x1 = x(b);
    const last = exposedBlocks[exposedBlocks.length - 1];
    if (last && x0 - last[1] < 1) last[1] = x1;
    else exposedBlocks.push([x0, x1]);
  }
  const exposedUs = exposed.reduce((s, [a, b]) => s + (b - a), 0);

  const spans = layerSpans(plan, t.start, t.end);

  // Vertical layout.
  const titleY = 26;
  const subtitleY = 46;
  const passY = 60;
  const layerY = passY + PASS_STRIP + 2;
  const lanesY = layerY + LAYER_STRIP + 6;
  const laneY = (i: number) => lanesY + i * (LANE + LANE_GAP);
  const lanesEnd = laneY(lanes.length) - LANE_GAP;
  const exposedY = lanesEnd + 6;
  const axisY = exposedY + EXPOSED + 8;
  const legendY = axisY + 34;

  // Legend rows (known before the height is).
  const present = KINDS.filter((k) => plan.ops.some((op) => op.kind === k));
  const legendItems: { colour: string; label: string; opacity?: number }[] = [
    ...present.map((k) => ({ colour: KIND_COLOURS[k], label: k })),
    { colour: FWD[1]!, label: "forward" },
    { colour: BWD[1]!, label: "backward" },
    ...(spans.some((sp) => sp.recompute) ? [{ colour: RECOMPUTE[1]!, label: "recompute" }] : []),
    { colour: EXPOSED_COLOUR, label: `exposed communication ${ms(exposedUs)}` },
  ];
  const legendRows: { colour: string; label: string; x: number }[][] = [[]];
  let lx = LEFT;
  for (const item of legendItems) {
    const w = 16 + textWidth(item.label, 11) + 18;
    if (lx + w > SVG_WIDTH - RIGHT && legendRows[legendRows.length - 1]!.length > 0) {
      legendRows.push([]);
      lx = LEFT;
    }
    legendRows[legendRows.length - 1]!.push({ ...item, x: lx });
    lx += w;
  }
  const height = legendY + legendRows.length * 18 + 8;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${SVG_WIDTH}" height="${height}" viewBox="0 0 ${SVG_WIDTH} ${height}" font-family="${FONT}">`);
  out.push(`<title>${esc(`${j.name}: ${plan.strategy}, predicted ${ms(p.iterationUs)} per iteration`)}</title>`);
  out.push(`<rect width="${SVG_WIDTH}" height="${height}" fill="#ffffff"/>`);

  // Title and context.
  const world = j.cluster.nodes * j.cluster.gpusPerNode;
  out.push(`<text x="${LEFT}" y="${titleY}" font-size="17" font-weight="bold" fill="#1a1a1a">${esc(`${j.name} — ${plan.strategy} — predicted ${ms(p.iterationUs)} per iteration`)}</text>`);
  const bound = p.lowerBoundUs > 0 ? ` (${(p.iterationUs / p.lowerBoundUs).toFixed(2)}×)` : "";
  const exposedShare = p.iterationUs > 0 ? ` (${((100 * p.exposedCommunicationUs) / p.iterationUs).toFixed(0)}%)` : "";
  const context =
    `${j.model.name}: ${j.model.layers} layers, ${j.model.moeLayers.length} MoE, ${j.model.experts} experts top-${j.model.topK}, ${j.model.dtype}` +
    ` · ${j.cluster.nodes} × ${j.cluster.gpusPerNode} ${j.cluster.device} (${world} GPUs)` +
    ` · tp ${j.parallel.tp} esp ${j.parallel.esp} ep ${j.parallel.ep} edp ${j.parallel.edp}` +
    ` · ${j.microBatches} × micro-batch ${j.microBatch} × ${j.seqLen}` +
    ` · lower bound ${ms(p.lowerBoundUs)}${bound} · exposed communication ${ms(p.exposedCommunicationUs)}${exposedShare}` +
    ` · ${plan.ops.length} ops`;
  out.push(`<text x="${LEFT}" y="${subtitleY}" font-size="12" fill="#555555">${esc(context)}</text>`);

  // Pass and layer strips.
  out.push(`<g font-size="10">`);
  out.push(`<text x="${LEFT - 8}" y="${passY + PASS_STRIP - 4}" text-anchor="end" fill="#555555">pass</text>`);
  out.push(`<text x="${LEFT - 8}" y="${layerY + LAYER_STRIP - 5}" text-anchor="end" fill="#555555">layer</text>`);
  // A pass is the forward or the backward of a micro-batch; recomputation belongs to the backward.
  const passes: { dir: PlanOp["dir"]; microBatch: number; start: number; end: number }[] = [];
  for (const s of spans) {
    const dir = s.recompute ? "bwd" : s.dir;
    const last = passes[passes.length - 1];
    if (last && last.dir === dir && last.microBatch === s.microBatch) last.end = s.end;
    else passes.push({ dir, microBatch: s.microBatch, start: s.start, end: s.end });
  }
  const passBlock = (start: number, end: number, fill: string, label: string, short: string) => {
    const x0 = x(start);
    const w = x(end) - x0;
    if (w <= 0) return;
    out.push(`<rect x="${n(x0)}" y="${passY}" width="${n(w)}" height="${PASS_STRIP}" fill="${fill}" stroke="#ffffff" stroke-width="1"><title>${esc(`${label}: ${ms(start)} – ${ms(end)}`)}</title></rect>`);
    const text = textWidth(label, 10) + 6 <= w ? label : textWidth(short, 10) + 6 <= w ? short : "";
    if (text) out.push(`<text x="${n(x0 + w / 2)}" y="${passY + PASS_STRIP - 4}" text-anchor="middle" fill="#333333">${text}</text>`);
  };
  for (const ps of passes) passBlock(ps.start, ps.end, (ps.dir === "fwd" ? FWD : BWD)[1]!, `${ps.dir === "fwd" ? "forward" : "backward"} mb${ps.microBatch}`, ps.dir);
  // What runs after the last backward is gradient synchronization that nothing hid.
  const lastPass = passes[passes.length - 1];
  if (lastPass && x(total) - x(lastPass.end) >= 2) passBlock(lastPass.end, total, SYNC, "gradient all-reduce tail", "tail");
  spans.forEach((s, i) => {
    const x0 = x(s.start);
    const w = x(s.end) - x0;
    if (w <= 0) return;
    const fill = (s.recompute ? RECOMPUTE : s.dir === "fwd" ? FWD : BWD)[i % 2]!;
    const what = `${s.label} ${s.recompute ? "recompute" : s.dir} mb${s.microBatch}`;
    out.push(`<rect x="${n(x0)}" y="${layerY}" width="${n(w)}" height="${LAYER_STRIP}" fill="${fill}"><title>${esc(`${what}: ${ms(s.start)} – ${ms(s.end)}`)}</title></rect>`);
  });
  // Layer labels: inside the span when it fits, else the bare number centred on the span
  // where it does not run into the previous label.
  let free = -Infinity;
  for (const s of spans) {
    const x0 = x(s.start);
    const w = x(s.end) - x0;
    if (w <= 0) continue;
    const mid = x0 + w / 2;
    const full = textWidth(s.label, 10);
    const bare = s.layer >= 0 ? String(s.layer) : "";
    const text = full + 4 <= w ? s.label : bare && mid - textWidth(bare, 10) / 2 >= free + 3 ? bare : "";
    if (!text) continue;
    free = mid + textWidth(text, 10) / 2;
    out.push(`<text x="${n(mid)}" y="${layerY + LAYER_STRIP - 5}" text-anchor="middle" fill="#333333">${text}</text>`);
  }
  out.push(`</g>`);

  // Lane backgrounds, labels and grid.
  const step = tickStep(total, 10);
  const decimals = Math.max(0, -Math.floor(Math.log10(step / 1000) + 1e-9));
  const ticks: number[] = [];
  for (let k = 0; k * step <= total + 1e-9; k++) ticks.push(k * step);
  const groupsOn = (s: StreamName) => [...new Set(byStream.get(s)!.map((op) => op.group).filter((g): g is string => g !== undefined))].sort();
  lanes.forEach((s, i) => {
    const y = laneY(i);
    const ops = byStream.get(s)!;
    const busy = ops.reduce((a, op) => a + op.predictedUs, 0);
    out.push(`<rect x="${LEFT}" y="${y}" width="${PLOT}" height="${LANE}" fill="#f4f4f4"/>`);
    const name = s === "compute" ? "compute" : s === "intra" ? "intra-node" : "inter-node";
    out.push(`<text x="${LEFT - 8}" y="${y + 15}" text-anchor="end" font-size="12" font-weight="bold" fill="#1a1a1a">${name}</text>`);
    const groups = groupsOn(s);
    const detail = `${((100 * busy) / total).toFixed(0)}% busy${groups.length > 0 ? ` · ${groups.join(" ")}` : ""}`;
    out.push(`<text x="${LEFT - 8}" y="${y + 29}" text-anchor="end" font-size="9" fill="#666666">${esc(detail)}</text>`);
  });
  out.push(`<g stroke="#000000" stroke-opacity="0.07" stroke-width="1">`);
  for (const tk of ticks) out.push(`<line x1="${n(x(tk))}" y1="${lanesY}" x2="${n(x(tk))}" y2="${lanesEnd}"/>`);
  out.push(`</g>`);

  const computeLane = lanes.indexOf("compute");
  out.push(`<g fill="${EXPOSED_COLOUR}">`);
  for (const [x0, x1] of exposedBlocks) {
    const w = Math.max(1, x1 - x0);
    if (computeLane >= 0) out.push(`<rect x="${n(x0)}" y="${laneY(computeLane)}" width="${n(w)}" height="${LANE}" fill-opacity="0.08"/>`);
    out.push(`<rect x="${n(x0)}" y="${exposedY}" width="${n(w)}" height="${EXPOSED}"/>`);
  }
  out.push(`</g>`);
  out.push(`<text x="${LEFT - 8}" y="${exposedY + EXPOSED - 1}" text-anchor="end" font-size="9" fill="${EXPOSED_COLOUR}">exposed comm</text>`);

  // Ops.
  lanes.forEach((s, i) => {
    const y = laneY(i) + 3;
    const h = LANE - 6;
    const blocks: Block[] = [];
    for (const op of byStream.get(s)!) {
      const x0 = x(t.start[op.id]!);
      const x1 = x(t.end[op.id]!);
      const narrow = x1 - x0 < 1;
      const last = blocks[blocks.length - 1];
      const lastNarrow = last !== undefined && (last.ops.length > 1 || last.x1 - last.x0 < 1);
      if (narrow && last && lastNarrow && x1 - last.x0 <= GROUP_PX && x0 - last.x1 < 1) {
        last.ops.push(op);
        last.x1 = Math.max(last.x1, x1);
      } else {
        blocks.push({ x0, x1, ops: [op] });
      }
    }
    out.push(`<g>`);
    for (const b of blocks) {
      const w = Math.max(1, b.x1 - b.x0);
      if (b.ops.length === 1) {
        const op = b.ops[0]!;
        const fill = KIND_COLOURS[op.kind];
        const tip = `#${op.id} ${opName(op)} · ${where(op)}${op.group ? ` @${op.group}` : ""} · ${size(op)} · ${op.predictedUs} µs from ${ns(t.start[op.id]!)} µs`;
        const stroke = w >= 4 ? ` stroke="#ffffff" stroke-width="0.5"` : "";
        out.push(`<rect x="${n(b.x0)}" y="${y}" width="${n(w)}" height="${h}" fill="${fill}"${stroke}><title>${esc(tip)}</title></rect>`);
        const long = shortLabel(op);
        const short = long.split(" ")[0]!;
        const label = textWidth(long, 10) + 6 <= w ? long : textWidth(short, 10) + 6 <= w ? short : "";
        if (label) out.push(`<text x="${n(b.x0 + w / 2)}" y="${y + h / 2 + 3.5}" text-anchor="middle" font-size="10" fill="${ink(fill)}" pointer-events="none">${esc(label)}</text>`);
      } else {
        const byKind = new Map<OpKind, number>();
        for (const op of b.ops) byKind.set(op.kind, (byKind.get(op.kind) ?? 0) + op.predictedUs);
        let main: OpKind = b.ops[0]!.kind;
        for (const k of KINDS) if ((byKind.get(k) ?? -1) > (byKind.get(main) ?? 0)) main = k;
        const us = ns(b.ops.reduce((a, op) => a + op.predictedUs, 0));
        const kinds = KINDS.filter((k) => byKind.has(k)).join(", ");
        const tip = `${b.ops.length} ops #${b.ops[0]!.id}–#${b.ops[b.ops.length - 1]!.id} (${kinds}) · ${us} µs from ${ns(t.start[b.ops[0]!.id]!)} µs`;
        out.push(`<rect x="${n(b.x0)}" y="${y}" width="${n(w)}" height="${h}" fill="${KIND_COLOURS[main]}"><title>${esc(tip)}</title></rect>`);
      }
    }
    out.push(`</g>`);
  });

  // Layer boundaries through the lanes.
  out.push(`<g stroke="#333333" stroke-opacity="0.25" stroke-width="0.6">`);
  let lastLine = -Infinity;
  for (const sp of spans) {
    const xs = x(sp.start);
    if (xs - lastLine < 3 || sp.end <= sp.start) continue;
    lastLine = xs;
    out.push(`<line x1="${n(xs)}" y1="${layerY}" x2="${n(xs)}" y2="${lanesEnd}"/>`);
  }
  out.push(`</g>`);

  // Time axis.
  out.push(`<g font-size="10" fill="#333333">`);
  out.push(`<line x1="${LEFT}" y1="${axisY}" x2="${LEFT + PLOT}" y2="${axisY}" stroke="#333333" stroke-width="1"/>`);
  for (const tk of ticks) {
    const xt = n(x(tk));
    out.push(`<line x1="${xt}" y1="${axisY}" x2="${xt}" y2="${axisY + 4}" stroke="#333333" stroke-width="1"/>`);
    out.push(`<text x="${xt}" y="${axisY + 15}" text-anchor="middle">${(tk / 1000).toFixed(decimals)}</text>`);
  }
  out.push(`<text x="${LEFT - 14}" y="${axisY + 15}" text-anchor="end">time (ms)</text>`);
  out.push(`</g>`);

  // Legend.
  out.push(`<g font-size="11" fill="#333333">`);
  legendRows.forEach((row, r) => {
    const y = legendY + r * 18;
    for (const item of row) {
      out.push(`<rect x="${n(item.x)}" y="${y - 9}" width="12" height="10" fill="${item.colour}"/>`);
      out.push(`<text x="${n(item.x + 16)}" y="${y}">${esc(item.label)}</text>`);
    }
  });
  out.push(`</g>`);
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

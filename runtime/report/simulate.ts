/**
 * What `fsmoec simulate` prints (ARCHITECTURE.md, "The CLI": predicted timeline, breakdown,
 * lower bound, exposed communication): the iteration time next to the scheduler's prediction
 * and the lower bound, busy and idle time per resource, exposed communication, what the
 * simulator's extra effects added, the critical path, and the MoE blocks set against FSMoE's
 * closed form with the reason wherever they disagree. Text for people, JSON for tools.
 */
import { AGREEMENT, departures, skewText, type Simulation } from "../simulate/index.js";
import { ms, pct, signedPct, textTable, times } from "./format.js";

/** Critical-path ops shown at each end of the path in text. */
export const PATH_SHOWN = 6;
/** Disagreeing blocks listed in text. */
export const BLOCKS_SHOWN = 10;

const RESOURCES = [
  ["compute", "compute"],
  ["intra", "intra-node links"],
  ["nic", "NICs"],
] as const;

/** Time on the critical path by stream and by op kind, largest first. */
export function pathBreakdown(sim: Simulation): { byStream: [string, number][]; byKind: [string, number][] } {
  const stream = new Map<string, number>();
  const kind = new Map<string, number>();
  for (const i of sim.criticalPath) {
    const op = sim.plan.ops[i]!;
    const d = sim.run.end[i]! - sim.run.start[i]!;
    stream.set(op.stream, (stream.get(op.stream) ?? 0) + d);
    kind.set(op.kind, (kind.get(op.kind) ?? 0) + d);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return { byStream: sorted(stream), byKind: sorted(kind) };
}

function opLine(sim: Simulation, i: number): string[] {
  const op = sim.plan.ops[i]!;
  const where = [op.kind, op.role, op.layer >= 0 ? `L${op.layer}` : "", op.dir, op.microBatch > 0 ? `mb${op.microBatch}` : "", op.chunk >= 0 ? `c${op.chunk}` : ""].filter((x) => x !== "").join(" ");
  return [`op ${op.id}`, op.stream, ms(sim.run.start[i]!), ms(sim.run.end[i]! - sim.run.start[i]!), where];
}

/** The model the run assumed, in one line. */
export function modelLine(sim: Simulation): string {
  const o = sim.options;
  const parts = [
    o.contention ? `NICs and intra-node links shared max-min fair between concurrent ops (${sim.origin})` : "no link contention (each op takes its planned time)",
    o.interference > 1 ? `compute ${o.interference}× slower beside communication` : "no interference",
    o.skew ? `expert loads ${skewText(o.skew)}, collectives wait for the slowest rank` : "balanced loads, ranks symmetric",
    ...(o.sharedCores ? [`the ranks share ${o.sharedCores.cores} CPU core${o.sharedCores.cores === 1 ? "" : "s"}, ${o.sharedCores.dispatchUs} µs of executor per op${o.sharedCores.handoffUs ? ` and ${o.sharedCores.handoffUs} µs per hand-off` : ""} (host profile)`] : []),
  ];
  return parts.join("; ");
}

/** The text report of a simulation. */
export function renderSimulation(sim: Simulation): string {
  const { plan, run } = sim;
  const c = plan.job.cluster;
  const lines: string[] = [];
  lines.push(`simulate ${plan.job.name}: ${plan.strategy} plan of ${plan.source.file}, ${plan.ops.length} ops on ${c.nodes} × ${c.gpusPerNode} ${c.device} (cost model ${plan.costModel.name})`);
  lines.push(`  model      ${modelLine(sim)}`);
  if (!run.ok) {
    const heads = run.stuck.map((i) => opLine(sim, i).join(" ")).join("; ");
    lines.push(`  the plan cannot finish: no stream head can start (${heads})`);
    return lines.join("\n") + "\n";
  }
  const T = run.makespanUs;
  const predicted = plan.predicted.iterationUs;
  const bound = plan.predicted.lowerBoundUs;
  lines.push(
    `  iteration  ${ms(T)} simulated; the scheduler predicted ${ms(predicted)} (${signedPct(T / predicted - 1)}); lower bound ${ms(bound)} (${times(T / bound, 2)})`,
  );
  const rows: string[][] = [["resource", "busy", "idle", "busy share"]];
  for (const [key, name] of RESOURCES) rows.push([name, ms(run.busyUs[key]), ms(T - run.busyUs[key]), pct(run.busyUs[key] / T)]);
  lines.push(textTable(rows, [false, true, true, true], "  ").trimEnd());
  lines.push(`  streams    busy compute ${ms(run.streamBusyUs[0])}, intra ${ms(run.streamBusyUs[1])}, inter ${ms(run.streamBusyUs[2])}`);
  lines.push(`  exposed communication ${ms(run.exposedCommunicationUs)} (${pct(run.exposedCommunicationUs / T)} of the iteration: communication running while no compute kernel does)`);
  const dep = departures(sim);
  if (dep.length === 0) lines.push(`  vs the scheduler: no departure — no two ops shared a link${sim.options.interference > 1 ? "" : ", no interference"}${sim.options.skew ? "" : ", loads balanced"}`);
  else {
    lines.push("  vs the scheduler:");
    for (const d of dep) lines.push(`    - ${d}`);
  }
  const path = sim.criticalPath;
  const { byStream, byKind } = pathBreakdown(sim);
  lines.push(
    `  critical path ${path.length} ops: ${byStream.map(([s, t]) => `${s} ${ms(t)}`).join(", ")}; by kind ${byKind
      .slice(0, 5)
      .map(([k, t]) => `${k} ${ms(t)}`)
      .join(", ")}${byKind.length > 5 ? ", …" : ""}`,
  );
  const shown = path.length <= 2 * PATH_SHOWN ? path : [...path.slice(0, PATH_SHOWN), -1, ...path.slice(-PATH_SHOWN)];
  const pathRows = shown.map((i) => (i < 0 ? ["…", "", "", "", `${path.length - 2 * PATH_SHOWN} more`] : opLine(sim, i)));
  lines.push(textTable([["op", "stream", "start", "time", "what"], ...pathRows], [false, false, true, true, false], "    ").trimEnd());
  lines.push(...blockLines(sim));
  return lines.join("\n") + "\n";
}

/** Indices as text: `L3`, `L0–L7`, `L1–L23 every 2nd`, or a list. */
export function indexList(xs: readonly number[], prefix: string): string {
  if (xs.length === 1) return `${prefix}${xs[0]}`;
  const step = xs[1]! - xs[0]!;
  if (xs.length > 2 && xs.every((x, i) => x === xs[0]! + i * step)) {
    const nth = step === 1 ? "" : ` every ${step === 2 ? "2nd" : step === 3 ? "3rd" : `${step}th`}`;
    return `${prefix}${xs[0]}–${prefix}${xs[xs.length - 1]}${nth}`;
  }
  return xs.map((x) => `${prefix}${x}`).join(", ");
}

/** The closed-form section. */
function blockLines(sim: Simulation): string[] {
  const blocks = sim.blocks;
  if (blocks.length === 0) return ["  closed form: the plan has no MoE block"];
  const within = blocks.filter((b) => Math.abs(b.disagreement) <= AGREEMENT).length;
  const worst = blocks.reduce((a, b) => (Math.abs(b.disagreement) > Math.abs(a.disagreement) ? b : a));
  const name = (b: (typeof blocks)[number]) => `L${b.layer} ${b.recompute ? "recompute " : ""}${b.dir}${b.microBatch > 0 ? ` mb${b.microBatch}` : ""}`;
  const outside = blocks.reduce((s, b) => s + (b.blockUs - b.simulatedUs), 0) / blocks.length;
  const out = [
    `  closed form (FSMoE, per MoE block): simulated span within ${pct(AGREEMENT)} on ${within} of ${blocks.length} blocks; largest disagreement ${signedPct(worst.disagreement)} (${name(worst)}); gate, order and restore, which it leaves out, take ${ms(outside)} per block`,
  ];
  const off = blocks.filter((b) => Math.abs(b.disagreement) > AGREEMENT);
  // Blocks that disagree the same way (same direction, degree, order, times and reasons) share a line.
  const groups = new Map<string, typeof off>();
  for (const b of off) {
    const key = [b.dir, b.recompute, b.degree, b.order, ms(b.simulatedUs), ms(b.closedFormUs), b.reasons.join("; ")].join("|");
    const list = groups.get(key) ?? [];
    list.push(b);
    groups.set(key, list);
  }
  const lines = [...groups.values()];
  for (const list of lines.slice(0, BLOCKS_SHOWN)) {
    const b = list[0]!;
    const layers = indexList([...new Set(list.map((x) => x.layer))].sort((x, y) => x - y), "L");
    const mbs = [...new Set(list.map((x) => x.microBatch))].sort((x, y) => x - y);
    const label = `${layers} ${b.recompute ? "recompute " : ""}${b.dir}${mbs.length > 1 || mbs[0]! > 0 ? ` ${indexList(mbs, "mb")}` : ""}${list.length > 1 ? ` (${list.length} blocks)` : ""}`;
    out.push(`    ${label} r=${b.degree} ${b.order}: simulated ${ms(b.simulatedUs)}, closed form ${ms(b.closedFormUs)} (${signedPct(b.disagreement)}): ${b.reasons.join("; ")}`);
  }
  if (lines.length > BLOCKS_SHOWN) {
    const rest = lines.slice(BLOCKS_SHOWN).reduce((n, l) => n + l.length, 0);
    out.push(`    … ${rest} more blocks beyond ${pct(AGREEMENT)} (--format json lists them all)`);
  }
  return out;
}

/** The JSON report of a simulation. */
export function simulationJson(sim: Simulation): unknown {
  const { plan, run } = sim;
  const T = run.makespanUs;
  const { byStream, byKind } = sim.run.ok ? pathBreakdown(sim) : { byStream: [], byKind: [] };
  return {
    job: plan.job.name,
    strategy: plan.strategy,
    source: plan.source.file,
    ops: plan.ops.length,
    options: { contention: sim.options.contention, interference: sim.options.interference, skew: skewText(sim.options.skew), ...(sim.options.sharedCores && { sharedCores: sim.options.sharedCores }) },
    links: sim.origin,
    ok: run.ok,
    ...(!run.ok && { stuck: run.stuck.map((i) => plan.ops[i]!.id) }),
    iterationUs: T,
    predictedUs: plan.predicted.iterationUs,
    lowerBoundUs: plan.predicted.lowerBoundUs,
    busyUs: run.busyUs,
    idleUs: { compute: T - run.busyUs.compute, intra: T - run.busyUs.intra, nic: T - run.busyUs.nic },
    streamBusyUs: { compute: run.streamBusyUs[0], intra: run.streamBusyUs[1], inter: run.streamBusyUs[2] },
    exposedCommunicationUs: run.exposedCommunicationUs,
    effects: { nic: run.nic, intra: run.intra, interference: run.interference },
    skew: sim.skew,
    departures: departures(sim),
    criticalPath: { ops: sim.criticalPath.map((i) => plan.ops[i]!.id), byStream: Object.fromEntries(byStream), byKind: Object.fromEntries(byKind) },
    blocks: sim.blocks,
  };
}

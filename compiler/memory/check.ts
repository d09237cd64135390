/**
 * An independent check of a memory plan (ARCHITECTURE.md, "The pipeline": compiler/memory/),
 * for tests and for plans read back from disk: every buffer has an aligned offset inside its
 * region, and no two buffers that must not share memory (reuse.ts: both persistent, lifetimes
 * overlapping in issue order, or not ordered by happens-before) overlap in bytes.
 */
import type { TaskGraph } from "../graph/types.js";
import { ALIGNMENT, type MemoryPlan } from "./plan.js";
import { bufferUsage, mustNotShare } from "./reuse.js";

/** Every problem with a plan's placement, as sentences; empty when it is sound. */
export function placementProblems(plan: MemoryPlan, graph: TaskGraph): string[] {
  const out: string[] = [];
  const usage = bufferUsage(graph);
  const live = graph.buffers.filter((b) => b.persistent || usage.lifetimes.get(b.id)!.first >= 0);
  for (const b of graph.buffers) {
    const offset = plan.offsets.get(b.id);
    if (offset === undefined) {
      out.push(`buffer '${b.name}' (id ${b.id}) has no offset`);
      continue;
    }
    if (offset % ALIGNMENT !== 0) out.push(`buffer '${b.name}' (id ${b.id}) at ${offset} is not ${ALIGNMENT}-byte aligned`);
    const [lo, hi] = b.persistent ? [0, plan.persistentBytes] : [plan.persistentBytes, plan.totalBytes];
    const used = b.persistent || usage.lifetimes.get(b.id)!.first >= 0;
    if (used && (offset < lo || offset + b.bytes > hi)) {
      out.push(`buffer '${b.name}' (id ${b.id}) at [${offset}, ${offset + b.bytes}) lies outside its region [${lo}, ${hi})`);
    }
  }
  for (let i = 0; i < live.length; i++) {
    for (let j = i + 1; j < live.length; j++) {
      const a = live[i]!;
      const b = live[j]!;
      const oa = plan.offsets.get(a.id);
      const ob = plan.offsets.get(b.id);
      if (oa === undefined || ob === undefined || a.bytes === 0 || b.bytes === 0) continue;
      if (oa < ob + b.bytes && ob < oa + a.bytes && mustNotShare(usage, a.id, b.id)) {
        out.push(`buffers '${a.name}' (id ${a.id}) at [${oa}, ${oa + a.bytes}) and '${b.name}' (id ${b.id}) at [${ob}, ${ob + b.bytes}) overlap while both are live`);
      }
    }
  }
  return out;
}

/** Throws, listing the problems, unless the placement is sound (see {@link placementProblems}). */
export function checkPlacement(plan: MemoryPlan, graph: TaskGraph): void {
  const problems = placementProblems(plan, graph);
  if (problems.length > 0) throw new Error(`memory plan is unsound:\n  ${problems.join("\n  ")}`);
}

/**
 * FSMoE's greedy stack packing of the dense-gradient all-reduce into backward windows
 * (fsmoe-digest.md §4.5, step 1, the authors' `get_stored_grad`): walk the windows in order
 * with a LIFO stack of deferred pieces. A new gradient goes into the current window, split
 * when it does not fit (each piece pays α again) with the rest pushed on the stack; slack left
 * in a window is spent popping deferred pieces. What remains on the stack cannot be hidden.
 */
import type { GradPart } from "../graph/moe-block.js";
import { fitting, type Window } from "./windows.js";

/** Where each piece went: by window index, and the leftover (with the window after which it was produced). */
export interface Packing {
  readonly placed: ReadonlyMap<number, readonly GradPart[]>;
  readonly leftover: readonly { readonly part: GradPart; readonly producedAfter: number }[];
}

/** Pack gradients into windows with FSMoE's stack rule. */
export function stackPacking(windows: readonly Window[], line: { alpha: number; beta: number }): Packing {
  const placed = new Map<number, GradPart[]>();
  const stack: { part: GradPart; producedAfter: number }[] = [];
  let pending: { part: GradPart; producedAfter: number } | null = null;
  const put = (i: number, p: GradPart) => {
    const list = placed.get(i) ?? [];
    list.push(p);
    placed.set(i, list);
  };
  const cost = (n: number) => line.alpha + line.beta * n;
  windows.forEach((win, i) => {
    let cap = win.capUs;
    if (pending) {
      const { part } = pending;
      if (cost(part.elements) > cap) {
        const fit = Math.min(part.elements, fitting(cap, line));
        if (fit > 0) put(i, { ...part, elements: fit });
        if (fit < part.elements) stack.push({ part: { ...part, offset: part.offset + fit, elements: part.elements - fit }, producedAfter: pending.producedAfter });
        cap = 0;
      } else {
        put(i, part);
        cap -= cost(part.elements);
      }
      pending = null;
    }
    while (cap > line.alpha && stack.length > 0) {
      const top = stack.pop()!;
      const fit = Math.min(top.part.elements, fitting(cap, line));
      if (fit <= 0) {
        stack.push(top);
        break;
      }
      put(i, { ...top.part, elements: fit });
      cap -= cost(fit);
      if (fit < top.part.elements) {
        stack.push({ part: { ...top.part, offset: top.part.offset + fit, elements: top.part.elements - fit }, producedAfter: top.producedAfter });
        break;
      }
    }
    if (win.produces) pending = { part: win.produces, producedAfter: i };
  });
  const leftover = [...stack.reverse()];
  if (pending) leftover.push(pending);
  return { placed, leftover };
}

/**
 * Shared assertion of the replay tests: a comparison with the reference holds — every tensor
 * within tolerance, none missing, routing identical, the loss within tolerance.
 */
import { expect } from "vitest";
import type { Comparison } from "../runtime/replay/index.js";

/** Assert that a replay computed what the reference computed, naming what did not. */
export function expectVerified(c: Comparison): void {
  expect(c.tensors.filter((t) => !t.ok).map((t) => `rank ${t.rank} ${t.name} ${t.relError}`)).toEqual([]);
  expect(c.missing).toEqual([]);
  expect(c.routing.filter((r) => r.mismatches > 0)).toEqual([]);
  expect(c.loss.ok).toBe(true);
  expect(c.tensors.length).toBeGreaterThan(0);
  expect(c.ok).toBe(true);
}

/**
 * Units and dimensions (LANGUAGE.md, "Values, units and expressions"). A dimension is a vector
 * of exponents over bytes, seconds and floating-point operations, so `Gb/s` is bytes¹·s⁻¹ and
 * `TFLOP/s` is flop¹·s⁻¹; products and quotients of quantities combine exponents, sums need
 * equal dimensions. Every unit is stored in base units (bytes, seconds, FLOP): 1 b = 1/8 B.
 */
import { compare, div, format, neg, rational, type Rational } from "./rational.js";

/** Exponents of bytes, seconds and FLOP. */
export type Dim = readonly [number, number, number];

export const DIMENSIONLESS: Dim = [0, 0, 0];
export const SIZE: Dim = [1, 0, 0];
export const TIME: Dim = [0, 1, 0];
export const RATE: Dim = [1, -1, 0];
export const COMPUTE: Dim = [0, -1, 1];

/** The base-unit factor and dimension of a unit spelling. */
export interface Unit {
  readonly factor: Rational;
  readonly dim: Dim;
}

const units = new Map<string, Unit>();
const sizes: [string, bigint, bigint][] = [
  ["B", 1n, 1n],
  ["KB", 1000n, 1n],
  ["MB", 1000n ** 2n, 1n],
  ["GB", 1000n ** 3n, 1n],
  ["TB", 1000n ** 4n, 1n],
  ["KiB", 1024n, 1n],
  ["MiB", 1024n ** 2n, 1n],
  ["GiB", 1024n ** 3n, 1n],
  ["TiB", 1024n ** 4n, 1n],
  ["b", 1n, 8n],
  ["Kb", 1000n, 8n],
  ["Mb", 1000n ** 2n, 8n],
  ["Gb", 1000n ** 3n, 8n],
  ["Tb", 1000n ** 4n, 8n],
];
for (const [name, num, den] of sizes) {
  units.set(name, { factor: rational(num, den), dim: SIZE });
  units.set(`${name}/s`, { factor: rational(num, den), dim: RATE });
}
units.set("ns", { factor: rational(1n, 10n ** 9n), dim: TIME });
units.set("us", { factor: rational(1n, 10n ** 6n), dim: TIME });
units.set("µs", { factor: rational(1n, 10n ** 6n), dim: TIME });
units.set("μs", { factor: rational(1n, 10n ** 6n), dim: TIME });
units.set("ms", { factor: rational(1n, 1000n), dim: TIME });
units.set("s", { factor: rational(1n), dim: TIME });
units.set("GFLOP/s", { factor: rational(10n ** 9n), dim: COMPUTE });
units.set("TFLOP/s", { factor: rational(10n ** 12n), dim: COMPUTE });
units.set("PFLOP/s", { factor: rational(10n ** 15n), dim: COMPUTE });

/** Look up a unit as written (case-sensitive). */
export function lookupUnit(name: string): Unit | undefined {
  return units.get(name);
}

/** Every unit spelling, for "did you mean". */
export function unitNames(): string[] {
  return [...units.keys()].filter((u) => u !== "μs");
}

export function dimEquals(a: Dim, b: Dim): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
}
export function dimMul(a: Dim, b: Dim): Dim {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
}
export function dimDiv(a: Dim, b: Dim): Dim {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}

/** A dimension in words: "a rate (bytes per second)", "a time", "a plain number". */
export function describeDim(d: Dim): string {
  if (dimEquals(d, DIMENSIONLESS)) return "a plain number";
  if (dimEquals(d, SIZE)) return "a size (bytes)";
  if (dimEquals(d, TIME)) return "a time";
  if (dimEquals(d, RATE)) return "a rate (bytes per second)";
  if (dimEquals(d, COMPUTE)) return "a compute rate (FLOP per second)";
  const parts: string[] = [];
  const names = ["B", "s", "FLOP"];
  d.forEach((e, i) => {
    if (e !== 0) parts.push(e === 1 ? names[i]! : `${names[i]}^${e}`);
  });
  return `a quantity in ${parts.join("·")}`;
}

/** The units a quantity of each named dimension is shown in, smallest first. */
const DISPLAY: readonly (readonly [Dim, readonly string[]])[] = [
  [SIZE, ["B", "KB", "MB", "GB", "TB"]],
  [RATE, ["B/s", "KB/s", "MB/s", "GB/s", "TB/s"]],
  [TIME, ["ns", "us", "ms", "s"]],
  [COMPUTE, ["GFLOP/s", "TFLOP/s", "PFLOP/s"]],
];

/**
 * A quantity in words with a unit: in `unit` when it is given and of the quantity's dimension
 * (the unit the user wrote), otherwise in the largest unit of the dimension in which it is at
 * least 1 (`-5 GB/s`, `-1 us`, `0 s`). A plain number, or one of an unnamed dimension, is the
 * number alone (in base units).
 */
export function formatQuantity(q: Rational, dim: Dim, unit?: string): string {
  const written = unit === undefined ? undefined : units.get(unit);
  if (written && dimEquals(written.dim, dim)) return `${format(div(q, written.factor))} ${unit}`;
  const names = DISPLAY.find(([d]) => dimEquals(d, dim))?.[1];
  if (!names) return format(q);
  const magnitude = q.num < 0n ? neg(q) : q;
  let chosen = q.num === 0n ? (names.find((n) => units.get(n)!.factor.num === 1n && units.get(n)!.factor.den === 1n) ?? names[0]!) : names[0]!;
  for (const name of names) if (compare(magnitude, units.get(name)!.factor) >= 0) chosen = name;
  return `${format(div(q, units.get(chosen)!.factor))} ${chosen}`;
}

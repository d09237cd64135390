/**
 * Exact arithmetic for `.moe` expressions (LANGUAGE.md: "Integers stay exact"). Values are
 * rationals of bigints, so `4096 * 1.2 / 8` is exactly 614.4 and `hidden / heads` stays an
 * integer when it divides. Results are bounded (see {@link inRange}) so no expression can make
 * the checker allocate without limit.
 */

/** A reduced fraction `num / den` with `den > 0`. */
export interface Rational {
  readonly num: bigint;
  readonly den: bigint;
}

function gcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  if (b < 0n) b = -b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Build a reduced rational. `den` must not be zero. */
export function rational(num: bigint, den = 1n): Rational {
  if (den < 0n) {
    num = -num;
    den = -den;
  }
  const g = gcd(num, den);
  return g > 1n ? { num: num / g, den: den / g } : { num, den };
}

export const ZERO = rational(0n);
export const ONE = rational(1n);

/** Parse a number literal (`16_384`, `1.5e-3`) exactly. */
export function parseLiteral(text: string): Rational {
  const hit = literals.get(text);
  if (hit) return hit;
  const value = parseLiteralUncached(text);
  // Generated and real files repeat the same few literals; a bounded cache keeps memory flat.
  if (literals.size < 65_536) literals.set(text, value);
  return value;
}

const literals = new Map<string, Rational>();

function parseLiteralUncached(text: string): Rational {
  const m = /^(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text.replace(/_/g, ""));
  if (!m) throw new Error(`not a number literal: ${text}`);
  const frac = m[2] ?? "";
  const exp = Number(m[3] ?? "0") - frac.length;
  const mantissa = BigInt(m[1]! + frac);
  // Zero whatever its exponent (`0e999999999999` is a valid literal; 10^exp is not computable).
  if (mantissa === 0n) return ZERO;
  return exp >= 0 ? rational(mantissa * 10n ** BigInt(exp)) : rational(mantissa, 10n ** BigInt(-exp));
}

export function add(a: Rational, b: Rational): Rational {
  return rational(a.num * b.den + b.num * a.den, a.den * b.den);
}
export function sub(a: Rational, b: Rational): Rational {
  return rational(a.num * b.den - b.num * a.den, a.den * b.den);
}
export function mul(a: Rational, b: Rational): Rational {
  return rational(a.num * b.num, a.den * b.den);
}
/** `a / b`; the caller checks `b` is not zero. */
export function div(a: Rational, b: Rational): Rational {
  return rational(a.num * b.den, a.den * b.num);
}
export function neg(a: Rational): Rational {
  return { num: -a.num, den: a.den };
}
export function isZero(a: Rational): boolean {
  return a.num === 0n;
}
export function isInteger(a: Rational): boolean {
  return a.den === 1n;
}
export function compare(a: Rational, b: Rational): number {
  const d = a.num * b.den - b.num * a.den;
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** The nearest double. */
export function toNumber(a: Rational): number {
  if (a.den === 1n) return Number(a.num);
  const n = Number(a.num);
  const d = Number(a.den);
  if (Number.isFinite(n) && Number.isFinite(d)) return n / d;
  // Scale both down together so the quotient survives the conversion.
  const shift = BigInt(Math.max(a.num.toString(2).length, a.den.toString(2).length) - 1000);
  const s = shift > 0n ? shift : 0n;
  return Number(a.num >> s) / Number(a.den >> s);
}

const LIMIT_BITS = 1100;

/**
 * True when a value is small enough to keep computing with: numerator and denominator under
 * 2^1100 (a little more than the double range), so repeated multiplication cannot grow bigints
 * without bound.
 */
export function inRange(a: Rational): boolean {
  return magnitudeBelowLimit(a.num) && magnitudeBelowLimit(a.den);
}

/** Whether |x| < 2^LIMIT_BITS, that is it fits in {@link LIMIT_BITS} bits (a whole number of hex digits). */
function magnitudeBelowLimit(x: bigint): boolean {
  return (x < 0n ? -x : x) < LIMIT;
}

const LIMIT = 1n << BigInt(LIMIT_BITS);

/** A short exact rendering: `614.4`, `4096`, `1/3`. */
export function format(a: Rational): string {
  if (a.den === 1n) return a.num.toString();
  let d = a.den;
  let twos = 0;
  let fives = 0;
  while (d % 2n === 0n) {
    d /= 2n;
    twos++;
  }
  while (d % 5n === 0n) {
    d /= 5n;
    fives++;
  }
  if (d === 1n && Math.max(twos, fives) <= 12) {
    const places = Math.max(twos, fives);
    const scaled = (a.num * 10n ** BigInt(places)) / a.den;
    const neg = scaled < 0n;
    const digits = (neg ? -scaled : scaled).toString().padStart(places + 1, "0");
    const text = `${digits.slice(0, -places)}.${digits.slice(-places)}`.replace(/\.?0+$/, "");
    return neg ? `-${text}` : text;
  }
  const n = toNumber(a);
  return Number.isFinite(n) ? String(Number(n.toPrecision(6))) : `${a.num}/${a.den}`;
}

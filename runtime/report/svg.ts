/**
 * The sweep's picture (`fsmoec sweep`): box plots, hand-built SVG, of each strategy's speedup
 * over deepspeed (left) and its ratio to the lower bound (right). Boxes span the quartiles,
 * the line is the median, whiskers reach the minimum and maximum, the diamond is the geometric
 * mean. Coordinates are printed with fixed decimals, so the same sweep gives the same bytes.
 */
import type { StrategyName } from "../../compiler/schedule/index.js";
import type { Distribution } from "./stats.js";

const W = 360;
const H = 320;
const PAD = { left: 52, right: 16, top: 40, bottom: 44 };
const COLORS: Readonly<Record<StrategyName, string>> = { deepspeed: "#8c8c8c", tutel: "#4e79a7", fsmoe: "#f28e2b", auto: "#59a14f" };

const n = (x: number) => (Math.round(x * 10) / 10).toFixed(1);
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** "Nice" tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

function panel(x0: number, title: string, dists: readonly (readonly [StrategyName, Distribution])[], reference: number | null): string {
  const usable = dists.filter(([, d]) => d.n > 0);
  let lo = Math.min(...usable.map(([, d]) => d.min), reference ?? Infinity);
  let hi = Math.max(...usable.map(([, d]) => d.max), reference ?? -Infinity);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  const margin = (hi - lo || 1) * 0.06;
  lo -= margin;
  hi += margin;
  const top = PAD.top;
  const bottom = H - PAD.bottom;
  const y = (v: number) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
  const left = x0 + PAD.left;
  const right = x0 + W - PAD.right;
  const out: string[] = [];
  out.push(`<text x="${n((left + right) / 2)}" y="22" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
  out.push(`<line x1="${n(left)}" y1="${n(top)}" x2="${n(left)}" y2="${n(bottom)}" stroke="#333"/>`);
  out.push(`<line x1="${n(left)}" y1="${n(bottom)}" x2="${n(right)}" y2="${n(bottom)}" stroke="#333"/>`);
  for (const t of ticks(lo, hi)) {
    if (t < lo || t > hi) continue;
    out.push(`<line x1="${n(left - 4)}" y1="${n(y(t))}" x2="${n(right)}" y2="${n(y(t))}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${n(left - 7)}" y="${n(y(t) + 4)}" text-anchor="end">${t.toFixed(t < 10 ? 2 : 1)}</text>`);
  }
  if (reference !== null) out.push(`<line x1="${n(left)}" y1="${n(y(reference))}" x2="${n(right)}" y2="${n(y(reference))}" stroke="#333" stroke-dasharray="4 3"/>`);
  const slot = (right - left) / dists.length;
  dists.forEach(([s, d], k) => {
    const cx = left + slot * (k + 0.5);
    const bw = Math.min(44, slot * 0.55);
    out.push(`<text x="${n(cx)}" y="${n(bottom + 18)}" text-anchor="middle">${s}</text>`);
    if (d.n === 0) return;
    const c = COLORS[s];
    out.push(`<line x1="${n(cx)}" y1="${n(y(d.max))}" x2="${n(cx)}" y2="${n(y(d.min))}" stroke="${c}"/>`);
    out.push(`<line x1="${n(cx - bw / 4)}" y1="${n(y(d.max))}" x2="${n(cx + bw / 4)}" y2="${n(y(d.max))}" stroke="${c}"/>`);
    out.push(`<line x1="${n(cx - bw / 4)}" y1="${n(y(d.min))}" x2="${n(cx + bw / 4)}" y2="${n(y(d.min))}" stroke="${c}"/>`);
    out.push(`<rect x="${n(cx - bw / 2)}" y="${n(y(d.q3))}" width="${n(bw)}" height="${n(Math.max(0.5, y(d.q1) - y(d.q3)))}" fill="${c}" fill-opacity="0.35" stroke="${c}"/>`);
    out.push(`<line x1="${n(cx - bw / 2)}" y1="${n(y(d.median))}" x2="${n(cx + bw / 2)}" y2="${n(y(d.median))}" stroke="${c}" stroke-width="2.5"/>`);
    const gy = y(d.geomean);
    out.push(`<path d="M${n(cx)} ${n(gy - 4)}L${n(cx + 4)} ${n(gy)}L${n(cx)} ${n(gy + 4)}L${n(cx - 4)} ${n(gy)}Z" fill="#fff" stroke="#222"/>`);
  });
  return out.join("\n");
}

/** The SVG of a sweep's distributions. */
export function sweepSvg(name: string, jobs: number, speedup: ReadonlyMap<StrategyName, Distribution>, bound: ReadonlyMap<StrategyName, Distribution>): string {
  const width = 2 * W;
  const height = H + 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(`sweep ${name}: ${jobs} jobs`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    panel(0, "speedup over deepspeed", [...speedup], 1),
    panel(W, "ratio to the lower bound", [...bound], 1),
    `<text x="${width / 2}" y="${height - 8}" text-anchor="middle" fill="#555">${esc(`sweep ${name}, ${jobs} jobs: box = quartiles, bar = median, whiskers = min and max, diamond = geometric mean`)}</text>`,
    "</svg>",
    "",
  ].join("\n");
}

/**
 * "Did you mean" for unknown names, fields, units and choices (LANGUAGE.md, "Values").
 */

/** Edit distance (insert, delete, substitute, and swap of neighbours), bounded for speed. */
export function editDistance(a: string, b: string, limit = Infinity): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  const prev2 = new Array<number>(b.length + 1).fill(0);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = new Array<number>(b.length + 1);
    cur[0] = i;
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2]! + 1);
      cur[j] = v;
      rowMin = Math.min(rowMin, v);
    }
    for (let j = 0; j <= b.length; j++) prev2[j] = prev[j]!;
    prev = cur;
    if (rowMin > limit) return limit + 1;
  }
  return prev[b.length]!;
}

/**
 * The closest candidate to `name`, or undefined when none is close enough: at most a third of
 * the name's length in edits (at least one). A case-only difference always counts as close (and
 * the first such candidate wins). Other ties go to the candidate sharing the longer prefix with
 * the name, then the longer suffix, then to the earlier candidate: `Gbit/s` suggests `Gb/s`
 * rather than `GiB/s`.
 */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(1, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestRank: readonly number[] = [];
  for (const c of candidates) {
    if (c === name) continue;
    const d = c.toLowerCase() === name.toLowerCase() ? 0.5 : editDistance(name, c, limit);
    if (d > limit) continue;
    // Case-only matches (`gb` for `GB` and `Gb`) keep the candidates' order.
    const rank = d === 0.5 ? [d, 0, 0] : [d, -commonPrefix(name, c), -commonPrefix([...name].reverse().join(""), [...c].reverse().join(""))];
    if (best === undefined || less(rank, bestRank)) {
      best = c;
      bestRank = rank;
    }
  }
  return best;
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function less(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/** The ` (did you mean 'x'?)` suffix for a message, or "" when nothing is close. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const c = closest(name, candidates);
  return c === undefined ? "" : `; did you mean '${c}'?`;
}

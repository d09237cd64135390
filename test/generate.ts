/**
 * A generator of random valid `.moe` programs, shared by the property tests
 * (test/properties.test.ts) and the front-end benchmark (bench/frontend.bench.ts).
 *
 * Every program it writes checks clean: the generator first picks consistent figures (a cluster,
 * a parallel layout that divides it, a model whose experts, heads and hidden sizes split over
 * that layout), then writes each figure as a randomly chosen expression that evaluates to it
 * exactly (`4096`, `16_384`, `2 * 2048`, `4 * hidden`, `m_3.hidden`, `(1 + 3) * 1024 / 4`), and
 * lays the text out with random whitespace, commas, inline or expanded blocks and comments in
 * many places. The output is deterministic in the seed, so a failing seed reproduces.
 *
 * What it covers: devices, links, clusters (with inline devices and links, std presets and
 * preset overrides), models with nested `attention`, `ffn` and `moe` blocks (every router,
 * MLA, shared experts, `moe_layers` as all / every N / after N / a list), standalone `layer`
 * blocks, train jobs (parallel layouts, pipelines as numbers or blocks, model and cluster
 * overrides), sweeps (`vary` over train fields and dotted paths into the model, the cluster and
 * the parallel block), units of every dimension, references to sibling fields, enclosing blocks,
 * other blocks and std presets, strings (built-in profile names), lists laid out on one line or
 * several, and imports (with {@link generateProject}).
 */

/** A small deterministic PRNG (mulberry32). */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** `k` distinct items in their original order. */
  sample<T>(items: readonly T[], k: number): T[] {
    const idx = items.map((_, i) => i);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    return idx
      .slice(0, k)
      .sort((a, b) => a - b)
      .map((i) => items[i]!);
  }
}

/** What to generate and how to lay it out. */
export interface GenerateOptions {
  /** Groups of related blocks (a cluster, a model, a train job, sometimes a sweep); default 1–4. */
  readonly groups?: number;
  /** Keep adding groups until the text has at least this many lines (overrides `groups`). */
  readonly targetLines?: number;
  /** Comments on their own lines, after fields, after `{`, at the end of the file (default true). */
  readonly comments?: boolean;
  /** Block comments that span several lines (default true). */
  readonly multilineComments?: boolean;
  /** Block comments inside expressions and inline blocks: `a = /* c *\/ 4 * /* d *\/ b` (default true). */
  readonly exoticComments?: boolean;
  /** Chance that the whole file uses CRLF line endings (default 0.1). */
  readonly crlf?: number;
  /** Chance per group of one deliberate error (an unknown field), for "mostly valid" benchmarks (default 0). */
  readonly errorRate?: number;
}

// ── Layout documents ─────────────────────────────────────────────────────────────────────────

/** A field value: an expression as text, a list, or a block (`{ … }`, `link { … }`, `dgx_a100 { … }`). */
type Val =
  | { readonly t: "expr"; readonly text: string }
  | { readonly t: "list"; readonly items: readonly Val[] }
  | { readonly t: "body"; readonly head?: string; readonly body: Body };

interface Field {
  readonly path: string;
  readonly val: Val;
  /** `name { … }` rather than `name = { … }`. */
  readonly nested?: boolean;
}

interface Body {
  readonly fields: Field[];
}

interface Block {
  readonly kind: string;
  readonly name: string;
  readonly body: Body;
}

const expr = (text: string): Val => ({ t: "expr", text });
const bodyVal = (fields: Field[], head?: string): Val => (head === undefined ? { t: "body", body: { fields } } : { t: "body", head, body: { fields } });
const listVal = (items: readonly (Val | string)[]): Val => ({ t: "list", items: items.map((i) => (typeof i === "string" ? expr(i) : i)) });
const field = (path: string, val: Val | string, nested = false): Field => ({ path, val: typeof val === "string" ? expr(val) : val, nested });

// ── Facts about std (compiler/std/std.moe) ───────────────────────────────────────────────────

const STD_DEVICES = ["a100_40gb", "a100_80gb", "h100_sxm", "h200", "b200", "gb200", "rtx2080ti", "rtx3090", "a6000"];
const STD_LINKS = ["pcie3", "pcie4", "pcie5", "nvlink3", "nvlink4", "nvlink5", "ib_hdr", "ib_ndr", "eth100", "eth25"];
/** Links whose efficiency std sets (the others default to 1.0, also fine to reference). */
const STD_LINKS_WITH_EFFICIENCY = ["nvlink3", "nvlink4", "ib_hdr", "ib_ndr"];
const STD_CLUSTERS: readonly { name: string; gpn: number }[] = [
  { name: "dgx_a100", gpn: 8 },
  { name: "dgx_h100", gpn: 8 },
  { name: "dgx_h200", gpn: 8 },
  { name: "dgx_b200", gpn: 8 },
  { name: "gb200_nvl72", gpn: 72 },
];

const ACTIVATIONS = ["relu", "gelu", "swiglu", "geglu"];
const ROUTERS = ["softmax_topk", "gshard", "switch", "sigmoid", "xmoe", "softmoe", "expert_choice"];
const DTYPES = ["fp32", "bf16", "fp16", "fp8"];
const SCHEDULES = ["deepspeed", "tutel", "fsmoe", "auto"];
const GRADIENTS = ["after_backward", "overlap", "adaptive"];
const RECOMPUTE = ["none", "selective", "full"];

const SIZE_UNITS: readonly [string, number][] = [
  ["B", 1], ["KB", 1e3], ["MB", 1e6], ["GB", 1e9], ["TB", 1e12],
  ["KiB", 1024], ["MiB", 1024 ** 2], ["GiB", 1024 ** 3], ["TiB", 1024 ** 4],
  ["b", 1 / 8], ["Kb", 1e3 / 8], ["Mb", 1e6 / 8], ["Gb", 1e9 / 8], ["Tb", 1e12 / 8],
];
const TIME_UNITS: readonly [string, number][] = [["ns", 1e-9], ["us", 1e-6], ["µs", 1e-6], ["μs", 1e-6], ["ms", 1e-3], ["s", 1]];
const COMPUTE_UNITS: readonly [string, number][] = [["GFLOP/s", 1e9], ["TFLOP/s", 1e12], ["PFLOP/s", 1e15]];

const WORDS = [
  "note", "S11", "see §2.2", "µs ≈ 1e-6 s", "漢字のコメント", "rocket 🚀", "a = 1 { }", "TODO: check", "x // y",
  "'quoted'", "\"double\"", "--", "layers = 4", "derived: 4 x hidden", "Ünïcödé", "tab\there", "[0, 1]", "{", "}",
  "import \"x.moe\"", "1e999999", "/ not a comment end", "* star", "end",
];

function divisors(n: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= n; d++) if (n % d === 0) out.push(d);
  return out;
}

// ── Expressions that evaluate to a known value ───────────────────────────────────────────────

/** An expression with its precedence: 3 atom, 2 product, 1 sum. */
interface Ex {
  readonly text: string;
  readonly prec: number;
}

/** A name that is in scope with a known integer value, usable in an expression. */
interface Known {
  readonly ref: string;
  readonly value: number;
}

class Writer {
  constructor(
    readonly rng: Rng,
    readonly opts: Required<GenerateOptions>,
  ) {}

  /** A separator around an operator, sometimes with a block comment in it. */
  op(o: string): string {
    const r = this.rng;
    if (this.opts.exoticComments && r.chance(0.03)) return ` /* ${this.word()} */ ${o} `;
    return r.pick([` ${o} `, ` ${o} `, ` ${o} `, `${o}`, `  ${o}  `]);
  }

  word(): string {
    return this.rng.pick(WORDS);
  }

  private paren(e: Ex, min: number): string {
    return e.prec >= min ? e.text : `(${e.text})`;
  }

  /** An integer literal as written: `4096`, `4_096`, `4096.0`, `4.096e3`. */
  intLiteral(v: number): string {
    const r = this.rng;
    const s = String(v);
    const roll = r.next();
    if (roll < 0.08 && v >= 1000) return s.replace(/\B(?=(\d{3})+(?!\d))/g, "_");
    if (roll < 0.1 && s.length >= 2) return `${s[0]}_${s.slice(1)}`;
    if (roll < 0.14) return `${s}.0`;
    if (roll < 0.18 && v % 1000 === 0 && v > 0) return `${v / 1000}e3`;
    if (roll < 0.2 && v % 100 === 0 && v > 0) return `${v / 100}E+2`;
    if (roll < 0.22) return `${s}0e-1`;
    return s;
  }

  /** An expression whose exact value is the integer `v` (≥ 0). */
  count(v: number, known: readonly Known[] = [], depth = 0): Ex {
    const r = this.rng;
    const atom = (): Ex => ({ text: this.intLiteral(v), prec: 3 });
    if (depth === 0 && v >= 40 && r.chance(0.02)) {
      // A long chain that no line holds: v = 1 + 1 + … + rest.
      const n = r.int(20, 39);
      return { text: [...Array.from({ length: n }, () => "1"), String(v - n)].join(this.op("+")), prec: 1 };
    }
    if (depth >= 2 || r.chance(depth === 0 ? 0.55 : 0.7)) {
      const exact = known.filter((k) => k.value === v);
      if (exact.length > 0 && r.chance(0.4)) return { text: r.pick(exact).ref, prec: 3 };
      return atom();
    }
    const forms: (() => Ex | undefined)[] = [
      () => {
        const ds = divisors(v).filter((d) => d > 1 && d < v);
        if (ds.length === 0) return undefined;
        const d = r.pick(ds);
        const a = this.count(d, known, depth + 1);
        const b = this.count(v / d, known, depth + 1);
        return { text: `${this.paren(a, 2)}${this.op("*")}${this.paren(b, 3)}`, prec: 2 };
      },
      () => {
        if (v < 2) return undefined;
        const a = r.int(1, v - 1);
        const x = this.count(a, known, depth + 1);
        const y = this.count(v - a, known, depth + 1);
        return { text: `${x.text}${this.op("+")}${this.paren(y, 2)}`, prec: 1 };
      },
      () => {
        const k = r.int(1, 9);
        const x = this.count(v + k, known, depth + 1);
        return { text: `${x.text}${this.op("-")}${k}`, prec: 1 };
      },
      () => {
        // No reference under a division: a sweep or an override may change what it names.
        const k = r.pick([2, 3, 4, 8, 10]);
        const x = this.count(v * k, [], depth + 1);
        return { text: `${this.paren(x, 2)}${this.op("/")}${k}`, prec: 2 };
      },
      () => ({ text: `(${this.count(v, known, depth + 1).text})`, prec: 3 }),
      () => ({ text: `-(-${this.paren(this.count(v, known, depth + 1), 3)})`, prec: 3 }),
      () => ({ text: `${r.pick(["--", "- -"])}${this.paren(this.count(v, known, depth + 1), 3)}`, prec: 3 }),
      () => {
        const ks = known.filter((k) => k.value > 0 && v % k.value === 0);
        if (ks.length === 0) return undefined;
        const k = r.pick(ks);
        const m = v / k.value;
        return m === 1 ? { text: k.ref, prec: 3 } : r.chance(0.5) ? { text: `${m}${this.op("*")}${k.ref}`, prec: 2 } : { text: `${k.ref}${this.op("*")}${m}`, prec: 2 };
      },
      () => {
        const ks = known.filter((k) => k.value > 0 && k.value < v);
        if (ks.length === 0) return undefined;
        const k = r.pick(ks);
        return { text: `${k.ref}${this.op("+")}${this.intLiteral(v - k.value)}`, prec: 1 };
      },
      () => {
        const ks = known.filter((k) => k.value > 0);
        if (ks.length === 0) return undefined;
        const k = r.pick(ks);
        return { text: `${k.ref}${this.op("*")}${v}${this.op("/")}${k.ref}`, prec: 2 };
      },
    ];
    for (let tries = 0; tries < 4; tries++) {
      const e = r.pick(forms)();
      if (e) return e;
    }
    return atom();
  }

  /** A decimal literal for a positive number given as `num / 10^places`. */
  private decimal(num: number, places: number): string {
    if (places === 0) return String(num);
    const s = String(num).padStart(places + 1, "0");
    return `${s.slice(0, -places)}.${s.slice(-places)}`;
  }

  /** A positive quantity of a dimension, in any of its units, sometimes as arithmetic. */
  quantity(dim: "size" | "rate" | "time" | "compute", refs: readonly string[] = [], depth = 0): Ex {
    const r = this.rng;
    const unit = () => {
      switch (dim) {
        case "size":
          return r.pick(SIZE_UNITS)[0];
        case "rate":
          return `${r.pick(SIZE_UNITS)[0]}${r.pick(["/s", "/s", "/s", " / s", "/ s"])}`;
        case "time":
          return r.pick(TIME_UNITS)[0];
        case "compute":
          return r.pick(COMPUTE_UNITS)[0];
      }
    };
    const num = () => (r.chance(0.6) ? this.intLiteral(r.int(1, 4000)) : this.decimal(r.int(1, 99_999), r.int(1, 3)));
    const atom = (): Ex => ({ text: `${num()} ${unit()}`, prec: 2 });
    if (depth >= 1 || r.chance(0.6)) {
      if (refs.length > 0 && r.chance(0.15)) return { text: r.pick(refs), prec: 3 };
      return atom();
    }
    const forms: (() => Ex | undefined)[] = [
      () => ({ text: `${r.int(2, 16)}${this.op("*")}${this.quantity(dim, refs, depth + 1).text}`, prec: 2 }),
      () => ({ text: `${this.paren(this.quantity(dim, refs, depth + 1), 2)}${this.op("*")}${r.int(2, 16)}`, prec: 2 }),
      () => ({ text: `${this.paren(this.quantity(dim, refs, depth + 1), 2)}${this.op("/")}${r.int(2, 16)}`, prec: 2 }),
      () => ({ text: `${this.quantity(dim, refs, depth + 1).text}${this.op("+")}${this.quantity(dim, refs, depth + 1).text}`, prec: 1 }),
      () => ({ text: `(${this.quantity(dim, refs, depth + 1).text})`, prec: 3 }),
      // A size over a time is a rate: `1 TB / 8 s`.
      () => (dim === "rate" ? { text: `${r.int(1, 999)} ${r.pick(SIZE_UNITS)[0]}${this.op("/")}${r.int(1, 99)} ${r.pick(TIME_UNITS)[0]}`, prec: 2 } : undefined),
      // A difference that stays positive: 100 of a unit minus 1 of the same unit.
      () => {
        const u = unit();
        return { text: `${r.int(100, 999)} ${u}${this.op("-")}${r.int(1, 99)} ${u}`, prec: 1 };
      },
    ];
    for (let tries = 0; tries < 4; tries++) {
      const e = r.pick(forms)();
      if (e) return e;
    }
    return atom();
  }

  /** A number in (0, 1]. */
  fraction(refs: readonly string[] = []): string {
    const r = this.rng;
    const p = r.int(1, 100);
    return r.pick([
      () => (p === 100 ? r.pick(["1", "1.0", "1.00"]) : this.decimal(p, 2).replace(/0$/, "")),
      () => `${p}${this.op("/")}100`,
      () => `${p}e-2`,
      () => (p > 50 ? `0.5${this.op("+")}${this.decimal(p - 50, 2)}` : `${this.decimal(p, 2)}`),
      () => `(1${this.op("-")}${this.decimal(100 - p, 2)})`,
      () => (refs.length > 0 ? r.pick(refs) : "0.9"),
    ])();
  }

  /** A positive real: `1.25`, `5 / 4`, `1`. */
  positive(): string {
    const r = this.rng;
    const n = r.int(1, 400);
    return r.pick([() => this.decimal(n, 2), () => `${n}${this.op("/")}100`, () => String(r.int(1, 4)), () => `${n}e-2`, () => `(${this.decimal(n, 2)})`])();
  }
}

// ── Program generation ───────────────────────────────────────────────────────────────────────

interface ClusterFacts {
  /** How a train job refers to it. */
  readonly val: Val;
  readonly nodes: number;
  readonly gpn: number;
}

interface ModelFacts {
  readonly name: string;
  readonly kind: "model" | "layer";
  readonly layers: number;
  readonly hidden: number;
  readonly experts: number;
  readonly topK: number;
  readonly router: string;
  readonly heads: number | null;
  readonly moeLayersKind: "all" | "every" | "after" | "list";
}

class Generator {
  private readonly w: Writer;
  private readonly r: Rng;
  private n = 0;
  /** Integer fields of earlier blocks, for cross-block references: `m_3.layers`. */
  private readonly counts: Known[] = [];
  private readonly devices: string[] = [];
  private readonly links: string[] = [];
  private readonly clusters: { name: string; nodes: number; gpn: number }[] = [];

  constructor(
    rng: Rng,
    private readonly opts: Required<GenerateOptions>,
  ) {
    this.r = rng;
    this.w = new Writer(rng, opts);
  }

  private id(prefix: string): string {
    return `${prefix}_${++this.n}`;
  }

  device(): Block {
    const { r, w } = this;
    const name = this.id("dev");
    const refs = this.r.chance(0.5) ? STD_DEVICES.map((d) => `${d}.memory`) : [];
    const fields: Field[] = [field("peak_flops", w.quantity("compute", this.r.chance(0.3) ? [`${r.pick(STD_DEVICES)}.peak_flops`] : []).text), field("memory", w.quantity("size", refs).text)];
    if (r.chance(0.7)) fields.push(field("memory_bandwidth", w.quantity("rate").text));
    if (r.chance(0.4)) fields.push(field("efficiency", w.fraction()));
    this.devices.push(name);
    return { kind: "device", name, body: { fields: this.shuffleFields(fields) } };
  }

  private linkFields(): Field[] {
    const { r, w } = this;
    const refs = [...STD_LINKS, ...this.links].map((l) => `${l}.bandwidth`);
    const fields: Field[] = [field("bandwidth", w.quantity("rate", r.chance(0.4) ? refs : []).text)];
    if (r.chance(0.8)) fields.push(field("latency", r.chance(0.1) ? `0 ${r.pick(TIME_UNITS)[0]}` : w.quantity("time", r.chance(0.2) ? [`${r.pick(STD_LINKS)}.latency`] : []).text));
    if (r.chance(0.4)) fields.push(field("efficiency", w.fraction(STD_LINKS_WITH_EFFICIENCY.map((l) => `${l}.efficiency`))));
    return this.shuffleFields(fields);
  }

  link(): Block {
    const name = this.id("lnk");
    const body = { fields: this.linkFields() };
    this.links.push(name);
    return { kind: "link", name, body };
  }

  /** A device value for a cluster: a preset, a user device, an inline device or an override. */
  private deviceValue(): Val {
    const { r, w } = this;
    const roll = r.next();
    const named = this.devices.length > 0 && r.chance(0.5) ? r.pick(this.devices) : r.pick(STD_DEVICES);
    if (roll < 0.5) return expr(named);
    if (roll < 0.75) return bodyVal([field("memory", w.quantity("size").text), ...(r.chance(0.5) ? [field("efficiency", w.fraction())] : [])], named);
    return bodyVal([field("peak_flops", w.quantity("compute").text), field("memory", w.quantity("size").text), ...(r.chance(0.5) ? [field("memory_bandwidth", w.quantity("rate").text)] : [])], "device");
  }

  private linkValue(): Val {
    const { r } = this;
    const roll = r.next();
    const named = this.links.length > 0 && r.chance(0.5) ? r.pick(this.links) : r.pick(STD_LINKS);
    if (roll < 0.5) return expr(named);
    if (roll < 0.7) return bodyVal([field("latency", this.w.quantity("time").text)], named);
    return bodyVal(this.linkFields(), "link");
  }

  /** A user cluster block, complete on its own. */
  cluster(): { block: Block; facts: { name: string; nodes: number; gpn: number } } {
    const { r, w } = this;
    const name = this.id("cl");
    const gpn = r.pick([1, 2, 4, 4, 8, 8, 8]);
    const nodes = r.pick([1, 2, 3, 4, 6, 8]);
    const known = this.counts.filter((k) => k.ref.endsWith(".nodes") || k.ref.endsWith(".gpus_per_node"));
    const fields: Field[] = [
      field("nodes", w.count(nodes, known).text),
      field("gpus_per_node", w.count(gpn, known).text),
      field("device", this.deviceValue()),
      field("intra", this.linkValue()),
      field("inter", this.linkValue()),
    ];
    if (r.chance(0.6)) fields.push(field("nics_per_node", w.count(r.pick([1, 2, gpn]), [{ ref: "gpus_per_node", value: gpn }]).text));
    // Built-in profiles only: a path would have to exist for `compile`.
    if (r.chance(0.2)) fields.push(field("profile", r.pick(['"fsmoe-paper-16"', '"fsmoe-paper-32"', '"fsmoe-paper-48"'])));
    this.counts.push({ ref: `${name}.nodes`, value: nodes }, { ref: `${name}.gpus_per_node`, value: gpn });
    const facts = { name, nodes, gpn };
    this.clusters.push(facts);
    return { block: { kind: "cluster", name, body: { fields: this.shuffleFields(fields) } }, facts };
  }

  /** How a train job gets its cluster. */
  private clusterForTrain(own: { name: string; nodes: number; gpn: number } | undefined): ClusterFacts {
    const { r, w } = this;
    const roll = r.next();
    if (own && roll < 0.55) return { val: expr(own.name), nodes: own.nodes, gpn: own.gpn };
    if (own && roll < 0.7) {
      const nodes = r.pick([1, 2, 4]);
      return { val: bodyVal([field("nodes", w.count(nodes).text)], own.name), nodes, gpn: own.gpn };
    }
    const preset = r.chance(0.9) ? r.pick(STD_CLUSTERS.slice(0, 4)) : STD_CLUSTERS[4]!;
    const nodes = preset.gpn > 8 ? 1 : r.pick([1, 2, 4]);
    const extra: Field[] = r.chance(0.3) ? [field("intra", this.linkValue())] : [];
    return { val: bodyVal(this.shuffleFields([field("nodes", w.count(nodes).text), ...extra]), preset.name), nodes, gpn: preset.gpn };
  }

  /** A model or a layer whose figures suit a layout of `esp`, `ep`, `tp`. */
  model(layout: { esp: number; ep: number; tp: number }): { block: Block; facts: ModelFacts } {
    const { r, w } = this;
    const kind = r.chance(0.2) ? "layer" : "model";
    const name = this.id(kind === "layer" ? "lay" : "m");
    const experts = layout.ep * r.pick([1, 1, 2, 4]);
    // switch sends each token to 1 expert and gshard to 2 (FIXED_TOP_K in the rules).
    const router = r.pick(ROUTERS.filter((x) => x !== "gshard" || experts >= 2));
    const topK = router === "switch" ? 1 : router === "gshard" ? 2 : r.int(1, Math.min(experts, 4));
    const hidden = 128 * r.pick([8, 16, 24, 32]);
    const expertHidden = hidden * r.pick([1, 2, 4]);
    const hiddenKnown: Known[] = [{ ref: "hidden", value: hidden }];

    const moe: Field[] = [
      field("experts", w.count(experts, this.counts.filter((k) => k.ref.endsWith(".experts"))).text),
      field("top_k", w.count(topK, [{ ref: "experts", value: experts }]).text),
      field("expert_hidden", w.count(expertHidden, hiddenKnown).text),
    ];
    if (r.chance(0.6)) moe.push(field("activation", r.pick(ACTIVATIONS)));
    if (r.chance(0.5) || router !== "softmax_topk") moe.push(field("router", router));
    if (r.chance(0.6)) moe.push(field("capacity_factor", w.positive()));
    if (r.chance(0.3)) {
      moe.push(field("shared_experts", w.count(r.int(0, 2)).text));
      if (r.chance(0.5)) moe.push(field("shared_hidden", w.count(expertHidden, [{ ref: "expert_hidden", value: expertHidden }, ...hiddenKnown]).text));
    }
    if (r.chance(0.3)) moe.push(field("aux_loss", r.pick(["0", "0.01", "1e-3", "0.0", w.positive()])));
    if (r.chance(0.2)) moe.push(field("router_dtype", r.pick(DTYPES)));
    if (router === "softmax_topk" && r.chance(0.5)) moe.push(field("normalize", r.pick(["true", "false"])));
    if ((router === "softmax_topk" || router === "sigmoid") && r.chance(0.6)) {
      const groups = r.pick(divisors(experts));
      const perGroup = experts / groups;
      const minGroups = Math.ceil(topK / perGroup);
      const topkGroups = r.int(minGroups, groups);
      moe.push(field("groups", w.count(groups, [{ ref: "experts", value: experts }]).text));
      if (r.chance(0.7) || topkGroups !== groups) moe.push(field("topk_groups", w.count(topkGroups, [{ ref: "groups", value: groups }]).text));
      if (r.chance(0.5)) moe.push(field("route_scale", w.positive()));
    }
    if (router === "sigmoid" && r.chance(0.5)) moe.push(field("bias_update_rate", r.pick(["0.001", "1e-3", "1 / 1000"])));
    if (router === "xmoe" && r.chance(0.5)) moe.push(field("routing_dim", w.count(r.pick([64, 128, 256])).text));
    if (router === "softmoe" && r.chance(0.5)) moe.push(field("slots_per_expert", w.count(r.int(1, 4)).text));

    let facts: ModelFacts;
    const fields: Field[] = [];
    if (kind === "layer") {
      fields.push(field("hidden", w.count(hidden, this.counts.filter((k) => k.ref.endsWith(".hidden"))).text), ...moe);
      if (r.chance(0.5)) fields.push(field("dtype", r.pick(DTYPES)));
      facts = { name, kind, layers: 1, hidden, experts, topK, router, heads: null, moeLayersKind: "all" };
    } else {
      const layers = r.pick([2, 4, 6, 8, 12, 16, 32]);
      fields.push(field("layers", w.count(layers, this.counts.filter((k) => k.ref.endsWith(".layers"))).text));
      fields.push(field("hidden", w.count(hidden, this.counts.filter((k) => k.ref.endsWith(".hidden"))).text));
      if (r.chance(0.6)) fields.push(field("vocab", w.count(r.pick([256, 32000, 50257, 129280, hidden * 8]), hiddenKnown).text));
      // Heads: a power of two that tp divides and that divides hidden (a multiple of 128).
      let heads: number | null = hidden / 128;
      const attKind = r.pick(["mha", "gqa", "mla", "default"]);
      if (r.chance(0.8) || heads % layout.tp !== 0) {
        heads = r.pick([8, 16, 32, 64]);
        const att: Field[] = [field("heads", w.count(heads).text)];
        if (attKind !== "default") att.push(field("kind", attKind));
        if (attKind === "gqa" || (attKind === "mha" && r.chance(0.3))) {
          const kv = attKind === "mha" ? heads : r.pick(divisors(heads));
          att.push(field("kv_heads", w.count(kv, [{ ref: "heads", value: heads }]).text));
        }
        if (attKind !== "mla" && r.chance(0.3)) att.push(field("head_dim", w.count(hidden / heads, [{ ref: "heads", value: heads }]).text));
        if (attKind === "mla") {
          for (const f of r.sample(["q_lora_rank", "kv_lora_rank", "qk_nope_dim", "rope_dim", "v_head_dim"], r.int(0, 5))) {
            att.push(field(f, w.count(r.pick([64, 128, 512, 1536]), hiddenKnown).text));
          }
        }
        fields.push(field("attention", bodyVal(this.shuffleFields(att)), r.chance(0.85)));
      }
      // moe_layers: which layers are MoE; the dense ones need an ffn hidden that tp divides.
      const sel = r.pick(["all", "all", "every", "after", "list", "default"] as const);
      let moeLayersKind: ModelFacts["moeLayersKind"] = "all";
      if (sel === "all") fields.push(field("moe_layers", "all"));
      else if (sel === "every") {
        fields.push(field("moe_layers", `every ${w.intLiteral(r.pick(divisors(layers)))}`));
        moeLayersKind = "every";
      } else if (sel === "after") {
        fields.push(field("moe_layers", `after ${w.intLiteral(r.int(0, layers - 1))}`));
        moeLayersKind = "after";
      } else if (sel === "list") {
        const idx = r.sample(Array.from({ length: layers }, (_, i) => i), r.int(1, r.chance(0.2) ? layers : Math.min(layers, 6)));
        fields.push(field("moe_layers", listVal(idx.map((i) => w.count(i).text))));
        moeLayersKind = "list";
      }
      if (r.chance(0.6)) {
        const ffn: Field[] = [];
        if (r.chance(0.7)) ffn.push(field("hidden", w.count(hidden * 4, [{ ref: "model.hidden", value: hidden }]).text));
        if (r.chance(0.6)) ffn.push(field("activation", r.pick(ACTIVATIONS)));
        fields.push(field("ffn", bodyVal(ffn), r.chance(0.85)));
      }
      fields.push(field("moe", bodyVal(this.shuffleFields(moe)), r.chance(0.85)));
      if (r.chance(0.6)) fields.push(field("dtype", r.pick(DTYPES)));
      facts = { name, kind, layers, hidden, experts, topK, router, heads, moeLayersKind };
      this.counts.push({ ref: `${name}.layers`, value: layers }, { ref: `${name}.moe.experts`, value: experts });
    }
    if (kind === "layer") this.counts.push({ ref: `${name}.experts`, value: experts });
    this.counts.push({ ref: `${name}.hidden`, value: hidden });
    return { block: { kind, name, body: { fields: kind === "layer" ? this.shuffleFields(fields) : fields } }, facts };
  }

  /** A train job over a model and a cluster with a layout chosen for both. */
  train(model: ModelFacts, cluster: ClusterFacts, layout: { esp: number; ep: number; tp: number; edp: number }): { block: Block; nodesMayVary: boolean; epMayVary: boolean } {
    const { r, w } = this;
    const name = this.id("job");
    const fields: Field[] = [];
    // The model, sometimes with overrides that keep it valid (more layers, top_k 1, another dtype).
    if (r.chance(0.2)) {
      const over: Field[] = [];
      if (model.kind === "model" && r.chance(0.6)) over.push(field("layers", w.count(model.layers * 2).text));
      if (r.chance(0.5)) over.push(field("dtype", r.pick(DTYPES)));
      const topK1 = model.router !== "gshard";
      if (model.kind === "model" && r.chance(0.5)) over.push(field("moe", bodyVal([...(topK1 ? [field("top_k", "1")] : []), field("capacity_factor", w.positive())]), true));
      if (model.kind === "layer" && topK1 && r.chance(0.5)) over.push(field("top_k", "1"));
      fields.push(field("model", bodyVal(over, model.name)));
    } else fields.push(field("model", model.name));
    fields.push(field("cluster", cluster.val));
    const microBatch = r.pick([1, 2, 4, 8, 16]);
    fields.push(field("micro_batch", w.count(microBatch).text));
    fields.push(field("seq_len", w.count(64 * r.pick([1, 2, 4, 8, 16, 32, 64])).text));
    if (r.chance(0.5)) fields.push(field("micro_batches", w.count(r.pick([1, 2, 4, 8]), [{ ref: "cluster.nodes", value: cluster.nodes }]).text));

    // The parallel block: write each degree, or leave it to its default when that is the same.
    const par: Field[] = [];
    const ctx: Known[] = [
      { ref: "cluster.gpus_per_node", value: cluster.gpn },
      { ref: "cluster.nodes", value: cluster.nodes },
    ];
    let epWritten = false;
    if (layout.esp !== cluster.gpn || r.chance(0.5)) par.push(field("esp", w.count(layout.esp, ctx).text));
    if (layout.ep !== cluster.nodes || r.chance(0.5)) {
      epWritten = true;
      par.push(field("ep", w.count(layout.ep, ctx).text));
    }
    let edpWritten = false;
    if (r.chance(0.3)) {
      par.push(field("edp", w.count(layout.edp, [{ ref: "esp", value: layout.esp }]).text));
      edpWritten = true;
    }
    if (layout.tp !== layout.esp || r.chance(0.4)) par.push(field("tp", w.count(layout.tp, [{ ref: "esp", value: layout.esp }, ...ctx]).text));
    if (par.length > 0 || r.chance(0.2)) fields.push(field("parallel", bodyVal(this.shuffleFields(par)), r.chance(0.85)));
    // Varying cluster.nodes keeps the layout valid only when no degree follows the node count.
    const followsNodes = par.some((f) => f.val.t === "expr" && f.val.text.includes("cluster.nodes"));

    if (r.chance(0.6)) fields.push(field("schedule", r.pick(SCHEDULES)));
    if (r.chance(0.5)) {
      const p = r.next();
      if (p < 0.3) fields.push(field("pipeline", "auto"));
      else if (p < 0.7) fields.push(field("pipeline", w.count(r.pick([1, 2, 4, 8])).text));
      else {
        const pf: Field[] = [];
        if (r.chance(0.7)) pf.push(field("forward", r.chance(0.3) ? "auto" : w.count(r.pick([1, 2, 4])).text));
        if (r.chance(0.7)) pf.push(field("backward", r.chance(0.3) ? "auto" : w.count(r.pick([1, 2, 4])).text));
        fields.push(field("pipeline", bodyVal(pf)));
      }
    }
    if (r.chance(0.4)) fields.push(field("gradients", r.pick(GRADIENTS)));
    if (r.chance(0.4)) fields.push(field("recompute", r.pick(RECOMPUTE)));
    if (r.chance(0.2)) fields.push(field("optimizer_sharding", r.pick(["true", "false"])));
    if (r.chance(0.4)) fields.push(field("seed", w.count(r.int(0, 99_999), model.kind === "model" ? [{ ref: "model.layers", value: model.layers }] : []).text));
    return { block: { kind: "train", name, body: { fields: this.shuffleFields(fields) } }, nodesMayVary: epWritten && !followsNodes && !edpWritten, epMayVary: !edpWritten };
  }

  sweep(train: string, model: ModelFacts, cluster: ClusterFacts, layout: { esp: number; ep: number; tp: number }, nodesMayVary: boolean, epMayVary: boolean): Block {
    const { r, w } = this;
    const name = this.id("sw");
    const world = cluster.nodes * cluster.gpn;
    const list = listVal;
    const axes: (() => Field)[] = [
      () => field("micro_batch", list(r.sample(["1", "2", "4", "8", w.count(16).text], r.int(1, 3)))),
      () => field("seed", list(r.chance(0.2) ? Array.from({ length: r.int(4, 40) }, (_, i) => w.count(i * 7919).text) : r.sample(["0", "1", "42", "7"], r.int(1, 3)))),
      () => field("schedule", list(r.sample(SCHEDULES, r.int(1, 3)))),
      () => field("recompute", list(r.sample(RECOMPUTE, r.int(1, 2)))),
      () => field("gradients", list(r.sample(GRADIENTS, r.int(1, 2)))),
      () => field("pipeline", list(r.sample(["1", "2", "auto", bodyVal([field("forward", "2"), field("backward", w.count(1).text)])], r.int(1, 2)))),
      () => field("model.hidden", list([String(model.hidden), w.count(model.hidden * 2).text])),
      () => field(model.kind === "layer" ? "model.expert_hidden" : "model.moe.expert_hidden", list(["2 * hidden", "4 * hidden", String(model.hidden)].slice(0, r.int(1, 3)))),
      () => field(model.kind === "layer" ? "model.capacity_factor" : "model.moe.capacity_factor", list([w.positive(), w.positive()])),
      () => field("model.dtype", list(r.sample(DTYPES, r.int(1, 2)))),
    ];
    if (model.kind === "model") axes.push(() => field("model.layers", list([String(model.layers), String(model.layers * 2)])));
    if (nodesMayVary) axes.push(() => field("cluster.nodes", list([String(cluster.nodes), String(cluster.nodes * 2)])));
    if (epMayVary) {
      const eps = divisors(world / layout.esp).filter((d) => model.experts % d === 0);
      axes.push(() => field("parallel.ep", list(r.sample(eps.map(String), Math.min(eps.length, r.int(1, 3))))));
    }
    const chosen = r.sample(axes, r.int(1, 3)).map((f) => f());
    return { kind: "sweep", name, body: { fields: [field("base", train), field("vary", bodyVal(chosen), r.chance(0.8))] } };
  }

  private shuffleFields(fields: Field[]): Field[] {
    if (!this.r.chance(0.3)) return fields;
    return this.r.sample(fields, fields.length).reverse();
  }

  /** One group: maybe a device and a link, a cluster, a model, a train job and maybe a sweep. */
  group(): Block[] {
    const { r } = this;
    const out: Block[] = [];
    if (r.chance(0.3)) out.push(this.device());
    if (r.chance(0.3)) out.push(this.link());
    let own: { name: string; nodes: number; gpn: number } | undefined;
    if (r.chance(0.7)) {
      const c = this.cluster();
      out.push(c.block);
      own = c.facts;
    } else if (this.clusters.length > 0 && r.chance(0.5)) own = r.pick(this.clusters);
    const cluster = this.clusterForTrain(own);
    const world = cluster.nodes * cluster.gpn;
    // Powers of two: hidden sizes and heads are multiples of 8.
    const esp = r.pick(divisors(cluster.gpn).filter((d) => d <= 8 && (d & (d - 1)) === 0));
    const ep = r.pick(divisors(world / esp));
    const tp = r.pick(divisors(cluster.gpn).filter((d) => d <= 8 && (d & (d - 1)) === 0));
    const layout = { esp, ep, tp, edp: world / (esp * ep) };
    const m = this.model(layout);
    out.push(m.block);
    const t = this.train(m.facts, cluster, layout);
    out.push(t.block);
    if (r.chance(0.35)) out.push(this.sweep(t.block.name, m.facts, cluster, layout, t.nodesMayVary, t.epMayVary));
    if (this.opts.errorRate > 0 && r.chance(this.opts.errorRate)) {
      const victim = r.pick(out);
      victim.body.fields.push(field(r.pick(["layres", "bandwith", "nodse", "micro_bacth", "colour"]), "1"));
    }
    return out;
  }
}

// ── Layout ───────────────────────────────────────────────────────────────────────────────────

class Printer {
  private readonly r: Rng;

  constructor(
    private readonly w: Writer,
    private readonly opts: Required<GenerateOptions>,
  ) {
    this.r = w.rng;
  }

  private lineComment(): string {
    return `//${this.r.pick([" ", " ", "", "   "])}${this.w.word()}`;
  }

  private blockComment(multiline: boolean): string {
    if (multiline && this.opts.multilineComments) {
      const lines = Array.from({ length: this.r.int(2, 4) }, () => this.w.word().replace(/\*\//g, "* /"));
      const lead = this.r.pick(["", " ", "   ", " * "]);
      return `/* ${lines.join(`\n${lead}`)}${this.r.pick([" */", "\n*/", "\n   */"])}`;
    }
    return `/*${this.r.pick([" ", ""])}${this.w.word().replace(/\*\//g, "* /")}${this.r.pick([" ", ""])}*/`;
  }

  /** Zero or more comment lines, each at `indent`. */
  private leading(indent: string): string {
    if (!this.opts.comments || !this.r.chance(0.15)) return "";
    let s = "";
    for (let i = this.r.int(1, 2); i > 0; i--) {
      s += indent + (this.r.chance(0.7) ? this.lineComment() : this.blockComment(this.r.chance(0.3))) + "\n";
      if (this.r.chance(0.2)) s += "\n";
    }
    return s;
  }

  /** Nothing, or a comment that ends the current line. */
  private trailing(): string {
    if (!this.opts.comments || !this.r.chance(0.2)) return "";
    return this.r.pick(["  ", " ", "\t"]) + (this.r.chance(0.8) ? this.lineComment() : this.blockComment(false));
  }

  private eq(): string {
    return this.r.pick([" = ", " = ", " = ", "=", " =", "= ", "  =  "]);
  }

  private valText(v: Val, level: number, inline: boolean): string {
    if (v.t === "expr") {
      if (this.opts.exoticComments && this.r.chance(0.02)) return `/* ${this.w.word().replace(/\*\//g, "")} */ ${v.text}`;
      return v.text;
    }
    if (v.t === "list") {
      const r = this.r;
      if (inline || v.items.length === 0 || r.chance(0.7)) {
        const items = v.items.map((i) => this.valText(i, level, true));
        return `[${items.join(r.pick([", ", ",", " ,  "]))}${items.length > 0 && r.chance(0.2) ? "," : ""}]`;
      }
      // One item per line, with comments between and after items.
      const indent = this.indentUnit().repeat(level + 1);
      let s = "[" + (r.chance(0.1) ? this.trailing() : "") + "\n";
      v.items.forEach((item, i) => {
        s += this.leading(indent) + indent + this.valText(item, level + 1, true);
        if (i < v.items.length - 1 || r.chance(0.5)) s += ",";
        s += this.trailing() + "\n";
      });
      return s + this.leading(indent) + this.indentUnit().repeat(level) + "]";
    }
    const body = this.body(v.body, level, inline);
    return v.head === undefined ? body : `${v.head}${this.r.pick([" ", " ", "  "])}${body}`;
  }

  private fieldText(f: Field, level: number, inline: boolean): string {
    if (f.nested && f.val.t === "body") return `${f.path}${this.r.pick([" ", " ", "  "])}${this.body(f.val.body, level, inline)}`;
    return `${f.path}${this.eq()}${this.valText(f.val, level, inline)}`;
  }

  /** `{ a = 1, b = 2 }` on one line, or one field per line at `level + 1`. */
  body(b: Body, level: number, inline: boolean): string {
    const r = this.r;
    if (b.fields.length === 0) return r.pick(["{}", "{ }", "{\n" + "  ".repeat(level) + "}"]);
    if (inline || (level > 0 && r.chance(0.5) && b.fields.length <= 4)) {
      const sep = () => r.pick([", ", ", ", ",", " , ", ",  "]) + (this.opts.exoticComments && r.chance(0.03) ? `${this.blockComment(false)} ` : "");
      const parts = b.fields.map((f) => this.fieldText(f, level, true));
      const lead = r.chance(0.05) ? ", " : "";
      const trail = r.chance(0.15) ? "," : "";
      return r.pick(["{ ", "{ ", "{"]) + lead + parts.join(sep()) + trail + r.pick([" }", " }", "}"]);
    }
    const indent = this.indentUnit().repeat(level + 1);
    let s = "{" + (r.chance(0.1) ? this.trailing() : "") + "\n";
    b.fields.forEach((f, i) => {
      if (i > 0 && r.chance(0.1)) s += r.pick(["\n", "\n\n", "   \n"]);
      s += this.leading(indent);
      s += indent + this.fieldText(f, level + 1, false);
      if (r.chance(0.1)) s += r.pick([",", " ,", ",,"]);
      s += this.trailing() + "\n";
    });
    s += this.leading(indent);
    return s + this.indentUnit().repeat(level) + "}";
  }

  private unit: string | undefined;

  private indentUnit(): string {
    this.unit ??= this.r.pick(["  ", "  ", "    ", "\t", " "]);
    return this.unit;
  }

  file(items: readonly (Block | string)[]): string {
    const r = this.r;
    let s = this.opts.comments && r.chance(0.5) ? this.leading("").replace(/^$/, "// header\n") + (r.chance(0.5) ? "\n" : "") : "";
    let lineOpen = false;
    items.forEach((item, i) => {
      if (i > 0) s += lineOpen ? "\n" : r.pick(["\n", "\n", "\n\n", "\n\n", "\n\n\n", " "]);
      const lead = this.leading("");
      if (lead !== "" && !s.endsWith("\n") && s !== "") s += "\n";
      s += lead;
      if (typeof item === "string") s += item;
      else s += `${item.kind} ${item.name}${r.pick([" ", " ", "  "])}${this.body(item.body, 0, r.chance(0.05))}`;
      const trail = r.chance(0.05) ? this.trailing() : "";
      s += trail;
      lineOpen = trail !== "";
    });
    if (this.opts.comments && r.chance(0.2)) s += `\n${r.chance(0.5) ? "\n" : ""}${this.lineComment()}`;
    if (r.chance(0.9)) s += "\n";
    return s;
  }
}

function withDefaults(opts: GenerateOptions): Required<GenerateOptions> {
  return {
    groups: opts.groups ?? 0,
    targetLines: opts.targetLines ?? 0,
    comments: opts.comments ?? true,
    multilineComments: opts.multilineComments ?? true,
    exoticComments: opts.exoticComments ?? true,
    crlf: opts.crlf ?? 0.1,
    errorRate: opts.errorRate ?? 0,
  };
}

function countLines(s: string): number {
  let n = 1;
  for (let i = s.indexOf("\n"); i >= 0; i = s.indexOf("\n", i + 1)) n++;
  return n;
}

/** A random valid single-file program; the same seed and options give the same text. */
export function generateProgram(seed: number, options: GenerateOptions = {}): string {
  return generateProject(seed, options, false).files["main.moe"]!;
}

/**
 * A random valid program as files: `main.moe` (the root) and, when `imports` holds, a
 * `lib/hw.moe` holding its devices and links that `main.moe` imports (and that imports
 * `main.moe` back, which the loader must take once).
 */
export function generateProject(seed: number, options: GenerateOptions = {}, imports = true): { root: string; files: Record<string, string> } {
  const opts = withDefaults(options);
  const rng = new Rng(seed);
  const writer = new Writer(rng, opts);
  const gen = new Generator(rng, opts);
  const printer = new Printer(writer, opts);
  const blocks: Block[] = [];
  if (opts.targetLines > 0) {
    // Lines grow with the groups: add groups in batches sized from the lines per group so far
    // (reprinting with the same layout seed), stopping at the first text that is long enough.
    let text = "";
    let perGroup = 80;
    let groups = 0;
    while (countLines(text) < opts.targetLines) {
      const batch = Math.max(1, Math.floor((opts.targetLines - countLines(text)) / perGroup));
      for (let i = 0; i < batch; i++) blocks.push(...gen.group());
      groups += batch;
      text = new Printer(new Writer(new Rng(seed ^ 0x5bd1e995), opts), opts).file(blocks);
      perGroup = Math.max(20, countLines(text) / groups) * 1.15;
    }
    return { root: "main.moe", files: { "main.moe": finish(text, rng, opts) } };
  }
  const groups = opts.groups > 0 ? opts.groups : rng.int(1, 4);
  for (let i = 0; i < groups; i++) blocks.push(...gen.group());
  const split = imports && rng.chance(0.7);
  if (!split) return { root: "main.moe", files: { "main.moe": finish(printer.file(blocks), rng, opts) } };
  const lib = blocks.filter((b) => b.kind === "device" || b.kind === "link" || (b.kind === "cluster" && rng.chance(0.5)));
  const main = blocks.filter((b) => !lib.includes(b));
  const libItems: (Block | string)[] = rng.chance(0.3) ? ['import "../main.moe"', ...lib] : lib;
  return {
    root: "main.moe",
    files: {
      "main.moe": finish(printer.file(['import "lib/hw.moe"', ...main]), rng, opts),
      "lib/hw.moe": finish(printer.file(libItems.length > 0 ? libItems : ["// nothing here"]), rng, opts),
    },
  };
}

function finish(text: string, rng: Rng, opts: Required<GenerateOptions>): string {
  return rng.chance(opts.crlf) ? text.replace(/\n/g, "\r\n") : text;
}

/**
 * The benchmark's big file: about `lines` lines of many clusters, models, train jobs and sweeps,
 * with comments, in a fixed layout from a fixed seed. `errorRate` sprinkles unknown fields
 * ("mostly valid").
 */
export function generateLargeProgram(lines = 20_000, seed = 20_240_601, errorRate = 0): string {
  return generateProgram(seed, { targetLines: lines, crlf: 0, errorRate, multilineComments: false, exoticComments: false });
}

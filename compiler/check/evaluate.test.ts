/**
 * Field evaluation: units and dimensions, exact arithmetic, defaults, ranges, reference cycles
 * and "did you mean". Exact values are read from the Evaluator directly (as rationals);
 * messages and their places through `check`.
 */
import { describe, expect, it } from "vitest";
import { parse } from "../../grammar/parse.js";
import { check } from "./check.js";
import { Evaluator, type BlockEntry } from "./evaluate.js";
import { memoryHost } from "./host.js";
import { format, type Rational } from "./rational.js";
import { isBlockKind } from "./schema.js";
import { describeDim } from "./units.js";

/** Check one in-memory file; each diagnostic as `CODE line:column message`. */
function diagnose(source: string): string[] {
  const r = check("t.moe", { host: memoryHost({ "t.moe": source }) });
  return r.diagnostics.map((d) => {
    const p = r.sources.get(d.span.file)!.position(d.span.start);
    return `${d.code} ${p.line}:${p.column} ${d.message}`;
  });
}

function codes(source: string): string[] {
  return check("t.moe", { host: memoryHost({ "t.moe": source }) }).diagnostics.map((d) => d.code);
}

/** The 1-based `line:column` of `fragment` in `source`, plus `offset` characters. */
function at(source: string, fragment: string, offset = 0): string {
  const i = source.indexOf(fragment);
  if (i < 0) throw new Error(`'${fragment}' not in source`);
  const before = source.slice(0, i + offset).split("\n");
  return `${before.length}:${before[before.length - 1]!.length + 1}`;
}

/** Evaluate `block.field` of a source (no std presets); the exact value, its dimension, and any diagnostics. */
function evaluate(source: string, block: string, field: string): { value?: Rational; dim?: string; other?: unknown; codes: string[] } {
  const r = parse(source, "t.moe");
  expect(r.diagnostics).toEqual([]);
  const blocks = new Map<string, BlockEntry>();
  for (const item of r.ast.items) {
    if (item.kind === "block" && isBlockKind(item.blockKind.text)) blocks.set(item.name.text, { node: item, kind: item.blockKind.text, std: false });
  }
  const ev = new Evaluator(blocks);
  const v = ev.field(ev.instanceOf(block)!, field);
  const codes = ev.diagnostics.map((d) => d.code);
  if (v && v.k === "num") return { value: v.q, dim: describeDim(v.dim), codes };
  return { other: v, codes };
}

/** The exact value of a number as `num/den` (or `num`), read through {@link evaluate}. */
function exact(source: string, block: string, field: string): string {
  const r = evaluate(source, block, field);
  expect(r.codes).toEqual([]);
  const q = r.value!;
  return q.den === 1n ? `${q.num}` : `${q.num}/${q.den}`;
}

const LAYER = "layer l {\n  hidden        = 1024\n  experts       = 8\n  top_k         = 2\n  expert_hidden = 4096\n";

describe("units", () => {
  const cases: [string, string, string][] = [
    // sizes: powers of 1000 and of 1024, bits are 1/8 byte
    ["memory = 1 B", "memory", "1"],
    ["memory = 1 KB", "memory", "1000"],
    ["memory = 1 MB", "memory", "1000000"],
    ["memory = 1 GB", "memory", "1000000000"],
    ["memory = 1 TB", "memory", "1000000000000"],
    ["memory = 1 KiB", "memory", "1024"],
    ["memory = 1 MiB", "memory", "1048576"],
    ["memory = 1 GiB", "memory", "1073741824"],
    ["memory = 1 TiB", "memory", "1099511627776"],
    ["memory = 1 b", "memory", "1/8"],
    ["memory = 1 Kb", "memory", "125"],
    ["memory = 1 Mb", "memory", "125000"],
    ["memory = 1 Gb", "memory", "125000000"],
    ["memory = 1 Tb", "memory", "125000000000"],
    // rates: any size unit per second
    ["memory_bandwidth = 1 B/s", "memory_bandwidth", "1"],
    ["memory_bandwidth = 3 KB/s", "memory_bandwidth", "3000"],
    ["memory_bandwidth = 1 MiB/s", "memory_bandwidth", "1048576"],
    ["memory_bandwidth = 2 GB/s", "memory_bandwidth", "2000000000"],
    ["memory_bandwidth = 1 TiB/s", "memory_bandwidth", "1099511627776"],
    ["memory_bandwidth = 3 b/s", "memory_bandwidth", "3/8"],
    ["memory_bandwidth = 100 Gb/s", "memory_bandwidth", "12500000000"],
    ["memory_bandwidth = 1 Tb/s", "memory_bandwidth", "125000000000"],
    // compute rates
    ["peak_flops = 1 GFLOP/s", "peak_flops", "1000000000"],
    ["peak_flops = 989.4 TFLOP/s", "peak_flops", "989400000000000"],
    ["peak_flops = 2 PFLOP/s", "peak_flops", "2000000000000000"],
  ];
  it.each(cases)("reads '%s' exactly in base units", (field, name, expected) => {
    const defaults: Record<string, string> = { memory: "memory = 1 GB", peak_flops: "peak_flops = 1 TFLOP/s", memory_bandwidth: "" };
    const body = [field, ...Object.entries(defaults).filter(([k]) => k !== name).map(([, v]) => v)].filter(Boolean).join("\n  ");
    expect(exact(`device d {\n  ${body}\n}`, "d", name)).toBe(expected);
  });

  it.each([
    ["1 ns", "1/1000000000"],
    ["2 us", "1/500000"],
    ["2 µs", "1/500000"],
    ["2 μs", "1/500000"],
    ["1.5 ms", "3/2000"],
    ["2 s", "2"],
  ])("reads the time '%s' exactly in seconds", (text, expected) => {
    expect(exact(`link k { bandwidth = 1 GB/s, latency = ${text} }`, "k", "latency")).toBe(expected);
  });

  it("treats units as case-sensitive, suggesting the right case", () => {
    const src = "device d { peak_flops = 1 TFLOP/s, memory = 80 gb }";
    expect(diagnose(src)).toEqual([`FSM2101 ${at(src, "gb")} unknown unit 'gb'; did you mean 'GB'?`]);
  });

  it("does not suggest a unit when none is close", () => {
    const src = "link k { bandwidth = 1 GB/s, latency = 5 fortnights }";
    expect(diagnose(src)).toEqual([`FSM2101 ${at(src, "fortnights")} unknown unit 'fortnights'`]);
  });
});

describe("dimensions", () => {
  it("names the expected and the given dimension, at the value", () => {
    const src = "link k {\n  bandwidth = 5 us\n}";
    expect(diagnose(src)).toEqual([`FSM2104 2:15 field 'bandwidth' expects a rate (bytes per second), got a time`]);
  });

  it("rejects a unit on a count", () => {
    const src = `${LAYER.replace("1024", "1024 B")}}`;
    expect(diagnose(src)).toEqual([`FSM2104 ${at(src, "1024 B")} field 'hidden' expects a plain number, got a size`]);
  });

  it("rejects a plain number where a quantity is needed", () => {
    expect(diagnose("link k { bandwidth = 100 }")).toEqual(["FSM2104 1:22 field 'bandwidth' expects a rate (bytes per second), got a plain number"]);
  });

  it("combines dimensions through * and /: a size over a time is a rate, a rate times a time a size", () => {
    expect(evaluate("link k { bandwidth = 4 GiB / (2 ms) }", "k", "bandwidth")).toMatchObject({ dim: "a rate (bytes per second)", codes: [] });
    expect(evaluate("device d { peak_flops = 1 TFLOP/s, memory = 10 GB/s * 8 s }", "d", "memory")).toMatchObject({ dim: "a size (bytes)", codes: [] });
    expect(exact("device d { peak_flops = 1 TFLOP/s, memory = 10 GB/s * 8 s }", "d", "memory")).toBe("80000000000");
  });

  it("lets a dimensionless ratio of quantities be a plain number", () => {
    expect(exact("link a { bandwidth = 50 GB/s }\nlink k { bandwidth = 1 GB/s, efficiency = 25 GB/s / a.bandwidth }", "k", "efficiency")).toBe("1/2");
  });

  it("describes an unusual dimension by its base units", () => {
    const src = "link k { bandwidth = 1 GB/s * 1 GB/s }";
    expect(diagnose(src)).toEqual(["FSM2104 1:22 field 'bandwidth' expects a rate (bytes per second), got a quantity in B^2·s^-2"]);
  });

  it("rejects adding or subtracting different dimensions, naming both", () => {
    expect(diagnose("link k { bandwidth = 10 GB/s + 5 us }")).toEqual(["FSM2108 1:22 cannot add a rate (bytes per second) and a time"]);
    expect(diagnose("link k { bandwidth = 1 GB/s, latency = 5 us - 1 }")).toEqual(["FSM2108 1:40 cannot subtract a time and a plain number"]);
  });

  it("adds quantities of one dimension in different units exactly", () => {
    expect(exact("link k { bandwidth = 1 GB/s + 8 Gb/s + 1 KiB/s }", "k", "bandwidth")).toBe("2000001024");
  });
});

describe("exact arithmetic", () => {
  it("keeps decimals exact: (0.1 + 0.2) * 10 is the integer 3", () => {
    expect(exact(`${LAYER.replace("experts       = 8", "experts       = (0.1 + 0.2) * 10")}}`, "l", "experts")).toBe("3");
  });

  it("keeps integers beyond 2^53 exact", () => {
    expect(exact(`${LAYER.replace("1024", "9_007_199_254_740_993 - 9_007_199_254_740_992")}}`, "l", "hidden")).toBe("1");
  });

  it("turns a fraction back into an integer when it divides: 1 / 3 * 3 is 1", () => {
    expect(exact(`${LAYER.replace("top_k         = 2", "top_k         = 1 / 3 * 3")}}`, "l", "top_k")).toBe("1");
  });

  it("applies precedence, parentheses and repeated minus signs", () => {
    expect(exact(`${LAYER.replace("8\n", "2 + 3 * 2\n")}}`, "l", "experts")).toBe("8");
    expect(exact(`${LAYER.replace("8\n", "(2 + 3) * 2 - 2\n")}}`, "l", "experts")).toBe("8");
    expect(exact(`${LAYER.replace("8\n", "--8\n")}}`, "l", "experts")).toBe("8");
    expect(exact(`${LAYER.replace("8\n", "16 / 4 / 2 * 4\n")}}`, "l", "experts")).toBe("8");
  });

  it("evaluates 4096 · 1.2 / 8 to exactly 614.4 and says so when an integer is needed", () => {
    const src = `${LAYER.replace("expert_hidden = 4096", "expert_hidden = 4096 * 1.2 / 8")}}`;
    expect(diagnose(src)).toEqual([`FSM2102 ${at(src, "4096 * 1.2")} field 'expert_hidden' expects an integer, got 614.4`]);
  });

  it("shows a repeating fraction to six significant digits", () => {
    const src = `${LAYER.replace("1024", "1000 / 3")}}`;
    expect(diagnose(src)).toEqual([`FSM2102 ${at(src, "1000 / 3")} field 'hidden' expects an integer, got 333.333`]);
  });

  it("formats exact decimals without rounding", () => {
    expect(format({ num: 6144n, den: 10n })).toBe("614.4");
    expect(format({ num: -1n, den: 1_000_000n })).toBe("-0.000001");
    expect(format({ num: 1n, den: 3n })).toBe("0.333333");
  });

  it("reports division by zero at the divisor, written or computed", () => {
    expect(diagnose(`${LAYER.replace("4096", "hidden / 0")}}`)).toEqual(["FSM2107 5:28 division by zero"]);
    expect(diagnose("link k { bandwidth = 10 GB/s / (2 - 2) }")).toEqual(["FSM2107 1:32 division by zero"]);
  });

  it("stops with FSM2109 when a result grows past the representable range", () => {
    expect(codes("link k { bandwidth = 1e300 * 1e300 * 1e300 * 1e300 * 1 GB/s }")).toEqual(["FSM2109"]);
    expect(codes("link k { bandwidth = 1 GB/s, efficiency = 1 / 1e300 / 1e300 / 1e300 / 1e300 }")).toEqual(["FSM2109"]);
  });

  it("reads a zero literal with a huge exponent as zero", () => {
    expect(exact("link k { bandwidth = 1 GB/s, latency = 0e999999999999 us }", "k", "latency")).toBe("0");
    expect(exact("link k { bandwidth = 1 GB/s, latency = 0.0e-999999999999 us }", "k", "latency")).toBe("0");
  });

  it("allows intermediate results beyond the double range that come back into it", () => {
    expect(exact("link k { bandwidth = 1e300 * 1e20 / 1e300 / 1e20 * 1 GB/s }", "k", "bandwidth")).toBe("1000000000");
  });

  it("rejects strings, lists, blocks, names and phrases in arithmetic", () => {
    expect(diagnose(`${LAYER.replace("= 8\n", '= 8 * "2"\n')}}`)).toEqual(["FSM2110 3:23 a string cannot be used in an expression"]);
    expect(diagnose(`${LAYER.replace("= 8\n", "= [8] + 0\n")}}`)).toEqual(["FSM2110 3:19 a list cannot be used in an expression"]);
    expect(diagnose("link k { bandwidth = 2 * pcie4 }")).toEqual(["FSM2110 1:26 'pcie4' (link 'pcie4') cannot be used in an expression"]);
    expect(diagnose(`${LAYER}  aux_loss = 2 * router\n}`)).toEqual(["FSM2110 6:18 'router' (the name 'softmax_topk') cannot be used in an expression"]);
  });
});

describe("references", () => {
  it("reads sibling fields, fields of enclosing blocks and fields of other blocks", () => {
    const src = "model m {\n  layers = 2\n  hidden = 1024\n  ffn { hidden = 3 * model.hidden }\n  moe { experts = 8, top_k = 2, expert_hidden = 2 * hidden }\n}\nlayer x { hidden = m.hidden / 2, experts = m.moe.experts, top_k = 1, expert_hidden = 4 * hidden }";
    expect(codes(src)).toEqual([]);
    expect(exact(src, "x", "hidden")).toBe("512");
    expect(exact(src, "x", "experts")).toBe("8");
    expect(exact(src, "x", "expert_hidden")).toBe("2048");
  });

  it("reads the fields of std presets", () => {
    const r = check("t.moe", { host: memoryHost({ "t.moe": "link k { bandwidth = 2 * ib_ndr.bandwidth, latency = nvlink4.latency }" }) });
    expect(r.diagnostics).toEqual([]);
  });

  it("reports a dotted reference to a missing field, with a suggestion", () => {
    const [d, ...rest] = diagnose("link a { bandwidth = 1 GB/s }\nlink k { bandwidth = a.bandwith }");
    expect(rest).toEqual([]);
    expect(d).toBe("FSM2015 2:24 link 'a' has no field 'bandwith'; did you mean 'bandwidth'?");
    expect(diagnose(`${LAYER}}\nmodel m2 {\n  layers = 2\n  hidden = l.hiden\n  moe { experts = 8, top_k = 2, expert_hidden = 64 }\n}`)).toEqual([
      "FSM2015 9:14 layer 'l' has no field 'hiden'; did you mean 'hidden'?",
    ]);
  });

  it("says a dotted reference goes into something that is not a block", () => {
    expect(diagnose("link a { bandwidth = 1 GB/s }\nlink k { bandwidth = a.latency.x }")).toEqual([
      "FSM2015 2:32 'a.latency' (the quantity 0 s) has no field 'x'; only a block has fields",
    ]);
  });

  it("reports a chain of references longer than the checker follows", () => {
    const n = 402;
    const lines = Array.from({ length: n }, (_, i) => `link l${i} { bandwidth = ${i < n - 1 ? `l${i + 1}.bandwidth` : "1 GB/s"} }`);
    expect(codes(lines.join("\n"))).toEqual(["FSM2016"]);
  });

  it("reports the same chain the same way whatever order its blocks are declared in", () => {
    // l0 → l1 → … → l401 (1 GB/s): l1's value needs 400 references, l0's 401, one too many.
    const n = 402;
    const lines = Array.from({ length: n }, (_, i) => `link l${i} { bandwidth = ${i < n - 1 ? `l${i + 1}.bandwidth` : "1 GB/s"} }`);
    const forward = diagnose(lines.join("\n"));
    const reverse = diagnose([...lines].reverse().join("\n"));
    expect(forward).toEqual(["FSM2016 1:23 references nest deeper than 400 levels"]);
    expect(reverse.map((d) => d.replace(/^(\S+) \d+:/, "$1 "))).toEqual(forward.map((d) => d.replace(/^(\S+) \d+:/, "$1 ")));
    // One reference fewer is within the limit, in either order.
    const within = lines.slice(1);
    expect(codes(within.join("\n"))).toEqual([]);
    expect(codes([...within].reverse().join("\n"))).toEqual([]);
  });

  it("follows a chain of any length without exhausting the stack, and finds a long cycle", () => {
    const n = 5000;
    const chain = Array.from({ length: n }, (_, i) => `link l${i} { bandwidth = l${i + 1}.bandwidth }`);
    chain.push(`link l${n} { bandwidth = 1 GB/s }`);
    expect(codes(chain.join("\n"))).toEqual(["FSM2016"]);
    const cycle = Array.from({ length: 300 }, (_, i) => `link l${i} { bandwidth = l${(i + 1) % 300}.bandwidth }`);
    const d = diagnose(cycle.join("\n"));
    expect(d).toHaveLength(1);
    expect(d[0]).toMatch(/^FSM2007 1:23 reference cycle: link 'l0'.bandwidth → link 'l1'.bandwidth → .* → link 'l299'.bandwidth → link 'l0'.bandwidth$/);
  });

  it("evaluates a field once however often it is referenced", () => {
    // Each level refers to the one below twice: 2^40 evaluations without memoization.
    const lines = Array.from({ length: 40 }, (_, i) => `link l${i} { bandwidth = l${i + 1}.bandwidth + l${i + 1}.bandwidth }`);
    lines.push("link l40 { bandwidth = 1 B/s }");
    expect(exact(lines.join("\n"), "l0", "bandwidth")).toBe(String(2n ** 40n));
  });
});

describe("reference cycles", () => {
  it("reports a field that refers to itself", () => {
    const src = `${LAYER.replace("1024", "hidden + 1")}}`;
    expect(diagnose(src)).toEqual([`FSM2007 ${at(src, "hidden + 1")} reference cycle: layer 'l'.hidden → layer 'l'.hidden`]);
  });

  it("names every field of a longer cycle, once", () => {
    const src = `${LAYER.replace("1024", "expert_hidden / 4").replace("4096", "top_k * 2048").replace("top_k         = 2", "top_k         = hidden / 512")}}`;
    expect(diagnose(src)).toEqual([
      `FSM2007 ${at(src, "expert_hidden / 4")} reference cycle: layer 'l'.hidden → layer 'l'.expert_hidden → layer 'l'.top_k → layer 'l'.hidden`,
    ]);
  });

  it("reports a cycle across blocks", () => {
    expect(codes("link a { bandwidth = b.bandwidth }\nlink b { bandwidth = a.bandwidth }")).toEqual(["FSM2007"]);
  });

  it("reports a cycle through a default", () => {
    // heads defaults to hidden / 128; hidden written in terms of head_dim, which defaults to hidden / heads.
    const src = "model m {\n  layers = 1\n  hidden = attention.head_dim * 8\n  moe { experts = 8, top_k = 2, expert_hidden = 64 }\n}";
    expect(codes(src)).toEqual(["FSM2007"]);
  });
});

describe("defaults", () => {
  it("fills an omitted field from its default", () => {
    expect(exact(`${LAYER}}`, "l", "capacity_factor")).toBe("1");
    expect(exact(`${LAYER}}`, "l", "aux_loss")).toBe("1/100");
    expect(exact("link k { bandwidth = 1 GB/s }", "k", "latency")).toBe("0");
    expect(evaluate(`${LAYER}}`, "l", "router").other).toEqual({ k: "name", name: "softmax_topk" });
  });

  it("evaluates a default in the block's scope, after the fields it depends on", () => {
    const src = "model m {\n  layers = 1\n  hidden = 4096\n  attention { heads = 32, kv_heads = 8 }\n  moe { experts = 8, top_k = 2, expert_hidden = 1024 }\n}";
    const r = check("t.moe", { host: memoryHost({ "t.moe": `${src}\ntrain t { model = m, cluster = dgx_h100 { nodes = 1 }, micro_batch = 1, seq_len = 8 }` }) });
    expect(r.diagnostics).toEqual([]);
    const model = r.program.jobs[0]!.model;
    expect(model.attention).toMatchObject({ heads: 32, kvHeads: 8, headDim: 128 });
    expect(model.ffn).toMatchObject({ hidden: 16384, activation: "gelu" });
    expect(model.moe).toMatchObject({ sharedHidden: 1024, capacityFactor: 1 });
  });

  it("names the default when it is what fails, and points at the block", () => {
    const src = "model m {\n  layers = 1\n  hidden = 192\n  moe { experts = 8, top_k = 2, expert_hidden = 64 }\n}";
    expect(diagnose(src)).toEqual(["FSM2102 1:7 field 'heads' of attention of model 'm' expects an integer, got 1.5 (the default, hidden / 128); write 'attention { heads = … }'"]);
  });

  it("gives only the fields of the chosen router their defaults", () => {
    expect(evaluate(`${LAYER}  router = gshard\n}`, "l", "normalize").other).toEqual({ k: "none" });
    expect(exact(`${LAYER}  router = xmoe\n}`, "l", "routing_dim")).toBe("256");
    expect(exact(`${LAYER}  router = sigmoid\n}`, "l", "bias_update_rate")).toBe("1/1000");
  });

  it("reports each missing required field at the block's name", () => {
    expect(diagnose("layer l {\n  hidden = 1024\n}")).toEqual([
      "FSM2005 1:7 missing required field 'experts' in layer 'l'",
      "FSM2005 1:7 missing required field 'top_k' in layer 'l'",
      "FSM2005 1:7 missing required field 'expert_hidden' in layer 'l'",
    ]);
  });
});

describe("ranges", () => {
  it("accepts counts from 1 to 2^31 - 1 and rejects 0 and 2^31", () => {
    expect(codes(`${LAYER.replace("1024", "2147483647")}}`)).toEqual([]);
    expect(diagnose(`${LAYER.replace("1024", "2147483648")}}`)).toEqual(["FSM2105 2:19 field 'hidden' must be an integer in 1 … 2147483647, got 2147483648"]);
    expect(diagnose(`${LAYER.replace("1024", "0")}}`)).toEqual(["FSM2105 2:19 field 'hidden' must be an integer in 1 … 2147483647, got 0"]);
  });

  it("accepts zero where a count may be zero, and nothing below", () => {
    expect(codes(`${LAYER}  shared_experts = 0\n}`)).toEqual([]);
    expect(codes(`${LAYER}  shared_experts = -1\n}`)).toEqual(["FSM2105"]);
  });

  it("requires quantities greater than 0, and latency at least 0", () => {
    expect(diagnose("link k { bandwidth = 0 GB/s }")).toEqual(["FSM2105 1:22 field 'bandwidth' must be greater than 0, got 0 GB/s"]);
    expect(codes("link k { bandwidth = 1 GB/s, latency = 0 us }")).toEqual([]);
    expect(codes("link k { bandwidth = 1 GB/s, latency = -1 us }")).toEqual(["FSM2105"]);
  });

  it("accepts an efficiency of exactly 1 and rejects 0 and anything above 1", () => {
    expect(codes("link k { bandwidth = 1 GB/s, efficiency = 1 }")).toEqual([]);
    expect(diagnose("link k { bandwidth = 1 GB/s, efficiency = 0 }")).toEqual(["FSM2105 1:43 field 'efficiency' must be in (0, 1], got 0"]);
    expect(codes("link k { bandwidth = 1 GB/s, efficiency = 1.000001 }")).toEqual(["FSM2105"]);
  });

  it("bounds pipeline degrees to 1 … 1024", () => {
    const job = (p: string) => `${LAYER}}\ntrain t { model = l, cluster = dgx_h100 { nodes = 1 }, micro_batch = 1, seq_len = 1024, pipeline = ${p} }`;
    expect(codes(job("1024"))).toEqual([]);
    expect(codes(job("1025"))).toEqual(["FSM2105"]);
    expect(codes(job("{ forward = 0 }"))).toEqual(["FSM2105"]);
  });
});

describe("values the parser could not read", () => {
  it("are silent: nothing is reported about them beyond the syntax error", () => {
    expect(diagnose('cluster c {\n  profile = "abc\n}')).toEqual([
      // The rest of the block is checked as usual.
      "FSM2005 1:9 missing required field 'nodes' in cluster 'c'",
      "FSM2005 1:9 missing required field 'gpus_per_node' in cluster 'c'",
      "FSM2005 1:9 missing required field 'device' in cluster 'c'",
      "FSM2005 1:9 missing required field 'intra' in cluster 'c'",
      "FSM2005 1:9 missing required field 'inter' in cluster 'c'",
      "FSM1004 2:13 unterminated string: a string must end on its line",
    ]);
    expect(codes(`model m {\n  moe_layers = [0, 1\n  layers = 2\n  hidden = 128\n  moe { experts = 8, top_k = 2, expert_hidden = 64 }\n}`)).toEqual(["FSM1006"]);
    expect(codes("link l {\n  bandwidth 10 GB/s\n  latency = 5 us\n}")).toEqual(["FSM1007"]);
    expect(codes("model m {\n  moe 8\n  layers = 2\n  hidden = 128\n}")).toEqual(["FSM1007"]);
  });

  it("still report the semantic errors of the parts that parsed", () => {
    expect(codes('link l {\n  bandwidth = "x\n  latency = -5 us\n  efficiency = 3\n}')).toEqual(["FSM1004", "FSM2105", "FSM2105"]);
  });

  it("include number literals out of range: no second diagnostic for them", () => {
    expect(diagnose("model m {\n  layers = 1e400\n  hidden = 128\n  moe { experts = 8, top_k = 2, expert_hidden = 64 }\n}")).toEqual([
      "FSM1010 2:12 number 1e400 is out of range (at most 1.8e308, and no closer to zero than 1e-300)",
    ]);
    expect(codes("model m {\n  layers = 2\n  hidden = 0.5e-400\n  moe { experts = 8, top_k = 2, expert_hidden = 64 }\n}")).toEqual(["FSM1010"]);
  });
});

describe("messages", () => {
  it("shows an out-of-range quantity in the unit it was written in", () => {
    expect(diagnose("link k { bandwidth = 1 GB/s, latency = -1 us }")).toEqual(["FSM2105 1:40 field 'latency' must be at least 0, got -1 us"]);
    expect(diagnose("link k { bandwidth = -5 GB/s }")).toEqual(["FSM2105 1:22 field 'bandwidth' must be greater than 0, got -5 GB/s"]);
    expect(diagnose("link k { bandwidth = 1 GB/s, latency = 2 us - 3000 ns }")).toEqual(["FSM2105 1:40 field 'latency' must be at least 0, got -1 us"]);
  });

  it("shows an out-of-range quantity written without a unit of its own in a readable unit", () => {
    expect(diagnose("link a { bandwidth = 1 GB/s }\nlink k { bandwidth = a.bandwidth - a.bandwidth * 3 }")).toEqual([
      "FSM2105 2:22 field 'bandwidth' must be greater than 0, got -2 GB/s",
    ]);
  });

  it("says what a whole value of the wrong sort is, rather than that it cannot be computed with", () => {
    expect(diagnose("device d { peak_flops = 1 TFLOP/s, memory = [1 GB] }")).toEqual(["FSM2103 1:45 field 'memory' expects a size (bytes), got a list"]);
    expect(diagnose(`${LAYER}  aux_loss = "0.1"\n}`)).toEqual(["FSM2103 6:14 field 'aux_loss' expects a plain number, got a string"]);
  });

  it("says what pipeline accepts when given a phrase", () => {
    const src = "model m {\n  layers = 2\n  hidden = 128\n  moe { experts = 8, top_k = 2, expert_hidden = 64 }\n}\ntrain t {\n  model       = m\n  cluster     = dgx_h100 { nodes = 1 }\n  micro_batch = 1\n  seq_len     = 8\n  pipeline    = every 2\n}";
    expect(diagnose(src)).toEqual([
      `FSM2103 ${at(src, "every 2")} field 'pipeline' expects auto, an integer or a block { forward = …, backward = … }, got the phrase 'every 2'`,
    ]);
  });

  it("suggests the unit that shares the written prefix", () => {
    expect(diagnose("link l { bandwidth = 100 Gbit/s }")).toEqual(["FSM2101 1:26 unknown unit 'Gbit/s'; did you mean 'Gb/s'?"]);
    expect(diagnose("link l { bandwidth = 100 Mbit/s }")).toEqual(["FSM2101 1:26 unknown unit 'Mbit/s'; did you mean 'Mb/s'?"]);
  });
});

describe("did you mean", () => {
  it("suggests the closest field name", () => {
    expect(diagnose("link k {\n  bandwith = 1 GB/s\n  bandwidth = 1 GB/s\n}")).toEqual(["FSM2004 2:3 unknown field 'bandwith' in link 'k'; did you mean 'bandwidth'?"]);
  });

  it("suggests only blocks of the kind the field expects", () => {
    const src = "cluster c {\n  nodes = 1\n  gpus_per_node = 8\n  device = h100_sx\n  intra = nvlink\n  inter = ib_ndr\n}";
    expect(diagnose(src)).toEqual([
      "FSM2003 4:12 unknown name 'h100_sx'; did you mean 'h100_sxm'?",
      "FSM2003 5:11 unknown name 'nvlink'; did you mean 'nvlink3'?",
    ]);
  });

  it("suggests the closest choice of an enum", () => {
    expect(diagnose(`${LAYER}  router = gshrad\n}`)).toEqual([
      "FSM2106 6:12 field 'router' expects one of softmax_topk | gshard | switch | sigmoid | xmoe | softmoe | expert_choice, got 'gshrad'; did you mean 'gshard'?",
    ]);
  });

  it("suggests a name referred to in an expression", () => {
    expect(diagnose(`${LAYER.replace("4096", "4 * hiden")}}`)).toEqual(["FSM2003 5:23 unknown name 'hiden'; did you mean 'hidden'?"]);
  });

  it("suggests a block kind", () => {
    expect(diagnose("modle m { }")).toEqual(["FSM2001 1:1 unknown block kind 'modle'; did you mean 'model'?"]);
  });

  it("stays silent when nothing is close", () => {
    expect(diagnose("link k {\n  bandwidth = 1 GB/s\n  colour = 1\n}")).toEqual(["FSM2004 3:3 unknown field 'colour' in link 'k'"]);
  });
});

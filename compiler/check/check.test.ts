/**
 * The check stage as a whole: limits on models, std presets as a closed world checked where
 * used, routers that fix top_k, attention variants, sweeps and imports.
 */
import { describe, expect, it } from "vitest";
import { check } from "./check.js";
import { memoryHost, nodeHost } from "./host.js";

/** Check in-memory files (the first is the root); each diagnostic as `CODE file:line:column message`. */
function diagnoseFiles(files: Record<string, string>): string[] {
  const root = Object.keys(files)[0]!;
  const r = check(root, { host: memoryHost(files) });
  return r.diagnostics.map((d) => {
    const p = r.sources.get(d.span.file)!.position(d.span.start);
    const notes = d.related.map((n) => {
      const q = r.sources.get(n.span.file)!.position(n.span.start);
      return ` [note ${n.span.file}:${q.line}: ${n.message}]`;
    });
    return `${d.code} ${d.span.file}:${p.line}:${p.column} ${d.message}${notes.join("")}`;
  });
}

const diagnose = (source: string) => diagnoseFiles({ "t.moe": source });
const jobsOf = (source: string) => check("t.moe", { host: memoryHost({ "t.moe": source }) }).program.jobs;

/** The 1-based `line:column` of `fragment` in `source`, plus `offset` characters. */
function at(source: string, fragment: string, offset = 0): string {
  const i = source.indexOf(fragment);
  if (i < 0) throw new Error(`'${fragment}' not in source`);
  const before = source.slice(0, i + offset).split("\n");
  return `${before.length}:${before[before.length - 1]!.length + 1}`;
}

const MODEL = "model m {\n  layers = 4\n  hidden = 1024\n  moe { experts = 8, top_k = 2, expert_hidden = 2048 }\n}\n";
const TRAIN = "train t { model = m, cluster = dgx_h100 { nodes = 2 }, micro_batch = 2, seq_len = 1024 }\n";

describe("the number of layers", () => {
  it("is at most 100,000, so that a huge count is a range error, not a crash", () => {
    const src = MODEL.replace("layers = 4", "layers = 2147483647") + TRAIN;
    expect(diagnose(src)).toEqual([`FSM2105 t.moe:${at(src, "2147483647")} field 'layers' must be an integer in 1 … 100000, got 2147483647`]);
  });

  it("accepts 100,000 layers and checks them quickly", () => {
    const t0 = performance.now();
    const jobs = jobsOf(MODEL.replace("layers = 4", "layers = 100_000") + TRAIN);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.model.moeLayers).toHaveLength(100_000);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

describe("routers that fix top_k (FSM3012)", () => {
  const withRouter = (router: string, topK: number) => MODEL.replace("top_k = 2", `top_k = ${topK}, router = ${router}`).replace("moe {", "moe {");

  it("accepts switch with top_k = 1 and gshard with top_k = 2", () => {
    expect(diagnose(withRouter("switch", 1) + TRAIN)).toEqual([]);
    expect(diagnose(withRouter("gshard", 2) + TRAIN)).toEqual([]);
  });

  it("reports switch with another top_k, and gshard with another, at top_k, used or not", () => {
    const sw = withRouter("switch", 2);
    expect(diagnose(sw)).toEqual([`FSM3012 t.moe:${at(sw, "top_k = 2", 8)} the switch router sends each token to 1 expert, but top_k = 2`]);
    const gs = withRouter("gshard", 1) + TRAIN;
    expect(diagnose(gs)).toEqual([`FSM3012 t.moe:${at(gs, "top_k = 1", 8)} the gshard router sends each token to 2 experts, but top_k = 1`]);
  });
});

describe("attention variants", () => {
  const attention = (fields: string) => MODEL.replace("  moe {", `  attention { ${fields} }\n  moe {`);

  it("rejects kv_heads and head_dim with MLA, which has latent ranks instead", () => {
    const kv = attention("kind = mla, heads = 8, kv_heads = 8");
    expect(diagnose(kv)).toEqual([`FSM2011 t.moe:${at(kv, "kv_heads")} 'kv_heads' applies only to kind = mha | gqa, not kind = mla`]);
    const hd = attention("kind = mla, heads = 8, head_dim = 128");
    expect(diagnose(hd)).toEqual([`FSM2011 t.moe:${at(hd, "head_dim")} 'head_dim' applies only to kind = mha | gqa, not kind = mla`]);
  });

  it("gives MLA its per-head dimensions from hidden / heads, and no kv_heads or head_dim", () => {
    const jobs = jobsOf(attention("kind = mla, heads = 8") + TRAIN);
    expect(jobs[0]!.model.attention).toMatchObject({ kind: "mla", heads: 8, kvHeads: null, headDim: null, qkNopeDim: 128, ropeDim: 64, vHeadDim: 128 });
  });
});

describe("std presets", () => {
  it("report a missing field at the user's reference, with a note at the preset", () => {
    const src = `${MODEL}train t { model = m, cluster = dgx_h100, micro_batch = 2, seq_len = 1024 }\n`;
    const [d, ...rest] = diagnose(src);
    expect(rest).toEqual([]);
    expect(d).toMatch(new RegExp(`^FSM2005 t\\.moe:${at(src, "dgx_h100")} missing required field 'nodes' in cluster 'dgx_h100' \\[note <std>/std\\.moe:\\d+: 'dgx_h100' is a standard preset, defined here\\]$`));
  });

  it("report each use at its own place", () => {
    const src = `${MODEL}train a { model = m, cluster = dgx_h100, micro_batch = 2, seq_len = 1024 }\ntrain b { model = m, cluster = dgx_h100, micro_batch = 2, seq_len = 1024 }\n`;
    const second = src.indexOf("dgx_h100", src.indexOf("dgx_h100") + 1);
    expect(diagnose(src).map((d) => d.split(" ")[1])).toEqual([`t.moe:${at(src, "dgx_h100")}`, `t.moe:${at(src, "train b")}`.replace(/:\d+$/, `:${second - src.lastIndexOf("\n", second)}`)]);
  });

  it("report a dotted reference to a missing field of a preset where it is written", () => {
    const src = "link l { bandwidth = 1 GB/s * dgx_h100.nodes }\n";
    expect(diagnose(src).map((d) => d.split(" ").slice(0, 2).join(" "))).toEqual([`FSM2005 t.moe:${at(src, "dgx_h100")}`]);
  });

  it("resolve the names they use among the presets, whatever the user's blocks are called", () => {
    // A train job named like the device of dgx_h200, and a link named like its intra link.
    const src = `${MODEL}train h200 { model = m, cluster = dgx_h200 { nodes = 2 }, micro_batch = 2, seq_len = 1024 }\nlink nvlink4 { bandwidth = 1 GB/s }\n`;
    expect(diagnose(src)).toEqual([]);
    const jobs = jobsOf(src);
    expect(jobs[0]!.cluster.device.memory).toBe(143_771 * 1024 * 1024);
    expect(jobs[0]!.cluster.intra.bandwidth).toBe(450e9);
  });

  it("are shadowed by the user's blocks in the user's own references", () => {
    const src = `${MODEL}link nvlink4 { bandwidth = 1 GB/s }\ntrain t { model = m, cluster = dgx_h100 { nodes = 2, intra = nvlink4 }, micro_batch = 2, seq_len = 1024 }\n`;
    expect(jobsOf(src)[0]!.cluster.intra.bandwidth).toBe(1e9);
    const wrong = `${MODEL}train h200 { model = m, cluster = dgx_h200 { nodes = 2, device = h200 }, micro_batch = 2, seq_len = 1024 }\n`;
    expect(diagnose(wrong).map((d) => d.split(" ")[0])).toEqual(["FSM2009"]);
  });
});

describe("sweeps", () => {
  const base = `${MODEL}${TRAIN}`;

  it("report a path given twice in vary, at the second, instead of making duplicate jobs", () => {
    const src = `${base}sweep s { base = t, vary { micro_batch = [1, 2], micro_batch = [3] } }\n`;
    const second = src.lastIndexOf("micro_batch = [3]");
    const line = src.slice(0, second).split("\n").length;
    const column = second - src.lastIndexOf("\n", second);
    expect(diagnoseFiles({ "t.moe": src }).map((d) => d.replace(/ \[note.*$/, ""))).toEqual([`FSM2006 t.moe:${line}:${column} duplicate field 'micro_batch'`]);
    expect(jobsOf(src).map((j) => j.name)).toEqual(["t"]);
  });

  it("report an empty vary block", () => {
    const src = `${base}sweep s { base = t, vary { } }\n`;
    expect(diagnose(src)).toEqual([`FSM2014 t.moe:${at(src, "{ }")} 'vary' must list at least one field and its values`]);
  });

  it("report every bad entry, not only the first", () => {
    const src = `${base}sweep s { base = t, vary { micro_batch = 4, seq_len = [] } }\n`;
    expect(diagnose(src).map((d) => d.split(" ")[0])).toEqual(["FSM2014", "FSM2014"]);
  });
});

describe("imports", () => {
  it("keep an absolute path absolute", () => {
    expect(memoryHost({}).resolve("dir/main.moe", "/abs/lib.moe")).toBe("/abs/lib.moe");
    expect(nodeHost.resolve("dir/main.moe", "/abs/lib.moe")).toBe("/abs/lib.moe");
    expect(memoryHost({}).resolve("dir/main.moe", "lib/x.moe")).toBe("dir/lib/x.moe");
  });

  it("read an absolutely named file", () => {
    const r = check("dir/main.moe", {
      host: memoryHost({ "dir/main.moe": `import "/abs/lib.moe"\n${TRAIN}`, "/abs/lib.moe": MODEL }),
    });
    expect(r.diagnostics).toEqual([]);
    expect(r.program.files).toEqual(["dir/main.moe", "/abs/lib.moe"]);
  });
});

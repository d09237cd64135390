/**
 * shardsDivideRule: dimensions split over a group split evenly (FSM3004): expert_hidden and
 * shared_hidden over esp, heads and the dense FFN over tp, and the tokens of a micro-batch
 * (micro_batch · seq_len) over tp; and headsDivideRule: heads over kv_heads (also FSM3004).
 */
import { describe, expect, it } from "vitest";
import { diagnose, at } from "./testing.js";

interface Options {
  attention?: string;
  ffn?: string;
  moe?: string;
  moeLayers?: string;
  microBatch?: number;
  seqLen?: number;
  parallel?: string;
}

/** One node of 8 GPUs; a 4-layer model whose every dimension divides by 8 unless an option says otherwise. */
function job(o: Options = {}): string {
  return `cluster c {
  nodes         = 1
  gpus_per_node = 8
  device        = h100_sxm
  intra         = nvlink4
  inter         = ib_ndr
}

model m {
  layers     = 4
  hidden     = 2048
  attention { ${o.attention ?? "heads = 16, kv_heads = 8"} }
  ffn { ${o.ffn ?? "hidden = 8192"} }
  moe { ${o.moe ?? "experts = 8, top_k = 2, expert_hidden = 4096"} }
  moe_layers = ${o.moeLayers ?? "every 2"}
}

train t {
  model       = m
  cluster     = c
  micro_batch = ${o.microBatch ?? 2}
  seq_len     = ${o.seqLen ?? 1024}
  parallel { ${o.parallel ?? "tp = 8, esp = 8, ep = 1"} }
}
`;
}

describe("shardsDivideRule", () => {
  it("accepts a model whose every split divides", () => {
    expect(diagnose(job())).toEqual([]);
  });

  it("reports an expert_hidden not divisible by esp, at expert_hidden", () => {
    const src = job({ moe: "experts = 8, top_k = 2, expert_hidden = 4100" });
    expect(diagnose(src)).toEqual([`FSM3004 ${at(src, "4100")} expert_hidden = 4100 is not divisible by esp = 8`]);
  });

  it("accepts any expert_hidden when esp = 1", () => {
    expect(diagnose(job({ moe: "experts = 8, top_k = 2, expert_hidden = 4099", parallel: "tp = 8, esp = 1, ep = 8" }))).toEqual([]);
  });

  it("reports a shared_hidden not divisible by esp only when there are shared experts", () => {
    const none = job({ moe: "experts = 8, top_k = 2, expert_hidden = 4096, shared_hidden = 1001" });
    expect(diagnose(none)).toEqual([]);
    const one = job({ moe: "experts = 8, top_k = 2, expert_hidden = 4096, shared_experts = 1, shared_hidden = 1001" });
    expect(diagnose(one)).toEqual([`FSM3004 ${at(one, "1001")} shared_hidden = 1001 is not divisible by esp = 8`]);
  });

  it("reports heads not divisible by tp, at tp", () => {
    const src = job({ attention: "heads = 12, kv_heads = 4, head_dim = 128", parallel: "tp = 8, esp = 8, ep = 1" });
    expect(diagnose(src)).toEqual([`FSM3004 ${at(src, "tp = 8", 5)} heads = 12 is not divisible by tp = 8`]);
  });

  it("reports heads not divisible by kv_heads, at kv_heads", () => {
    const src = job({ attention: "heads = 16, kv_heads = 6", parallel: "tp = 1, esp = 8, ep = 1" });
    expect(diagnose(src)).toEqual([`FSM3004 ${at(src, "kv_heads = 6", 11)} heads = 16 is not divisible by kv_heads = 6`]);
  });

  it("accepts fewer kv_heads than tp (they are replicated), when they divide heads", () => {
    expect(diagnose(job({ attention: "heads = 16, kv_heads = 2", parallel: "tp = 8, esp = 8, ep = 1" }))).toEqual([]);
  });

  it("reports micro_batch · seq_len not divisible by tp, at micro_batch", () => {
    const src = job({ microBatch: 1, seqLen: 1020 });
    expect(diagnose(src)).toEqual([`FSM3004 ${at(src, "micro_batch = 1", 14)} micro_batch · seq_len = 1020 is not divisible by tp = 8`]);
  });

  it("multiplies micro_batch · seq_len exactly, beyond 2^53", () => {
    // (2^31 − 1)² is odd; as a double it rounds to 2^62 − 2^32, which 8 divides.
    const src = job({ microBatch: 2147483647, seqLen: 2147483647 });
    expect(diagnose(src)).toEqual([`FSM3004 ${at(src, "micro_batch = 2147483647", 14)} micro_batch · seq_len = 4611686014132420609 is not divisible by tp = 8`]);
  });

  it("accepts tokens that divide by tp only together (micro_batch 4 · seq_len 2 over tp 8)", () => {
    expect(diagnose(job({ microBatch: 4, seqLen: 2 }))).toEqual([]);
  });

  it("reports a dense FFN hidden not divisible by tp when the model has dense layers", () => {
    const src = job({ ffn: "hidden = 8190" });
    expect(diagnose(src)).toEqual([`FSM3004 ${at(src, "8190")} ffn hidden = 8190 is not divisible by tp = 8`]);
  });

  it("ignores the dense FFN when every layer is MoE", () => {
    expect(diagnose(job({ ffn: "hidden = 8190", moeLayers: "all" }))).toEqual([]);
  });

  it("reports every split that fails, each at its own place", () => {
    const src = job({ moe: "experts = 8, top_k = 2, expert_hidden = 4100", attention: "heads = 12, kv_heads = 5, head_dim = 128", microBatch: 1, seqLen: 1021 });
    expect(diagnose(src).map((d) => d.split(" ")[0])).toEqual(["FSM3004", "FSM3004", "FSM3004", "FSM3004"]);
  });
});

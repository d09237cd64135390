import { diagnostic, type Diagnostic } from "../../diagnostics/diagnostic.js";
import type { Span } from "../../diagnostics/span.js";
import type { JobRule } from "./rule.js";

/**
 * Every dimension that is split over a parallel group splits evenly: expert and shared-expert
 * hidden sizes over esp, attention heads over tp, the tokens of a micro-batch over tp (sequence
 * parallelism) and the dense FFN over tp. FSM3004. (That heads divide by kv_heads is
 * headsDivideRule's; a `hidden` that does not divide by `heads` makes the default `head_dim`
 * fractional, FSM2102.) Values are multiplied exactly (bigint): micro_batch · seq_len can
 * exceed 2⁵³.
 */
export const shardsDivideRule: JobRule = {
  name: "shardsDivide",
  scope: "job",
  summary: "expert_hidden and shared_hidden divide by esp; heads, ffn hidden and micro_batch · seq_len divide by tp.",
  check(job) {
    const out: Diagnostic[] = [];
    const need = (what: string, value: bigint, by: string, divisor: number, span: Span) => {
      if (value % BigInt(divisor) !== 0n) out.push(diagnostic("FSM3004", span, { what, value: value.toString(), by, divisor }));
    };
    const { esp, tp, spans } = job.parallel;
    const moe = job.model.moe;
    need("expert_hidden", BigInt(moe.expertHidden), "esp", esp, moe.spans["expert_hidden"]!);
    if (moe.sharedExperts > 0) need("shared_hidden", BigInt(moe.sharedHidden), "esp", esp, moe.spans["shared_hidden"]!);
    need("micro_batch · seq_len", BigInt(job.microBatch) * BigInt(job.seqLen), "tp", tp, job.spans["micro_batch"]!);
    const att = job.model.attention;
    if (att) need("heads", BigInt(att.heads), "tp", tp, spans["tp"]!);
    if (job.model.ffn && job.model.moeLayers.length < job.model.layers) need("ffn hidden", BigInt(job.model.ffn.hidden), "tp", tp, job.model.ffn.spans["hidden"]!);
    return out;
  },
};

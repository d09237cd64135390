import { diagnostic, type Diagnostic } from "../../diagnostics/diagnostic.js";
import type { Span } from "../../diagnostics/span.js";
import type { Rule } from "./rule.js";

/**
 * Every dimension that is split over a group splits evenly: expert and shared-expert hidden
 * sizes over esp, attention heads over tp, the tokens of a micro-batch over tp (sequence
 * parallelism), the dense FFN over tp, the model dimension over heads when head_dim is
 * derived, and query heads over key/value heads. FSM3004.
 */
export const shardsDivideRule: Rule = {
  name: "shardsDivide",
  summary: "expert_hidden and shared_hidden divide by esp; heads, ffn hidden and micro_batch · seq_len divide by tp; heads divide by kv_heads.",
  check(job) {
    const out: Diagnostic[] = [];
    const need = (what: string, value: number, by: string, divisor: number, span: Span) => {
      if (value % divisor !== 0) out.push(diagnostic("FSM3004", span, { what, value, by, divisor }));
    };
    const { esp, tp, spans } = job.parallel;
    const moe = job.model.moe;
    need("expert_hidden", moe.expertHidden, "esp", esp, moe.spans["expert_hidden"]!);
    if (moe.sharedExperts > 0) need("shared_hidden", moe.sharedHidden, "esp", esp, moe.spans["shared_hidden"]!);
    need("micro_batch · seq_len", job.microBatch * job.seqLen, "tp", tp, job.spans["micro_batch"]!);
    const att = job.model.attention;
    if (att) {
      need("heads", att.heads, "tp", tp, spans["tp"]!);
      need("heads", att.heads, "kv_heads", att.kvHeads, att.spans["kv_heads"]!);
    }
    if (job.model.ffn && job.model.moeLayers.length < job.model.layers) need("ffn hidden", job.model.ffn.hidden, "tp", tp, job.model.ffn.spans["hidden"]!);
    return out;
  },
};

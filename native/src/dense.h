// fp32 host kernels of a model's dense parts (native/README.md, "The model"): RMS norm, causal multi-head
// / grouped-query attention on a rank's heads (multi-head latent attention through mla.h), the FFN on a rank's hidden units, the
// vocabulary-parallel embedding lookup and the pieces of the vocabulary-parallel cross-entropy,
// with their backward. Sizes come from the validated plan; no kernel checks bounds itself.
#pragma once
#include <cstdint>

#include "model.h"
#include "plan.h"

namespace fsmoe {

/** RMS norm of R rows of M: n = s / sqrt(mean(s²) + ε) ⊙ γ. */
void rmsNorm(const float* s, const float* gamma, int64_t R, int64_t M, float* n);
/** Its backward: ds = (∂n/∂s)ᵀ · dn (written) and dγ += Σ over rows of dn ⊙ s / rms. */
void rmsNormBackward(const float* s, const float* gamma, const float* dn, int64_t R, int64_t M, float* ds, float* dgamma);

/**
 * Causal attention of one rank's heads over the tensor-parallel group's N = B · L tokens (row
 * b · L + position): Q = n · Wq, K = n · Wk, V = n · Wv, per sequence and query head softmax(q · kᵀ
 * / √d) over the positions up to its own (query head i uses key/value head i / (h / kv)), and the
 * rank's partial output O · Wo. `probs` [B, h, L, L] (zero above the diagonal) is written when
 * given; the backward reads it when given and recomputes it otherwise. A layout of multi-head
 * latent attention (a.mla) runs mla.h's kernels instead (its backward always recomputes).
 */
void attentionForward(const Job& j, const AttentionLayout& a, const float* n, const float* w, float* out, float* probs);
/** dn (written) and the weights' gradient dw (accumulated, the shard's layout) from dOut. */
void attentionBackward(const Job& j, const AttentionLayout& a, const float* n, const float* w, const float* dOut, const float* probs, float* dn, float* dw);

/** An FFN of F hidden units on R rows, weights [W1 (M × F) | W3 (gated) | W2 (F × M)]: out = (act(n·W1) ⊙ n·W3) · W2. */
void ffnForward(int64_t R, int64_t M, int64_t F, int G, Activation act, const float* n, const float* w, float* out);
/** dn (written) and dw (accumulated). */
void ffnBackward(int64_t R, int64_t M, int64_t F, int G, Activation act, const float* n, const float* w, const float* dOut, float* dn, float* dw);

/** Vocabulary-parallel lookup: row t is the table's row of token t when it is in [first, first + V), zero otherwise. */
void embedForward(const int32_t* tokens, int64_t N, int64_t M, int64_t first, int64_t V, const float* table, float* out);
/** dtable[token − first] += g[t] for the tokens of this shard. */
void embedBackward(const int32_t* tokens, int64_t N, int64_t M, int64_t first, int64_t V, const float* g, float* dtable);

/**
 * Cross-entropy over vocabulary shards [N, V] (entries first …), P = tp shards. Each token's
 * largest logit on this shard (gathered over tp: maxima [P, N]).
 */
void lossMax(const float* logits, int64_t N, int64_t V, float* max);
/** With the gathered maxima: stats[t] = Σ exp(logit − max_t) over the shard, stats[N + t] = the target's logit when it is on the shard, else 0. */
void lossSumExp(const float* logits, const float* maxima, int64_t P, const int32_t* targets, int64_t N, int64_t V, int64_t first, float* stats);
/** With the gathered statistics [P, 2N]: loss[t] = scale · (log Σ_p sumexp + max_t − Σ_p target logit). */
void lossValue(const float* maxima, const float* stats, int64_t P, int64_t N, double scale, float* loss);
/** dlogits = scale · (softmax − one-hot of the target). */
void lossBackward(const float* logits, const float* maxima, const float* stats, int64_t P, const int32_t* targets, int64_t N, int64_t V, int64_t first, double scale, float* grad);

}  // namespace fsmoe

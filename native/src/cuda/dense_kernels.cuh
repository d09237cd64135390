// The CUDA kernels of a model's dense parts (native/README.md, "The model"), as host-callable
// launchers in the style of kernels.cuh: each enqueues its work on `stream` and returns the
// launch's cudaError_t, never synchronizes, so it can be captured into a CUDA graph. They compute
// what the host kernels of ../dense.cc and ../mla.cc compute, on the same layouts (row-major, tokens as rows);
// sums the host does in double are done in double here. The GEMMs around them (projections,
// scores, the FFN, the LM head) go through gemm.h; model_ops.cc puts them together.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace fsmoe {
namespace gpu {

/** n[r, :] = s[r, :] / sqrt(mean(s[r, :]²) + ε) ⊙ γ for R rows of M (a thread per row). */
cudaError_t rmsNormRows(int64_t R, int64_t M, const float* s, const float* gamma, float* n, cudaStream_t stream);
/**
 * RMS norm's backward: ds (written) = (∂n/∂s)ᵀ · dn per row, and dγ[m] += Σ_r dn[r, m] · s[r, m] /
 * rms_r. `inv` is scratch of R doubles (each row's 1 / rms).
 */
cudaError_t rmsNormRowsBackward(int64_t R, int64_t M, const float* s, const float* gamma, const float* dn, float* ds, float* dgamma, double* inv, cudaStream_t stream);

/** y[i] += x[i] for n elements (the residual the first tp rank adds). */
cudaError_t addInto(int64_t n, float* y, const float* x, cudaStream_t stream);
/** y[i] = a[i] + b[i]. */
cudaError_t addTo(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream);

/**
 * Causal softmax in place over `rows` rows of L scores (row = (sequence · heads + head) · L + i):
 * p[j] = exp(scale · s[j] − max) / Σ for j ≤ i (in double), 0 for j > i.
 */
cudaError_t causalSoftmax(int64_t rows, int64_t L, double scale, float* p, cudaStream_t stream);
/** Softmax's backward in place: dp[j] ← scale · p[j] · (dp[j] − Σ_k p[k] · dp[k]) (zero where p is). */
cudaError_t softmaxBackward(int64_t rows, int64_t L, double scale, const float* p, float* dp, cudaStream_t stream);

/** Vocabulary-parallel lookup: out[t, :] = table[tokens[t] − first, :] when the id is on this shard of V rows, else 0. */
cudaError_t embedGather(int64_t N, int64_t M, int64_t first, int64_t V, const int32_t* tokens, const float* table, float* out, cudaStream_t stream);
/** dtable[tokens[t] − first, :] += g[t, :] for the tokens on this shard, tokens in order (a thread per column: no atomics). */
cudaError_t embedScatterAdd(int64_t N, int64_t M, int64_t first, int64_t V, const int32_t* tokens, const float* g, float* dtable, cudaStream_t stream);

// The cross-entropy over vocabulary shards [N, V] (entries first …), P = tp shards, as dense.h's lossMax,
// lossSumExp, lossValue and lossBackward compute it; a thread per token (per logit for the gradient).

/** max[t] = token t's largest logit on this shard. */
cudaError_t lossRowMax(int64_t N, int64_t V, const float* logits, float* max, cudaStream_t stream);
/** With the maxima gathered over tp ([P, N]): stats[t] = Σ exp(logit − max_t) on the shard, stats[N + t] = the target's logit when it is on the shard, else 0. */
cudaError_t lossRowSumExp(int64_t N, int64_t V, int64_t P, int64_t first, const float* logits, const float* maxima, const int32_t* targets, float* stats, cudaStream_t stream);
/** With the statistics gathered over tp ([P, 2N]): loss[t] = scale · (log Σ_p sumexp + max_t − Σ_p target logit). */
cudaError_t lossRowValue(int64_t N, int64_t P, double scale, const float* maxima, const float* stats, float* loss, cudaStream_t stream);
/** grad (N × V, written) = scale · (softmax − one-hot of the target) on this shard. */
cudaError_t lossRowBackward(int64_t N, int64_t V, int64_t P, int64_t first, double scale, const float* logits, const float* maxima, const float* stats, const int32_t* targets,
                            float* grad, cudaStream_t stream);

/** dst[r, c] (+)= src[r, c] for R rows of w columns, rows `lds` / `ldd` floats apart (a column block of one matrix into another's). */
cudaError_t copyColumns(int64_t R, int64_t w, const float* src, int64_t lds, float* dst, int64_t ldd, bool accumulate, cudaStream_t stream);
/**
 * Rotary position embedding (RoFormer §3.2) in place on `heads` blocks of r values per row: row t's
 * block k starts at x + t · ld + k · headStride and has position t % L; interleaved pairs (2i, 2i + 1)
 * rotate by position · 10000^(−2i/r), in double; `inverse` rotates back (the backward).
 */
cudaError_t ropeRows(int64_t R, int64_t heads, int64_t r, float* x, int64_t ld, int64_t headStride, int64_t L, bool inverse, cudaStream_t stream);

/** acc[0] += Σ x, acc[1] += Σ |x| over n floats, in double (one block, deterministic). */
cudaError_t sumAccumulate(int64_t n, const float* x, double* acc, cudaStream_t stream);

}  // namespace gpu
}  // namespace fsmoe

// The dense blocks of a model job on the CUDA backend (native/README.md, "The model"): causal
// MHA / GQA attention on a rank's heads and the FFN on a rank's units, forward and backward, as
// cuBLAS GEMMs (gemm.h, fp32) around the simple kernels of dense_kernels.cuh. They compute what
// ../dense.cc's attentionForward / attentionBackward / ffnForward / ffnBackward compute, on the same
// weight layouts (../model.h AttentionLayout, ShardLayout), and MLA as ../mla.cc computes it
// (latent projections, their RMS norms, RoPE on the decoupled key and query parts).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "../model.h"
#include "gemm.h"

namespace fsmoe {
namespace gpu {

/**
 * Device scratch of one stream for the dense blocks (sizes: denseScratchSizes). MHA / GQA use
 * q, k, v, o (and their gradients) as Q, K, V, O; MLA uses q for the per-head queries, k for the
 * per-head keys [k nope | k rope], v for c_kv · W_ukv (per head [k nope | v]), o for the heads'
 * outputs, and the latent buffers below.
 */
struct DenseScratch {
  float *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr, *p = nullptr;      // `head` elements each; p: B·h·L·L
  float *dO = nullptr, *dq = nullptr, *dk = nullptr, *dv = nullptr, *dp = nullptr;  // the same shapes
  float *h1 = nullptr, *h3 = nullptr, *a = nullptr, *da = nullptr, *d1 = nullptr, *d3 = nullptr;  // N·F each
  // MLA's latent vectors (`latent` elements each): c_q before and after its norm and their gradients, c = x · W_dkv and its gradient,
  // c_kv before and after its norm and their gradients, k_rope and its gradient.
  float *cqRaw = nullptr, *cq = nullptr, *dcq = nullptr, *dcqRaw = nullptr, *c = nullptr, *dc = nullptr;
  float *ckvRaw = nullptr, *ckv = nullptr, *dckv = nullptr, *dckvRaw = nullptr, *kpe = nullptr, *dkpe = nullptr;
  double* inv = nullptr;  // N: each row's 1 / rms (RMS norm backward)
};

/** Element counts of DenseScratch's buffers for a job: each per-head tensor, the probabilities, each FFN tensor (the largest F of any layer), each latent tensor. */
struct DenseScratchSizes {
  int64_t head = 0, probs = 0, ffn = 0, latent = 0;
};
/** The sizes `j`'s dense blocks need on one rank (its heads, its FFN units, MLA's latent widths). */
DenseScratchSizes denseScratchSizes(const Job& j);

/** What the dense blocks run on: the stream, its GEMM engine, scratch; `error` names the failing call. */
struct DenseCtx {
  cudaStream_t stream = nullptr;
  GemmEngine* gemm = nullptr;
  DenseScratch x;
  std::string error;
};

/** out (N × M, written) = the rank's partial attention output (MHA, GQA or MLA) for the normalized stream n; probabilities [B, h, L, L] into `probs` when given. */
bool attentionForwardD(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, float* out, float* probs);
/** dn (N × M, written) and dw (accumulated, the shard's layout) from dOut; recomputes the forward. */
bool attentionBackwardD(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, const float* dOut, float* dn, float* dw);
/** out (R × M, written) = (act(n·W1) ⊙ n·W3) · W2 on F units; zeros when F = 0. */
bool ffnForwardD(DenseCtx& c, int64_t R, int64_t M, int64_t F, int G, int act, const float* n, const float* w, float* out);
/** dn (written) and dw (accumulated). */
bool ffnBackwardD(DenseCtx& c, int64_t R, int64_t M, int64_t F, int G, int act, const float* n, const float* w, const float* dOut, float* dn, float* dw);

}  // namespace gpu
}  // namespace fsmoe

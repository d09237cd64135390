// The dense blocks of a model job on the CUDA backend (native/README.md, "The model"): causal
// MHA / GQA attention on a rank's heads and the FFN on a rank's units, forward and backward, as
// cuBLAS GEMMs (gemm.h, fp32) around the simple kernels of dense_kernels.cuh. They compute what
// ../dense.cc's attentionForward / attentionBackward / ffnForward / ffnBackward compute, on the same
// weight layouts (../model.h AttentionLayout, ShardLayout). Multi-head latent attention is not
// here: backend.cc refuses it before anything runs.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "../model.h"
#include "gemm.h"

namespace fsmoe {
namespace gpu {

/** Device scratch of one stream for the dense blocks (sizes: modelScratchSizes). */
struct DenseScratch {
  float *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr, *p = nullptr;      // N·h·d, N·kv·d, N·kv·d, N·h·d, B·h·L·L
  float *dO = nullptr, *dq = nullptr, *dk = nullptr, *dv = nullptr, *dp = nullptr;  // the same shapes
  float *h1 = nullptr, *h3 = nullptr, *a = nullptr, *da = nullptr, *d1 = nullptr, *d3 = nullptr;  // N·F each
};

/** Element counts of DenseScratch's buffers for a job: attention's per tensor, the FFN's per tensor (the largest F of any layer). */
struct DenseScratchSizes {
  int64_t qo = 0, kv = 0, probs = 0, ffn = 0;
};
DenseScratchSizes denseScratchSizes(const Job& j);

/** What the dense blocks run on: the stream, its GEMM engine, scratch; `error` names the failing call. */
struct DenseCtx {
  cudaStream_t stream = nullptr;
  GemmEngine* gemm = nullptr;
  DenseScratch x;
  std::string error;
};

/** out (N × M, written) = the rank's partial attention output for the normalized stream n; probabilities [B, h, L, L] into `probs` when given. */
bool attentionForwardD(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, float* out, float* probs);
/** dn (N × M, written) and dw (accumulated, the shard's layout) from dOut; recomputes the forward. */
bool attentionBackwardD(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, const float* dOut, float* dn, float* dw);
/** out (R × M, written) = (act(n·W1) ⊙ n·W3) · W2 on F units; zeros when F = 0. */
bool ffnForwardD(DenseCtx& c, int64_t R, int64_t M, int64_t F, int G, int act, const float* n, const float* w, float* out);
/** dn (written) and dw (accumulated). */
bool ffnBackwardD(DenseCtx& c, int64_t R, int64_t M, int64_t F, int G, int act, const float* n, const float* w, const float* dOut, float* dn, float* dw);

}  // namespace gpu
}  // namespace fsmoe

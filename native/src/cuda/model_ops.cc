// The dense blocks of a model job (model_ops.h). Every matrix is row-major with tokens as rows
// (row b·L + position); one head's slice of Q, K, V or O is a column block with the full row as
// its leading dimension, so a head's scores over all B sequences are one strided batched GEMM.
#include "model_ops.h"

#include <algorithm>
#include <cmath>

#include "dense_kernels.cuh"
#include "kernels.cuh"
#include "util.h"

namespace fsmoe {
namespace gpu {

DenseScratchSizes denseScratchSizes(const Job& j) {
  DenseScratchSizes s;
  const AttentionLayout a = attentionLayout(j, false);
  const int64_t N = j.groupTokens;
  if (!a.mla) {
    s.qo = N * a.h * a.d;
    s.kv = N * a.kv * a.d;
    s.probs = int64_t(j.microBatch) * a.h * j.seqLen * j.seqLen;
  }
  for (int l = 0; l < j.layers; l++) s.ffn = std::max(s.ffn, N * ffnUnits(j, l, false));
  return s;
}

namespace {

bool ok(DenseCtx& c, cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  c.error = std::string(what) + " failed: " + cudaText(e);
  return false;
}

/** Row-major C (m × n) (+)= op(A) · op(B), fp32, `batch` times with element strides. */
bool mm(DenseCtx& c, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate,
        int64_t batch = 1, int64_t sA = 0, int64_t sB = 0, int64_t sC = 0) {
  GemmCall g;
  g.transA = ta, g.transB = tb;
  g.m = m, g.n = n, g.k = k;
  g.A = A, g.lda = lda, g.strideA = sA;
  g.B = B, g.ldb = ldb, g.strideB = sB;
  g.C = C, g.ldc = ldc, g.strideC = sC;
  g.batch = batch;
  g.accumulate = accumulate;
  return c.gemm->run(g, c.error);
}

/** Q, K, V projections of n, then each head's causal softmax of q · kᵀ / √d into P [B, h, L, L]. */
bool scores(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, float* P) {
  const int64_t N = j.groupTokens, B = j.microBatch, L = j.seqLen, d = a.d, hd = a.h * d, kd = a.kv * d;
  if (!mm(c, false, false, N, hd, a.M, n, a.M, w + a.wq(), hd, c.x.q, hd, false) || !mm(c, false, false, N, kd, a.M, n, a.M, w + a.wk(), kd, c.x.k, kd, false) ||
      !mm(c, false, false, N, kd, a.M, n, a.M, w + a.wv(), kd, c.x.v, kd, false))
    return false;
  for (int64_t head = 0; head < a.h; head++) {
    const int64_t kvh = head / (a.h / a.kv);
    // S[b, head] (L × L) = Q[b, head] · K[b, kvh]ᵀ, batched over the sequences.
    if (!mm(c, false, true, L, L, d, c.x.q + head * d, hd, c.x.k + kvh * d, kd, P + head * L * L, L, false, B, L * hd, L * kd, a.h * L * L)) return false;
  }
  return ok(c, causalSoftmax(B * a.h * L, L, 1.0 / std::sqrt(double(d)), P, c.stream), "causalSoftmax");
}

/** O[b, head] = P[b, head] · V[b, kvh] for every head. */
bool context(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* P) {
  const int64_t B = j.microBatch, L = j.seqLen, d = a.d, hd = a.h * d, kd = a.kv * d;
  for (int64_t head = 0; head < a.h; head++) {
    const int64_t kvh = head / (a.h / a.kv);
    if (!mm(c, false, false, L, d, L, P + head * L * L, L, c.x.v + kvh * d, kd, c.x.o + head * d, hd, false, B, a.h * L * L, L * kd, L * hd)) return false;
  }
  return true;
}

}  // namespace

bool attentionForwardD(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, float* out, float* probs) {
  if (a.mla) return c.error = "multi-head latent attention is not supported by the cuda backend yet", false;
  float* P = probs ? probs : c.x.p;
  if (!scores(c, j, a, n, w, P) || !context(c, j, a, P)) return false;
  return mm(c, false, false, j.groupTokens, a.M, a.h * a.d, c.x.o, a.h * a.d, w + a.wo(), a.M, out, a.M, false);
}

bool attentionBackwardD(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, const float* dOut, float* dn, float* dw) {
  if (a.mla) return c.error = "multi-head latent attention is not supported by the cuda backend yet", false;
  const int64_t N = j.groupTokens, B = j.microBatch, L = j.seqLen, d = a.d, M = a.M, hd = a.h * d, kd = a.kv * d;
  float* P = c.x.p;
  if (!scores(c, j, a, n, w, P) || !context(c, j, a, P)) return false;
  // dO = dOut · Woᵀ; dWo += Oᵀ · dOut.
  if (!mm(c, false, true, N, hd, M, dOut, M, w + a.wo(), M, c.x.dO, hd, false) || !mm(c, true, false, hd, M, N, c.x.o, hd, dOut, M, dw + a.wo(), M, true)) return false;
  if (!ok(c, cudaMemsetAsync(c.x.dk, 0, sizeof(float) * N * kd, c.stream), "cudaMemsetAsync(dK)") ||
      !ok(c, cudaMemsetAsync(c.x.dv, 0, sizeof(float) * N * kd, c.stream), "cudaMemsetAsync(dV)"))
    return false;
  for (int64_t head = 0; head < a.h; head++) {  // dP[b, head] = dO[b, head] · V[b, kvh]ᵀ
    const int64_t kvh = head / (a.h / a.kv);
    if (!mm(c, false, true, L, L, d, c.x.dO + head * d, hd, c.x.v + kvh * d, kd, c.x.dp + head * L * L, L, false, B, L * hd, L * kd, a.h * L * L)) return false;
  }
  if (!ok(c, softmaxBackward(B * a.h * L, L, 1.0 / std::sqrt(double(d)), P, c.x.dp, c.stream), "softmaxBackward")) return false;  // dp now holds dS
  for (int64_t head = 0; head < a.h; head++) {
    const int64_t kvh = head / (a.h / a.kv), sS = a.h * L * L;
    const float* dS = c.x.dp + head * L * L;
    if (!mm(c, false, false, L, d, L, dS, L, c.x.k + kvh * d, kd, c.x.dq + head * d, hd, false, B, sS, L * kd, L * hd) ||        // dQ = dS · K
        !mm(c, true, false, L, d, L, dS, L, c.x.q + head * d, hd, c.x.dk + kvh * d, kd, true, B, sS, L * hd, L * kd) ||          // dK += dSᵀ · Q
        !mm(c, true, false, L, d, L, P + head * L * L, L, c.x.dO + head * d, hd, c.x.dv + kvh * d, kd, true, B, sS, L * hd, L * kd))  // dV += Pᵀ · dO
      return false;
  }
  return mm(c, true, false, M, hd, N, n, M, c.x.dq, hd, dw + a.wq(), hd, true) && mm(c, true, false, M, kd, N, n, M, c.x.dk, kd, dw + a.wk(), kd, true) &&
         mm(c, true, false, M, kd, N, n, M, c.x.dv, kd, dw + a.wv(), kd, true) && mm(c, false, true, N, M, hd, c.x.dq, hd, w + a.wq(), hd, dn, M, false) &&
         mm(c, false, true, N, M, kd, c.x.dk, kd, w + a.wk(), kd, dn, M, true) && mm(c, false, true, N, M, kd, c.x.dv, kd, w + a.wv(), kd, dn, M, true);
}

bool ffnForwardD(DenseCtx& c, int64_t R, int64_t M, int64_t F, int G, int act, const float* n, const float* w, float* out) {
  if (F == 0) return ok(c, cudaMemsetAsync(out, 0, sizeof(float) * R * M, c.stream), "cudaMemsetAsync(out)");
  const ShardLayout s{M, F, G};
  if (!mm(c, false, false, R, F, M, n, M, w + s.w1(0), F, c.x.h1, F, false)) return false;
  if (G == 3 && !mm(c, false, false, R, F, M, n, M, w + s.w3(0), F, c.x.h3, F, false)) return false;
  if (!ok(c, activationForward(act, G == 3, R * F, c.x.h1, c.x.h3, c.x.a, c.stream), "activationForward")) return false;
  return mm(c, false, false, R, M, F, c.x.a, F, w + s.w2(0), M, out, M, false);
}

bool ffnBackwardD(DenseCtx& c, int64_t R, int64_t M, int64_t F, int G, int act, const float* n, const float* w, const float* dOut, float* dn, float* dw) {
  if (F == 0) return ok(c, cudaMemsetAsync(dn, 0, sizeof(float) * R * M, c.stream), "cudaMemsetAsync(dn)");
  const ShardLayout s{M, F, G};
  if (!mm(c, false, false, R, F, M, n, M, w + s.w1(0), F, c.x.h1, F, false)) return false;
  if (G == 3 && !mm(c, false, false, R, F, M, n, M, w + s.w3(0), F, c.x.h3, F, false)) return false;
  if (!ok(c, activationForward(act, G == 3, R * F, c.x.h1, c.x.h3, c.x.a, c.stream), "activationForward")) return false;
  if (!mm(c, false, true, R, F, M, dOut, M, w + s.w2(0), M, c.x.da, F, false) || !mm(c, true, false, F, M, R, c.x.a, F, dOut, M, dw + s.w2(0), M, true)) return false;
  if (!ok(c, activationBackward(act, G == 3, R * F, c.x.da, c.x.h1, c.x.h3, c.x.d1, c.x.d3, c.stream), "activationBackward")) return false;
  if (!mm(c, true, false, M, F, R, n, M, c.x.d1, F, dw + s.w1(0), F, true) || !mm(c, false, true, R, M, F, c.x.d1, F, w + s.w1(0), F, dn, M, false)) return false;
  if (G == 3 && (!mm(c, true, false, M, F, R, n, M, c.x.d3, F, dw + s.w3(0), F, true) || !mm(c, false, true, R, M, F, c.x.d3, F, w + s.w3(0), F, dn, M, true))) return false;
  return true;
}

}  // namespace gpu
}  // namespace fsmoe

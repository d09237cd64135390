// The dense blocks of a model job (model_ops.h). Every matrix is row-major with tokens as rows
// (row b·L + position); one head's slice of Q, K, V or O is a column block with the full row as
// its leading dimension, so a head's scores over all B sequences are one strided batched GEMM.
// MHA, GQA and MLA share the attention core (Heads): they differ only in where each head's
// query, key and value columns lie and in their widths.
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
  const int64_t width = a.mla ? std::max({a.qk(), a.nope + a.v, a.v}) : a.d;
  s.head = N * a.h * width;
  s.probs = int64_t(j.microBatch) * a.h * j.seqLen * j.seqLen;
  if (a.mla) s.latent = N * std::max(a.qLora, a.kvLora + a.rope);
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

/** A matrix of N rows whose head i's columns start at `at + group(i) · head`, rows `ld` apart. */
struct Cols {
  float* at;
  int64_t ld, head;
};

/**
 * The attention core on h query heads: query head i reads key/value head i / group; q · kᵀ over
 * dqk columns, values of dv columns; O (N × h·dv) per head.
 */
struct Heads {
  int64_t h, group, dqk, dv;
  Cols q, k, v;
};

/** P [B, h, L, L] = each head's causal softmax(q · kᵀ / √dqk). */
bool scores(DenseCtx& c, const Job& j, const Heads& H, float* P) {
  const int64_t B = j.microBatch, L = j.seqLen;
  for (int64_t i = 0; i < H.h; i++) {
    const int64_t kh = i / H.group;
    if (!mm(c, false, true, L, L, H.dqk, H.q.at + i * H.q.head, H.q.ld, H.k.at + kh * H.k.head, H.k.ld, P + i * L * L, L, false, B, L * H.q.ld, L * H.k.ld, H.h * L * L)) return false;
  }
  return ok(c, causalSoftmax(B * H.h * L, L, 1.0 / std::sqrt(double(H.dqk)), P, c.stream), "causalSoftmax");
}

/** O[b, i] = P[b, i] · V[b, i / group], O (N × h·dv). */
bool context(DenseCtx& c, const Job& j, const Heads& H, const float* P, float* O) {
  const int64_t B = j.microBatch, L = j.seqLen, ldo = H.h * H.dv;
  for (int64_t i = 0; i < H.h; i++) {
    const int64_t kh = i / H.group;
    if (!mm(c, false, false, L, H.dv, L, P + i * L * L, L, H.v.at + kh * H.v.head, H.v.ld, O + i * H.dv, ldo, false, B, H.h * L * L, L * H.v.ld, L * ldo)) return false;
  }
  return true;
}

/**
 * The core's backward from dO (N × h·dv): dQ written, dK and dV accumulated (the caller zeroes
 * them), each in the layout of its forward operand (`dq`, `dk`, `dv`). P is the forward's; dp is scratch.
 */
bool coreBackward(DenseCtx& c, const Job& j, const Heads& H, const float* P, const float* dO, Cols dq, Cols dk, Cols dv) {
  const int64_t B = j.microBatch, L = j.seqLen, ldo = H.h * H.dv, sS = H.h * L * L;
  for (int64_t i = 0; i < H.h; i++) {  // dP[b, i] = dO[b, i] · V[b, i / group]ᵀ
    const int64_t kh = i / H.group;
    if (!mm(c, false, true, L, L, H.dv, dO + i * H.dv, ldo, H.v.at + kh * H.v.head, H.v.ld, c.x.dp + i * L * L, L, false, B, L * ldo, L * H.v.ld, sS)) return false;
  }
  if (!ok(c, softmaxBackward(B * H.h * L, L, 1.0 / std::sqrt(double(H.dqk)), P, c.x.dp, c.stream), "softmaxBackward")) return false;  // dp now holds dS
  for (int64_t i = 0; i < H.h; i++) {
    const int64_t kh = i / H.group;
    const float* dS = c.x.dp + i * L * L;
    if (!mm(c, false, false, L, H.dqk, L, dS, L, H.k.at + kh * H.k.head, H.k.ld, dq.at + i * dq.head, dq.ld, false, B, sS, L * H.k.ld, L * dq.ld) ||  // dQ = dS · K
        !mm(c, true, false, L, H.dqk, L, dS, L, H.q.at + i * H.q.head, H.q.ld, dk.at + kh * dk.head, dk.ld, true, B, sS, L * H.q.ld, L * dk.ld) ||  // dK += dSᵀ · Q
        !mm(c, true, false, L, H.dv, L, P + i * L * L, L, dO + i * H.dv, ldo, dv.at + kh * dv.head, dv.ld, true, B, sS, L * ldo, L * dv.ld))        // dV += Pᵀ · dO
      return false;
  }
  return true;
}

/** MHA / GQA: the heads of Q = n · Wq, K = n · Wk, V = n · Wv (computed here). */
bool mhaHeads(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, Heads& H) {
  const int64_t N = j.groupTokens, d = a.d, hd = a.h * d, kd = a.kv * d;
  H = Heads{a.h, a.h / a.kv, d, d, {c.x.q, hd, d}, {c.x.k, kd, d}, {c.x.v, kd, d}};
  return mm(c, false, false, N, hd, a.M, n, a.M, w + a.wq(), hd, c.x.q, hd, false) && mm(c, false, false, N, kd, a.M, n, a.M, w + a.wk(), kd, c.x.k, kd, false) &&
         mm(c, false, false, N, kd, a.M, n, a.M, w + a.wv(), kd, c.x.v, kd, false);
}

/**
 * MLA's forward up to the heads (../mla.cc project): c_q = norm(n · Wdq), q = c_q · Wuq with RoPE
 * on each head's rope part; c = n · Wdkv, c_kv = norm(c[:kvLora]), k_rope = RoPE(c[kvLora:]);
 * v (scratch v) = c_kv · Wukv; each head's key [k nope | k_rope] into scratch k.
 */
bool mlaHeads(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, Heads& H) {
  const int64_t N = j.groupTokens, L = j.seqLen, M = a.M, qL = a.qLora, kvL = a.kvLora, r = a.rope, h = a.h, qk = a.qk(), kvw = a.nope + a.v;
  const DenseScratch& x = c.x;
  H = Heads{h, 1, qk, a.v, {x.q, h * qk, qk}, {x.k, h * qk, qk}, {x.v + a.nope, h * kvw, kvw}};
  if (!mm(c, false, false, N, qL, M, n, M, w + a.wdq(), qL, x.cqRaw, qL, false) || !ok(c, rmsNormRows(N, qL, x.cqRaw, w + a.gq(), x.cq, c.stream), "rmsNormRows(c_q)") ||
      !mm(c, false, false, N, h * qk, qL, x.cq, qL, w + a.wuq(), h * qk, x.q, h * qk, false) ||
      !ok(c, ropeRows(N, h, r, x.q + a.nope, h * qk, qk, L, false, c.stream), "ropeRows(q)"))
    return false;
  if (!mm(c, false, false, N, kvL + r, M, n, M, w + a.wdkv(), kvL + r, x.c, kvL + r, false) ||
      !ok(c, copyColumns(N, kvL, x.c, kvL + r, x.ckvRaw, kvL, false, c.stream), "copyColumns(c_kv)") ||
      !ok(c, rmsNormRows(N, kvL, x.ckvRaw, w + a.gkv(), x.ckv, c.stream), "rmsNormRows(c_kv)") ||
      !ok(c, copyColumns(N, r, x.c + kvL, kvL + r, x.kpe, r, false, c.stream), "copyColumns(k_rope)") ||
      !ok(c, ropeRows(N, 1, r, x.kpe, r, r, L, false, c.stream), "ropeRows(k_rope)") || !mm(c, false, false, N, h * kvw, kvL, x.ckv, kvL, w + a.wukv(), h * kvw, x.v, h * kvw, false))
    return false;
  for (int64_t i = 0; i < h; i++)
    if (!ok(c, copyColumns(N, a.nope, x.v + i * kvw, h * kvw, x.k + i * qk, h * qk, false, c.stream), "copyColumns(k nope)") ||
        !ok(c, copyColumns(N, r, x.kpe, r, x.k + i * qk + a.nope, h * qk, false, c.stream), "copyColumns(k rope)"))
      return false;
  return true;
}

/** The projections and heads of either kind. */
bool heads(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, Heads& H) { return a.mla ? mlaHeads(c, j, a, n, w, H) : mhaHeads(c, j, a, n, w, H); }

/** MLA's backward below the heads (../mla.cc mlaBackward after the core): dn written, dw accumulated; dq, dk (scratch) and dv (the v cols of scratch dv) hold the core's gradients. */
bool mlaBackwardD(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, float* dn, float* dw) {
  const int64_t N = j.groupTokens, L = j.seqLen, M = a.M, qL = a.qLora, kvL = a.kvLora, r = a.rope, h = a.h, qk = a.qk(), kvw = a.nope + a.v;
  const DenseScratch& x = c.x;
  // Each head's key gradient: its nope part into d[k nope | v], its rope part summed over the heads into dk_rope.
  if (!ok(c, cudaMemsetAsync(x.dkpe, 0, sizeof(float) * N * r, c.stream), "cudaMemsetAsync(dk_rope)")) return false;
  for (int64_t i = 0; i < h; i++)
    if (!ok(c, copyColumns(N, a.nope, x.dk + i * qk, h * qk, x.dv + i * kvw, h * kvw, false, c.stream), "copyColumns(dk nope)") ||
        !ok(c, copyColumns(N, r, x.dk + i * qk + a.nope, h * qk, x.dkpe, r, true, c.stream), "copyColumns(dk rope)"))
      return false;
  // Key/value up-projection and its norm, then the down-projection's output c = [c_kv raw | k_rope before rotation].
  if (!mm(c, true, false, kvL, h * kvw, N, x.ckv, kvL, x.dv, h * kvw, dw + a.wukv(), h * kvw, true) || !mm(c, false, true, N, kvL, h * kvw, x.dv, h * kvw, w + a.wukv(), h * kvw, x.dckv, kvL, false) ||
      !ok(c, rmsNormRowsBackward(N, kvL, x.ckvRaw, w + a.gkv(), x.dckv, x.dckvRaw, dw + a.gkv(), x.inv, c.stream), "rmsNormRowsBackward(c_kv)") ||
      !ok(c, copyColumns(N, kvL, x.dckvRaw, kvL, x.dc, kvL + r, false, c.stream), "copyColumns(dc_kv)") ||
      !ok(c, ropeRows(N, 1, r, x.dkpe, r, r, L, true, c.stream), "ropeRows(dk_rope)") || !ok(c, copyColumns(N, r, x.dkpe, r, x.dc + kvL, kvL + r, false, c.stream), "copyColumns(dk_rope)") ||
      !mm(c, true, false, M, kvL + r, N, n, M, x.dc, kvL + r, dw + a.wdkv(), kvL + r, true) || !mm(c, false, true, N, M, kvL + r, x.dc, kvL + r, w + a.wdkv(), kvL + r, dn, M, false))
    return false;
  // Query path: the rope parts rotate back, then Wuq, the q norm and Wdq.
  return ok(c, ropeRows(N, h, r, x.dq + a.nope, h * qk, qk, L, true, c.stream), "ropeRows(dq)") && mm(c, true, false, qL, h * qk, N, x.cq, qL, x.dq, h * qk, dw + a.wuq(), h * qk, true) &&
         mm(c, false, true, N, qL, h * qk, x.dq, h * qk, w + a.wuq(), h * qk, x.dcq, qL, false) &&
         ok(c, rmsNormRowsBackward(N, qL, x.cqRaw, w + a.gq(), x.dcq, x.dcqRaw, dw + a.gq(), x.inv, c.stream), "rmsNormRowsBackward(c_q)") &&
         mm(c, true, false, M, qL, N, n, M, x.dcqRaw, qL, dw + a.wdq(), qL, true) && mm(c, false, true, N, M, qL, x.dcqRaw, qL, w + a.wdq(), qL, dn, M, true);
}

}  // namespace

bool attentionForwardD(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, float* out, float* probs) {
  Heads H;
  float* P = probs ? probs : c.x.p;
  if (!heads(c, j, a, n, w, H) || !scores(c, j, H, P) || !context(c, j, H, P, c.x.o)) return false;
  return mm(c, false, false, j.groupTokens, a.M, H.h * H.dv, c.x.o, H.h * H.dv, w + a.wo(), a.M, out, a.M, false);
}

bool attentionBackwardD(DenseCtx& c, const Job& j, const AttentionLayout& a, const float* n, const float* w, const float* dOut, float* dn, float* dw) {
  const int64_t N = j.groupTokens, M = a.M;
  Heads H;
  float* P = c.x.p;
  if (!heads(c, j, a, n, w, H) || !scores(c, j, H, P) || !context(c, j, H, P, c.x.o)) return false;
  const int64_t ho = H.h * H.dv;
  // dO = dOut · Woᵀ; dWo += Oᵀ · dOut.
  if (!mm(c, false, true, N, ho, M, dOut, M, w + a.wo(), M, c.x.dO, ho, false) || !mm(c, true, false, ho, M, N, c.x.o, ho, dOut, M, dw + a.wo(), M, true)) return false;
  // dK and dV accumulate over the query heads that share them: zeroed first (MLA: dv is d[k nope | v], whose nope part mlaBackwardD fills).
  const int64_t kvElems = a.mla ? N * H.h * (a.nope + a.v) : N * a.kv * a.d, kElems = a.mla ? N * H.h * H.dqk : N * a.kv * a.d;
  if (!ok(c, cudaMemsetAsync(c.x.dk, 0, sizeof(float) * kElems, c.stream), "cudaMemsetAsync(dK)") || !ok(c, cudaMemsetAsync(c.x.dv, 0, sizeof(float) * kvElems, c.stream), "cudaMemsetAsync(dV)"))
    return false;
  const Cols dq{c.x.dq, H.q.ld, H.q.head}, dk{c.x.dk, H.k.ld, H.k.head}, dv{c.x.dv + (H.v.at - c.x.v), H.v.ld, H.v.head};
  if (!coreBackward(c, j, H, P, c.x.dO, dq, dk, dv)) return false;
  if (a.mla) return mlaBackwardD(c, j, a, n, w, dn, dw);
  const int64_t hd = a.h * a.d, kd = a.kv * a.d;
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

// MLA (mla.h). Plain row-major loops templated on the activation type; norms and softmax sums
// accumulate in double.
#include "mla.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace fsmoe {

namespace {

/** C (m × n) = A (m × k) · B (k × n), or += when `accumulate`. */
template <typename T>
void mmNN(int64_t m, int64_t n, int64_t k, const T* A, const float* B, T* C, bool accumulate) {
  if (!accumulate) std::fill(C, C + m * n, T(0));
  for (int64_t i = 0; i < m; i++)
    for (int64_t p = 0; p < k; p++) {
      const T x = A[i * k + p];
      const float* b = B + p * n;
      T* c = C + i * n;
      for (int64_t q = 0; q < n; q++) c[q] += x * T(b[q]);
    }
}

/** C (m × n) += A (m × k) · Bᵀ, B (n × k). */
template <typename T>
void mmNT(int64_t m, int64_t n, int64_t k, const T* A, const float* B, T* C) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t q = 0; q < n; q++) {
      T s = 0;
      const T* x = A + i * k;
      const float* b = B + q * k;
      for (int64_t p = 0; p < k; p++) s += x[p] * T(b[p]);
      C[i * n + q] += s;
    }
}

/** C (m × n) += Aᵀ · B, A (k × m), B (k × n). */
template <typename T>
void mmTN(int64_t m, int64_t n, int64_t k, const T* A, const T* B, T* C) {
  for (int64_t p = 0; p < k; p++)
    for (int64_t i = 0; i < m; i++) {
      const T x = A[p * m + i];
      const T* b = B + p * n;
      T* c = C + i * n;
      for (int64_t q = 0; q < n; q++) c[q] += x * b[q];
    }
}

/** 1 / rms of one row of w values. */
template <typename T>
double invRms(const T* x, int64_t w) {
  double ms = 0;
  for (int64_t c = 0; c < w; c++) ms += double(x[c]) * double(x[c]);
  return 1.0 / std::sqrt(ms / double(w) + double(kNormEps));
}

/** RMS norm of R rows of w: y = x / rms(x) ⊙ γ. */
template <typename T>
void norm(const T* x, const float* gamma, int64_t R, int64_t w, T* y) {
  for (int64_t r = 0; r < R; r++) {
    const double inv = invRms(x + r * w, w);
    for (int64_t c = 0; c < w; c++) y[r * w + c] = T(double(x[r * w + c]) * inv * gamma[c]);
  }
}

/** Its backward: dx (written) and dγ (accumulated) from dy. */
template <typename T>
void normBackward(const T* x, const float* gamma, const T* dy, int64_t R, int64_t w, T* dx, T* dgamma) {
  for (int64_t r = 0; r < R; r++) {
    const T* xr = x + r * w;
    const T* g = dy + r * w;
    const double inv = invRms(xr, w);
    double dot = 0;
    for (int64_t c = 0; c < w; c++) dot += double(g[c]) * gamma[c] * double(xr[c]) * inv;
    dot /= double(w);
    for (int64_t c = 0; c < w; c++) {
      const double xh = double(xr[c]) * inv;
      dx[r * w + c] = T(inv * (double(g[c]) * gamma[c] - xh * dot));
      dgamma[c] += T(double(g[c]) * xh);
    }
  }
}

/**
 * Rotary embedding of the r values at x for position `pos`: pairs (2i, 2i + 1) rotate by
 * pos · θ_i, θ_i = 10000^(−2i/r); `transpose` rotates back (the backward).
 */
template <typename T>
void rope(T* x, int64_t r, int64_t pos, bool transpose) {
  for (int64_t i = 0; i < r / 2; i++) {
    const double angle = double(pos) * std::pow(10000.0, -2.0 * double(i) / double(r));
    const double c = std::cos(angle), s = transpose ? -std::sin(angle) : std::sin(angle);
    const double x0 = double(x[2 * i]), x1 = double(x[2 * i + 1]);
    x[2 * i] = T(x0 * c - x1 * s);
    x[2 * i + 1] = T(x0 * s + x1 * c);
  }
}

/** The activations of the forward on one rank's heads. */
template <typename T>
struct Mla {
  const Job& j;
  const AttentionLayout& a;
  const float* w;
  int64_t N, B, L, h, qk, kvw;  // kvw: a head's [k nope | v] width
  double scale;
  std::vector<T> cqRaw, cq, q, ckvRaw, ckv, kpe, kv, o;

  Mla(const Job& job, const AttentionLayout& layout, const float* weights)
      : j(job), a(layout), w(weights), N(job.groupTokens), B(job.microBatch), L(job.seqLen), h(layout.h), qk(layout.qk()), kvw(layout.nope + layout.v),
        scale(1.0 / std::sqrt(double(layout.qk()))) {}

  /** Everything up to the per-head queries, keys and values. */
  void project(const T* n) {
    const int64_t M = a.M, qL = a.qLora, kvL = a.kvLora, r = a.rope;
    cqRaw.resize(N * qL);
    cq.resize(N * qL);
    mmNN(N, qL, M, n, w + a.wdq(), cqRaw.data(), false);
    norm(cqRaw.data(), w + a.gq(), N, qL, cq.data());
    q.resize(N * h * qk);
    mmNN(N, h * qk, qL, cq.data(), w + a.wuq(), q.data(), false);
    std::vector<T> c(N * (kvL + r));
    mmNN(N, kvL + r, M, n, w + a.wdkv(), c.data(), false);
    ckvRaw.resize(N * kvL);
    ckv.resize(N * kvL);
    kpe.resize(N * r);
    for (int64_t t = 0; t < N; t++) {
      std::copy(c.begin() + t * (kvL + r), c.begin() + t * (kvL + r) + kvL, ckvRaw.begin() + t * kvL);
      std::copy(c.begin() + t * (kvL + r) + kvL, c.begin() + (t + 1) * (kvL + r), kpe.begin() + t * r);
      rope(kpe.data() + t * r, r, t % L, false);
      for (int64_t head = 0; head < h; head++) rope(q.data() + (t * h + head) * qk + a.nope, r, t % L, false);
    }
    norm(ckvRaw.data(), w + a.gkv(), N, kvL, ckv.data());
    kv.resize(N * h * kvw);
    mmNN(N, h * kvw, kvL, ckv.data(), w + a.wukv(), kv.data(), false);
  }

  /** One row of softmax(q · kᵀ · scale) of query (b, i) and `head` over positions 0 … i. */
  void scores(int64_t b, int64_t head, int64_t i, std::vector<double>& p) const {
    const T* qi = q.data() + ((b * L + i) * h + head) * qk;
    double mx = -INFINITY;
    p.assign(i + 1, 0.0);
    for (int64_t t = 0; t <= i; t++) {
      const T* k = kv.data() + ((b * L + t) * h + head) * kvw;
      const T* pe = kpe.data() + (b * L + t) * a.rope;
      double dot = 0;
      for (int64_t c = 0; c < a.nope; c++) dot += double(qi[c]) * double(k[c]);
      for (int64_t c = 0; c < a.rope; c++) dot += double(qi[a.nope + c]) * double(pe[c]);
      p[t] = dot * scale;
      mx = std::max(mx, p[t]);
    }
    double sum = 0;
    for (int64_t t = 0; t <= i; t++) sum += (p[t] = std::exp(p[t] - mx));
    for (int64_t t = 0; t <= i; t++) p[t] /= sum;
  }

  /** o = softmax · v per head; probs written when given. */
  void attend(float* probs) {
    o.assign(N * h * a.v, T(0));
    std::vector<double> p;
    for (int64_t b = 0; b < B; b++)
      for (int64_t head = 0; head < h; head++)
        for (int64_t i = 0; i < L; i++) {
          scores(b, head, i, p);
          if (probs) {
            float* row = probs + ((b * h + head) * L + i) * L;
            for (int64_t t = 0; t < L; t++) row[t] = t <= i ? float(p[t]) : 0.0f;
          }
          T* oi = o.data() + ((b * L + i) * h + head) * a.v;
          for (int64_t t = 0; t <= i; t++) {
            const T* v = kv.data() + ((b * L + t) * h + head) * kvw + a.nope;
            for (int64_t c = 0; c < a.v; c++) oi[c] += T(p[t]) * v[c];
          }
        }
  }
};

}  // namespace

template <typename T>
void mlaForward(const Job& j, const AttentionLayout& a, const T* n, const float* w, T* out, float* probs) {
  Mla<T> s(j, a, w);
  s.project(n);
  s.attend(probs);
  mmNN(s.N, a.M, s.h * a.v, s.o.data(), w + a.wo(), out, false);
}

template <typename T>
void mlaBackward(const Job& j, const AttentionLayout& a, const T* n, const float* w, const T* dOut, T* dn, T* dw) {
  Mla<T> s(j, a, w);
  s.project(n);
  s.attend(nullptr);
  const int64_t N = s.N, B = s.B, L = s.L, h = s.h, qk = s.qk, kvw = s.kvw, M = a.M, qL = a.qLora, kvL = a.kvLora, r = a.rope;
  // Output projection: dWo += oᵀ · dOut, dO = dOut · Woᵀ.
  mmTN(h * a.v, M, N, s.o.data(), dOut, dw + a.wo());
  std::vector<T> dO(N * h * a.v, T(0));
  mmNT(N, h * a.v, M, dOut, w + a.wo(), dO.data());
  // Core attention: dq, d[k nope | v] per head, dk_pe summed over the heads.
  std::vector<T> dq(N * h * qk, T(0)), dkv(N * h * kvw, T(0)), dkpe(N * r, T(0));
  std::vector<double> p, dp;
  for (int64_t b = 0; b < B; b++)
    for (int64_t head = 0; head < h; head++)
      for (int64_t i = 0; i < L; i++) {
        s.scores(b, head, i, p);
        const int64_t row = b * L + i;
        const T* go = dO.data() + (row * h + head) * a.v;
        dp.assign(i + 1, 0.0);
        double sum = 0;
        for (int64_t t = 0; t <= i; t++) {
          const T* v = s.kv.data() + ((b * L + t) * h + head) * kvw + a.nope;
          double dot = 0;
          for (int64_t c = 0; c < a.v; c++) dot += double(go[c]) * double(v[c]);
          dp[t] = dot;
          sum += p[t] * dot;
        }
        const T* qi = s.q.data() + (row * h + head) * qk;
        T* gq = dq.data() + (row * h + head) * qk;
        for (int64_t t = 0; t <= i; t++) {
          const T ds = T(p[t] * (dp[t] - sum) * s.scale);
          const T* k = s.kv.data() + ((b * L + t) * h + head) * kvw;
          const T* pe = s.kpe.data() + (b * L + t) * r;
          T* gk = dkv.data() + ((b * L + t) * h + head) * kvw;
          T* gpe = dkpe.data() + (b * L + t) * r;
          for (int64_t c = 0; c < a.nope; c++) {
            gq[c] += ds * k[c];
            gk[c] += ds * qi[c];
          }
          for (int64_t c = 0; c < r; c++) {
            gq[a.nope + c] += ds * pe[c];
            gpe[c] += ds * qi[a.nope + c];
          }
          for (int64_t c = 0; c < a.v; c++) gk[a.nope + c] += T(p[t]) * go[c];
        }
      }
  // Key/value up-projection and its norm: dWukv += ckvᵀ · dkv, dckv = dkv · Wukvᵀ.
  mmTN(kvL, h * kvw, N, s.ckv.data(), dkv.data(), dw + a.wukv());
  std::vector<T> dckv(N * kvL, T(0)), dckvRaw(N * kvL);
  mmNT(N, kvL, h * kvw, dkv.data(), w + a.wukv(), dckv.data());
  normBackward(s.ckvRaw.data(), w + a.gkv(), dckv.data(), N, kvL, dckvRaw.data(), dw + a.gkv());
  // The down-projection's output c = [ckv raw | k_pe before rotation].
  std::vector<T> dc(N * (kvL + r));
  for (int64_t t = 0; t < N; t++) {
    std::copy(dckvRaw.begin() + t * kvL, dckvRaw.begin() + (t + 1) * kvL, dc.begin() + t * (kvL + r));
    rope(dkpe.data() + t * r, r, t % L, true);
    std::copy(dkpe.begin() + t * r, dkpe.begin() + (t + 1) * r, dc.begin() + t * (kvL + r) + kvL);
    for (int64_t head = 0; head < h; head++) rope(dq.data() + (t * h + head) * qk + a.nope, r, t % L, true);
  }
  mmTN(M, kvL + r, N, n, dc.data(), dw + a.wdkv());
  std::fill(dn, dn + N * M, T(0));
  mmNT(N, M, kvL + r, dc.data(), w + a.wdkv(), dn);
  // Query path: dWuq += cqᵀ · dq, then the q norm and Wdq.
  mmTN(qL, h * qk, N, s.cq.data(), dq.data(), dw + a.wuq());
  std::vector<T> dcq(N * qL, T(0)), dcqRaw(N * qL);
  mmNT(N, qL, h * qk, dq.data(), w + a.wuq(), dcq.data());
  normBackward(s.cqRaw.data(), w + a.gq(), dcq.data(), N, qL, dcqRaw.data(), dw + a.gq());
  mmTN(M, qL, N, n, dcqRaw.data(), dw + a.wdq());
  mmNT(N, M, qL, dcqRaw.data(), w + a.wdq(), dn);
}

template void mlaForward<float>(const Job&, const AttentionLayout&, const float*, const float*, float*, float*);
template void mlaForward<double>(const Job&, const AttentionLayout&, const double*, const float*, double*, float*);
template void mlaBackward<float>(const Job&, const AttentionLayout&, const float*, const float*, const float*, float*, float*);
template void mlaBackward<double>(const Job&, const AttentionLayout&, const double*, const float*, const double*, double*, double*);

}  // namespace fsmoe

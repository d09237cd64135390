// The dense kernels (dense.h). Row-major plain loops over the GEMM helpers of kernels.h; sums
// of a softmax, a norm or a loss accumulate in double.
#include "dense.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "mla.h"

namespace fsmoe {

void rmsNorm(const float* s, const float* gamma, int64_t R, int64_t M, float* n) {
  for (int64_t r = 0; r < R; r++) {
    const float* x = s + r * M;
    double ms = 0;
    for (int64_t m = 0; m < M; m++) ms += double(x[m]) * x[m];
    const float inv = float(1.0 / std::sqrt(ms / double(M) + kNormEps));
    float* y = n + r * M;
    for (int64_t m = 0; m < M; m++) y[m] = x[m] * inv * gamma[m];
  }
}

void rmsNormBackward(const float* s, const float* gamma, const float* dn, int64_t R, int64_t M, float* ds, float* dgamma) {
  for (int64_t r = 0; r < R; r++) {
    const float* x = s + r * M;
    const float* g = dn + r * M;
    double ms = 0;
    for (int64_t m = 0; m < M; m++) ms += double(x[m]) * x[m];
    const double inv = 1.0 / std::sqrt(ms / double(M) + kNormEps);
    double dot = 0;
    for (int64_t m = 0; m < M; m++) dot += double(g[m]) * gamma[m] * x[m] * inv;
    dot /= double(M);
    float* y = ds + r * M;
    for (int64_t m = 0; m < M; m++) {
      const double xh = x[m] * inv;
      y[m] = float(inv * (double(g[m]) * gamma[m] - xh * dot));
      dgamma[m] += float(double(g[m]) * xh);
    }
  }
}

namespace {

thread_local std::vector<float> tQ, tK, tV, tO, tP, tdQ, tdK, tdV, tdO, tScr, tH1, tH3, tA, tD1, tD3, tDA;

/** One row of softmax(q · kᵀ / √d) over positions 0 … i of sequence b (zeros after). */
void scoresRow(const AttentionLayout& a, int64_t L, int64_t b, int64_t head, int64_t i, float* p) {
  const int64_t d = a.d, kvh = head / (a.h / a.kv);
  const float* q = tQ.data() + (b * L + i) * a.h * d + head * d;
  const double scale = 1.0 / std::sqrt(double(d));
  double mx = -INFINITY;
  std::vector<double> s(i + 1);
  for (int64_t j = 0; j <= i; j++) {
    const float* k = tK.data() + (b * L + j) * a.kv * d + kvh * d;
    double dot = 0;
    for (int64_t c = 0; c < d; c++) dot += double(q[c]) * k[c];
    s[j] = dot * scale;
    mx = std::max(mx, s[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j <= i; j++) sum += (s[j] = std::exp(s[j] - mx));
  for (int64_t j = 0; j < L; j++) p[j] = j <= i ? float(s[j] / sum) : 0.0f;
}

void projections(const Job& j, const AttentionLayout& a, const float* n, const float* w) {
  const int64_t N = j.groupTokens;
  tQ.resize(N * a.h * a.d);
  tK.resize(N * a.kv * a.d);
  tV.resize(N * a.kv * a.d);
  gemmNN(N, a.h * a.d, a.M, n, w + a.wq(), tQ.data(), false);
  gemmNN(N, a.kv * a.d, a.M, n, w + a.wk(), tK.data(), false);
  gemmNN(N, a.kv * a.d, a.M, n, w + a.wv(), tV.data(), false);
}

}  // namespace

void attentionForward(const Job& j, const AttentionLayout& a, const float* n, const float* w, float* out, float* probs) {
  if (a.mla) return mlaForward<float>(j, a, n, w, out, probs);
  const int64_t N = j.groupTokens, B = j.microBatch, L = j.seqLen, d = a.d;
  projections(j, a, n, w);
  tO.assign(N * a.h * d, 0.0f);
  tP.resize(L);
  for (int64_t b = 0; b < B; b++)
    for (int64_t head = 0; head < a.h; head++) {
      const int64_t kvh = head / (a.h / a.kv);
      for (int64_t i = 0; i < L; i++) {
        scoresRow(a, L, b, head, i, tP.data());
        if (probs) std::memcpy(probs + ((b * a.h + head) * L + i) * L, tP.data(), sizeof(float) * L);
        float* o = tO.data() + (b * L + i) * a.h * d + head * d;
        for (int64_t jj = 0; jj <= i; jj++) {
          const float* v = tV.data() + (b * L + jj) * a.kv * d + kvh * d;
          for (int64_t c = 0; c < d; c++) o[c] += tP[jj] * v[c];
        }
      }
    }
  gemmNN(N, a.M, a.h * d, tO.data(), w + a.wo(), out, false);
}

void attentionBackward(const Job& j, const AttentionLayout& a, const float* n, const float* w, const float* dOut, const float* probs, float* dn, float* dw) {
  if (a.mla) return mlaBackward<float>(j, a, n, w, dOut, dn, dw);  // recomputes the probabilities
  const int64_t N = j.groupTokens, B = j.microBatch, L = j.seqLen, d = a.d, M = a.M;
  const double scale = 1.0 / std::sqrt(double(d));
  projections(j, a, n, w);
  tO.assign(N * a.h * d, 0.0f);
  tdQ.assign(N * a.h * d, 0.0f);
  tdK.assign(N * a.kv * d, 0.0f);
  tdV.assign(N * a.kv * d, 0.0f);
  tdO.resize(N * a.h * d);
  tP.resize(L);
  // dO = dOut · Woᵀ.
  gemmNT(N, a.h * d, M, dOut, w + a.wo(), tdO.data(), tScr, false);
  std::vector<double> dp(L);
  for (int64_t b = 0; b < B; b++)
    for (int64_t head = 0; head < a.h; head++) {
      const int64_t kvh = head / (a.h / a.kv);
      for (int64_t i = 0; i < L; i++) {
        const float* p = tP.data();
        if (probs) p = probs + ((b * a.h + head) * L + i) * L;
        else scoresRow(a, L, b, head, i, tP.data());
        const int64_t row = b * L + i;
        float* o = tO.data() + row * a.h * d + head * d;
        const float* go = tdO.data() + row * a.h * d + head * d;
        double sum = 0;
        for (int64_t jj = 0; jj <= i; jj++) {
          const float* v = tV.data() + (b * L + jj) * a.kv * d + kvh * d;
          double dot = 0;
          for (int64_t c = 0; c < d; c++) {
            o[c] += p[jj] * v[c];
            dot += double(go[c]) * v[c];
          }
          dp[jj] = dot;
          sum += p[jj] * dot;
        }
        const float* q = tQ.data() + row * a.h * d + head * d;
        float* gq = tdQ.data() + row * a.h * d + head * d;
        for (int64_t jj = 0; jj <= i; jj++) {
          const float ds = float(p[jj] * (dp[jj] - sum) * scale);
          const float* k = tK.data() + (b * L + jj) * a.kv * d + kvh * d;
          float* gk = tdK.data() + (b * L + jj) * a.kv * d + kvh * d;
          float* gv = tdV.data() + (b * L + jj) * a.kv * d + kvh * d;
          for (int64_t c = 0; c < d; c++) {
            gq[c] += ds * k[c];
            gk[c] += ds * q[c];
            gv[c] += p[jj] * go[c];
          }
        }
      }
    }
  gemmTN(a.h * d, M, N, tO.data(), dOut, dw + a.wo());
  gemmTN(M, a.h * d, N, n, tdQ.data(), dw + a.wq());
  gemmTN(M, a.kv * d, N, n, tdK.data(), dw + a.wk());
  gemmTN(M, a.kv * d, N, n, tdV.data(), dw + a.wv());
  gemmNT(N, M, a.h * d, tdQ.data(), w + a.wq(), dn, tScr, false);
  gemmNT(N, M, a.kv * d, tdK.data(), w + a.wk(), dn, tScr, true);
  gemmNT(N, M, a.kv * d, tdV.data(), w + a.wv(), dn, tScr, true);
}

void ffnForward(int64_t R, int64_t M, int64_t F, int G, Activation act, const float* n, const float* w, float* out) {
  if (F == 0) {
    std::memset(out, 0, sizeof(float) * R * M);
    return;
  }
  const ShardLayout s{M, F, G};
  tH1.resize(R * F);
  tH3.resize(R * F);
  tA.resize(R * F);
  gemmNN(R, F, M, n, w + s.w1(0), tH1.data(), false);
  if (G == 3) gemmNN(R, F, M, n, w + s.w3(0), tH3.data(), false);
  for (int64_t i = 0; i < R * F; i++) tA[i] = activate(act, tH1[i]) * (G == 3 ? tH3[i] : 1.0f);
  gemmNN(R, M, F, tA.data(), w + s.w2(0), out, false);
}

void ffnBackward(int64_t R, int64_t M, int64_t F, int G, Activation act, const float* n, const float* w, const float* dOut, float* dn, float* dw) {
  if (F == 0) {
    std::memset(dn, 0, sizeof(float) * R * M);
    return;
  }
  const ShardLayout s{M, F, G};
  tH1.resize(R * F);
  tH3.resize(R * F);
  tA.resize(R * F);
  tDA.resize(R * F);
  tD1.resize(R * F);
  tD3.resize(R * F);
  gemmNN(R, F, M, n, w + s.w1(0), tH1.data(), false);
  if (G == 3) gemmNN(R, F, M, n, w + s.w3(0), tH3.data(), false);
  for (int64_t i = 0; i < R * F; i++) tA[i] = activate(act, tH1[i]) * (G == 3 ? tH3[i] : 1.0f);
  gemmNT(R, F, M, dOut, w + s.w2(0), tDA.data(), tScr, false);
  gemmTN(F, M, R, tA.data(), dOut, dw + s.w2(0));
  for (int64_t i = 0; i < R * F; i++) {
    if (G == 3) {
      tD1[i] = tDA[i] * tH3[i] * activateGrad(act, tH1[i]);
      tD3[i] = tDA[i] * activate(act, tH1[i]);
    } else {
      tD1[i] = tDA[i] * activateGrad(act, tH1[i]);
    }
  }
  gemmTN(M, F, R, n, tD1.data(), dw + s.w1(0));
  gemmNT(R, M, F, tD1.data(), w + s.w1(0), dn, tScr, false);
  if (G == 3) {
    gemmTN(M, F, R, n, tD3.data(), dw + s.w3(0));
    gemmNT(R, M, F, tD3.data(), w + s.w3(0), dn, tScr, true);
  }
}

void embedForward(const int32_t* tokens, int64_t N, int64_t M, int64_t first, int64_t V, const float* table, float* out) {
  for (int64_t t = 0; t < N; t++) {
    const int64_t v = int64_t(tokens[t]) - first;
    if (v >= 0 && v < V) std::memcpy(out + t * M, table + v * M, sizeof(float) * M);
    else std::memset(out + t * M, 0, sizeof(float) * M);
  }
}

void embedBackward(const int32_t* tokens, int64_t N, int64_t M, int64_t first, int64_t V, const float* g, float* dtable) {
  for (int64_t t = 0; t < N; t++) {
    const int64_t v = int64_t(tokens[t]) - first;
    if (v < 0 || v >= V) continue;
    for (int64_t m = 0; m < M; m++) dtable[v * M + m] += g[t * M + m];
  }
}

void lossMax(const float* logits, int64_t N, int64_t V, float* max) {
  for (int64_t t = 0; t < N; t++) max[t] = *std::max_element(logits + t * V, logits + (t + 1) * V);
}

namespace {

/** The largest of token t's maxima over the P shards. */
float tokenMax(const float* maxima, int64_t P, int64_t N, int64_t t) {
  float m = maxima[t];
  for (int64_t p = 1; p < P; p++) m = std::max(m, maxima[p * N + t]);
  return m;
}

/** Σ over the P shards of the statistics at `at` (each shard's block holds 2N). */
double shardSum(const float* stats, int64_t P, int64_t N, int64_t at) {
  double s = 0;
  for (int64_t p = 0; p < P; p++) s += stats[p * 2 * N + at];
  return s;
}

}  // namespace

void lossSumExp(const float* logits, const float* maxima, int64_t P, const int32_t* targets, int64_t N, int64_t V, int64_t first, float* stats) {
  for (int64_t t = 0; t < N; t++) {
    const float* l = logits + t * V;
    const float mx = tokenMax(maxima, P, N, t);
    double sum = 0;
    for (int64_t v = 0; v < V; v++) sum += std::exp(double(l[v]) - mx);
    stats[t] = float(sum);
    const int64_t v = int64_t(targets[t]) - first;
    stats[N + t] = v >= 0 && v < V ? l[v] : 0.0f;
  }
}

void lossValue(const float* maxima, const float* stats, int64_t P, int64_t N, double scale, float* loss) {
  for (int64_t t = 0; t < N; t++) loss[t] = float(scale * (std::log(shardSum(stats, P, N, t)) + tokenMax(maxima, P, N, t) - shardSum(stats, P, N, N + t)));
}

void lossBackward(const float* logits, const float* maxima, const float* stats, int64_t P, const int32_t* targets, int64_t N, int64_t V, int64_t first, double scale, float* grad) {
  for (int64_t t = 0; t < N; t++) {
    const float* l = logits + t * V;
    float* g = grad + t * V;
    const double mx = tokenMax(maxima, P, N, t), sum = shardSum(stats, P, N, t);
    const int64_t target = int64_t(targets[t]) - first;
    for (int64_t v = 0; v < V; v++) g[v] = float(scale * (std::exp(double(l[v]) - mx) / sum - (v == target ? 1.0 : 0.0)));
  }
}

}  // namespace fsmoe

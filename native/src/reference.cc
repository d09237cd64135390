// The reference path (executor.h runReference): the plan's model run unscheduled in one
// process — every rank's tokens, routed with the same routing code and the plan's capacities,
// each expert with its full hidden size, attention with every head, FFNs with every unit, the
// whole vocabulary, in double precision; no chunks, no collectives — reporting the same tensors
// under the same names as the replay, sliced to each rank's view.
#include <cmath>
#include <cstring>
#include <map>

#include "dense.h"
#include "executor.h"
#include "kernels.h"
#include "mla.h"
#include "model.h"

namespace fsmoe {

namespace {

using Vec = std::vector<double>;

struct Full {
  std::vector<float> w1, w3, w2;
};

/** Forward state of one routed token copy. */
struct Copy {
  int rank, t, c, expert;
  Vec h1, h3, o;
};

/**
 * The MoE layers as one process computes them: each rank's T tokens routed as that rank routes
 * them (its capacity, its token order), every expert whole and in double.
 */
class MoeReference {
 public:
  MoeReference(const Plan& plan, RunResult& out) : p_(plan), j_(plan.job), out_(out) {
    const int64_t M = j_.hidden, E = j_.experts, H = j_.expertHidden;
    for (int l : j_.moeLayers) {
      makeLayerWeights(j_, l, 0, router_[l]);
      auto& ex = experts_[l];
      ex.resize(E);
      for (int e = 0; e < E; e++) makeFullExpert(j_, l, e, ex[e].w1, ex[e].w3, ex[e].w2);
      dRouter_[l].assign(M * E, 0.0);
      dW1_[l].assign(E * M * H, 0.0);
      dW2_[l].assign(E * H * M, 0.0);
      if (j_.gemms == 3) dW3_[l].assign(E * M * H, 0.0);
    }
  }

  /** One layer and micro-batch: what its backward needs. */
  struct State {
    std::vector<std::vector<float>> in, logits;
    std::vector<Routing> routing;
    std::vector<Copy> copies;
  };

  /** y[r] = the MoE block of layer l on every rank's x[r] (T × M); records each rank's routing decisions. */
  void forward(int l, int mb, const std::vector<std::vector<float>>& x, State& s, std::vector<Vec>& y) {
    const int W = j_.world;
    const int64_t T = j_.tokens, M = j_.hidden, E = j_.experts, H = j_.expertHidden, k = j_.topK;
    const bool gated = j_.gemms == 3;
    const int64_t C = p_.layers[l].capacity;
    s.in = x;
    s.logits.assign(W, std::vector<float>(T * E));
    s.routing.resize(W);
    s.copies.clear();
    y.assign(W, Vec(T * M, 0.0));
    for (int r = 0; r < W; r++) {
      routerLogits(x[r].data(), router_[l].router.data(), T, M, E, s.logits[r].data());
      s.routing[r].resize(T * k);
      route(j_, l, mb, r, C, s.logits[r].data(), router_[l].bias.data(), s.routing[r].view());
      for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < k; c++) {
          const int64_t i = t * k + c;
          if (s.routing[r].slot[i] < 0) continue;
          Copy cp{r, int(t), int(c), s.routing[r].choice[i], {}, {}, {}};
          const Full& f = experts_[l][cp.expert];
          const float* xt = x[r].data() + t * M;
          cp.h1.assign(H, 0.0);
          if (gated) cp.h3.assign(H, 0.0);
          for (int64_t m = 0; m < M; m++)
            for (int64_t h = 0; h < H; h++) {
              cp.h1[h] += double(xt[m]) * f.w1[m * H + h];
              if (gated) cp.h3[h] += double(xt[m]) * f.w3[m * H + h];
            }
          cp.o.assign(M, 0.0);
          for (int64_t h = 0; h < H; h++) {
            const double a = activate(j_.activation, float(cp.h1[h])) * (gated ? cp.h3[h] : 1.0);
            for (int64_t m = 0; m < M; m++) cp.o[m] += a * f.w2[h * M + m];
          }
          const double w = s.routing[r].weight[i];
          for (int64_t m = 0; m < M; m++) y[r][t * M + m] += w * cp.o[m];
          s.copies.push_back(std::move(cp));
        }
      std::vector<int32_t> rr(T * k * 2);
      for (int64_t i = 0; i < T * k; i++) {
        rr[2 * i] = s.routing[r].choice[i];
        rr[2 * i + 1] = s.routing[r].slot[i];
      }
      out_.ranks[r].ints.push_back({"route.L" + std::to_string(l) + ".mb" + std::to_string(mb), std::move(rr)});
    }
  }

  /** dx[r] = dL/dx[r] from dy[r]; accumulates the router's and the experts' gradients. */
  void backward(int l, const State& s, const std::vector<Vec>& dy, std::vector<Vec>& dx) {
    const int W = j_.world;
    const int64_t T = j_.tokens, M = j_.hidden, E = j_.experts, H = j_.expertHidden, k = j_.topK;
    const bool gated = j_.gemms == 3;
    dx.assign(W, Vec(T * M, 0.0));
    std::vector<std::vector<float>> dweight(W, std::vector<float>(T * k, 0.0f));
    for (const Copy& cp : s.copies) {
      const Full& f = experts_[l][cp.expert];
      const int64_t i = int64_t(cp.t) * k + cp.c;
      const double* g = dy[cp.rank].data() + int64_t(cp.t) * M;
      const float* xt = s.in[cp.rank].data() + int64_t(cp.t) * M;
      const double w = s.routing[cp.rank].weight[i];
      double dot = 0;
      for (int64_t m = 0; m < M; m++) dot += g[m] * cp.o[m];
      dweight[cp.rank][i] = float(dot);
      Vec dO(M), dA(H, 0.0);
      for (int64_t m = 0; m < M; m++) dO[m] = w * g[m];
      double* gw2 = dW2_[l].data() + int64_t(cp.expert) * H * M;
      for (int64_t h = 0; h < H; h++) {
        const double a = activate(j_.activation, float(cp.h1[h])) * (gated ? cp.h3[h] : 1.0);
        double sum = 0;
        for (int64_t m = 0; m < M; m++) {
          sum += dO[m] * f.w2[h * M + m];
          gw2[h * M + m] += a * dO[m];
        }
        dA[h] = sum;
      }
      Vec d1(H), d3(H);
      for (int64_t h = 0; h < H; h++) {
        const float hv = float(cp.h1[h]);
        if (gated) {
          d1[h] = dA[h] * cp.h3[h] * activateGrad(j_.activation, hv);
          d3[h] = dA[h] * activate(j_.activation, hv);
        } else {
          d1[h] = dA[h] * activateGrad(j_.activation, hv);
        }
      }
      double* gw1 = dW1_[l].data() + int64_t(cp.expert) * M * H;
      double* gw3 = gated ? dW3_[l].data() + int64_t(cp.expert) * M * H : nullptr;
      double* gx = dx[cp.rank].data() + int64_t(cp.t) * M;
      for (int64_t m = 0; m < M; m++) {
        double sum = 0;
        for (int64_t h = 0; h < H; h++) {
          gw1[m * H + h] += double(xt[m]) * d1[h];
          sum += d1[h] * f.w1[m * H + h];
          if (gated) {
            gw3[m * H + h] += double(xt[m]) * d3[h];
            sum += d3[h] * f.w3[m * H + h];
          }
        }
        gx[m] += sum;
      }
    }
    // Router.
    std::vector<float> dlogits(T * E);
    const float* Wr = router_[l].router.data();
    for (int r = 0; r < W; r++) {
      Routing rt = s.routing[r];
      routeBackward(j_, s.logits[r].data(), router_[l].bias.data(), rt.view(), dweight[r].data(), dlogits.data());
      for (int64_t t = 0; t < T; t++)
        for (int64_t m = 0; m < M; m++) {
          double sum = 0;
          for (int64_t e = 0; e < E; e++) {
            sum += double(dlogits[t * E + e]) * Wr[m * E + e];
            dRouter_[l][m * E + e] += double(s.in[r][t * M + m]) * dlogits[t * E + e];
          }
          dx[r][t * M + m] += sum;
        }
    }
  }

  /** Each rank's router gradient (summed over every token) and expert shard gradient. */
  void report() {
    const int64_t M = j_.hidden, E = j_.experts, H = j_.expertHidden, Hs = j_.shardHidden;
    const bool gated = j_.gemms == 3;
    const ShardLayout lay = shardLayout(j_);
    for (int l : j_.moeLayers)
      for (int r = 0; r < j_.world; r++) {
        std::vector<float> gr(M * E);
        for (int64_t i = 0; i < M * E; i++) gr[i] = float(dRouter_[l][i]);
        out_.ranks[r].tensors.push_back({"grad.L" + std::to_string(l) + ".router", std::move(gr)});
        std::vector<float> ge(j_.expertShardParams());
        const int espi = espIndex(j_, r), epi = epIndex(j_, r);
        for (int le = 0; le < j_.localExperts; le++) {
          const int64_t e = int64_t(epi) * j_.localExperts + le;
          for (int64_t m = 0; m < M; m++)
            for (int64_t h = 0; h < Hs; h++) {
              const int64_t full = (e * M + m) * H + espi * Hs + h;
              ge[lay.w1(le) + m * Hs + h] = float(dW1_[l][full]);
              if (gated) ge[lay.w3(le) + m * Hs + h] = float(dW3_[l][full]);
            }
          for (int64_t h = 0; h < Hs; h++)
            for (int64_t m = 0; m < M; m++) ge[lay.w2(le) + h * M + m] = float(dW2_[l][(e * H + espi * Hs + h) * M + m]);
        }
        out_.ranks[r].tensors.push_back({"grad.L" + std::to_string(l) + ".expert", std::move(ge)});
      }
  }

 private:
  const Plan& p_;
  const Job& j_;
  RunResult& out_;
  std::map<int, std::vector<Full>> experts_;
  std::map<int, LayerWeights> router_;
  std::map<int, Vec> dRouter_, dW1_, dW3_, dW2_;
};

std::vector<float> toFloat(const Vec& v) { return std::vector<float>(v.begin(), v.end()); }

/** A layer job: the stack of MoE layers on generated inputs, loss Σ y ⊙ cotangent. */
void referenceLayers(const Plan& plan, RunResult& out) {
  const Job& j = plan.job;
  const int W = j.world;
  const int64_t T = j.tokens, M = j.hidden;
  MoeReference moe(plan, out);
  const std::vector<int>& layers = j.moeLayers;  // ascending: the stack of MoE layers
  for (int mb = 0; mb < j.microBatches; mb++) {
    std::vector<std::vector<float>> x(W, std::vector<float>(T * M));
    for (int r = 0; r < W; r++) fillUniform(x[r].data(), T * M, j.seed, tensorId(kInputTensor), tokenIndex(j, mb, r, 0) * M, 1.0f);
    std::vector<MoeReference::State> st(layers.size());
    for (std::size_t li = 0; li < layers.size(); li++) {
      std::vector<Vec> y;
      moe.forward(layers[li], mb, x, st[li], y);
      for (int r = 0; r < W; r++) x[r] = toFloat(y[r]);
    }
    // Loss and the output's gradient.
    std::vector<Vec> dy(W, Vec(T * M));
    for (int r = 0; r < W; r++) {
      std::vector<float> c(T * M);
      fillUniform(c.data(), T * M, j.seed, tensorId(kCotangentTensor), tokenIndex(j, mb, r, 0) * M, 1.0f);
      double loss = 0, scale = 0;
      for (int64_t i = 0; i < T * M; i++) {
        loss += double(x[r][i]) * c[i];
        scale += std::fabs(double(x[r][i]) * c[i]);
        dy[r][i] = c[i];
      }
      out.ranks[r].loss += loss;
      out.ranks[r].lossScale += scale;
      out.ranks[r].tensors.push_back({"out.mb" + std::to_string(mb), x[r]});
    }
    for (std::size_t li = layers.size(); li-- > 0;) {
      std::vector<Vec> dx;
      moe.backward(layers[li], st[li], dy, dx);
      // Between layers the replay hands on fp32 gradients.
      for (int r = 0; r < W; r++)
        for (int64_t i = 0; i < T * M; i++) dy[r][i] = float(dx[r][i]);
    }
    for (int r = 0; r < W; r++) out.ranks[r].tensors.push_back({"dx.mb" + std::to_string(mb), toFloat(dy[r])});
  }
  moe.report();
}

// ── A model ─────────────────────────────────────────────────────────────────────────────────

/** n = RMS norm of R rows (double). */
void normD(const Vec& s, const std::vector<float>& g, int64_t R, int64_t M, Vec& n) {
  n.resize(R * M);
  for (int64_t r = 0; r < R; r++) {
    double ms = 0;
    for (int64_t m = 0; m < M; m++) ms += s[r * M + m] * s[r * M + m];
    const double inv = 1.0 / std::sqrt(ms / double(M) + kNormEps);
    for (int64_t m = 0; m < M; m++) n[r * M + m] = s[r * M + m] * inv * g[m];
  }
}

/** ds += (∂n/∂s)ᵀ dn; dγ += Σ dn ⊙ ŝ. */
void normBackD(const Vec& s, const std::vector<float>& g, const Vec& dn, int64_t R, int64_t M, Vec& ds, Vec& dg) {
  for (int64_t r = 0; r < R; r++) {
    double ms = 0;
    for (int64_t m = 0; m < M; m++) ms += s[r * M + m] * s[r * M + m];
    const double inv = 1.0 / std::sqrt(ms / double(M) + kNormEps);
    double dot = 0;
    for (int64_t m = 0; m < M; m++) dot += dn[r * M + m] * g[m] * s[r * M + m] * inv;
    dot /= double(M);
    for (int64_t m = 0; m < M; m++) {
      const double xh = s[r * M + m] * inv;
      ds[r * M + m] += inv * (dn[r * M + m] * g[m] - xh * dot);
      dg[m] += dn[r * M + m] * xh;
    }
  }
}

/** C (m × n) = A (m × k) · B (k × n) with float B. */
void mm(int64_t m, int64_t n, int64_t k, const double* A, const float* B, double* C) {
  std::fill(C, C + m * n, 0.0);
  for (int64_t i = 0; i < m; i++)
    for (int64_t p = 0; p < k; p++) {
      const double a = A[i * k + p];
      for (int64_t q = 0; q < n; q++) C[i * n + q] += a * B[p * n + q];
    }
}
/** C (m × n) += A · Bᵀ, B (n × k) float. */
void mmT(int64_t m, int64_t n, int64_t k, const double* A, const float* B, double* C) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t q = 0; q < n; q++) {
      double s = 0;
      for (int64_t p = 0; p < k; p++) s += A[i * k + p] * B[q * k + p];
      C[i * n + q] += s;
    }
}
/** C (m × n) += Aᵀ · B, A (k × m), B (k × n). */
void mTm(int64_t m, int64_t n, int64_t k, const double* A, const double* B, double* C) {
  for (int64_t p = 0; p < k; p++)
    for (int64_t i = 0; i < m; i++) {
      const double a = A[p * m + i];
      for (int64_t q = 0; q < n; q++) C[i * n + q] += a * B[p * n + q];
    }
}

/** Causal attention with every head over one group's N tokens; backward if dOut is given. */
void attentionD(const Job& j, const AttentionLayout& a, const std::vector<float>& w, const Vec& n, Vec& out, const Vec* dOut, Vec* dn, Vec* dw) {
  if (a.mla) {
    out.resize(j.groupTokens * a.M);
    mlaForward<double>(j, a, n.data(), w.data(), out.data(), nullptr);
    if (!dOut) return;
    dn->resize(j.groupTokens * a.M);
    mlaBackward<double>(j, a, n.data(), w.data(), dOut->data(), dn->data(), dw->data());
    return;
  }
  const int64_t N = j.groupTokens, B = j.microBatch, L = j.seqLen, M = a.M, d = a.d, h = a.h, kv = a.kv;
  Vec Q(N * h * d), K(N * kv * d), V(N * kv * d), O(N * h * d, 0.0);
  mm(N, h * d, M, n.data(), w.data() + a.wq(), Q.data());
  mm(N, kv * d, M, n.data(), w.data() + a.wk(), K.data());
  mm(N, kv * d, M, n.data(), w.data() + a.wv(), V.data());
  const double scale = 1.0 / std::sqrt(double(d));
  std::vector<Vec> P(B * h * L);
  for (int64_t b = 0; b < B; b++)
    for (int64_t q = 0; q < h; q++) {
      const int64_t g = q / (h / kv);
      for (int64_t i = 0; i < L; i++) {
        Vec& p = P[(b * h + q) * L + i];
        p.assign(i + 1, 0.0);
        double mx = -INFINITY;
        for (int64_t t = 0; t <= i; t++) {
          double s = 0;
          for (int64_t c = 0; c < d; c++) s += Q[(b * L + i) * h * d + q * d + c] * K[(b * L + t) * kv * d + g * d + c];
          p[t] = s * scale;
          mx = std::max(mx, p[t]);
        }
        double sum = 0;
        for (int64_t t = 0; t <= i; t++) sum += (p[t] = std::exp(p[t] - mx));
        for (int64_t t = 0; t <= i; t++) {
          p[t] /= sum;
          for (int64_t c = 0; c < d; c++) O[(b * L + i) * h * d + q * d + c] += p[t] * V[(b * L + t) * kv * d + g * d + c];
        }
      }
    }
  out.resize(N * M);
  mm(N, M, h * d, O.data(), w.data() + a.wo(), out.data());
  if (!dOut) return;
  Vec dO(N * h * d, 0.0), dQ(N * h * d, 0.0), dK(N * kv * d, 0.0), dV(N * kv * d, 0.0);
  mmT(N, h * d, M, dOut->data(), w.data() + a.wo(), dO.data());
  mTm(h * d, M, N, O.data(), dOut->data(), dw->data() + a.wo());
  for (int64_t b = 0; b < B; b++)
    for (int64_t q = 0; q < h; q++) {
      const int64_t g = q / (h / kv);
      for (int64_t i = 0; i < L; i++) {
        const Vec& p = P[(b * h + q) * L + i];
        const double* go = dO.data() + (b * L + i) * h * d + q * d;
        Vec dp(i + 1);
        double sum = 0;
        for (int64_t t = 0; t <= i; t++) {
          double s = 0;
          for (int64_t c = 0; c < d; c++) s += go[c] * V[(b * L + t) * kv * d + g * d + c];
          dp[t] = s;
          sum += p[t] * s;
        }
        for (int64_t t = 0; t <= i; t++) {
          const double ds = p[t] * (dp[t] - sum) * scale;
          for (int64_t c = 0; c < d; c++) {
            dQ[(b * L + i) * h * d + q * d + c] += ds * K[(b * L + t) * kv * d + g * d + c];
            dK[(b * L + t) * kv * d + g * d + c] += ds * Q[(b * L + i) * h * d + q * d + c];
            dV[(b * L + t) * kv * d + g * d + c] += p[t] * go[c];
          }
        }
      }
    }
  mTm(M, h * d, N, n.data(), dQ.data(), dw->data() + a.wq());
  mTm(M, kv * d, N, n.data(), dK.data(), dw->data() + a.wk());
  mTm(M, kv * d, N, n.data(), dV.data(), dw->data() + a.wv());
  dn->assign(N * M, 0.0);
  mmT(N, M, h * d, dQ.data(), w.data() + a.wq(), dn->data());
  mmT(N, M, kv * d, dK.data(), w.data() + a.wk(), dn->data());
  mmT(N, M, kv * d, dV.data(), w.data() + a.wv(), dn->data());
}

/**
 * Tp rank t's view of MLA's whole gradient g (layout a): the replicated part whole, its heads'
 * columns of Wuq and Wukv and rows of Wo (layout al).
 */
void sliceMla(const AttentionLayout& a, const AttentionLayout& al, int t, const Vec& g, std::vector<float>& out) {
  for (int64_t i = 0; i < al.replicated(); i++) out[i] = float(g[i]);
  auto columns = [&](int64_t rows, int64_t width, int64_t from, int64_t to) {
    const int64_t H = a.h * width, h = al.h * width;
    for (int64_t r = 0; r < rows; r++)
      for (int64_t c = 0; c < h; c++) out[to + r * h + c] = float(g[from + r * H + t * h + c]);
  };
  columns(a.qLora, a.qk(), a.wuq(), al.wuq());
  columns(a.kvLora, a.nope + a.v, a.wukv(), al.wukv());
  const int64_t rows = al.h * al.v * a.M;
  for (int64_t i = 0; i < rows; i++) out[al.wo() + i] = float(g[a.wo() + t * rows + i]);
}

/** An FFN of F units on R rows; backward if dOut is given. */
void ffnD(int64_t R, int64_t M, int64_t F, int G, Activation act, const std::vector<float>& w, const Vec& n, Vec& out, const Vec* dOut, Vec* dn, Vec* dw) {
  const ShardLayout s{M, F, G};
  Vec H1(R * F), H3(R * F), A(R * F);
  mm(R, F, M, n.data(), w.data() + s.w1(0), H1.data());
  if (G == 3) mm(R, F, M, n.data(), w.data() + s.w3(0), H3.data());
  for (int64_t i = 0; i < R * F; i++) A[i] = activate(act, float(H1[i])) * (G == 3 ? H3[i] : 1.0);
  out.resize(R * M);
  mm(R, M, F, A.data(), w.data() + s.w2(0), out.data());
  if (!dOut) return;
  Vec dA(R * F, 0.0), D1(R * F), D3(R * F);
  mmT(R, F, M, dOut->data(), w.data() + s.w2(0), dA.data());
  mTm(F, M, R, A.data(), dOut->data(), dw->data() + s.w2(0));
  for (int64_t i = 0; i < R * F; i++) {
    const float hv = float(H1[i]);
    if (G == 3) {
      D1[i] = dA[i] * H3[i] * activateGrad(act, hv);
      D3[i] = dA[i] * activate(act, hv);
    } else {
      D1[i] = dA[i] * activateGrad(act, hv);
    }
  }
  mTm(M, F, R, n.data(), D1.data(), dw->data() + s.w1(0));
  dn->assign(R * M, 0.0);
  mmT(R, M, F, D1.data(), w.data() + s.w1(0), dn->data());
  if (G == 3) {
    mTm(M, F, R, n.data(), D3.data(), dw->data() + s.w3(0));
    mmT(R, M, F, D3.data(), w.data() + s.w3(0), dn->data());
  }
}

/** The sub-block of a layer's FFN part: its units and activation (dense FFN, or shared experts). */
struct FfnShape {
  int64_t F;
  int G;
  Activation act;
};
FfnShape ffnShape(const Job& j, int layer) {
  const bool moe = j.isMoe(layer);
  return {ffnUnits(j, layer, true), moe ? j.gemms : j.ffnGemms, moe ? j.activation : j.ffnActivation};
}

/** A model job: embedding, the layers, final norm, LM head and cross-entropy, every dp group's sequences. */
void referenceModel(const Plan& plan, RunResult& out) {
  const Job& j = plan.job;
  const int W = j.world, tp = j.tp, dp = j.dp;
  const int64_t N = j.groupTokens, T = j.tokens, M = j.hidden, V = j.vocab, Vl = j.localVocab;
  const double scale = 1.0 / (double(j.microBatches) * dp * N);
  MoeReference moe(plan, out);
  std::vector<DenseWeights> dense(j.layers);
  const AttentionLayout a = attentionLayout(j, true);
  for (int l = 0; l < j.layers; l++) makeDenseWeights(j, l, 0, true, dense[l]);
  HeadWeights head;
  makeHeadWeights(j, 0, true, head);
  // Gradients (summed over every token: what every rank holds after the all-reduces).
  std::vector<Vec> gAttnNorm(j.layers, Vec(M, 0.0)), gFfnNorm(j.layers, Vec(M, 0.0)), gAttn(j.layers), gFfn(j.layers);
  for (int l = 0; l < j.layers; l++) {
    gAttn[l].assign(a.size(), 0.0);
    gFfn[l].assign(dense[l].ffn.size(), 0.0);
  }
  Vec gEmb(V * M, 0.0), gLm(V * M, 0.0), gFinal(M, 0.0);

  /** One dp group's activations of one layer. */
  struct Layer {
    Vec s, n1, s1, n2;  // stream in, its norm, stream after attention, its norm
  };
  for (int mb = 0; mb < j.microBatches; mb++) {
    std::vector<std::vector<int32_t>> tokens(dp, std::vector<int32_t>(N)), targets(dp, std::vector<int32_t>(N));
    std::vector<Vec> s(dp, Vec(N * M));
    for (int g = 0; g < dp; g++) {
      fillTokens(j, mb, g * tp, false, tokens[g].data());
      fillTokens(j, mb, g * tp, true, targets[g].data());
      for (int64_t t = 0; t < N; t++)
        for (int64_t m = 0; m < M; m++) s[g][t * M + m] = head.embedding[int64_t(tokens[g][t]) * M + m];
    }
    std::vector<std::vector<Layer>> st(j.layers, std::vector<Layer>(dp));
    std::vector<MoeReference::State> moeState(j.layers);
    // ── forward
    for (int l = 0; l < j.layers; l++) {
      const FfnShape fs = ffnShape(j, l);
      std::vector<Vec> next(dp);
      for (int g = 0; g < dp; g++) {
        Layer& x = st[l][g];
        x.s = s[g];
        normD(x.s, dense[l].attentionNorm, N, M, x.n1);
        Vec att;
        attentionD(j, a, dense[l].attention, x.n1, att, nullptr, nullptr, nullptr);
        x.s1 = x.s;
        for (int64_t i = 0; i < N * M; i++) x.s1[i] += att[i];
        normD(x.s1, dense[l].ffnNorm, N, M, x.n2);
        Vec f(N * M, 0.0);
        if (fs.F > 0) ffnD(N, M, fs.F, fs.G, fs.act, dense[l].ffn, x.n2, f, nullptr, nullptr, nullptr);
        next[g] = x.s1;
        for (int64_t i = 0; i < N * M; i++) next[g][i] += f[i];
      }
      if (j.isMoe(l)) {
        // Rank g·tp + t routes its slice of its group's normalized tokens, as fp32 (what the replay's gate reads).
        std::vector<std::vector<float>> xr(W, std::vector<float>(T * M));
        for (int r = 0; r < W; r++)
          for (int64_t i = 0; i < T * M; i++) xr[r][i] = float(st[l][dpIndex(j, r)].n2[tpIndex(j, r) * T * M + i]);
        std::vector<Vec> y;
        moe.forward(l, mb, xr, moeState[l], y);
        for (int r = 0; r < W; r++)
          for (int64_t i = 0; i < T * M; i++) next[dpIndex(j, r)][tpIndex(j, r) * T * M + i] += y[r][i];
      }
      s = std::move(next);
    }
    // ── head, loss and its gradient
    std::vector<Vec> gs(dp);
    for (int g = 0; g < dp; g++) {
      Vec nf, logits(N * V);
      normD(s[g], head.finalNorm, N, M, nf);
      std::fill(logits.begin(), logits.end(), 0.0);
      mmT(N, V, M, nf.data(), head.lmHead.data(), logits.data());
      Vec dlogits(N * V), loss(N);
      for (int64_t t = 0; t < N; t++) {
        const double* z = logits.data() + t * V;
        double mx = -INFINITY, sum = 0;
        for (int64_t v = 0; v < V; v++) mx = std::max(mx, z[v]);
        for (int64_t v = 0; v < V; v++) sum += std::exp(z[v] - mx);
        loss[t] = scale * (std::log(sum) + mx - z[targets[g][t]]);
        for (int64_t v = 0; v < V; v++) dlogits[t * V + v] = scale * (std::exp(z[v] - mx) / sum - (v == targets[g][t] ? 1.0 : 0.0));
      }
      for (int t = 0; t < tp; t++) {
        RankResult& rr = out.ranks[g * tp + t];
        std::vector<float> lg(N * Vl), ls(T);
        for (int64_t i = 0; i < N; i++)
          for (int64_t v = 0; v < Vl; v++) lg[i * Vl + v] = float(logits[i * V + t * Vl + v]);
        for (int64_t i = 0; i < T; i++) {
          ls[i] = float(loss[t * T + i]);
          rr.loss += loss[t * T + i];
          rr.lossScale += std::fabs(loss[t * T + i]);
        }
        rr.tensors.push_back({"logits.mb" + std::to_string(mb), std::move(lg)});
        rr.tensors.push_back({"loss.mb" + std::to_string(mb), std::move(ls)});
      }
      Vec dnf(N * M, 0.0);
      for (int64_t t = 0; t < N; t++)
        for (int64_t v = 0; v < V; v++) {
          const double d = dlogits[t * V + v];
          for (int64_t m = 0; m < M; m++) {
            dnf[t * M + m] += d * head.lmHead[v * M + m];
            gLm[v * M + m] += d * nf[t * M + m];
          }
        }
      gs[g].assign(N * M, 0.0);
      normBackD(s[g], head.finalNorm, dnf, N, M, gs[g], gFinal);
    }
    // ── backward of the layers: gs is dL/d(the stream after the layer)
    for (int l = j.layers - 1; l >= 0; l--) {
      const FfnShape fs = ffnShape(j, l);
      std::vector<Vec> dn2(dp, Vec(N * M, 0.0));
      if (j.isMoe(l)) {
        std::vector<Vec> dy(W, Vec(T * M)), dx;
        for (int r = 0; r < W; r++)
          for (int64_t i = 0; i < T * M; i++) dy[r][i] = gs[dpIndex(j, r)][tpIndex(j, r) * T * M + i];
        moe.backward(l, moeState[l], dy, dx);
        for (int r = 0; r < W; r++)
          for (int64_t i = 0; i < T * M; i++) dn2[dpIndex(j, r)][tpIndex(j, r) * T * M + i] += dx[r][i];
      }
      for (int g = 0; g < dp; g++) {
        const Layer& x = st[l][g];
        if (fs.F > 0) {
          Vec f, dn;
          ffnD(N, M, fs.F, fs.G, fs.act, dense[l].ffn, x.n2, f, &gs[g], &dn, &gFfn[l]);
          for (int64_t i = 0; i < N * M; i++) dn2[g][i] += dn[i];
        }
        Vec ds1 = gs[g];
        normBackD(x.s1, dense[l].ffnNorm, dn2[g], N, M, ds1, gFfnNorm[l]);
        Vec att, dn1;
        attentionD(j, a, dense[l].attention, x.n1, att, &ds1, &dn1, &gAttn[l]);
        Vec ds = ds1;
        normBackD(x.s, dense[l].attentionNorm, dn1, N, M, ds, gAttnNorm[l]);
        gs[g] = std::move(ds);
      }
    }
    for (int g = 0; g < dp; g++)
      for (int64_t t = 0; t < N; t++)
        for (int64_t m = 0; m < M; m++) gEmb[int64_t(tokens[g][t]) * M + m] += gs[g][t * M + m];
  }
  // ── each rank's view of the gradients: the whole norms and router, its shards of the rest
  moe.report();
  const AttentionLayout al = attentionLayout(j, false);
  for (int r = 0; r < W; r++) {
    const int t = tpIndex(j, r);
    RankResult& rr = out.ranks[r];
    for (int l = 0; l < j.layers; l++) {
      const std::string at = "grad.L" + std::to_string(l) + ".";
      rr.tensors.push_back({at + "attention_norm", toFloat(gAttnNorm[l])});
      rr.tensors.push_back({at + "ffn_norm", toFloat(gFfnNorm[l])});
      std::vector<float> ga(al.size());
      if (al.mla) sliceMla(a, al, t, gAttn[l], ga);
      else
        for (int64_t m = 0; m < M; m++) {
          for (int64_t c = 0; c < al.h * al.d; c++) ga[al.wq() + m * al.h * al.d + c] = float(gAttn[l][a.wq() + m * a.h * a.d + t * al.h * al.d + c]);
          for (int64_t c = 0; c < al.kv * al.d; c++) {
            ga[al.wk() + m * al.kv * al.d + c] = float(gAttn[l][a.wk() + m * a.kv * a.d + t * al.kv * al.d + c]);
            ga[al.wv() + m * al.kv * al.d + c] = float(gAttn[l][a.wv() + m * a.kv * a.d + t * al.kv * al.d + c]);
          }
        }
      if (!al.mla)
        for (int64_t c = 0; c < al.h * al.d; c++)
          for (int64_t m = 0; m < M; m++) ga[al.wo() + c * M + m] = float(gAttn[l][a.wo() + (t * al.h * al.d + c) * M + m]);
      rr.tensors.push_back({at + "attention", std::move(ga)});
      const FfnShape fs = ffnShape(j, l);
      if (fs.F > 0) {
        const int64_t Fl = ffnUnits(j, l, false);
        const ShardLayout whole{M, fs.F, fs.G}, part{M, Fl, fs.G};
        std::vector<float> gf(M * Fl * fs.G);
        for (int64_t m = 0; m < M; m++)
          for (int64_t f = 0; f < Fl; f++) {
            gf[part.w1(0) + m * Fl + f] = float(gFfn[l][whole.w1(0) + m * fs.F + t * Fl + f]);
            if (fs.G == 3) gf[part.w3(0) + m * Fl + f] = float(gFfn[l][whole.w3(0) + m * fs.F + t * Fl + f]);
          }
        for (int64_t f = 0; f < Fl; f++)
          for (int64_t m = 0; m < M; m++) gf[part.w2(0) + f * M + m] = float(gFfn[l][whole.w2(0) + (t * Fl + f) * M + m]);
        rr.tensors.push_back({at + (j.isMoe(l) ? "shared_expert" : "dense_ffn"), std::move(gf)});
      }
    }
    std::vector<float> ge(Vl * M), gl(Vl * M);
    for (int64_t i = 0; i < Vl * M; i++) {
      ge[i] = float(gEmb[t * Vl * M + i]);
      gl[i] = float(gLm[t * Vl * M + i]);
    }
    rr.tensors.push_back({"grad.embedding", std::move(ge)});
    rr.tensors.push_back({"grad.lm_head", std::move(gl)});
    rr.tensors.push_back({"grad.final_norm", toFloat(gFinal)});
  }
}

}  // namespace

RunResult runReference(const Plan& plan) {
  RunResult out;
  try {
    out.ranks.resize(plan.job.world);
    if (plan.job.model) referenceModel(plan, out);
    else referenceLayers(plan, out);
    out.iterationUs.push_back(0);
    out.ok = true;
  } catch (const std::bad_alloc&) {
    out.error = "reference: out of memory";
  } catch (const std::exception& e) {
    out.error = std::string("reference: internal error: ") + e.what();
  }
  return out;
}

}  // namespace fsmoe

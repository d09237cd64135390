// The host kernels (kernels.h). Plain loops that the compiler vectorizes; sizes come from the
// validated plan, so no kernel checks bounds itself.
#include "kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model.h"

namespace fsmoe {

static std::vector<float>& tScratchNT() {
  thread_local std::vector<float> s;
  return s;
}

// ── Activations ─────────────────────────────────────────────────────────────────────────────

static inline float gelu(float h) { return 0.5f * h * (1.0f + std::erf(h * 0.70710678118654752f)); }
static inline float geluGrad(float h) {
  return 0.5f * (1.0f + std::erf(h * 0.70710678118654752f)) + h * 0.39894228040143268f * std::exp(-0.5f * h * h);
}
static inline float sigmoidf(float h) { return 1.0f / (1.0f + std::exp(-h)); }

float activate(Activation a, float h) {
  switch (a) {
    case Activation::Relu: return h > 0 ? h : 0.0f;
    case Activation::Gelu:
    case Activation::Geglu: return gelu(h);
    case Activation::Swiglu: return h * sigmoidf(h);
  }
  return h;
}

float activateGrad(Activation a, float h) {
  switch (a) {
    case Activation::Relu: return h > 0 ? 1.0f : 0.0f;
    case Activation::Gelu:
    case Activation::Geglu: return geluGrad(h);
    case Activation::Swiglu: {
      float s = sigmoidf(h);
      return s * (1.0f + h * (1.0f - s));
    }
  }
  return 1.0f;
}

// ── Router ──────────────────────────────────────────────────────────────────────────────────

void routerLogits(const float* x, const float* W, int64_t T, int64_t M, int64_t E, float* logits) {
  gemmNN(T, E, M, x, W, logits, false);
}

namespace {

bool softmaxFamily(Router r) { return r != Router::Sigmoid; }

/** Probabilities (softmax) or sigmoid scores of one token. */
void scores(Router r, const float* z, int64_t E, float* s) {
  if (softmaxFamily(r)) {
    float mx = z[0];
    for (int64_t e = 1; e < E; e++) mx = std::max(mx, z[e]);
    double sum = 0;
    for (int64_t e = 0; e < E; e++) sum += std::exp(double(z[e]) - mx);
    for (int64_t e = 0; e < E; e++) s[e] = float(std::exp(double(z[e]) - mx) / sum);
  } else {
    for (int64_t e = 0; e < E; e++) s[e] = sigmoidf(z[e]);
  }
}

/** Index of the largest allowed value (lowest index on ties), -1 if none. */
int64_t argmax(const float* v, const std::vector<char>& allowed, int64_t n) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; i++)
    if (allowed[i] && (best < 0 || v[i] > v[best])) best = i;
  return best;
}

}  // namespace

void route(const Job& j, int layer, int mb, int rank, int64_t C, const float* logits, const float* bias, const RouteView& out) {
  const int64_t T = j.tokens, E = j.experts, k = j.topK;
  const int64_t G = j.ro.groups, per = E / G;
  std::fill(out.choice, out.choice + T * k, -1);
  std::fill(out.slot, out.slot + T * k, -1);
  std::fill(out.weight, out.weight + T * k, 0.0f);
  std::vector<float> s(E), sel(E), gscore(G);
  std::vector<char> allowed(E), gallowed(G);
  const uint32_t gshardTensor = tensorId(Tensors::gshard(layer));
  for (int64_t t = 0; t < T; t++) {
    scores(j.router, logits + t * E, E, s.data());
    for (int64_t e = 0; e < E; e++) sel[e] = s[e] + (j.router == Router::Sigmoid ? bias[e] : 0.0f);
    std::fill(allowed.begin(), allowed.end(), 1);
    const bool grouped = G > 1 && (j.router == Router::SoftmaxTopk || j.router == Router::Sigmoid);
    if (grouped) {
      // Group score: the best expert (softmax) or the sum of the best two (sigmoid, DeepSeek-V3).
      for (int64_t g = 0; g < G; g++) {
        float a = -INFINITY, b = -INFINITY;
        for (int64_t e = g * per; e < (g + 1) * per; e++) {
          if (sel[e] > a) {
            b = a;
            a = sel[e];
          } else if (sel[e] > b) {
            b = sel[e];
          }
        }
        gscore[g] = (j.router == Router::Sigmoid && per > 1) ? a + b : a;
      }
      std::vector<char> gl(G, 1);
      std::fill(gallowed.begin(), gallowed.end(), 0);
      for (int64_t n = 0; n < j.ro.topkGroups; n++) {
        int64_t g = argmax(gscore.data(), gl, G);
        gl[g] = 0;
        gallowed[g] = 1;
      }
      for (int64_t e = 0; e < E; e++) allowed[e] = gallowed[e / per];
    }
    double sum = 0;
    for (int64_t c = 0; c < k; c++) {
      int64_t e = argmax(sel.data(), allowed, E);
      allowed[e] = 0;
      out.choice[t * k + c] = int32_t(e);
      sum += s[e];
    }
    for (int64_t c = 0; c < k; c++) {
      const float p = s[out.choice[t * k + c]];
      float w = p;
      switch (j.router) {
        case Router::SoftmaxTopk: w = float((j.ro.normalize ? p / sum : p) * j.ro.routeScale); break;
        case Router::Gshard: w = float(p / sum); break;
        case Router::Switch: w = p; break;
        case Router::Sigmoid: w = float(p / sum * j.ro.routeScale); break;
      }
      out.weight[t * k + c] = w;
    }
    if (j.router == Router::Gshard) {
      // GShard: the second expert gets the token with probability 2 · its normalized weight.
      const double u = unitAt(j.seed, gshardTensor, tokenIndex(j, mb, rank, int(t)));
      if (!(u < 2.0 * out.weight[t * k + 1])) out.slot[t * k + 1] = -2;
    }
  }
  // Capacity: first choices of every token in token order, then second choices, …
  std::vector<int64_t> used(E, 0);
  for (int64_t c = 0; c < k; c++)
    for (int64_t t = 0; t < T; t++) {
      const int64_t i = t * k + c;
      if (out.slot[i] == -2) continue;
      const int64_t e = out.choice[i];
      out.slot[i] = used[e] < C ? int32_t(used[e]++) : -1;
    }
}

bool routingValid(const Job& j, int64_t C, const RouteView& r) {
  const int64_t n = int64_t(j.tokens) * j.topK;
  for (int64_t i = 0; i < n; i++)
    if (r.choice[i] < 0 || r.choice[i] >= j.experts || r.slot[i] < -2 || r.slot[i] >= C || !std::isfinite(r.weight[i])) return false;
  return true;
}

void routeBackward(const Job& j, const float* logits, const float* bias, const RouteView& r, const float* dweight, float* dlogits) {
  const int64_t T = j.tokens, E = j.experts, k = j.topK;
  std::vector<float> s(E);
  std::vector<double> ds(E);
  for (int64_t t = 0; t < T; t++) {
    scores(j.router, logits + t * E, E, s.data());
    std::fill(ds.begin(), ds.end(), 0.0);
    const int32_t* ch = r.choice + t * k;
    const float* g = dweight + t * k;
    const bool normalized = (j.router == Router::SoftmaxTopk && j.ro.normalize) || j.router == Router::Gshard || j.router == Router::Sigmoid;
    const double scale = (j.router == Router::SoftmaxTopk || j.router == Router::Sigmoid) ? j.ro.routeScale : 1.0;
    if (normalized) {
      double S = 0, gs = 0;
      for (int64_t c = 0; c < k; c++) S += s[ch[c]];
      for (int64_t c = 0; c < k; c++) gs += double(g[c]) * s[ch[c]];
      for (int64_t c = 0; c < k; c++) ds[ch[c]] += scale / S * (g[c] - gs / S);
    } else {
      for (int64_t c = 0; c < k; c++) ds[ch[c]] += scale * g[c];
    }
    float* dz = dlogits + t * E;
    if (softmaxFamily(j.router)) {
      double dot = 0;
      for (int64_t e = 0; e < E; e++) dot += double(s[e]) * ds[e];
      for (int64_t e = 0; e < E; e++) dz[e] = float(s[e] * (ds[e] - dot));
    } else {
      for (int64_t e = 0; e < E; e++) dz[e] = float(double(s[e]) * (1.0 - s[e]) * ds[e]);
    }
  }
}

// ── Order and I-Order ───────────────────────────────────────────────────────────────────────

void orderForward(const Job& j, int64_t C, int64_t r, const float* x, const RouteView& rt, float* out) {
  const int64_t T = j.tokens, M = j.hidden, E = j.experts, k = j.topK;
  std::memset(out, 0, sizeof(float) * E * C * M);  // empty slots are zero rows
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < k; c++) {
      const int64_t i = t * k + c;
      if (rt.slot[i] < 0) continue;
      std::memcpy(out + slotRow(rt.choice[i], rt.slot[i], E, C, r) * M, x + t * M, sizeof(float) * M);
    }
}

void iorderForward(const Job& j, int64_t C, int64_t r, const float* comb, const RouteView& rt, float* y) {
  const int64_t T = j.tokens, M = j.hidden, E = j.experts, k = j.topK;
  std::memset(y, 0, sizeof(float) * T * M);
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < k; c++) {
      const int64_t i = t * k + c;
      if (rt.slot[i] < 0) continue;
      const float w = rt.weight[i];
      const float* src = comb + slotRow(rt.choice[i], rt.slot[i], E, C, r) * M;
      float* dst = y + t * M;
      for (int64_t m = 0; m < M; m++) dst[m] += w * src[m];
    }
}

void iorderBackward(const Job& j, int64_t C, int64_t rf, int64_t rb, const float* dy, const float* combSaved, const RouteView& rt, float* gcomb, float* dweight) {
  const int64_t T = j.tokens, M = j.hidden, E = j.experts, k = j.topK;
  std::memset(gcomb, 0, sizeof(float) * E * C * M);
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < k; c++) {
      const int64_t i = t * k + c;
      dweight[i] = 0.0f;
      if (rt.slot[i] < 0) continue;
      const float w = rt.weight[i];
      const float* g = dy + t * M;
      const float* saved = combSaved + slotRow(rt.choice[i], rt.slot[i], E, C, rf) * M;
      float* dst = gcomb + slotRow(rt.choice[i], rt.slot[i], E, C, rb) * M;
      double dot = 0;
      for (int64_t m = 0; m < M; m++) {
        dst[m] = w * g[m];
        dot += double(g[m]) * saved[m];
      }
      dweight[i] = float(dot);
    }
}

void orderBackward(const Job& j, int64_t C, int64_t r, const float* gorder, const RouteView& rt, float* gx) {
  const int64_t T = j.tokens, M = j.hidden, E = j.experts, k = j.topK;
  std::memset(gx, 0, sizeof(float) * T * M);
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < k; c++) {
      const int64_t i = t * k + c;
      if (rt.slot[i] < 0) continue;
      const float* src = gorder + slotRow(rt.choice[i], rt.slot[i], E, C, r) * M;
      float* dst = gx + t * M;
      for (int64_t m = 0; m < M; m++) dst[m] += src[m];
    }
}

void gateBackward(const Job& j, const float* x, const float* W, const float* dlogits, float* gx, float* dW) {
  const int64_t T = j.tokens, M = j.hidden, E = j.experts;
  for (int64_t t = 0; t < T; t++) {
    const float* dz = dlogits + t * E;
    float* g = gx + t * M;
    for (int64_t m = 0; m < M; m++) {
      const float* w = W + m * E;
      float acc = 0;
      for (int64_t e = 0; e < E; e++) acc += dz[e] * w[e];
      g[m] += acc;
    }
  }
  gemmTN(M, E, T, x, dlogits, dW);
}

// ── DeepSpeed's dense einsums ───────────────────────────────────────────────────────────────
// The same maps as Order and I-Order written as GEMMs with a one-hot dispatch mask and a dense
// combine-weight matrix over every (token, expert, slot): T·E·C·M MACs each, as DeepSpeed-MoE
// computes them. Columns are rows of the chunk-major buffer.

namespace {

thread_local std::vector<float> tMask;

/** [T, E·C]: `weights` ? the combine weight : 1 at each routed (token, slot), 0 elsewhere. */
const float* denseRouting(const Job& j, int64_t C, int64_t r, const RouteView& rt, bool weights) {
  const int64_t T = j.tokens, E = j.experts, k = j.topK, EC = E * C;
  tMask.assign(T * EC, 0.0f);
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < k; c++) {
      const int64_t i = t * k + c;
      if (rt.slot[i] >= 0) tMask[t * EC + slotRow(rt.choice[i], rt.slot[i], E, C, r)] = weights ? rt.weight[i] : 1.0f;
    }
  return tMask.data();
}

}  // namespace

void dispatchEinsum(const Job& j, int64_t C, int64_t r, const float* x, const RouteView& rt, float* out) {
  const int64_t T = j.tokens, M = j.hidden, EC = int64_t(j.experts) * C;
  const float* mask = denseRouting(j, C, r, rt, false);
  std::memset(out, 0, sizeof(float) * EC * M);
  gemmTN(EC, M, T, mask, x, out);
}

void dispatchEinsumBackward(const Job& j, int64_t C, int64_t r, const float* gorder, const RouteView& rt, float* gx) {
  const int64_t T = j.tokens, M = j.hidden, EC = int64_t(j.experts) * C;
  gemmNN(T, M, EC, denseRouting(j, C, r, rt, false), gorder, gx, false);
}

void combineEinsum(const Job& j, int64_t C, int64_t r, const float* comb, const RouteView& rt, float* y) {
  const int64_t T = j.tokens, M = j.hidden, EC = int64_t(j.experts) * C;
  gemmNN(T, M, EC, denseRouting(j, C, r, rt, true), comb, y, false);
}

void combineEinsumBackward(const Job& j, int64_t C, int64_t rf, int64_t rb, const float* dy, const float* combSaved, const RouteView& rt, float* gcomb, float* dweight) {
  const int64_t T = j.tokens, M = j.hidden, E = j.experts, EC = E * C, k = j.topK;
  std::memset(gcomb, 0, sizeof(float) * EC * M);
  gemmTN(EC, M, T, denseRouting(j, C, rb, rt, true), dy, gcomb);
  // dL/dW[t, e·c] = dy[t, :] · comb[e·c, :]: the dense weight gradient, read at each routed slot.
  std::vector<float> dW(T * EC);
  gemmNT(T, EC, M, dy, combSaved, dW.data(), tScratchNT(), false);
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < k; c++) {
      const int64_t i = t * k + c;
      dweight[i] = rt.slot[i] >= 0 ? dW[t * EC + slotRow(rt.choice[i], rt.slot[i], E, C, rf)] : 0.0f;
    }
}

// ── Experts ─────────────────────────────────────────────────────────────────────────────────

namespace {

/** Rows of the expert input of one chunk: [S, ep, E_local, C/r] per chunk, chunk-major. */
struct Rows {
  int64_t S, ep, El, cr, perChunk;
  Rows(const Job& j, int64_t C, int64_t r) : S(j.esp), ep(j.ep), El(j.localExperts), cr(C / r), perChunk(int64_t(j.esp) * j.ep * j.localExperts * (C / r)) {}
  /** Row (within the whole buffer) of member q, ep source p, local expert le, slot-in-chunk c of chunk i. */
  int64_t row(int64_t i, int64_t q, int64_t p, int64_t le, int64_t c) const { return i * perChunk + ((q * ep + p) * El + le) * cr + c; }
};

thread_local std::vector<float> tX, tH1, tH3, tA, tY, tD, tDA, tD1, tD3, tScratch;

}  // namespace

void expertForward(const ExpertArgs& a, const float* in, float* hidden, float* out) {
  const Job& j = *a.job;
  const int64_t M = j.hidden, Hs = j.shardHidden, G = j.gemms;
  const Rows rows(j, a.C, a.r);
  const ShardLayout lay = shardLayout(j);
  const int64_t R = rows.S * rows.ep * rows.cr;  // rows of one local expert in the chunk
  const int first = a.localExpert < 0 ? 0 : a.localExpert;
  const int last = a.localExpert < 0 ? j.localExperts : a.localExpert + 1;
  tX.resize(R * M);
  tH1.resize(R * Hs);
  tH3.resize(R * Hs);
  tA.resize(R * Hs);
  tY.resize(R * M);
  for (int le = first; le < last; le++) {
    int64_t n = 0;
    for (int64_t q = 0; q < rows.S; q++)
      for (int64_t p = 0; p < rows.ep; p++)
        for (int64_t c = 0; c < rows.cr; c++, n++) std::memcpy(&tX[n * M], in + rows.row(a.chunk, q, p, le, c) * M, sizeof(float) * M);
    gemmNN(R, Hs, M, tX.data(), a.weights + lay.w1(le), tH1.data(), false);
    if (G == 3) gemmNN(R, Hs, M, tX.data(), a.weights + lay.w3(le), tH3.data(), false);
    for (int64_t i = 0; i < R * Hs; i++) tA[i] = activate(j.activation, tH1[i]) * (G == 3 ? tH3[i] : 1.0f);
    gemmNN(R, M, Hs, tA.data(), a.weights + lay.w2(le), tY.data(), false);
    n = 0;
    for (int64_t q = 0; q < rows.S; q++)
      for (int64_t p = 0; p < rows.ep; p++)
        for (int64_t c = 0; c < rows.cr; c++, n++) {
          const int64_t row = rows.row(a.chunk, q, p, le, c);
          const int64_t inChunk = row - a.chunk * rows.perChunk;
          std::memcpy(out + row * M, &tY[n * M], sizeof(float) * M);
          std::memcpy(hidden + ((a.chunk * (G - 1) + 0) * rows.perChunk + inChunk) * Hs, &tH1[n * Hs], sizeof(float) * Hs);
          if (G == 3) std::memcpy(hidden + ((a.chunk * (G - 1) + 1) * rows.perChunk + inChunk) * Hs, &tH3[n * Hs], sizeof(float) * Hs);
        }
  }
}

void expertBackward(const ExpertArgs& a, const float* dOut, const float* savedIn, const float* savedHidden, float* dIn, float* dW) {
  const Job& j = *a.job;
  const int64_t M = j.hidden, Hs = j.shardHidden, G = j.gemms;
  const Rows rows(j, a.C, a.r);      // this op's (backward) layout
  const Rows fwd(j, a.C, a.rf);      // the saved forward buffers' layout
  const ShardLayout lay = shardLayout(j);
  const int64_t R = rows.S * rows.ep * rows.cr;
  const int first = a.localExpert < 0 ? 0 : a.localExpert;
  const int last = a.localExpert < 0 ? j.localExperts : a.localExpert + 1;
  tX.resize(R * M);
  tH1.resize(R * Hs);
  tH3.resize(R * Hs);
  tA.resize(R * Hs);
  tD.resize(R * M);
  tDA.resize(R * Hs);
  tD1.resize(R * Hs);
  tD3.resize(R * Hs);
  tY.resize(R * M);
  for (int le = first; le < last; le++) {
    int64_t n = 0;
    for (int64_t q = 0; q < rows.S; q++)
      for (int64_t p = 0; p < rows.ep; p++)
        for (int64_t c = 0; c < rows.cr; c++, n++) {
          const int64_t s = a.chunk * rows.cr + c;  // the slot, the same in both layouts
          const int64_t fi = s / fwd.cr, fc = s % fwd.cr;
          const int64_t frow = fwd.row(fi, q, p, le, fc);
          const int64_t fin = frow - fi * fwd.perChunk;
          std::memcpy(&tD[n * M], dOut + rows.row(a.chunk, q, p, le, c) * M, sizeof(float) * M);
          std::memcpy(&tX[n * M], savedIn + frow * M, sizeof(float) * M);
          std::memcpy(&tH1[n * Hs], savedHidden + ((fi * (G - 1) + 0) * fwd.perChunk + fin) * Hs, sizeof(float) * Hs);
          if (G == 3) std::memcpy(&tH3[n * Hs], savedHidden + ((fi * (G - 1) + 1) * fwd.perChunk + fin) * Hs, sizeof(float) * Hs);
        }
    for (int64_t i = 0; i < R * Hs; i++) tA[i] = activate(j.activation, tH1[i]) * (G == 3 ? tH3[i] : 1.0f);
    // dA = dY · W2ᵀ; dW2 += Aᵀ · dY.
    gemmNT(R, Hs, M, tD.data(), a.weights + lay.w2(le), tDA.data(), tScratch, false);
    gemmTN(Hs, M, R, tA.data(), tD.data(), dW + lay.w2(le));
    for (int64_t i = 0; i < R * Hs; i++) {
      if (G == 3) {
        tD1[i] = tDA[i] * tH3[i] * activateGrad(j.activation, tH1[i]);
        tD3[i] = tDA[i] * activate(j.activation, tH1[i]);
      } else {
        tD1[i] = tDA[i] * activateGrad(j.activation, tH1[i]);
      }
    }
    gemmTN(M, Hs, R, tX.data(), tD1.data(), dW + lay.w1(le));
    gemmNT(R, M, Hs, tD1.data(), a.weights + lay.w1(le), tY.data(), tScratch, false);
    if (G == 3) {
      gemmTN(M, Hs, R, tX.data(), tD3.data(), dW + lay.w3(le));
      gemmNT(R, M, Hs, tD3.data(), a.weights + lay.w3(le), tY.data(), tScratch, true);
    }
    n = 0;
    for (int64_t q = 0; q < rows.S; q++)
      for (int64_t p = 0; p < rows.ep; p++)
        for (int64_t c = 0; c < rows.cr; c++, n++) std::memcpy(dIn + rows.row(a.chunk, q, p, le, c) * M, &tY[n * M], sizeof(float) * M);
  }
}

}  // namespace fsmoe

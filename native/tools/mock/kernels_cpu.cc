// CPU versions of the CUDA backend's kernel launchers (src/cuda/kernels.cuh), for testing the
// CUDA executor (src/cuda/backend.cc) on machines without a GPU: linked with the mock runtime
// (cuda_mock.cc) instead of kernels.cu and cudart. Each launcher computes, sequentially, what its
// device kernel computes (the same algorithm, in the same order where the device keeps the host's
// order), and runs through mock::enqueue, so that it executes at once or is recorded into the
// CUDA graph being captured. Test-only: never part of a shipped build.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "../../src/cuda/kernels.cuh"
#include "cuda_mock.h"

namespace fsmoe {
namespace gpu {

namespace {

int64_t slotRowC(int64_t e, int64_t s, int64_t E, int64_t C, int64_t r) {
  const int64_t cr = C / r;
  return ((s / cr) * E + e) * cr + s % cr;
}
int64_t entryRow(const int32_t* choice, const int32_t* slot, int64_t i, int64_t E, int64_t C, int64_t r) {
  const int32_t e = choice[i], s = slot[i];
  if (e < 0 || e >= E || s < 0 || s >= C) return -1;
  return slotRowC(e, s, E, C, r);
}

float sigmoidC(float h) { return 1.0f / (1.0f + float(std::exp(-double(h)))); }
float geluC(float h) { return 0.5f * h * (1.0f + std::erf(h * 0.70710678118654752f)); }
float geluGradC(float h) { return 0.5f * (1.0f + std::erf(h * 0.70710678118654752f)) + h * 0.39894228040143268f * std::exp(-0.5f * h * h); }
float act(int a, float h) {
  switch (a) {
    case kRelu: return h > 0 ? h : 0.0f;
    case kGelu:
    case kGeglu: return geluC(h);
    case kSwiglu: return h * sigmoidC(h);
  }
  return h;
}
float actGrad(int a, float h) {
  switch (a) {
    case kRelu: return h > 0 ? 1.0f : 0.0f;
    case kGelu:
    case kGeglu: return geluGradC(h);
    case kSwiglu: {
      const float s = sigmoidC(h);
      return s * (1.0f + h * (1.0f - s));
    }
  }
  return 1.0f;
}

void scores(const RouteArgs& a, const float* z, float* s) {
  if (a.router != kSigmoid) {
    float mx = -FLT_MAX;
    for (int e = 0; e < a.E; e++) mx = std::max(mx, z[e]);
    double sum = 0;
    for (int e = 0; e < a.E; e++) sum += std::exp(double(z[e]) - double(mx));
    for (int e = 0; e < a.E; e++) s[e] = float(std::exp(double(z[e]) - double(mx)) / sum);
  } else {
    for (int e = 0; e < a.E; e++) s[e] = sigmoidC(z[e]);
  }
}

uint16_t toBf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
float fromBf16Bits(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

cudaError_t routeForward(const RouteArgs& a0, cudaStream_t stream) {
  const RouteArgs a = a0;
  return mock::enqueue(stream, [a] {
    const int E = a.E, k = a.k, G = a.groups > 0 ? a.groups : 1, per = E / G;
    std::vector<float> s(E), gscore(G);
    std::vector<char> allowed(E), gallowed(G);
    const bool sigmoid = a.router == kSigmoid, grouped = G > 1 && (a.router == kSoftmaxTopk || sigmoid);
    for (int64_t t = 0; t < a.T; t++) {
      scores(a, a.logits + t * E, s.data());
      auto sel = [&](int e) { return sigmoid ? s[e] + a.bias[e] : s[e]; };
      std::fill(allowed.begin(), allowed.end(), 1);
      if (grouped) {
        for (int g = 0; g < G; g++) {
          float x = -INFINITY, y = -INFINITY;
          for (int e = g * per; e < (g + 1) * per; e++) {
            const float v = sel(e);
            if (v > x) y = x, x = v;
            else if (v > y) y = v;
          }
          gscore[g] = (sigmoid && per > 1) ? x + y : x;
          gallowed[g] = 0;
        }
        for (int n = 0; n < a.topkGroups; n++) {
          int best = -1;
          for (int g = 0; g < G; g++)
            if (!gallowed[g] && (best < 0 || gscore[g] > gscore[best])) best = g;
          if (best >= 0) gallowed[best] = 1;
        }
        for (int e = 0; e < E; e++) allowed[e] = gallowed[e / per];
      }
      double sum = 0;
      for (int c = 0; c < k; c++) {
        int best = -1;
        for (int e = 0; e < E; e++)
          if (allowed[e] && (best < 0 || sel(e) > sel(best))) best = e;
        if (best >= 0) {
          allowed[best] = 0;
          sum += s[best];
        }
        a.choice[t * k + c] = best;
        a.slot[t * k + c] = -1;
      }
      for (int c = 0; c < k; c++) {
        const int e = a.choice[t * k + c];
        const float p = e >= 0 ? s[e] : 0.0f;
        float w = p;
        switch (a.router) {
          case kSoftmaxTopk: w = float((a.normalize ? double(p) / sum : double(p)) * a.routeScale); break;
          case kGshard: w = float(double(p) / sum); break;
          case kSwitch: w = p; break;
          case kSigmoid: w = float(double(p) / sum * a.routeScale); break;
        }
        a.weight[t * k + c] = w;
      }
      if (a.router == kGshard && k >= 2 && !(a.gshardU[t] < 2.0 * double(a.weight[t * k + 1]))) a.slot[t * k + 1] = -2;
    }
    // Capacity, choice-major in token order.
    for (int e = 0; e < E; e++) {
      int64_t used = 0;
      for (int64_t n = 0; n < a.T * k; n++) {
        const int64_t c = n / a.T, t = n % a.T, i = t * k + c;
        if (a.choice[i] == e && a.slot[i] != -2) a.slot[i] = used < a.C ? int32_t(used++) : (used++, -1);
      }
    }
  });
}

cudaError_t routeBackward(const RouteArgs& a0, const float* dweight, float* dlogits, cudaStream_t stream) {
  const RouteArgs a = a0;
  return mock::enqueue(stream, [a, dweight, dlogits] {
    const int E = a.E, k = a.k;
    std::vector<float> s(E);
    std::vector<double> ds(E);
    const bool normalized = (a.router == kSoftmaxTopk && a.normalize) || a.router == kGshard || a.router == kSigmoid;
    const double scale = (a.router == kSoftmaxTopk || a.router == kSigmoid) ? a.routeScale : 1.0;
    for (int64_t t = 0; t < a.T; t++) {
      scores(a, a.logits + t * E, s.data());
      std::fill(ds.begin(), ds.end(), 0.0);
      const int32_t* ch = a.choice + t * k;
      const float* g = dweight + t * k;
      if (normalized) {
        double S = 0, gs = 0;
        for (int c = 0; c < k; c++)
          if (ch[c] >= 0) S += s[ch[c]], gs += double(g[c]) * s[ch[c]];
        for (int c = 0; c < k; c++)
          if (ch[c] >= 0) ds[ch[c]] += scale / S * (double(g[c]) - gs / S);
      } else {
        for (int c = 0; c < k; c++)
          if (ch[c] >= 0) ds[ch[c]] += scale * double(g[c]);
      }
      float* dz = dlogits + t * E;
      if (a.router != kSigmoid) {
        double dot = 0;
        for (int e = 0; e < E; e++) dot += double(s[e]) * ds[e];
        for (int e = 0; e < E; e++) dz[e] = float(double(s[e]) * (ds[e] - dot));
      } else {
        for (int e = 0; e < E; e++) dz[e] = float(double(s[e]) * (1.0 - double(s[e])) * ds[e]);
      }
    }
  });
}

cudaError_t orderForward(const OrderGeom& g, int64_t r, const float* x, const int32_t* choice, const int32_t* slot, float* out, int32_t* inv, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    const int64_t rows = g.E * g.C;
    std::fill(inv, inv + rows, -1);
    for (int64_t i = 0; i < g.T * g.k; i++) {
      const int64_t row = entryRow(choice, slot, i, g.E, g.C, r);
      if (row >= 0) inv[row] = int32_t(i / g.k);
    }
    for (int64_t row = 0; row < rows; row++)
      for (int64_t m = 0; m < g.M; m++) out[row * g.M + m] = inv[row] >= 0 ? x[int64_t(inv[row]) * g.M + m] : 0.0f;
  });
}

static void combine(const OrderGeom& g, int64_t r, const float* src, const int32_t* choice, const int32_t* slot, const float* weight, float* y) {
  for (int64_t t = 0; t < g.T; t++)
    for (int64_t m = 0; m < g.M; m++) {
      float acc = 0.0f;
      for (int64_t c = 0; c < g.k; c++) {
        const int64_t row = entryRow(choice, slot, t * g.k + c, g.E, g.C, r);
        if (row < 0) continue;
        const float v = src[row * g.M + m];
        acc += weight ? weight[t * g.k + c] * v : v;
      }
      y[t * g.M + m] = acc;
    }
}

cudaError_t orderBackward(const OrderGeom& g, int64_t r, const float* gorder, const int32_t* choice, const int32_t* slot, float* gx, cudaStream_t stream) {
  return mock::enqueue(stream, [=] { combine(g, r, gorder, choice, slot, nullptr, gx); });
}

cudaError_t iorderForward(const OrderGeom& g, int64_t r, const float* comb, const int32_t* choice, const int32_t* slot, const float* weight, float* y, cudaStream_t stream) {
  return mock::enqueue(stream, [=] { combine(g, r, comb, choice, slot, weight, y); });
}

cudaError_t iorderBackward(const OrderGeom& g, int64_t rf, int64_t rb, const float* dy, const float* combSaved, const int32_t* choice, const int32_t* slot,
                           const float* weight, float* gcomb, float* dweight, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    std::fill(gcomb, gcomb + g.E * g.C * g.M, 0.0f);
    for (int64_t i = 0; i < g.T * g.k; i++) {
      const int64_t rowB = entryRow(choice, slot, i, g.E, g.C, rb), rowF = entryRow(choice, slot, i, g.E, g.C, rf);
      const float* d = dy + (i / g.k) * g.M;
      double dot = 0;
      if (rowB >= 0)
        for (int64_t m = 0; m < g.M; m++) gcomb[rowB * g.M + m] = weight[i] * d[m];
      if (rowF >= 0)
        for (int64_t m = 0; m < g.M; m++) dot += double(d[m]) * double(combSaved[rowF * g.M + m]);
      dweight[i] = rowF >= 0 ? float(dot) : 0.0f;
    }
  });
}

cudaError_t denseMask(const OrderGeom& g, int64_t r, const int32_t* choice, const int32_t* slot, const float* weight, bool useWeights, float* mask, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    const int64_t EC = g.E * g.C;
    std::fill(mask, mask + g.T * EC, 0.0f);
    for (int64_t i = 0; i < g.T * g.k; i++) {
      const int64_t row = entryRow(choice, slot, i, g.E, g.C, r);
      if (row >= 0) mask[(i / g.k) * EC + row] = useWeights ? weight[i] : 1.0f;
    }
  });
}

cudaError_t gatherDweight(const OrderGeom& g, int64_t rf, const int32_t* choice, const int32_t* slot, const float* dW, float* dweight, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    const int64_t EC = g.E * g.C;
    for (int64_t i = 0; i < g.T * g.k; i++) {
      const int64_t row = entryRow(choice, slot, i, g.E, g.C, rf);
      dweight[i] = row >= 0 ? dW[(i / g.k) * EC + row] : 0.0f;
    }
  });
}

cudaError_t gatherRows(float* dst, const float* src, const int64_t* idx, int64_t n, int64_t w, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t i = 0; i < n; i++) std::memcpy(dst + i * w, src + idx[i] * w, sizeof(float) * w);
  });
}

cudaError_t scatterRows(float* dst, const float* src, const int64_t* idx, int64_t n, int64_t w, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t i = 0; i < n; i++) std::memcpy(dst + idx[i] * w, src + i * w, sizeof(float) * w);
  });
}

cudaError_t activationForward(int a, bool gated, int64_t n, const float* h1, const float* h3, float* out, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t i = 0; i < n; i++) out[i] = act(a, h1[i]) * (gated ? h3[i] : 1.0f);
  });
}

cudaError_t activationBackward(int a, bool gated, int64_t n, const float* dA, const float* h1, const float* h3, float* d1, float* d3, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t i = 0; i < n; i++) {
      if (gated) {
        d1[i] = dA[i] * h3[i] * actGrad(a, h1[i]);
        d3[i] = dA[i] * act(a, h1[i]);
      } else {
        d1[i] = dA[i] * actGrad(a, h1[i]);
      }
    }
  });
}

cudaError_t lossAccumulate(int64_t n, const float* y, const float* c, double* accum, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    double s = 0, ab = 0;
    for (int64_t i = 0; i < n; i++) {
      const double v = double(y[i]) * double(c[i]);
      s += v;
      ab += std::fabs(v);
    }
    accum[0] += s;
    accum[1] += ab;
  });
}

cudaError_t toBf16(int64_t n, const float* src, void* dst, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    uint16_t* d = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; i++) d[i] = toBf16Bits(src[i]);
  });
}

cudaError_t reducePeers(int P, const PeerPtrs& in0, int64_t n, float* out, bool max, cudaStream_t stream) {
  if (P < 1 || P > kMaxPeers) return cudaErrorInvalidValue;
  const PeerPtrs in = in0;
  return mock::enqueue(stream, [=] {
    for (int64_t i = 0; i < n; i++) {
      float acc = max ? -INFINITY : 0.0f;
      for (int p = 0; p < P; p++) acc = max ? std::max(acc, in.p[p][i]) : acc + in.p[p][i];
      out[i] = acc;
    }
  });
}

cudaError_t gemmBuiltin(bool transA, bool transB, int64_t m, int64_t n, int64_t k, const void* A, int64_t lda, int64_t strideA, const void* B, int64_t ldb,
                        int64_t strideB, float* C, int64_t ldc, int64_t strideC, int64_t batch, bool accumulate, bool bf16, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    auto load = [&](const void* p, int64_t i) { return bf16 ? fromBf16Bits(static_cast<const uint16_t*>(p)[i]) : static_cast<const float*>(p)[i]; };
    for (int64_t b = 0; b < batch; b++)
      for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
          double acc = 0;
          for (int64_t p = 0; p < k; p++) {
            const float a = load(A, b * strideA + (transA ? p * lda + i : i * lda + p));
            const float bb = load(B, b * strideB + (transB ? j * ldb + p : p * ldb + j));
            acc += double(a) * double(bb);
          }
          float& c = C[b * strideC + i * ldc + j];
          c = accumulate ? c + float(acc) : float(acc);
        }
  });
}

cudaError_t fillPattern(int64_t n, float* v, uint32_t salt, float scale, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t i = 0; i < n; i++) {
      uint32_t h = uint32_t(i) * 2654435761u ^ salt;
      h ^= h >> 15;
      h *= 2246822519u;
      h ^= h >> 13;
      v[i] = scale * (float(h >> 8) * (1.0f / 8388608.0f) - 1.0f);
    }
  });
}

}  // namespace gpu
}  // namespace fsmoe

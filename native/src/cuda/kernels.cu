// The CUDA kernels (kernels.cuh). One translation unit, so nvcc runs once per architecture.
#include <cuda_bf16.h>

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "kernels.cuh"

namespace fsmoe {
namespace gpu {

namespace {

constexpr int kWarp = 32;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/** A 1-D launch over n items, capped so a grid-stride loop covers the rest. */
unsigned blocksFor(int64_t n, int threads) {
  const int64_t b = ceilDiv(n > 0 ? n : 1, threads);
  return unsigned(b < 65535 * 16 ? b : 65535 * 16);
}

__device__ __forceinline__ int64_t slotRowD(int64_t e, int64_t s, int64_t E, int64_t C, int64_t r) {
  const int64_t cr = C / r;
  return ((s / cr) * E + e) * cr + s % cr;
}

/** A routed entry's row, or -1 when it is dropped or out of range (garbage never indexes memory). */
__device__ __forceinline__ int64_t entryRow(const int32_t* choice, const int32_t* slot, int64_t i, int64_t E, int64_t C, int64_t r) {
  const int32_t e = choice[i], s = slot[i];
  if (e < 0 || e >= E || s < 0 || s >= C) return -1;
  return slotRowD(e, s, E, C, r);
}

// ── Activations (kernels.cc, with unfused float arithmetic like the host's) ──────────────────

__device__ __forceinline__ float sigmoidD(float h) { return __fdiv_rn(1.0f, __fadd_rn(1.0f, float(exp(-double(h))))); }
__device__ __forceinline__ float geluD(float h) { return __fmul_rn(__fmul_rn(0.5f, h), __fadd_rn(1.0f, erff(__fmul_rn(h, 0.70710678118654752f)))); }
__device__ __forceinline__ float geluGradD(float h) {
  const float a = __fmul_rn(0.5f, __fadd_rn(1.0f, erff(__fmul_rn(h, 0.70710678118654752f))));
  const float b = __fmul_rn(__fmul_rn(h, 0.39894228040143268f), expf(__fmul_rn(__fmul_rn(-0.5f, h), h)));
  return __fadd_rn(a, b);
}
__device__ __forceinline__ float activateD(int act, float h) {
  switch (act) {
    case kRelu: return h > 0 ? h : 0.0f;
    case kGelu:
    case kGeglu: return geluD(h);
    case kSwiglu: return __fmul_rn(h, sigmoidD(h));
  }
  return h;
}
__device__ __forceinline__ float activateGradD(int act, float h) {
  switch (act) {
    case kRelu: return h > 0 ? 1.0f : 0.0f;
    case kGelu:
    case kGeglu: return geluGradD(h);
    case kSwiglu: {
      const float s = sigmoidD(h);
      return __fmul_rn(s, __fadd_rn(1.0f, __fmul_rn(h, __fsub_rn(1.0f, s))));
    }
  }
  return 1.0f;
}

// ── Warp helpers ─────────────────────────────────────────────────────────────────────────────

__device__ __forceinline__ double warpSum(double v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
/** The best (largest value, lowest index on ties; index -1 is worst) over the warp. */
__device__ __forceinline__ void warpArgmax(float& v, int& idx) {
  for (int o = kWarp / 2; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (oi >= 0 && (idx < 0 || ov > v || (ov == v && oi < idx))) {
      v = ov;
      idx = oi;
    }
  }
}

// ── Routing ──────────────────────────────────────────────────────────────────────────────────

/** Per-warp shared memory of the routing kernels: s[E] (float), allowed[E] (char), gscore[G], gallowed[G]. */
__host__ __device__ inline size_t routeSmemPerWarp(int E, int G) {
  const size_t b = size_t(E) * 4 + size_t(G) * 4 + size_t(E) + size_t(G);
  return (b + 15) / 16 * 16;
}

/** Per-warp shared memory of routeBackward: s[E] (float), then ds[k] (double) and choices[k] (int). */
__host__ __device__ inline size_t routeBwdSmemPerWarp(int E, int k) {
  const size_t b = (size_t(E) * 4 + 7) / 8 * 8 + size_t(k) * 12;
  return (b + 15) / 16 * 16;
}

/** Scores of one token into s (softmax in double like the host, or sigmoid). */
__device__ void tokenScores(const RouteArgs& a, const float* z, float* s, int lane) {
  const int E = a.E;
  if (a.router != kSigmoid) {
    float mx = -FLT_MAX;
    for (int e = lane; e < E; e += kWarp) mx = fmaxf(mx, z[e]);
    mx = warpMax(mx);
    double sum = 0;
    for (int e = lane; e < E; e += kWarp) sum += exp(double(z[e]) - double(mx));
    sum = warpSum(sum);
    for (int e = lane; e < E; e += kWarp) s[e] = float(exp(double(z[e]) - double(mx)) / sum);
  } else {
    for (int e = lane; e < E; e += kWarp) s[e] = sigmoidD(z[e]);
  }
  __syncwarp();
}

__global__ void routeScoresKernel(RouteArgs a) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int E = a.E, k = a.k, G = a.groups > 0 ? a.groups : 1;
  const int per = E / G;
  unsigned char* base = smem + size_t(warp) * routeSmemPerWarp(E, G);
  float* s = reinterpret_cast<float*>(base);
  float* gscore = s + E;
  char* allowed = reinterpret_cast<char*>(gscore + G);
  char* gallowed = allowed + E;
  const bool sigmoid = a.router == kSigmoid;
  const bool grouped = G > 1 && (a.router == kSoftmaxTopk || sigmoid);
  for (int64_t t = int64_t(blockIdx.x) * (blockDim.x / kWarp) + warp; t < a.T; t += int64_t(gridDim.x) * (blockDim.x / kWarp)) {
    const float* z = a.logits + t * E;
    tokenScores(a, z, s, lane);
    auto sel = [&](int e) { return sigmoid ? s[e] + a.bias[e] : s[e]; };
    for (int e = lane; e < E; e += kWarp) allowed[e] = 1;
    if (grouped) {
      for (int g = lane; g < G; g += kWarp) {
        float x = -INFINITY, y = -INFINITY;
        for (int e = g * per; e < (g + 1) * per; e++) {
          const float v = sel(e);
          if (v > x) {
            y = x;
            x = v;
          } else if (v > y) {
            y = v;
          }
        }
        gscore[g] = (sigmoid && per > 1) ? x + y : x;
        gallowed[g] = 0;
      }
      __syncwarp();
      for (int n = 0; n < a.topkGroups; n++) {
        float v = -INFINITY;
        int idx = -1;
        for (int g = lane; g < G; g += kWarp)
          if (!gallowed[g] && (idx < 0 || gscore[g] > v)) {
            v = gscore[g];
            idx = g;
          }
        warpArgmax(v, idx);
        if (lane == 0 && idx >= 0) gallowed[idx] = 1;
        __syncwarp();
      }
      for (int e = lane; e < E; e += kWarp) allowed[e] = gallowed[e / per];
    }
    __syncwarp();
    double sum = 0;  // lane 0: Σ s[choice] in choice order, like the host
    for (int c = 0; c < k; c++) {
      float v = -INFINITY;
      int idx = -1;
      for (int e = lane; e < E; e += kWarp)
        if (allowed[e]) {
          const float x = sel(e);
          if (idx < 0 || x > v) {
            v = x;
            idx = e;
          }
        }
      warpArgmax(v, idx);
      if (lane == 0) {
        if (idx >= 0) {
          allowed[idx] = 0;
          sum += s[idx];
        }
        a.choice[t * k + c] = idx;
        a.slot[t * k + c] = -1;
      }
      __syncwarp();
    }
    if (lane == 0) {
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
      // GShard: the second expert gets the token with probability 2 · its normalized weight.
      if (a.router == kGshard && k >= 2 && !(a.gshardU[t] < 2.0 * double(a.weight[t * k + 1]))) a.slot[t * k + 1] = -2;
    }
    __syncwarp();
  }
}

/**
 * Capacity: one block per expert walks the entries in choice-major token order (first choices of
 * every token, then second choices, …): each thread takes a run of kRun consecutive entries,
 * counts its expert's, a block-wide exclusive scan of the counts gives every run its first slot,
 * and a second look at the run numbers the entries in order.
 */
constexpr int kRun = 16;
constexpr int kCapacityThreads = 512;
__global__ void capacityKernel(int64_t T, int k, int E, int64_t C, const int32_t* choice, int32_t* slot) {
  __shared__ int warpTotals[kCapacityThreads / kWarp];
  __shared__ int64_t base;
  const int e = blockIdx.x;
  if (e >= E) return;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  if (threadIdx.x == 0) base = 0;
  __syncthreads();
  const int64_t total = T * k;
  auto entry = [&](int64_t n) { return (n % T) * k + n / T; };  // n = c·T + t → t·k + c
  // slot is read only for this expert's own entries (no other block writes them)
  auto mine = [&](int64_t n) { const int64_t i = entry(n); return choice[i] == e && slot[i] != -2; };
  for (int64_t start = 0; start < total; start += int64_t(blockDim.x) * kRun) {
    const int64_t first = start + int64_t(threadIdx.x) * kRun;
    int count = 0;
    for (int j = 0; j < kRun; j++)
      if (first + j < total && mine(first + j)) count++;
    // Exclusive scan of the counts over the block.
    int incl = count;
    for (int o = 1; o < kWarp; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += v;
    }
    if (lane == kWarp - 1) warpTotals[warp] = incl;
    __syncthreads();
    int before = 0, all = 0;
    for (int w = 0; w < warps; w++) {
      if (w < warp) before += warpTotals[w];
      all += warpTotals[w];
    }
    int64_t pos = base + before + incl - count;
    for (int j = 0; j < kRun; j++)
      if (first + j < total && mine(first + j)) {
        slot[entry(first + j)] = pos < C ? int32_t(pos) : -1;
        pos++;
      }
    __syncthreads();
    if (threadIdx.x == 0) base += all;
    __syncthreads();
  }
}

__global__ void routeBackwardKernel(RouteArgs a, const float* dweight, float* dlogits) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int E = a.E, k = a.k;
  const size_t perWarp = routeBwdSmemPerWarp(E, k);
  unsigned char* base = smem + size_t(warp) * perWarp;
  float* s = reinterpret_cast<float*>(base);
  double* ds = reinterpret_cast<double*>(base + (size_t(E) * 4 + 7) / 8 * 8);  // per choice
  int* ch = reinterpret_cast<int*>(ds + k);
  const bool normalized = (a.router == kSoftmaxTopk && a.normalize) || a.router == kGshard || a.router == kSigmoid;
  const double scale = (a.router == kSoftmaxTopk || a.router == kSigmoid) ? a.routeScale : 1.0;
  for (int64_t t = int64_t(blockIdx.x) * (blockDim.x / kWarp) + warp; t < a.T; t += int64_t(gridDim.x) * (blockDim.x / kWarp)) {
    tokenScores(a, a.logits + t * E, s, lane);
    __shared__ double dotShared[32];
    if (lane == 0) {
      const int32_t* chosen = a.choice + t * k;
      const float* g = dweight + t * k;
      double S = 0, gs = 0;
      for (int c = 0; c < k; c++) {
        const int e = chosen[c];
        ch[c] = (e >= 0 && e < E) ? e : -1;
        if (ch[c] >= 0) {
          S += s[e];
          gs += double(g[c]) * s[e];
        }
      }
      for (int c = 0; c < k; c++) ds[c] = ch[c] < 0 ? 0.0 : normalized ? scale / S * (double(g[c]) - gs / S) : scale * double(g[c]);
      // dot = Σ_e s[e] · ds[e] in expert order, like the host (which adds zeros between).
      double dot = 0;
      int prev = -1;
      for (int n = 0; n < k; n++) {
        int best = -1;
        for (int c = 0; c < k; c++)
          if (ch[c] > prev && (best < 0 || ch[c] < ch[best])) best = c;
        if (best < 0) break;
        prev = ch[best];
        dot += double(s[prev]) * ds[best];
      }
      dotShared[warp] = dot;
    }
    __syncwarp();
    const double dot = dotShared[warp];
    float* dz = dlogits + t * E;
    for (int e = lane; e < E; e += kWarp) {
      double d = 0;
      for (int c = 0; c < k; c++)
        if (ch[c] == e) d += ds[c];
      dz[e] = a.router != kSigmoid ? float(double(s[e]) * (d - dot)) : float(double(s[e]) * (1.0 - double(s[e])) * d);
    }
    __syncwarp();
  }
}

// ── Order and I-Order ────────────────────────────────────────────────────────────────────────

__global__ void invFromRouting(int64_t n, int64_t k, int64_t E, int64_t C, int64_t r, const int32_t* choice, const int32_t* slot, int32_t* inv) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = entryRow(choice, slot, i, E, C, r);
    if (row >= 0) inv[row] = int32_t(i / k);
  }
}

__global__ void gatherTokenRows(int64_t rows, int64_t M, const int32_t* inv, const float* x, float* out) {
  const int64_t total = rows * M;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / M, m = i % M;
    const int32_t t = inv[row];
    out[i] = t >= 0 ? x[int64_t(t) * M + m] : 0.0f;
  }
}

__global__ void gatherTokenRows4(int64_t rows, int64_t M4, const int32_t* inv, const float4* x, float4* out) {
  const int64_t total = rows * M4;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / M4, m = i % M4;
    const int32_t t = inv[row];
    out[i] = t >= 0 ? x[int64_t(t) * M4 + m] : make_float4(0.f, 0.f, 0.f, 0.f);
  }
}

/** y[t, m] = Σ_c w_c · src[row_c, m] (or without weights), from 0, in choice order. */
__global__ void combineTokens(OrderGeom g, int64_t r, const float* src, const int32_t* choice, const int32_t* slot, const float* weight, float* y) {
  const int64_t total = g.T * g.M;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / g.M, m = i % g.M;
    float acc = 0.0f;
    for (int64_t c = 0; c < g.k; c++) {
      const int64_t row = entryRow(choice, slot, t * g.k + c, g.E, g.C, r);
      if (row < 0) continue;
      const float v = src[row * g.M + m];
      acc = __fadd_rn(acc, weight ? __fmul_rn(weight[t * g.k + c], v) : v);
    }
    y[i] = acc;
  }
}

/** combineTokens on four floats at a time (M % 4 == 0, 16-byte aligned rows). */
__global__ void combineTokens4(OrderGeom g, int64_t r, const float4* src, const int32_t* choice, const int32_t* slot, const float* weight, float4* y) {
  const int64_t M4 = g.M / 4, total = g.T * M4;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / M4, m = i % M4;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int64_t c = 0; c < g.k; c++) {
      const int64_t row = entryRow(choice, slot, t * g.k + c, g.E, g.C, r);
      if (row < 0) continue;
      const float4 v = src[row * M4 + m];
      if (weight) {
        const float w = weight[t * g.k + c];
        acc.x = __fadd_rn(acc.x, __fmul_rn(w, v.x));
        acc.y = __fadd_rn(acc.y, __fmul_rn(w, v.y));
        acc.z = __fadd_rn(acc.z, __fmul_rn(w, v.z));
        acc.w = __fadd_rn(acc.w, __fmul_rn(w, v.w));
      } else {
        acc.x = __fadd_rn(acc.x, v.x);
        acc.y = __fadd_rn(acc.y, v.y);
        acc.z = __fadd_rn(acc.z, v.z);
        acc.w = __fadd_rn(acc.w, v.w);
      }
    }
    y[i] = acc;
  }
}

/** Launch combineTokens, four floats at a time where the rows allow. */
cudaError_t combine(const OrderGeom& g, int64_t r, const float* src, const int32_t* choice, const int32_t* slot, const float* weight, float* y, cudaStream_t stream) {
  if (g.M % 4 == 0 && (reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(y)) % 16 == 0)
    combineTokens4<<<blocksFor(g.T * g.M / 4, 256), 256, 0, stream>>>(g, r, reinterpret_cast<const float4*>(src), choice, slot, weight, reinterpret_cast<float4*>(y));
  else
    combineTokens<<<blocksFor(g.T * g.M, 256), 256, 0, stream>>>(g, r, src, choice, slot, weight, y);
  return cudaGetLastError();
}

__global__ void iorderGradRows(OrderGeom g, int64_t rb, const float* dy, const int32_t* choice, const int32_t* slot, const float* weight, float* gcomb) {
  const int64_t total = g.T * g.k * g.M;
  for (int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; n < total; n += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = n / g.M, m = n % g.M;
    const int64_t row = entryRow(choice, slot, i, g.E, g.C, rb);
    if (row >= 0) gcomb[row * g.M + m] = __fmul_rn(weight[i], dy[(i / g.k) * g.M + m]);
  }
}

/** dweight[i] = Σ_m dy[t, m] · saved[row, m] in double (a warp per entry). */
__global__ void iorderDweight(OrderGeom g, int64_t rf, const float* dy, const float* saved, const int32_t* choice, const int32_t* slot, float* dweight) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / kWarp);
  for (int64_t i = int64_t(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp; i < g.T * g.k; i += warps) {
    const int64_t row = entryRow(choice, slot, i, g.E, g.C, rf);
    double dot = 0;
    if (row >= 0) {
      const float* a = dy + (i / g.k) * g.M;
      const float* b = saved + row * g.M;
      for (int64_t m = lane; m < g.M; m += kWarp) dot += double(a[m]) * double(b[m]);
    }
    dot = warpSum(dot);
    if (lane == 0) dweight[i] = row >= 0 ? float(dot) : 0.0f;
  }
}

__global__ void maskKernel(OrderGeom g, int64_t r, const int32_t* choice, const int32_t* slot, const float* weight, int useWeights, float* mask) {
  const int64_t EC = g.E * g.C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < g.T * g.k; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = entryRow(choice, slot, i, g.E, g.C, r);
    if (row >= 0) mask[(i / g.k) * EC + row] = useWeights ? weight[i] : 1.0f;
  }
}

__global__ void dweightFromDense(OrderGeom g, int64_t rf, const int32_t* choice, const int32_t* slot, const float* dW, float* dweight) {
  const int64_t EC = g.E * g.C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < g.T * g.k; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = entryRow(choice, slot, i, g.E, g.C, rf);
    dweight[i] = row >= 0 ? dW[(i / g.k) * EC + row] : 0.0f;
  }
}

// ── Rows, activations, loss, conversions, reductions ─────────────────────────────────────────

__global__ void gatherRowsKernel(float* dst, const float* src, const int64_t* idx, int64_t n, int64_t w) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n * w; i += int64_t(gridDim.x) * blockDim.x) dst[i] = src[idx[i / w] * w + i % w];
}
__global__ void scatterRowsKernel(float* dst, const float* src, const int64_t* idx, int64_t n, int64_t w) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n * w; i += int64_t(gridDim.x) * blockDim.x) dst[idx[i / w] * w + i % w] = src[i];
}

__global__ void activationForwardKernel(int act, int gated, int64_t n, const float* h1, const float* h3, float* a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    a[i] = __fmul_rn(activateD(act, h1[i]), gated ? h3[i] : 1.0f);
}
__global__ void activationBackwardKernel(int act, int gated, int64_t n, const float* dA, const float* h1, const float* h3, float* d1, float* d3) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if (gated) {
      d1[i] = __fmul_rn(__fmul_rn(dA[i], h3[i]), activateGradD(act, h1[i]));
      d3[i] = __fmul_rn(dA[i], activateD(act, h1[i]));
    } else {
      d1[i] = __fmul_rn(dA[i], activateGradD(act, h1[i]));
    }
  }
}

__global__ void lossKernel(int64_t n, const float* y, const float* c, double* acc) {
  __shared__ double sums[32], abss[32];
  double s = 0, a = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double v = double(y[i]) * double(c[i]);
    s += v;
    a += fabs(v);
  }
  s = warpSum(s);
  a = warpSum(a);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) {
    sums[warp] = s;
    abss[warp] = a;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double ts = 0, ta = 0;
    for (int w = 0; w < int(blockDim.x / kWarp); w++) {
      ts += sums[w];
      ta += abss[w];
    }
    acc[0] += ts;
    acc[1] += ta;
  }
}

__global__ void toBf16Kernel(int64_t n, const float* src, __nv_bfloat16* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) dst[i] = __float2bfloat16_rn(src[i]);
}

__global__ void reducePeersKernel(int P, PeerPtrs in, int64_t n, float* out, int max) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float acc = max ? -INFINITY : 0.0f;
    for (int p = 0; p < P; p++) acc = max ? fmaxf(acc, in.p[p][i]) : __fadd_rn(acc, in.p[p][i]);
    out[i] = acc;
  }
}

__global__ void fillPatternKernel(int64_t n, float* v, uint32_t salt, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ salt;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    v[i] = scale * (float(h >> 8) * (1.0f / 8388608.0f) - 1.0f);
  }
}

// ── The built-in GEMM: 64×64 tiles, 16-deep, 256 threads, 4×4 outputs each ─────────────────────

template <class T>
__device__ __forceinline__ float loadAs(const T* p, int64_t i);
template <>
__device__ __forceinline__ float loadAs<float>(const float* p, int64_t i) { return p[i]; }
template <>
__device__ __forceinline__ float loadAs<__nv_bfloat16>(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }

template <class T>
__global__ void gemmKernel(int transA, int transB, int64_t m, int64_t n, int64_t k, const T* A, int64_t lda, int64_t sA, const T* B, int64_t ldb, int64_t sB,
                           float* C, int64_t ldc, int64_t sC, int accumulate) {
  constexpr int TM = 64, TN = 64, TK = 16;
  __shared__ float As[TK][TM + 1];
  __shared__ float Bs[TK][TN + 1];
  const int64_t b = blockIdx.z;
  A += b * sA;
  B += b * sB;
  C += b * sC;
  const int64_t row0 = int64_t(blockIdx.y) * TM, col0 = int64_t(blockIdx.x) * TN;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int64_t p0 = 0; p0 < k; p0 += TK) {
    for (int i = threadIdx.x; i < TK * TM; i += blockDim.x) {
      const int kk = i / TM, mm = i % TM;
      const int64_t r = row0 + mm, p = p0 + kk;
      As[kk][mm] = (r < m && p < k) ? loadAs(A, transA ? p * lda + r : r * lda + p) : 0.0f;
    }
    for (int i = threadIdx.x; i < TK * TN; i += blockDim.x) {
      const int kk = i / TN, nn = i % TN;
      const int64_t c = col0 + nn, p = p0 + kk;
      Bs[kk][nn] = (c < n && p < k) ? loadAs(B, transB ? c * ldb + p : p * ldb + c) : 0.0f;
    }
    __syncthreads();
    for (int kk = 0; kk < TK; kk++)
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] += As[kk][ty * 4 + i] * Bs[kk][tx * 4 + j];
    __syncthreads();
  }
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      const int64_t r = row0 + ty * 4 + i, c = col0 + tx * 4 + j;
      if (r < m && c < n) C[r * ldc + c] = accumulate ? C[r * ldc + c] + acc[i][j] : acc[i][j];
    }
}

}  // namespace

// ── Launchers ───────────────────────────────────────────────────────────────────────────────

cudaError_t routeForward(const RouteArgs& a, cudaStream_t stream) {
  if (a.T <= 0 || a.k <= 0) return cudaSuccess;
  const int G = a.groups > 0 ? a.groups : 1;
  const size_t perWarp = routeSmemPerWarp(a.E, G);
  if (perWarp > 48 * 1024) return cudaErrorInvalidValue;
  const int warps = int(std::max<size_t>(1, std::min<size_t>(8, (48 * 1024) / perWarp)));
  const unsigned blocks = unsigned(std::min<int64_t>(ceilDiv(a.T, warps), 65535 * 4));
  routeScoresKernel<<<blocks, warps * kWarp, perWarp * warps, stream>>>(a);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  capacityKernel<<<a.E, kCapacityThreads, 0, stream>>>(a.T, a.k, a.E, a.C, a.choice, a.slot);
  return cudaGetLastError();
}

cudaError_t routeBackward(const RouteArgs& a, const float* dweight, float* dlogits, cudaStream_t stream) {
  if (a.T <= 0) return cudaSuccess;
  const size_t perWarp = routeBwdSmemPerWarp(a.E, a.k);
  if (perWarp > 48 * 1024) return cudaErrorInvalidValue;
  const int warps = int(std::max<size_t>(1, std::min<size_t>(8, (48 * 1024) / perWarp)));
  const unsigned blocks = unsigned(std::min<int64_t>(ceilDiv(a.T, warps), 65535 * 4));
  routeBackwardKernel<<<blocks, warps * kWarp, perWarp * warps, stream>>>(a, dweight, dlogits);
  return cudaGetLastError();
}

cudaError_t orderForward(const OrderGeom& g, int64_t r, const float* x, const int32_t* choice, const int32_t* slot, float* out, int32_t* inv, cudaStream_t stream) {
  const int64_t rows = g.E * g.C;
  cudaError_t e = cudaMemsetAsync(inv, 0xff, sizeof(int32_t) * rows, stream);  // -1: an empty slot, a zero row
  if (e != cudaSuccess) return e;
  invFromRouting<<<blocksFor(g.T * g.k, 256), 256, 0, stream>>>(g.T * g.k, g.k, g.E, g.C, r, choice, slot, inv);
  if ((e = cudaGetLastError()) != cudaSuccess) return e;
  if (g.M % 4 == 0 && (reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(out)) % 16 == 0)
    gatherTokenRows4<<<blocksFor(rows * g.M / 4, 256), 256, 0, stream>>>(rows, g.M / 4, inv, reinterpret_cast<const float4*>(x), reinterpret_cast<float4*>(out));
  else
    gatherTokenRows<<<blocksFor(rows * g.M, 256), 256, 0, stream>>>(rows, g.M, inv, x, out);
  return cudaGetLastError();
}

cudaError_t orderBackward(const OrderGeom& g, int64_t r, const float* gorder, const int32_t* choice, const int32_t* slot, float* gx, cudaStream_t stream) {
  return combine(g, r, gorder, choice, slot, nullptr, gx, stream);
}

cudaError_t iorderForward(const OrderGeom& g, int64_t r, const float* comb, const int32_t* choice, const int32_t* slot, const float* weight, float* y, cudaStream_t stream) {
  return combine(g, r, comb, choice, slot, weight, y, stream);
}

cudaError_t iorderBackward(const OrderGeom& g, int64_t rf, int64_t rb, const float* dy, const float* combSaved, const int32_t* choice, const int32_t* slot,
                           const float* weight, float* gcomb, float* dweight, cudaStream_t stream) {
  cudaError_t e = cudaMemsetAsync(gcomb, 0, sizeof(float) * g.E * g.C * g.M, stream);
  if (e != cudaSuccess) return e;
  iorderGradRows<<<blocksFor(g.T * g.k * g.M, 256), 256, 0, stream>>>(g, rb, dy, choice, slot, weight, gcomb);
  if ((e = cudaGetLastError()) != cudaSuccess) return e;
  iorderDweight<<<blocksFor(g.T * g.k * kWarp, 256), 256, 0, stream>>>(g, rf, dy, combSaved, choice, slot, dweight);
  return cudaGetLastError();
}

cudaError_t denseMask(const OrderGeom& g, int64_t r, const int32_t* choice, const int32_t* slot, const float* weight, bool useWeights, float* mask, cudaStream_t stream) {
  cudaError_t e = cudaMemsetAsync(mask, 0, sizeof(float) * g.T * g.E * g.C, stream);
  if (e != cudaSuccess) return e;
  maskKernel<<<blocksFor(g.T * g.k, 256), 256, 0, stream>>>(g, r, choice, slot, weight, useWeights ? 1 : 0, mask);
  return cudaGetLastError();
}

cudaError_t gatherDweight(const OrderGeom& g, int64_t rf, const int32_t* choice, const int32_t* slot, const float* dW, float* dweight, cudaStream_t stream) {
  dweightFromDense<<<blocksFor(g.T * g.k, 256), 256, 0, stream>>>(g, rf, choice, slot, dW, dweight);
  return cudaGetLastError();
}

cudaError_t gatherRows(float* dst, const float* src, const int64_t* idx, int64_t n, int64_t w, cudaStream_t stream) {
  if (n <= 0 || w <= 0) return cudaSuccess;
  gatherRowsKernel<<<blocksFor(n * w, 256), 256, 0, stream>>>(dst, src, idx, n, w);
  return cudaGetLastError();
}

cudaError_t scatterRows(float* dst, const float* src, const int64_t* idx, int64_t n, int64_t w, cudaStream_t stream) {
  if (n <= 0 || w <= 0) return cudaSuccess;
  scatterRowsKernel<<<blocksFor(n * w, 256), 256, 0, stream>>>(dst, src, idx, n, w);
  return cudaGetLastError();
}

cudaError_t activationForward(int act, bool gated, int64_t n, const float* h1, const float* h3, float* a, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  activationForwardKernel<<<blocksFor(n, 256), 256, 0, stream>>>(act, gated ? 1 : 0, n, h1, h3, a);
  return cudaGetLastError();
}

cudaError_t activationBackward(int act, bool gated, int64_t n, const float* dA, const float* h1, const float* h3, float* d1, float* d3, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  activationBackwardKernel<<<blocksFor(n, 256), 256, 0, stream>>>(act, gated ? 1 : 0, n, dA, h1, h3, d1, d3);
  return cudaGetLastError();
}

cudaError_t lossAccumulate(int64_t n, const float* y, const float* c, double* acc, cudaStream_t stream) {
  lossKernel<<<1, 1024, 0, stream>>>(n, y, c, acc);
  return cudaGetLastError();
}

cudaError_t toBf16(int64_t n, const float* src, void* dst, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  toBf16Kernel<<<blocksFor(n, 256), 256, 0, stream>>>(n, src, static_cast<__nv_bfloat16*>(dst));
  return cudaGetLastError();
}

cudaError_t reducePeers(int P, const PeerPtrs& in, int64_t n, float* out, bool max, cudaStream_t stream) {
  if (P < 1 || P > kMaxPeers) return cudaErrorInvalidValue;
  if (n <= 0) return cudaSuccess;
  reducePeersKernel<<<blocksFor(n, 256), 256, 0, stream>>>(P, in, n, out, max ? 1 : 0);
  return cudaGetLastError();
}

cudaError_t gemmBuiltin(bool transA, bool transB, int64_t m, int64_t n, int64_t k, const void* A, int64_t lda, int64_t strideA, const void* B, int64_t ldb,
                        int64_t strideB, float* C, int64_t ldc, int64_t strideC, int64_t batch, bool accumulate, bool bf16, cudaStream_t stream) {
  if (m <= 0 || n <= 0 || batch <= 0) return cudaSuccess;
  if (batch > 65535) return cudaErrorInvalidValue;
  const dim3 grid(unsigned(ceilDiv(n, 64)), unsigned(ceilDiv(m, 64)), unsigned(batch));
  if (grid.y > 65535) return cudaErrorInvalidValue;
  if (bf16)
    gemmKernel<__nv_bfloat16><<<grid, 256, 0, stream>>>(transA, transB, m, n, k, static_cast<const __nv_bfloat16*>(A), lda, strideA, static_cast<const __nv_bfloat16*>(B), ldb,
                                                         strideB, C, ldc, strideC, accumulate ? 1 : 0);
  else
    gemmKernel<float><<<grid, 256, 0, stream>>>(transA, transB, m, n, k, static_cast<const float*>(A), lda, strideA, static_cast<const float*>(B), ldb, strideB, C, ldc,
                                                strideC, accumulate ? 1 : 0);
  return cudaGetLastError();
}

cudaError_t fillPattern(int64_t n, float* v, uint32_t salt, float scale, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  fillPatternKernel<<<blocksFor(n, 256), 256, 0, stream>>>(n, v, salt, scale);
  return cudaGetLastError();
}

}  // namespace gpu
}  // namespace fsmoe

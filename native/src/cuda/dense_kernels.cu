// The dense kernels of a model (dense_kernels.cuh). Plain grid-stride kernels: a thread per row,
// column or element; correctness first, nothing fused beyond what one loop does.
#include <cfloat>
#include <cmath>

#include "dense_kernels.cuh"

namespace fsmoe {
namespace gpu {

namespace {


unsigned blocks(int64_t n, int threads) {
  const int64_t b = ((n > 0 ? n : 1) + threads - 1) / threads;
  return unsigned(b < 65535 * 16 ? b : 65535 * 16);
}

#define FOR_EACH(i, n) for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

__global__ void rmsNormKernel(int64_t R, int64_t M, const float* s, const float* gamma, float* n) {
  FOR_EACH(r, R) {
    const float* x = s + r * M;
    double ms = 0;
    for (int64_t m = 0; m < M; m++) ms += double(x[m]) * x[m];
    const float inv = float(1.0 / sqrt(ms / double(M) + double(1e-5f)));
    float* y = n + r * M;
    for (int64_t m = 0; m < M; m++) y[m] = __fmul_rn(__fmul_rn(x[m], inv), gamma[m]);
  }
}

__global__ void rmsNormBackwardRows(int64_t R, int64_t M, const float* s, const float* gamma, const float* dn, float* ds, double* invOut) {
  FOR_EACH(r, R) {
    const float* x = s + r * M;
    const float* g = dn + r * M;
    double ms = 0;
    for (int64_t m = 0; m < M; m++) ms += double(x[m]) * x[m];
    const double inv = 1.0 / sqrt(ms / double(M) + double(1e-5f));
    invOut[r] = inv;
    double dot = 0;
    for (int64_t m = 0; m < M; m++) dot += double(g[m]) * gamma[m] * x[m] * inv;
    dot /= double(M);
    float* y = ds + r * M;
    for (int64_t m = 0; m < M; m++) y[m] = float(inv * (double(g[m]) * gamma[m] - x[m] * inv * dot));
  }
}

__global__ void rmsNormBackwardColumns(int64_t R, int64_t M, const float* s, const float* dn, const double* inv, float* dgamma) {
  FOR_EACH(m, M) {
    double sum = 0;
    for (int64_t r = 0; r < R; r++) sum += double(dn[r * M + m]) * (s[r * M + m] * inv[r]);
    dgamma[m] += float(sum);
  }
}

__global__ void addIntoKernel(int64_t n, float* y, const float* x) {
  FOR_EACH(i, n) y[i] += x[i];
}
__global__ void addToKernel(int64_t n, const float* a, const float* b, float* y) {
  FOR_EACH(i, n) y[i] = a[i] + b[i];
}

__global__ void causalSoftmaxKernel(int64_t rows, int64_t L, double scale, float* p) {
  FOR_EACH(row, rows) {
    const int64_t i = row % L;
    float* s = p + row * L;
    double mx = -DBL_MAX;
    for (int64_t j = 0; j <= i; j++) mx = fmax(mx, double(s[j]) * scale);
    double sum = 0;
    for (int64_t j = 0; j <= i; j++) sum += exp(double(s[j]) * scale - mx);
    for (int64_t j = 0; j < L; j++) s[j] = j <= i ? float(exp(double(s[j]) * scale - mx) / sum) : 0.0f;
  }
}

__global__ void softmaxBackwardKernel(int64_t rows, int64_t L, double scale, const float* p, float* dp) {
  FOR_EACH(row, rows) {
    const float* pr = p + row * L;
    float* d = dp + row * L;
    double sum = 0;
    for (int64_t j = 0; j < L; j++) sum += double(pr[j]) * d[j];
    for (int64_t j = 0; j < L; j++) d[j] = float(double(pr[j]) * (double(d[j]) - sum) * scale);
  }
}

__global__ void embedGatherKernel(int64_t N, int64_t M, int64_t first, int64_t V, const int32_t* tokens, const float* table, float* out) {
  FOR_EACH(e, N * M) {
    const int64_t t = e / M, m = e % M, v = int64_t(tokens[t]) - first;
    out[e] = v >= 0 && v < V ? table[v * M + m] : 0.0f;
  }
}

__global__ void embedScatterAddKernel(int64_t N, int64_t M, int64_t first, int64_t V, const int32_t* tokens, const float* g, float* dtable) {
  FOR_EACH(m, M) {
    for (int64_t t = 0; t < N; t++) {
      const int64_t v = int64_t(tokens[t]) - first;
      if (v >= 0 && v < V) dtable[v * M + m] += g[t * M + m];
    }
  }
}

__device__ float tokenMaxD(const float* maxima, int64_t P, int64_t N, int64_t t) {
  float m = maxima[t];
  for (int64_t p = 1; p < P; p++) m = fmaxf(m, maxima[p * N + t]);
  return m;
}
__device__ double shardSumD(const float* stats, int64_t P, int64_t N, int64_t at) {
  double s = 0;
  for (int64_t p = 0; p < P; p++) s += stats[p * 2 * N + at];
  return s;
}

__global__ void lossMaxKernel(int64_t N, int64_t V, const float* logits, float* max) {
  FOR_EACH(t, N) {
    float m = logits[t * V];
    for (int64_t v = 1; v < V; v++) m = fmaxf(m, logits[t * V + v]);
    max[t] = m;
  }
}

__global__ void lossSumExpKernel(int64_t N, int64_t V, int64_t P, int64_t first, const float* logits, const float* maxima, const int32_t* targets, float* stats) {
  FOR_EACH(t, N) {
    const float* l = logits + t * V;
    const float mx = tokenMaxD(maxima, P, N, t);
    double sum = 0;
    for (int64_t v = 0; v < V; v++) sum += exp(double(l[v]) - mx);
    stats[t] = float(sum);
    const int64_t v = int64_t(targets[t]) - first;
    stats[N + t] = v >= 0 && v < V ? l[v] : 0.0f;
  }
}

__global__ void lossValueKernel(int64_t N, int64_t P, double scale, const float* maxima, const float* stats, float* loss) {
  FOR_EACH(t, N) loss[t] = float(scale * (log(shardSumD(stats, P, N, t)) + tokenMaxD(maxima, P, N, t) - shardSumD(stats, P, N, N + t)));
}

__global__ void lossBackwardKernel(int64_t N, int64_t V, int64_t P, int64_t first, double scale, const float* logits, const float* maxima, const float* stats, const int32_t* targets,
                                   float* grad) {
  FOR_EACH(e, N * V) {
    const int64_t t = e / V, v = e % V;
    const double mx = tokenMaxD(maxima, P, N, t), sum = shardSumD(stats, P, N, t);
    const int64_t target = int64_t(targets[t]) - first;
    grad[e] = float(scale * (exp(double(logits[e]) - mx) / sum - (v == target ? 1.0 : 0.0)));
  }
}

__global__ void copyColumnsKernel(int64_t R, int64_t w, const float* src, int64_t lds, float* dst, int64_t ldd, int accumulate) {
  FOR_EACH(e, R * w) {
    const int64_t r = e / w, c = e % w;
    const float v = src[r * lds + c];
    dst[r * ldd + c] = accumulate ? dst[r * ldd + c] + v : v;
  }
}

__global__ void ropeKernel(int64_t R, int64_t heads, int64_t r, float* x, int64_t ld, int64_t headStride, int64_t L, int inverse) {
  FOR_EACH(e, R * heads * (r / 2)) {
    const int64_t i = e % (r / 2), k = (e / (r / 2)) % heads, t = e / (r / 2) / heads;
    const double angle = double(t % L) * pow(10000.0, -2.0 * double(i) / double(r));
    const double c = cos(angle), s = inverse ? -sin(angle) : sin(angle);
    float* y = x + t * ld + k * headStride + 2 * i;
    const double x0 = y[0], x1 = y[1];
    y[0] = float(x0 * c - x1 * s);
    y[1] = float(x0 * s + x1 * c);
  }
}

__global__ void sumKernel(int64_t n, const float* x, double* acc) {
  __shared__ double sums[256], abss[256];
  double s = 0, a = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    s += x[i];
    a += fabs(double(x[i]));
  }
  sums[threadIdx.x] = s;
  abss[threadIdx.x] = a;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (int(threadIdx.x) < w) {
      sums[threadIdx.x] += sums[threadIdx.x + w];
      abss[threadIdx.x] += abss[threadIdx.x + w];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    acc[0] += sums[0];
    acc[1] += abss[0];
  }
}

#undef FOR_EACH

}  // namespace

cudaError_t rmsNormRows(int64_t R, int64_t M, const float* s, const float* gamma, float* n, cudaStream_t stream) {
  if (R <= 0) return cudaSuccess;
  rmsNormKernel<<<blocks(R, 128), 128, 0, stream>>>(R, M, s, gamma, n);
  return cudaGetLastError();
}

cudaError_t rmsNormRowsBackward(int64_t R, int64_t M, const float* s, const float* gamma, const float* dn, float* ds, float* dgamma, double* inv, cudaStream_t stream) {
  if (R <= 0) return cudaSuccess;
  rmsNormBackwardRows<<<blocks(R, 128), 128, 0, stream>>>(R, M, s, gamma, dn, ds, inv);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  rmsNormBackwardColumns<<<blocks(M, 128), 128, 0, stream>>>(R, M, s, dn, inv, dgamma);
  return cudaGetLastError();
}

cudaError_t addInto(int64_t n, float* y, const float* x, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  addIntoKernel<<<blocks(n, 256), 256, 0, stream>>>(n, y, x);
  return cudaGetLastError();
}

cudaError_t addTo(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  addToKernel<<<blocks(n, 256), 256, 0, stream>>>(n, a, b, y);
  return cudaGetLastError();
}

cudaError_t causalSoftmax(int64_t rows, int64_t L, double scale, float* p, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  causalSoftmaxKernel<<<blocks(rows, 128), 128, 0, stream>>>(rows, L, scale, p);
  return cudaGetLastError();
}

cudaError_t softmaxBackward(int64_t rows, int64_t L, double scale, const float* p, float* dp, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  softmaxBackwardKernel<<<blocks(rows, 128), 128, 0, stream>>>(rows, L, scale, p, dp);
  return cudaGetLastError();
}

cudaError_t embedGather(int64_t N, int64_t M, int64_t first, int64_t V, const int32_t* tokens, const float* table, float* out, cudaStream_t stream) {
  if (N * M <= 0) return cudaSuccess;
  embedGatherKernel<<<blocks(N * M, 256), 256, 0, stream>>>(N, M, first, V, tokens, table, out);
  return cudaGetLastError();
}

cudaError_t embedScatterAdd(int64_t N, int64_t M, int64_t first, int64_t V, const int32_t* tokens, const float* g, float* dtable, cudaStream_t stream) {
  if (M <= 0) return cudaSuccess;
  embedScatterAddKernel<<<blocks(M, 128), 128, 0, stream>>>(N, M, first, V, tokens, g, dtable);
  return cudaGetLastError();
}

cudaError_t lossRowMax(int64_t N, int64_t V, const float* logits, float* max, cudaStream_t stream) {
  if (N <= 0 || V <= 0) return cudaSuccess;
  lossMaxKernel<<<blocks(N, 128), 128, 0, stream>>>(N, V, logits, max);
  return cudaGetLastError();
}

cudaError_t lossRowSumExp(int64_t N, int64_t V, int64_t P, int64_t first, const float* logits, const float* maxima, const int32_t* targets, float* stats, cudaStream_t stream) {
  if (N <= 0) return cudaSuccess;
  lossSumExpKernel<<<blocks(N, 128), 128, 0, stream>>>(N, V, P, first, logits, maxima, targets, stats);
  return cudaGetLastError();
}

cudaError_t lossRowValue(int64_t N, int64_t P, double scale, const float* maxima, const float* stats, float* loss, cudaStream_t stream) {
  if (N <= 0) return cudaSuccess;
  lossValueKernel<<<blocks(N, 128), 128, 0, stream>>>(N, P, scale, maxima, stats, loss);
  return cudaGetLastError();
}

cudaError_t lossRowBackward(int64_t N, int64_t V, int64_t P, int64_t first, double scale, const float* logits, const float* maxima, const float* stats, const int32_t* targets,
                            float* grad, cudaStream_t stream) {
  if (N * V <= 0) return cudaSuccess;
  lossBackwardKernel<<<blocks(N * V, 256), 256, 0, stream>>>(N, V, P, first, scale, logits, maxima, stats, targets, grad);
  return cudaGetLastError();
}

cudaError_t copyColumns(int64_t R, int64_t w, const float* src, int64_t lds, float* dst, int64_t ldd, bool accumulate, cudaStream_t stream) {
  if (R * w <= 0) return cudaSuccess;
  copyColumnsKernel<<<blocks(R * w, 256), 256, 0, stream>>>(R, w, src, lds, dst, ldd, accumulate ? 1 : 0);
  return cudaGetLastError();
}

cudaError_t ropeRows(int64_t R, int64_t heads, int64_t r, float* x, int64_t ld, int64_t headStride, int64_t L, bool inverse, cudaStream_t stream) {
  if (R * heads * (r / 2) <= 0) return cudaSuccess;
  ropeKernel<<<blocks(R * heads * (r / 2), 256), 256, 0, stream>>>(R, heads, r, x, ld, headStride, L, inverse ? 1 : 0);
  return cudaGetLastError();
}

cudaError_t sumAccumulate(int64_t n, const float* x, double* acc, cudaStream_t stream) {
  sumKernel<<<1, 256, 0, stream>>>(n, x, acc);
  return cudaGetLastError();
}

}  // namespace gpu
}  // namespace fsmoe

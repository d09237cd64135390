// CPU versions of the dense kernel launchers (src/cuda/dense_kernels.cuh), for testing the CUDA
// executor's model ops without a GPU (test/cuda-executor.test.ts links them with cuda_mock.cc).
// Each computes, sequentially, what its device kernel computes — the same loops in the same order
// (a device kernel's thread per row or column is an iteration here) — and runs through
// mock::enqueue, so it executes at once or is recorded into the graph being captured. Test-only.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "../../src/cuda/dense_kernels.cuh"
#include "cuda_mock.h"

namespace fsmoe {
namespace gpu {

namespace {

float tokenMaxC(const float* maxima, int64_t P, int64_t N, int64_t t) {
  float m = maxima[t];
  for (int64_t p = 1; p < P; p++) m = std::max(m, maxima[p * N + t]);
  return m;
}
double shardSumC(const float* stats, int64_t P, int64_t N, int64_t at) {
  double s = 0;
  for (int64_t p = 0; p < P; p++) s += stats[p * 2 * N + at];
  return s;
}

}  // namespace

cudaError_t rmsNormRows(int64_t R, int64_t M, const float* s, const float* gamma, float* n, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t r = 0; r < R; r++) {
      const float* x = s + r * M;
      double ms = 0;
      for (int64_t m = 0; m < M; m++) ms += double(x[m]) * x[m];
      const float inv = float(1.0 / std::sqrt(ms / double(M) + double(1e-5f)));
      for (int64_t m = 0; m < M; m++) n[r * M + m] = x[m] * inv * gamma[m];
    }
  });
}

cudaError_t rmsNormRowsBackward(int64_t R, int64_t M, const float* s, const float* gamma, const float* dn, float* ds, float* dgamma, double* inv, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t r = 0; r < R; r++) {  // the device's thread per row
      const float* x = s + r * M;
      const float* g = dn + r * M;
      double ms = 0;
      for (int64_t m = 0; m < M; m++) ms += double(x[m]) * x[m];
      const double iv = 1.0 / std::sqrt(ms / double(M) + double(1e-5f));
      inv[r] = iv;
      double dot = 0;
      for (int64_t m = 0; m < M; m++) dot += double(g[m]) * gamma[m] * x[m] * iv;
      dot /= double(M);
      for (int64_t m = 0; m < M; m++) ds[r * M + m] = float(iv * (double(g[m]) * gamma[m] - x[m] * iv * dot));
    }
    for (int64_t m = 0; m < M; m++) {  // then its thread per column
      double sum = 0;
      for (int64_t r = 0; r < R; r++) sum += double(dn[r * M + m]) * (s[r * M + m] * inv[r]);
      dgamma[m] += float(sum);
    }
  });
}

cudaError_t addInto(int64_t n, float* y, const float* x, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
  });
}

cudaError_t addTo(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
  });
}

cudaError_t causalSoftmax(int64_t rows, int64_t L, double scale, float* p, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t row = 0; row < rows; row++) {
      const int64_t i = row % L;
      float* s = p + row * L;
      double mx = -DBL_MAX;
      for (int64_t j = 0; j <= i; j++) mx = std::max(mx, double(s[j]) * scale);
      double sum = 0;
      for (int64_t j = 0; j <= i; j++) sum += std::exp(double(s[j]) * scale - mx);
      for (int64_t j = 0; j < L; j++) s[j] = j <= i ? float(std::exp(double(s[j]) * scale - mx) / sum) : 0.0f;
    }
  });
}

cudaError_t softmaxBackward(int64_t rows, int64_t L, double scale, const float* p, float* dp, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t row = 0; row < rows; row++) {
      const float* pr = p + row * L;
      float* d = dp + row * L;
      double sum = 0;
      for (int64_t j = 0; j < L; j++) sum += double(pr[j]) * d[j];
      for (int64_t j = 0; j < L; j++) d[j] = float(double(pr[j]) * (double(d[j]) - sum) * scale);
    }
  });
}

cudaError_t embedGather(int64_t N, int64_t M, int64_t first, int64_t V, const int32_t* tokens, const float* table, float* out, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t e = 0; e < N * M; e++) {
      const int64_t t = e / M, m = e % M, v = int64_t(tokens[t]) - first;
      out[e] = v >= 0 && v < V ? table[v * M + m] : 0.0f;
    }
  });
}

cudaError_t embedScatterAdd(int64_t N, int64_t M, int64_t first, int64_t V, const int32_t* tokens, const float* g, float* dtable, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t m = 0; m < M; m++)
      for (int64_t t = 0; t < N; t++) {
        const int64_t v = int64_t(tokens[t]) - first;
        if (v >= 0 && v < V) dtable[v * M + m] += g[t * M + m];
      }
  });
}

cudaError_t lossRowMax(int64_t N, int64_t V, const float* logits, float* max, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t t = 0; t < N; t++) {
      float m = logits[t * V];
      for (int64_t v = 1; v < V; v++) m = std::max(m, logits[t * V + v]);
      max[t] = m;
    }
  });
}

cudaError_t lossRowSumExp(int64_t N, int64_t V, int64_t P, int64_t first, const float* logits, const float* maxima, const int32_t* targets, float* stats, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t t = 0; t < N; t++) {
      const float* l = logits + t * V;
      const float mx = tokenMaxC(maxima, P, N, t);
      double sum = 0;
      for (int64_t v = 0; v < V; v++) sum += std::exp(double(l[v]) - mx);
      stats[t] = float(sum);
      const int64_t v = int64_t(targets[t]) - first;
      stats[N + t] = v >= 0 && v < V ? l[v] : 0.0f;
    }
  });
}

cudaError_t lossRowValue(int64_t N, int64_t P, double scale, const float* maxima, const float* stats, float* loss, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t t = 0; t < N; t++) loss[t] = float(scale * (std::log(shardSumC(stats, P, N, t)) + tokenMaxC(maxima, P, N, t) - shardSumC(stats, P, N, N + t)));
  });
}

cudaError_t lossRowBackward(int64_t N, int64_t V, int64_t P, int64_t first, double scale, const float* logits, const float* maxima, const float* stats, const int32_t* targets,
                            float* grad, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t e = 0; e < N * V; e++) {
      const int64_t t = e / V, v = e % V;
      const double mx = tokenMaxC(maxima, P, N, t), sum = shardSumC(stats, P, N, t);
      const int64_t target = int64_t(targets[t]) - first;
      grad[e] = float(scale * (std::exp(double(logits[e]) - mx) / sum - (v == target ? 1.0 : 0.0)));
    }
  });
}

cudaError_t copyColumns(int64_t R, int64_t w, const float* src, int64_t lds, float* dst, int64_t ldd, bool accumulate, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t r = 0; r < R; r++)
      for (int64_t c = 0; c < w; c++) dst[r * ldd + c] = accumulate ? dst[r * ldd + c] + src[r * lds + c] : src[r * lds + c];
  });
}

cudaError_t ropeRows(int64_t R, int64_t heads, int64_t r, float* x, int64_t ld, int64_t headStride, int64_t L, bool inverse, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    for (int64_t t = 0; t < R; t++)
      for (int64_t k = 0; k < heads; k++)
        for (int64_t i = 0; i < r / 2; i++) {
          const double angle = double(t % L) * std::pow(10000.0, -2.0 * double(i) / double(r));
          const double c = std::cos(angle), s = inverse ? -std::sin(angle) : std::sin(angle);
          float* y = x + t * ld + k * headStride + 2 * i;
          const double x0 = y[0], x1 = y[1];
          y[0] = float(x0 * c - x1 * s);
          y[1] = float(x0 * s + x1 * c);
        }
  });
}

cudaError_t sumAccumulate(int64_t n, const float* x, double* acc, cudaStream_t stream) {
  return mock::enqueue(stream, [=] {
    double s = 0, a = 0;
    for (int64_t i = 0; i < n; i++) {
      s += x[i];
      a += std::fabs(double(x[i]));
    }
    acc[0] += s;
    acc[1] += a;
  });
}

}  // namespace gpu
}  // namespace fsmoe

// The host backend's fp32 GEMMs (kernels.h): one register-blocked core for every layout. A tile
// of kRows rows × kCols columns of C is accumulated in registers over the whole k loop (each
// element still sums its k products in order p = 0, 1, …), then added to or stored into C.
// The core is compiled three times (AVX-512, AVX2 + FMA, baseline x86-64) with GCC's
// target_clones and the loader picks the best the CPU has, so one binary runs everywhere.
#include <cstring>
#include <vector>

#include "kernels.h"

namespace fsmoe {

namespace {

constexpr int kRows = 8;
constexpr int kCols = 32;

typedef float V16 __attribute__((vector_size(64), aligned(4)));  // GCC vector extension, unaligned loads; narrower units split it
constexpr int kVecs = kCols / 16;

/**
 * C[i·ldc + q] (+)= Σ_p A(i, p) · B[p·ldb + q] for a tile of kRows rows and kCols columns, with
 * A(i, p) = A[i·sa + p·sp]: sa = k, sp = 1 for A row-major, sa = 1, sp = m for Aᵀ. The
 * accumulators are kRows × kVecs vector registers.
 */
__attribute__((always_inline)) inline void tile(int64_t k, const float* A, int64_t sa, int64_t sp, const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  V16 acc[kRows][kVecs];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; r++)
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; v++) acc[r][v] = V16{};
  for (int64_t p = 0; p < k; p++) {
    const float* b = B + p * ldb;
    V16 bv[kVecs];
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; v++) bv[v] = *reinterpret_cast<const V16*>(b + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; r++) {
      const float a = A[r * sa + p * sp];
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; v++) acc[r][v] += a * bv[v];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRows; r++) {
    V16* c = reinterpret_cast<V16*>(C + r * ldc);
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; v++) c[v] = accumulate ? c[v] + acc[r][v] : acc[r][v];
  }
}

/** The edge of C that full tiles do not cover: one row at a time, any width. */
inline void edge(int64_t rows, int64_t cols, int64_t k, const float* A, int64_t sa, int64_t sp, const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  for (int64_t r = 0; r < rows; r++) {
    float* __restrict c = C + r * ldc;
    if (!accumulate) std::memset(c, 0, sizeof(float) * cols);
    for (int64_t p = 0; p < k; p++) {
      const float a = A[r * sa + p * sp];
      const float* __restrict b = B + p * ldb;
      for (int64_t q = 0; q < cols; q++) c[q] += a * b[q];
    }
  }
}

/** C (m × n) (+)= A · B with A(i, p) = A[i·sa + p·sp] and B (k × n) row-major. */
__attribute__((target_clones("avx512f", "avx2,fma", "default"))) void gemmCore(int64_t m, int64_t n, int64_t k, const float* A, int64_t sa, int64_t sp, const float* B, float* C, bool accumulate) {
  const int64_t mFull = m - m % kRows, nFull = n - n % kCols;
  for (int64_t i = 0; i < mFull; i += kRows) {
    for (int64_t q = 0; q < nFull; q += kCols) tile(k, A + i * sa, sa, sp, B + q, n, C + i * n + q, n, accumulate);
    if (nFull < n) edge(kRows, n - nFull, k, A + i * sa, sa, sp, B + nFull, n, C + i * n + nFull, n, accumulate);
  }
  if (mFull < m) edge(m - mFull, n, k, A + mFull * sa, sa, sp, B, n, C + mFull * n, n, accumulate);
}

}  // namespace

void gemmNN(int64_t m, int64_t n, int64_t k, const float* A, const float* B, float* C, bool accumulate) {
  gemmCore(m, n, k, A, k, 1, B, C, accumulate);
}

void gemmTN(int64_t m, int64_t n, int64_t k, const float* A, const float* B, float* C) {
  gemmCore(m, n, k, A, 1, m, B, C, true);
}

void gemmNT(int64_t m, int64_t n, int64_t k, const float* A, const float* B, float* C, std::vector<float>& scratch, bool accumulate) {
  scratch.resize(k * n);
  for (int64_t q = 0; q < n; q++)
    for (int64_t p = 0; p < k; p++) scratch[p * n + q] = B[q * k + p];
  gemmCore(m, n, k, A, k, 1, scratch.data(), C, accumulate);
}

}  // namespace fsmoe

// Measuring the host's fp32 peak (peak.h).
#include "peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace fsmoe {

namespace {

constexpr int kChains = 12;  // enough independent chains to cover the FMA latency on every unit we target
constexpr int kWidth = 16;   // one 512-bit register of floats; narrower units split it

typedef float V16 __attribute__((vector_size(64)));  // GCC vector extension; narrower units split it

/** `rounds` × kChains × kWidth multiply-adds; returns a value that depends on all of them. */
__attribute__((target_clones("avx512f", "avx2,fma", "default"))) float fmaChains(int64_t rounds, float x) {
  V16 acc[kChains];
  const V16 a = V16{} + 0.999999f, b = V16{} + x;
#pragma GCC unroll 12
  for (int c = 0; c < kChains; c++) acc[c] = V16{} + float(c) * 1e-3f;
  for (int64_t r = 0; r < rounds; r++) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; c++) acc[c] = acc[c] * a + b;
  }
  float s = 0;
  for (int c = 0; c < kChains; c++)
    for (int w = 0; w < kWidth; w++) s += acc[c][w];
  return s;
}

double runOnce(int threads, double seconds) {
  // Calibrate the rounds on this thread so one run lasts about `seconds`.
  int64_t rounds = 1 << 14;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    volatile float sink = fmaChains(rounds, 1e-7f);
    (void)sink;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= seconds / 4 || rounds > (int64_t(1) << 40)) {
      rounds = std::max<int64_t>(1, int64_t(double(rounds) * seconds / std::max(s, 1e-9)));
      break;
    }
    rounds *= 4;
  }
  std::atomic<int> ready{0};
  std::vector<std::thread> pool;
  std::vector<float> sinks(threads);
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; t++)
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      sinks[t] = fmaChains(rounds, 1e-7f * float(t + 1));
    });
  for (auto& th : pool) th.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  volatile float sink = sinks[0];
  (void)sink;
  return 2.0 * double(rounds) * kChains * kWidth * threads / s / 1e9;
}

}  // namespace

double measurePeakGflops(int threads, double seconds) {
  threads = std::max(1, threads);
  double best = 0;
  for (int i = 0; i < 3; i++) best = std::max(best, runOnce(threads, seconds));
  return best;
}

}  // namespace fsmoe

// The GPU check's micro-benchmarks (backend.h benchRouter, benchGemm): routing + order +
// restore of our kernels on synthetic data, and the throughput of one GEMM through the
// backend's GEMM path against the device's dense peak.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend.h"
#include "gemm.h"
#include "kernels.cuh"
#include "util.h"

namespace fsmoe {
namespace gpu {

namespace {

struct Ctx {
  std::string& error;
  bool operator()(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return true;
    if (error.empty()) error = std::string(what) + " failed: " + cudaText(e);
    return false;
  }
};
#define BCU(call)                   \
  do {                              \
    if (!ok((call), #call)) return false; \
  } while (0)

/** Dense FLOP per clock per SM: bf16 tensor cores (dense) and fp32 CUDA cores, by compute capability (approximate, public figures). */
void flopsPerClock(int major, int minor, double& bf16, double& fp32) {
  const int cc = major * 10 + minor;
  bf16 = fp32 = 0;
  if (cc == 80) bf16 = 2048, fp32 = 128;
  else if (cc == 86 || cc == 87 || cc == 89) bf16 = 1024, fp32 = 256;
  else if (cc == 90) bf16 = 4096, fp32 = 256;
  else if (cc >= 100 && cc < 110) bf16 = 8192, fp32 = 256;
  else if (cc == 75) bf16 = 512, fp32 = 128;
}

}  // namespace

bool benchRouter(const RouterBench& b, RouterBenchResult& out, std::string& error) {
  Ctx ok{error};
  const DeviceInfo d = probe();
  if (!d.ok) return error = d.error, false;
  const int64_t T = b.tokens, M = b.hidden, E = b.experts, k = b.topK;
  if (T <= 0 || M <= 0 || E <= 0 || k <= 0 || k > E) return error = "bench-router: bad shape", false;
  const int64_t C = std::max<int64_t>(1, int64_t(std::ceil(b.capacityFactor * double(T) * double(k) / double(E))));
  out.capacity = C;
  Stream stream;
  BCU(cudaStreamCreateWithFlags(stream.out(), cudaStreamNonBlocking));
  cudaStream_t s = stream.get();
  DeviceMemory logits, x, routing, inv, order, y;
  BCU(logits.alloc(sizeof(float) * T * E));
  BCU(x.alloc(sizeof(float) * T * M));
  BCU(routing.alloc(sizeof(int32_t) * 3 * T * k));
  BCU(inv.alloc(sizeof(int32_t) * E * C));
  BCU(order.alloc(sizeof(float) * E * C * M));
  BCU(y.alloc(sizeof(float) * T * M));
  BCU(fillPattern(T * E, logits.as<float>(), 17, 2.0f, s));
  BCU(fillPattern(T * M, x.as<float>(), 29, 1.0f, s));
  RouteArgs a;
  a.T = T, a.E = int(E), a.k = int(k), a.router = kSoftmaxTopk, a.groups = 1, a.topkGroups = 1, a.normalize = 1, a.routeScale = 1.0, a.C = C;
  a.logits = logits.as<float>();
  a.choice = routing.as<int32_t>();
  a.slot = a.choice + T * k;
  a.weight = reinterpret_cast<float*>(a.choice + 2 * T * k);
  const OrderGeom g{T, k, M, E, C};
  Event e0, e1, e2, e3;
  for (Event* e : {&e0, &e1, &e2, &e3}) BCU(cudaEventCreate(e->out()));
  auto once = [&]() {
    BCU(routeForward(a, s));
    BCU(orderForward(g, 1, x.as<float>(), a.choice, a.slot, order.as<float>(), inv.as<int32_t>(), s));
    BCU(iorderForward(g, 1, order.as<float>(), a.choice, a.slot, a.weight, y.as<float>(), s));
    return true;
  };
  for (int i = 0; i < 3; i++)
    if (!once()) return false;
  BCU(cudaStreamSynchronize(s));
  double route = 0, ord = 0, restore = 0;
  const int n = std::max(1, b.iterations);
  for (int i = 0; i < n; i++) {
    BCU(cudaEventRecord(e0.get(), s));
    BCU(routeForward(a, s));
    BCU(cudaEventRecord(e1.get(), s));
    BCU(orderForward(g, 1, x.as<float>(), a.choice, a.slot, order.as<float>(), inv.as<int32_t>(), s));
    BCU(cudaEventRecord(e2.get(), s));
    BCU(iorderForward(g, 1, order.as<float>(), a.choice, a.slot, a.weight, y.as<float>(), s));
    BCU(cudaEventRecord(e3.get(), s));
    BCU(cudaEventSynchronize(e3.get()));
    float t1 = 0, t2 = 0, t3 = 0;
    BCU(cudaEventElapsedTime(&t1, e0.get(), e1.get()));
    BCU(cudaEventElapsedTime(&t2, e1.get(), e2.get()));
    BCU(cudaEventElapsedTime(&t3, e2.get(), e3.get()));
    route += t1 * 1000.0;
    ord += t2 * 1000.0;
    restore += t3 * 1000.0;
  }
  // The whole sequence back to back (what a training step sees), eager launches.
  BCU(cudaEventRecord(e0.get(), s));
  for (int i = 0; i < n; i++)
    if (!once()) return false;
  BCU(cudaEventRecord(e1.get(), s));
  BCU(cudaEventSynchronize(e1.get()));
  float total = 0;
  BCU(cudaEventElapsedTime(&total, e0.get(), e1.get()));
  out.routeUs = route / n;
  out.orderUs = ord / n;
  out.restoreUs = restore / n;
  out.totalUs = total * 1000.0 / n;
  std::vector<int32_t> slots(std::size_t(T * k));
  BCU(cudaMemcpy(slots.data(), a.slot, sizeof(int32_t) * T * k, cudaMemcpyDeviceToHost));
  int64_t dropped = 0;
  for (int32_t v : slots) dropped += v < 0;
  out.dropped = double(dropped) / double(T * k);
  return true;
}

bool benchGemm(const GemmBench& b, GemmBenchResult& out, std::string& error) {
  Ctx ok{error};
  const DeviceInfo d = probe();
  if (!d.ok) return error = d.error, false;
  Stream stream;
  BCU(cudaStreamCreateWithFlags(stream.out(), cudaStreamNonBlocking));
  cudaStream_t s = stream.get();
  GemmEngine engine;
  const GemmMode mode = b.gemm == Gemm::Cublas ? GemmMode::Cublas : b.gemm == Gemm::Builtin ? GemmMode::Builtin : GemmMode::Auto;
  if (!engine.init(s, mode, error)) return false;
  out.engine = engine.name();
  const int64_t es = b.bf16 ? 2 : 4;
  DeviceMemory A, B, C, tmp;
  BCU(A.alloc(std::size_t(es * b.m * b.k * b.batch)));
  BCU(B.alloc(std::size_t(es * b.k * b.n * b.batch)));
  BCU(C.alloc(std::size_t(4 * b.m * b.n * b.batch)));
  if (b.bf16) {
    BCU(tmp.alloc(std::size_t(4 * std::max(b.m * b.k, b.k * b.n) * b.batch)));
    BCU(fillPattern(b.m * b.k * b.batch, tmp.as<float>(), 3, 1.0f, s));
    BCU(toBf16(b.m * b.k * b.batch, tmp.as<float>(), A.as(), s));
    BCU(fillPattern(b.k * b.n * b.batch, tmp.as<float>(), 5, 1.0f, s));
    BCU(toBf16(b.k * b.n * b.batch, tmp.as<float>(), B.as(), s));
  } else {
    BCU(fillPattern(b.m * b.k * b.batch, A.as<float>(), 3, 1.0f, s));
    BCU(fillPattern(b.k * b.n * b.batch, B.as<float>(), 5, 1.0f, s));
  }
  GemmCall c;
  c.m = b.m, c.n = b.n, c.k = b.k;
  c.A = A.as(), c.lda = b.k, c.strideA = b.m * b.k;
  c.B = B.as(), c.ldb = b.n, c.strideB = b.k * b.n;
  c.C = C.as<float>(), c.ldc = b.n, c.strideC = b.m * b.n;
  c.batch = b.batch;
  c.bf16 = b.bf16;
  for (int i = 0; i < 3; i++)
    if (!engine.run(c, error)) return false;
  Event e0, e1;
  BCU(cudaEventCreate(e0.out()));
  BCU(cudaEventCreate(e1.out()));
  const int n = std::max(1, b.iterations);
  BCU(cudaEventRecord(e0.get(), s));
  for (int i = 0; i < n; i++)
    if (!engine.run(c, error)) return false;
  BCU(cudaEventRecord(e1.get(), s));
  BCU(cudaEventSynchronize(e1.get()));
  float ms = 0;
  BCU(cudaEventElapsedTime(&ms, e0.get(), e1.get()));
  out.us = ms * 1000.0 / n;
  out.tflops = 2.0 * double(b.m) * double(b.n) * double(b.k) * double(b.batch) / (out.us * 1e-6) / 1e12;
  double bf16 = 0, fp32 = 0;
  flopsPerClock(d.major, d.minor, bf16, fp32);
  const double perClock = b.bf16 ? bf16 : fp32;
  out.peakTflops = perClock * d.smCount * double(d.clockKHz) * 1e3 / 1e12;
  out.peakNote = perClock > 0 ? std::to_string(d.smCount) + " SMs x " + std::to_string(d.clockKHz / 1000) + " MHz x " + std::to_string(int(perClock)) +
                                    (b.bf16 ? " bf16" : " fp32") + " FLOP/clock/SM (dense)"
                              : "unknown architecture sm_" + std::to_string(d.major) + std::to_string(d.minor);
  return true;
}

}  // namespace gpu
}  // namespace fsmoe

// The CUDA backend of the runtime (ARCHITECTURE.md, "Runtime": cuda). It replays a validated
// plan (../plan.h) with the same semantics as the host executor (../executor.cc): per rank an arena
// of the plan's size in device memory, the plan's three streams as CUDA streams, its waits as
// CUDA events, kernels for routing, order and restore (kernels.cuh), GEMMs through cuBLAS
// (gemm.h), collectives through NCCL or the loopback communicator; and it reports the same
// tensors under the same names (out.mbK, dx.mbK, grad.LN.router, grad.LN.expert, route.LN.mbK).
//
// Processes and ranks:
//   - loopback: every rank of the plan in this process, on one GPU; collectives are
//     device-to-device copies and reductions between the ranks' arenas, ordered by events. NCCL
//     refuses two ranks on one GPU; this is how multi-rank plans are checked on a single GPU.
//   - nccl: one process per GPU (torchrun or an MPI launcher; bootstrap.h), this process runs
//     rank RANK; communicators are split from the world communicator (node, rail, and one per
//     other group), all-to-all is grouped ncclSend/ncclRecv.
// Iterations: one eager warm-up, one eager iteration timed op by op (events), then the iteration
// is captured into a CUDA graph that later iterations launch; eager and graph iterations are
// timed on the GPU. Every CUDA, cuBLAS and NCCL call is checked; a failure names the op, the
// rank and the call, and nothing throws. This header has no CUDA types: the tool includes it
// in every build, and `compiled()` says whether this build has the backend.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../executor.h"
#include "../plan.h"

namespace fsmoe {
namespace gpu {

enum class Precision { Fp32, Bf16 };
enum class Comm { Auto, Loopback, Nccl };
enum class Gemm { Auto, Cublas, Builtin };

struct Options {
  Comm comm = Comm::Auto;
  Precision precision = Precision::Fp32;  // bf16: expert and dispatch/combine GEMM operands rounded to bf16, fp32 accumulation
  Gemm gemm = Gemm::Auto;
  int graphIterations = 20;   // timed CUDA graph launches (0: no graph; the results come from the last eager iteration)
  int eagerIterations = 5;    // timed eager iterations
  bool profileOps = true;     // one eager iteration timed op by op
  int device = -1;            // -1: LOCAL_RANK (nccl) or 0
  int64_t timeoutMs = 300000; // waits for the GPU and for peers
};

struct Timing {
  double setupUs = 0;     // allocation, weights, communicators
  double firstUs = 0;     // the first (warm-up) eager iteration
  double eagerUs = 0;     // mean eager iteration after warm-up (GPU time from first launch to last completion)
  double captureUs = 0;   // capture + instantiate + upload
  double graphUs = 0;     // mean CUDA graph iteration
  int eagerIterations = 0, graphIterations = 0;
  double prologueUs = 0;  // the iteration's prologue on rank 0 (gradients zeroed, inputs copied in), in the profiled iteration
  std::string profileSource;  // how the op times were taken: "graph" (no launch gaps) or "eager" 
};

struct Result {
  /** ok/error, and per local rank: tensors, routing, loss, opUs (the profiled eager iteration). */
  RunResult run;
  /** The plan ranks this process ran, in run.ranks order. */
  std::vector<int> ranks;
  Timing timing;
  std::string device;  // "NVIDIA H200 (sm_90, 132 SMs, 141 GiB)"
  std::string gemm;    // "cuBLAS (libcublas.so.13)" or "built-in"
  std::string comm;    // "loopback (4 ranks on one GPU)" or "NCCL 2.27.3 (libnccl.so.2), rank 1 of 8"
};

struct DeviceInfo {
  bool ok = false;
  int count = 0;
  std::string error;  // "no CUDA device: cudaGetDeviceCount: cudaErrorInsufficientDriver (…)"
  std::string name;
  int major = 0, minor = 0, smCount = 0, clockKHz = 0;
  std::size_t memBytes = 0;
  int driverVersion = 0, runtimeVersion = 0;
};

/** Whether this build has the CUDA backend (nvcc was found). */
bool compiled();
/** The devices (the first one's properties), or why there are none. */
DeviceInfo probe();
/** Replay `plan` on the GPU. Never throws. */
Result run(const Plan& plan, const Options& options);

/**
 * One rank of a plan driven op by op from outside: the C API of generated code
 * (native/include/fsmoe_runtime.h, capi.cc) calls it. open() sets up as run() does (device arena,
 * streams, weights, inputs, communicators) for exactly one rank in this process (a plan of one
 * rank, or one rank of an NCCL world started by a launcher); begin() issues the iteration's
 * prologue, launch(op) one op on its stream without the plan's waits (the caller orders the
 * streams with its own events), end() joins the streams, wait() waits for the device, and
 * results() reads the iteration's tensors under run()'s names. Nothing throws; a failure leaves
 * its message in error().
 */
class Session {
 public:
  struct Impl;
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  bool open(Plan plan, const Options& options);
  bool isOpen() const;
  const Plan& plan() const;
  /** Device, GEMM engine and communicator descriptions, filled by open(). */
  const Result& info() const;
  const std::string& error() const;
  int rank() const;
  /** The cudaStream_t of stream `id` (0 compute, 1 intra, 2 inter), or null. */
  void* stream(int id) const;
  /** This rank's device arena (plan.arenaBytes), or null. */
  char* arena() const;
  bool begin();
  bool launch(int op);
  bool end();
  bool wait();
  bool results(RunResult& out);

 private:
  std::unique_ptr<Impl> impl_;
};

/** Routing + order + restore on random data (the GPU check's router benchmark). */
struct RouterBench {
  int64_t tokens = 4096, hidden = 1024;
  int experts = 8, topK = 2;
  double capacityFactor = 1.25;
  int iterations = 50;
};
struct RouterBenchResult {
  double routeUs = 0, orderUs = 0, restoreUs = 0, totalUs = 0;  // per iteration, eager launches
  int64_t capacity = 0;
  double dropped = 0;  // fraction of routed copies dropped for capacity
};
bool benchRouter(const RouterBench& b, RouterBenchResult& out, std::string& error);

/** One (batched) GEMM's throughput through the backend's GEMM path. */
struct GemmBench {
  int64_t m = 4096, n = 4096, k = 4096, batch = 1;
  bool bf16 = true;
  int iterations = 20;
  Gemm gemm = Gemm::Auto;
};
struct GemmBenchResult {
  double us = 0, tflops = 0;
  double peakTflops = 0;  // from SM count × clock × the architecture's dense FLOP/clock/SM (0: unknown architecture)
  std::string engine, peakNote;
};
bool benchGemm(const GemmBench& b, GemmBenchResult& out, std::string& error);

}  // namespace gpu
}  // namespace fsmoe

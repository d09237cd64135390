// GEMMs of the CUDA backend: cuBLAS (dlopened, libs.h) when it is there, else the built-in
// kernel (kernels.cuh gemmBuiltin). Row-major C (m×n) = op(A) · op(B) (+ C), batched with element
// strides. fp32 GEMMs use CUBLAS_COMPUTE_32F (no TF32), so they stay within 1e-4 of the host;
// bf16 GEMMs take bf16 A and B and accumulate into fp32 C.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cublas_abi.h"
#include "util.h"

namespace fsmoe {
namespace gpu {

enum class GemmMode { Auto, Cublas, Builtin };

struct GemmCall {
  bool transA = false, transB = false;
  int64_t m = 0, n = 0, k = 0;
  const void* A = nullptr;
  int64_t lda = 0, strideA = 0;
  const void* B = nullptr;
  int64_t ldb = 0, strideB = 0;
  float* C = nullptr;
  int64_t ldc = 0, strideC = 0;
  int64_t batch = 1;
  bool accumulate = false;
  bool bf16 = false;  // A and B are bf16
};

/** One stream's GEMM engine (a cuBLAS handle bound to the stream with its own workspace, or the built-in kernel). */
class GemmEngine {
 public:
  GemmEngine() = default;
  GemmEngine(const GemmEngine&) = delete;
  GemmEngine& operator=(const GemmEngine&) = delete;
  ~GemmEngine();

  /** Bind to `stream`. Cublas mode fails with "cuBLAS unavailable: …" when the library is missing; Auto falls back. */
  bool init(cudaStream_t stream, GemmMode mode, std::string& error);
  /** Enqueue one (batched) GEMM. */
  bool run(const GemmCall& c, std::string& error);
  /** "cuBLAS (libcublas.so.13)" or "built-in". */
  std::string name() const;
  bool usesCublas() const { return handle_ != nullptr; }

 private:
  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  DeviceMemory workspace_;
};

}  // namespace gpu
}  // namespace fsmoe

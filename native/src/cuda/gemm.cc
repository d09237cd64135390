// The GEMM dispatcher (gemm.h).
#include "gemm.h"

#include <climits>

#include "kernels.cuh"
#include "libs.h"

namespace fsmoe {
namespace gpu {

GemmEngine::~GemmEngine() {
  if (handle_ != nullptr) libs::cublas().destroy(handle_);
}

bool GemmEngine::init(cudaStream_t stream, GemmMode mode, std::string& error) {
  stream_ = stream;
  if (mode == GemmMode::Builtin) return true;
  const libs::Cublas& cb = libs::cublas();
  if (!cb.ok) {
    if (mode == GemmMode::Cublas) return error = cb.why, false;
    return true;  // Auto: the built-in kernel
  }
  cublasHandle_t h = nullptr;
  cublasStatus_t s = cb.create(&h);
  if (s != CUBLAS_STATUS_SUCCESS) return error = "cublasCreate failed: " + cb.describe(s), false;
  handle_ = h;
  if ((s = cb.setStream(handle_, stream)) != CUBLAS_STATUS_SUCCESS) return error = "cublasSetStream failed: " + cb.describe(s), false;
  // A workspace of our own: no allocation inside a CUDA graph capture (set after SetStream, which resets it).
  constexpr std::size_t kWorkspace = std::size_t(32) << 20;
  const cudaError_t e = workspace_.alloc(kWorkspace);
  if (e != cudaSuccess) return error = "cudaMalloc of the cuBLAS workspace failed: " + cudaText(e), false;
  if ((s = cb.setWorkspace(handle_, workspace_.as(), kWorkspace)) != CUBLAS_STATUS_SUCCESS) return error = "cublasSetWorkspace failed: " + cb.describe(s), false;
  if ((s = cb.setMathMode(handle_, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) return error = "cublasSetMathMode failed: " + cb.describe(s), false;
  return true;
}

std::string GemmEngine::name() const {
  if (handle_ == nullptr) return "built-in";
  return "cuBLAS (" + libs::cublas().path + ")";
}

bool GemmEngine::run(const GemmCall& c, std::string& error) {
  if (c.m <= 0 || c.n <= 0 || c.batch <= 0) return true;
  if (handle_ == nullptr) {
    const cudaError_t e = gemmBuiltin(c.transA, c.transB, c.m, c.n, c.k, c.A, c.lda, c.strideA, c.B, c.ldb, c.strideB, c.C, c.ldc, c.strideC, c.batch, c.accumulate,
                                      c.bf16, stream_);
    if (e != cudaSuccess) return error = "built-in GEMM launch failed: " + cudaText(e), false;
    return true;
  }
  for (int64_t v : {c.m, c.n, c.k, c.lda, c.ldb, c.ldc, c.batch})
    if (v > INT_MAX) return error = "GEMM dimension " + std::to_string(v) + " exceeds cuBLAS's int range", false;
  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands.
  const libs::Cublas& cb = libs::cublas();
  const float one = 1.0f, zero = 0.0f;
  const int type = c.bf16 ? FSMOE_CUDA_R_16BF : FSMOE_CUDA_R_32F;
  const int opB = c.transB ? CUBLAS_OP_T : CUBLAS_OP_N, opA = c.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasStatus_t s;
  if (c.batch == 1)
    s = cb.gemmEx(handle_, opB, opA, int(c.n), int(c.m), int(c.k), &one, c.B, type, int(c.ldb), c.A, type, int(c.lda), c.accumulate ? &one : &zero, c.C,
                  FSMOE_CUDA_R_32F, int(c.ldc), CUBLAS_COMPUTE_32F, FSMOE_CUBLAS_GEMM_DEFAULT);
  else
    s = cb.gemmStridedBatchedEx(handle_, opB, opA, int(c.n), int(c.m), int(c.k), &one, c.B, type, int(c.ldb), c.strideB, c.A, type, int(c.lda), c.strideA,
                                c.accumulate ? &one : &zero, c.C, FSMOE_CUDA_R_32F, int(c.ldc), c.strideC, int(c.batch), CUBLAS_COMPUTE_32F,
                                FSMOE_CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS)
    return error = std::string(c.batch == 1 ? "cublasGemmEx" : "cublasGemmStridedBatchedEx") + " (" + std::to_string(c.m) + "x" + std::to_string(c.n) + "x" +
                   std::to_string(c.k) + (c.bf16 ? " bf16" : " fp32") + ") failed: " + cb.describe(s),
           false;
  return true;
}

}  // namespace gpu
}  // namespace fsmoe

// cuBLAS and NCCL, loaded at run time with dlopen through the ABI headers of this folder
// (cublas_abi.h, nccl_abi.h; TOOLCHAIN.md §3.3). Each library is looked up once per process:
//
//   cuBLAS: $FSMOEC_CUBLAS_PATH if set, else libcublas.so.13, then libcublas.so.12
//   NCCL:   $FSMOEC_NCCL_PATH if set, else libnccl.so.2
//
// A missing library or entry point is not an error until something needs it; then the caller
// gets "cuBLAS unavailable: …" / "NCCL unavailable: …" with every path tried and why it failed.
// This file needs no CUDA header, so it is compiled into every build (with or without nvcc).
#pragma once
#include <string>

#include "cublas_abi.h"
#include "nccl_abi.h"

namespace fsmoe {
namespace libs {

struct Nccl {
  bool ok = false;
  std::string path;   // the file that was loaded
  std::string why;    // when !ok: "NCCL unavailable: …"
  int version = 0;    // ncclGetVersion, e.g. 22703
  ncclGetVersion_fn getVersion = nullptr;
  ncclGetUniqueId_fn getUniqueId = nullptr;
  ncclCommInitRank_fn commInitRank = nullptr;
  ncclCommSplit_fn commSplit = nullptr;
  ncclCommDestroy_fn commDestroy = nullptr;
  ncclCommAbort_fn commAbort = nullptr;
  ncclCommGetAsyncError_fn commGetAsyncError = nullptr;
  ncclCommCount_fn commCount = nullptr;
  ncclCommUserRank_fn commUserRank = nullptr;
  ncclGetErrorString_fn getErrorString = nullptr;
  ncclGetLastError_fn getLastError = nullptr;  // optional (NCCL ≥ 2.13)
  ncclGroupStart_fn groupStart = nullptr;
  ncclGroupEnd_fn groupEnd = nullptr;
  ncclSend_fn send = nullptr;
  ncclRecv_fn recv = nullptr;
  ncclAllGather_fn allGather = nullptr;
  ncclReduceScatter_fn reduceScatter = nullptr;
  ncclAllReduce_fn allReduce = nullptr;

  /** "ncclInvalidUsage (invalid usage): <last error>" for a failed call. */
  std::string describe(ncclResult_t r, ncclComm_t comm = nullptr) const;
};

struct Cublas {
  bool ok = false;
  std::string path;
  std::string why;  // when !ok: "cuBLAS unavailable: …"
  cublasCreate_fn create = nullptr;
  cublasDestroy_fn destroy = nullptr;
  cublasGetVersion_fn getVersion = nullptr;
  cublasSetStream_fn setStream = nullptr;
  cublasSetWorkspace_fn setWorkspace = nullptr;
  cublasSetMathMode_fn setMathMode = nullptr;
  cublasGetStatusString_fn getStatusString = nullptr;  // optional (cuBLAS ≥ 11.4)
  cublasGemmEx_fn gemmEx = nullptr;
  cublasGemmStridedBatchedEx_fn gemmStridedBatchedEx = nullptr;

  /** "CUBLAS_STATUS_INVALID_VALUE (…)" for a failed call. */
  std::string describe(cublasStatus_t s) const;
};

/** The process's NCCL (loaded on first use; the same object afterwards). Thread-safe. */
const Nccl& nccl();
/** The process's cuBLAS (loaded on first use). Thread-safe. */
const Cublas& cublas();

/** Name of an ncclResult_t ("ncclSystemError"). */
const char* ncclResultName(int r);
/** Name of a cublasStatus_t ("CUBLAS_STATUS_ALLOC_FAILED"). */
const char* cublasStatusName(int s);

}  // namespace libs
}  // namespace fsmoe

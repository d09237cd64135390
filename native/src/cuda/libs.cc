// The dlopen shims for cuBLAS and NCCL (libs.h).
#include "libs.h"


#include "dl.h"

namespace fsmoe {
namespace libs {

namespace {

template <class F>
bool bind(const dl::Library& lib, const char* name, F& out, std::string& why, bool optional = false) {
  std::string err;
  void* p = lib.symbol(name, err);
  if (p == nullptr) {
    if (!optional) why = err;
    return optional;
  }
  out = reinterpret_cast<F>(p);
  return true;
}

struct NcclState {
  dl::Library lib;
  Nccl api;
};

struct CublasState {
  dl::Library lib;
  Cublas api;
};

void loadNccl(NcclState& s) {
  Nccl& n = s.api;
  std::string why;
  const auto paths = dl::candidates("FSMOEC_NCCL_PATH", {"libnccl.so.2"});
  if (!s.lib.open(paths, why)) {
    n.why = "NCCL unavailable: cannot load " + std::string(std::getenv("FSMOEC_NCCL_PATH") ? "$FSMOEC_NCCL_PATH" : "libnccl.so.2") + " (" + why +
            "); install NCCL (e.g. the nvidia-nccl-cu13 wheel) or point FSMOEC_NCCL_PATH at libnccl.so.2";
    return;
  }
  n.path = s.lib.path();
  const bool all = bind(s.lib, "ncclGetVersion", n.getVersion, why) && bind(s.lib, "ncclGetUniqueId", n.getUniqueId, why) &&
                   bind(s.lib, "ncclCommInitRank", n.commInitRank, why) && bind(s.lib, "ncclCommSplit", n.commSplit, why) &&
                   bind(s.lib, "ncclCommDestroy", n.commDestroy, why) && bind(s.lib, "ncclCommAbort", n.commAbort, why) &&
                   bind(s.lib, "ncclCommGetAsyncError", n.commGetAsyncError, why) && bind(s.lib, "ncclCommCount", n.commCount, why) &&
                   bind(s.lib, "ncclCommUserRank", n.commUserRank, why) && bind(s.lib, "ncclGetErrorString", n.getErrorString, why) &&
                   bind(s.lib, "ncclGetLastError", n.getLastError, why, true) && bind(s.lib, "ncclGroupStart", n.groupStart, why) &&
                   bind(s.lib, "ncclGroupEnd", n.groupEnd, why) && bind(s.lib, "ncclSend", n.send, why) && bind(s.lib, "ncclRecv", n.recv, why) &&
                   bind(s.lib, "ncclAllGather", n.allGather, why) && bind(s.lib, "ncclReduceScatter", n.reduceScatter, why) &&
                   bind(s.lib, "ncclAllReduce", n.allReduce, why);
  if (!all) {
    n.why = "NCCL unavailable: " + n.path + " lacks an entry point: " + why + " (NCCL 2.18 or newer is needed for ncclCommSplit)";
    return;
  }
  int v = 0;
  if (n.getVersion(&v) != ncclSuccess) {
    n.why = "NCCL unavailable: ncclGetVersion failed in " + n.path;
    return;
  }
  n.version = v;
  n.ok = true;
}

void loadCublas(CublasState& s) {
  Cublas& c = s.api;
  std::string why;
  const auto paths = dl::candidates("FSMOEC_CUBLAS_PATH", {"libcublas.so.13", "libcublas.so.12"});
  if (!s.lib.open(paths, why)) {
    c.why = "cuBLAS unavailable: cannot load " + std::string(std::getenv("FSMOEC_CUBLAS_PATH") ? "$FSMOEC_CUBLAS_PATH" : "libcublas.so.13 or libcublas.so.12") +
            " (" + why + "); install cuBLAS (CUDA toolkit or the nvidia-cublas wheel) or point FSMOEC_CUBLAS_PATH at libcublas.so.*";
    return;
  }
  c.path = s.lib.path();
  const bool all = bind(s.lib, "cublasCreate_v2", c.create, why) && bind(s.lib, "cublasDestroy_v2", c.destroy, why) &&
                   bind(s.lib, "cublasGetVersion_v2", c.getVersion, why) && bind(s.lib, "cublasSetStream_v2", c.setStream, why) &&
                   bind(s.lib, "cublasSetWorkspace_v2", c.setWorkspace, why) && bind(s.lib, "cublasSetMathMode", c.setMathMode, why) &&
                   bind(s.lib, "cublasGetStatusString", c.getStatusString, why, true) && bind(s.lib, "cublasGemmEx", c.gemmEx, why) &&
                   bind(s.lib, "cublasGemmStridedBatchedEx", c.gemmStridedBatchedEx, why);
  if (!all) {
    c.why = "cuBLAS unavailable: " + c.path + " lacks an entry point: " + why;
    return;
  }
  c.ok = true;
}

}  // namespace

const Nccl& nccl() {
  static NcclState* s = [] {
    auto* st = new NcclState();  // never destroyed: NCCL may still run at exit
    loadNccl(*st);
    return st;
  }();
  return s->api;
}

const Cublas& cublas() {
  static CublasState* s = [] {
    auto* st = new CublasState();
    loadCublas(*st);
    return st;
  }();
  return s->api;
}

const char* ncclResultName(int r) {
  switch (r) {
    case ncclSuccess: return "ncclSuccess";
    case ncclUnhandledCudaError: return "ncclUnhandledCudaError";
    case ncclSystemError: return "ncclSystemError";
    case ncclInternalError: return "ncclInternalError";
    case ncclInvalidArgument: return "ncclInvalidArgument";
    case ncclInvalidUsage: return "ncclInvalidUsage";
    case ncclRemoteError: return "ncclRemoteError";
    case ncclInProgress: return "ncclInProgress";
    default: return "ncclResult?";
  }
}

const char* cublasStatusName(int s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "cublasStatus?";
  }
}

std::string Nccl::describe(ncclResult_t r, ncclComm_t comm) const {
  std::string s = ncclResultName(r);
  if (getErrorString != nullptr) s += std::string(" (") + getErrorString(r) + ")";
  if (getLastError != nullptr) {
    const char* last = getLastError(comm);
    if (last != nullptr && *last != '\0') s += std::string(": ") + last;
  }
  return s;
}

std::string Cublas::describe(cublasStatus_t st) const {
  std::string s = cublasStatusName(st);
  if (getStatusString != nullptr) s += std::string(" (") + getStatusString(st) + ")";
  return s;
}

}  // namespace libs
}  // namespace fsmoe

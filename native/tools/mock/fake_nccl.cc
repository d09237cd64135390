// A stand-in libnccl.so.2 for the CUDA executor's tests without a GPU (test/cuda-executor.test.ts):
// one-rank communicators only, built against our own ABI header (src/cuda/nccl_abi.h) and loaded
// through FSMOEC_NCCL_PATH like the real library. Its data movement goes through the (mock) CUDA
// runtime's cudaMemcpyAsync, which the test executable exports, so it runs in stream order and is
// recorded into CUDA graphs like real NCCL work. FAKE_NCCL_HANG=1 makes ncclCommInitRank block
// forever (a stuck bootstrap). Test-only: never part of a shipped build.
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <thread>

#include "../../src/cuda/nccl_abi.h"

struct ncclComm {
  int nranks = 1;
};

namespace {
struct Pending {
  const void* buf;
  size_t count;
  ncclDataType_t type;
};
std::deque<Pending> sends;
size_t elemBytes(ncclDataType_t t) {
  switch (t) {
    case ncclInt8:
    case ncclUint8: return 1;
    case ncclFloat16:
    case ncclBfloat16: return 2;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64: return 8;
    default: return 4;
  }
}
ncclResult_t copy(void* dst, const void* src, size_t bytes, fsmoe_nccl_stream_t s) {
  if (dst == src || bytes == 0) return ncclSuccess;
  return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, reinterpret_cast<cudaStream_t>(s)) == cudaSuccess ? ncclSuccess : ncclUnhandledCudaError;
}
}  // namespace

extern "C" {
ncclResult_t ncclGetVersion(int* v) { return *v = 22703, ncclSuccess; }
ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  std::memset(id, 0, sizeof *id);
  return ncclSuccess;
}
ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId, int rank) {
  if (const char* h = std::getenv("FAKE_NCCL_HANG"); h && *h == '1')
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  if (nranks != 1 || rank != 0) return ncclInvalidUsage;
  *comm = new ncclComm();
  return ncclSuccess;
}
ncclResult_t ncclCommSplit(ncclComm_t, int color, int, ncclComm_t* out, void*) {
  *out = color < 0 ? nullptr : new ncclComm();
  return ncclSuccess;
}
ncclResult_t ncclCommDestroy(ncclComm_t c) {
  delete c;
  return ncclSuccess;
}
ncclResult_t ncclCommAbort(ncclComm_t c) {
  delete c;
  return ncclSuccess;
}
ncclResult_t ncclCommGetAsyncError(ncclComm_t, ncclResult_t* r) { return *r = ncclSuccess, ncclSuccess; }
ncclResult_t ncclCommCount(const ncclComm_t c, int* n) { return *n = c->nranks, ncclSuccess; }
ncclResult_t ncclCommUserRank(const ncclComm_t, int* r) { return *r = 0, ncclSuccess; }
const char* ncclGetErrorString(ncclResult_t) { return "fake NCCL error"; }
const char* ncclGetLastError(ncclComm_t) { return ""; }
ncclResult_t ncclGroupStart() { return ncclSuccess; }
ncclResult_t ncclGroupEnd() { return sends.empty() ? ncclSuccess : ncclInvalidUsage; }
ncclResult_t ncclSend(const void* buf, size_t count, ncclDataType_t t, int peer, ncclComm_t, fsmoe_nccl_stream_t) {
  if (peer != 0) return ncclInvalidArgument;
  sends.push_back({buf, count, t});
  return ncclSuccess;
}
ncclResult_t ncclRecv(void* buf, size_t count, ncclDataType_t t, int peer, ncclComm_t, fsmoe_nccl_stream_t s) {
  if (peer != 0 || sends.empty() || sends.front().count != count || sends.front().type != t) return ncclInvalidUsage;
  const Pending p = sends.front();
  sends.pop_front();
  return copy(buf, p.buf, count * elemBytes(t), s);
}
ncclResult_t ncclAllGather(const void* send, void* recv, size_t n, ncclDataType_t t, ncclComm_t, fsmoe_nccl_stream_t s) { return copy(recv, send, n * elemBytes(t), s); }
ncclResult_t ncclReduceScatter(const void* send, void* recv, size_t n, ncclDataType_t t, ncclRedOp_t, ncclComm_t, fsmoe_nccl_stream_t s) {
  return copy(recv, send, n * elemBytes(t), s);
}
ncclResult_t ncclAllReduce(const void* send, void* recv, size_t n, ncclDataType_t t, ncclRedOp_t, ncclComm_t, fsmoe_nccl_stream_t s) {
  return copy(recv, send, n * elemBytes(t), s);
}
}

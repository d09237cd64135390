// The CPU stand-in of the CUDA runtime (cuda_mock.h).
#include "cuda_mock.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

struct CUstream_st {
  int id;
  long seq = 0;  // work items issued
};
struct CUevent_st {
  bool recorded = false;
  bool inCapture = false;
  CUstream_st* stream = nullptr;
  long seq = 0;
  std::chrono::steady_clock::time_point at{};
};
struct CUgraph_st {
  std::vector<std::function<void()>> work;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> work;
};

namespace fsmoe {
namespace mock {

namespace {

struct Capture {
  CUstream_st* origin = nullptr;
  std::set<CUstream_st*> members;
  std::map<CUstream_st*, long> joined;  // the origin waited on this stream up to seq
  std::unique_ptr<CUgraph_st> graph;
  cudaError_t error = cudaSuccess;
};

std::unique_ptr<Capture> g_capture;
int g_streams = 0;

bool noDevice() {
  const char* v = std::getenv("FSMOE_MOCK_NO_DEVICE");
  return v != nullptr && *v == '1';
}

cudaError_t captureError(cudaError_t e) {
  if (g_capture && g_capture->error == cudaSuccess) g_capture->error = e;
  return e;
}

/** A synchronous call: illegal while a capture is under way. */
bool syncForbidden() { return g_capture != nullptr; }

}  // namespace

cudaError_t enqueue(cudaStream_t stream, std::function<void()> work) {
  if (g_capture) {
    if (stream == nullptr || !g_capture->members.count(stream)) return captureError(cudaErrorStreamCaptureIsolation);  // work outside the capture
    stream->seq++;
    g_capture->graph->work.push_back(std::move(work));
    return cudaSuccess;
  }
  if (stream != nullptr) stream->seq++;
  work();
  return cudaSuccess;
}

}  // namespace mock
}  // namespace fsmoe

using fsmoe::mock::enqueue;
using fsmoe::mock::g_capture;

extern "C" {

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorStreamCaptureIsolation: return "cudaErrorStreamCaptureIsolation";
    case cudaErrorStreamCaptureUnjoined: return "cudaErrorStreamCaptureUnjoined";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    default: return "cudaError(mock)";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorStreamCaptureIsolation: return "work on a stream outside the capture (mock)";
    case cudaErrorStreamCaptureUnjoined: return "the capture has a fork that was not joined (mock)";
    case cudaErrorStreamCaptureUnsupported: return "a synchronous call inside a capture (mock)";
    default: return "mock CUDA error";
  }
}
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
cudaError_t cudaPeekAtLastError(void) { return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int* n) {
  if (fsmoe::mock::noDevice()) return *n = 0, cudaErrorInsufficientDriver;
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) { return *v = 13000, cudaSuccess; }
cudaError_t cudaRuntimeGetVersion(int* v) { return *v = 13000, cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  std::memset(p, 0, sizeof *p);
  std::strcpy(p->name, "fsmoe mock GPU (CPU)");
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 1;
  p->totalGlobalMem = std::size_t(16) << 30;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int) {
  *v = a == cudaDevAttrClockRate ? 1000000 : a == cudaDevAttrMultiProcessorCount ? 1 : 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDevice(int* d) { return *d = 0, cudaSuccess; }
cudaError_t cudaDeviceGetPCIBusId(char* bus, int len, int) {
  std::snprintf(bus, std::size_t(len), "0000:00:00.0");
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* freeB, size_t* total) {
  *freeB = std::size_t(8) << 30;
  *total = std::size_t(16) << 30;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t n) {
  if (fsmoe::mock::syncForbidden()) return fsmoe::mock::captureError(cudaErrorStreamCaptureUnsupported);
  *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
  if (*p == nullptr) return cudaErrorMemoryAllocation;
  std::memset(*p, 0xff, n);  // NaN floats, -1 ints: what nothing wrote shows up
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int v, size_t n) {
  if (fsmoe::mock::syncForbidden()) return fsmoe::mock::captureError(cudaErrorStreamCaptureUnsupported);
  std::memset(p, v, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) {
  if (fsmoe::mock::syncForbidden()) return fsmoe::mock::captureError(cudaErrorStreamCaptureUnsupported);
  std::memmove(d, s, n);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t s) {
  return enqueue(s, [=] { std::memset(p, v, n); });
}
cudaError_t cudaMemcpyAsync(void* d, const void* src, size_t n, cudaMemcpyKind, cudaStream_t s) {
  return enqueue(s, [=] { std::memmove(d, src, n); });
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) {
  *s = new CUstream_st{++fsmoe::mock::g_streams};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamQuery(cudaStream_t) { return fsmoe::mock::syncForbidden() ? fsmoe::mock::captureError(cudaErrorStreamCaptureUnsupported) : cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return fsmoe::mock::syncForbidden() ? fsmoe::mock::captureError(cudaErrorStreamCaptureUnsupported) : cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { return fsmoe::mock::syncForbidden() ? fsmoe::mock::captureError(cudaErrorStreamCaptureUnsupported) : cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st();
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (e == nullptr) return cudaErrorInvalidResourceHandle;
  e->recorded = true;
  e->inCapture = g_capture != nullptr;
  e->stream = s;
  const cudaError_t r = enqueue(s, [e] { e->at = std::chrono::steady_clock::now(); });
  e->seq = s != nullptr ? s->seq : 0;
  return r;
}
cudaError_t cudaEventRecordWithFlags(cudaEvent_t e, cudaStream_t s, unsigned int) { return cudaEventRecord(e, s); }
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int) {
  if (e == nullptr) return cudaErrorInvalidResourceHandle;
  if (!g_capture) return cudaSuccess;  // work already ran in issue order
  if (!e->recorded || !e->inCapture) return fsmoe::mock::captureError(cudaErrorStreamCaptureIsolation);  // an event from outside the capture
  // Waiting on a captured event joins the capture (a fork); the origin waiting joins a stream back.
  g_capture->members.insert(s);
  if (s == g_capture->origin && e->stream != nullptr) g_capture->joined[e->stream] = std::max(g_capture->joined[e->stream], e->seq);
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return fsmoe::mock::syncForbidden() ? fsmoe::mock::captureError(cudaErrorStreamCaptureUnsupported) : cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (a == nullptr || b == nullptr || !a->recorded || !b->recorded) return cudaErrorInvalidResourceHandle;
  *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
  return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  if (g_capture) return cudaErrorIllegalState;
  g_capture.reset(new fsmoe::mock::Capture());
  g_capture->origin = s;
  g_capture->members.insert(s);
  g_capture->graph.reset(new CUgraph_st());
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g) {
  if (!g_capture || g_capture->origin != s) return cudaErrorIllegalState;
  std::unique_ptr<fsmoe::mock::Capture> c = std::move(g_capture);
  if (c->error != cudaSuccess) return c->error;
  for (CUstream_st* m : c->members)
    if (m != c->origin && m->seq > c->joined[m]) return cudaErrorStreamCaptureUnjoined;
  *g = c->graph.release();
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t g, unsigned long long) {
  *exec = new CUgraphExec_st{g->work};
  return cudaSuccess;
}
cudaError_t cudaGraphUpload(cudaGraphExec_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  if (g_capture) return cudaErrorStreamCaptureUnsupported;
  for (auto& w : exec->work) w();
  if (s) s->seq++;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
  delete e;
  return cudaSuccess;
}

}  // extern "C"

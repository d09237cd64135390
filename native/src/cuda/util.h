// CUDA runtime helpers of the CUDA backend: error text and RAII owners of device memory,
// streams, events and graphs. Destructors release quietly (they never throw and never abort);
// every creating call is checked by the caller through the returned cudaError_t.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

namespace fsmoe {
namespace gpu {

/** "cudaErrorInvalidValue (invalid argument)". */
inline std::string cudaText(cudaError_t e) { return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")"; }

template <class T, class Deleter>
class Owner {
 public:
  Owner() = default;
  Owner(const Owner&) = delete;
  Owner& operator=(const Owner&) = delete;
  Owner(Owner&& o) noexcept : h_(std::exchange(o.h_, T{})) {}
  Owner& operator=(Owner&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, T{});
    }
    return *this;
  }
  ~Owner() { reset(); }
  void reset() {
    if (h_ != T{}) Deleter()(h_);
    h_ = T{};
  }
  T get() const { return h_; }
  T* out() {
    reset();
    return &h_;
  }
  explicit operator bool() const { return h_ != T{}; }

 private:
  T h_{};
};

struct FreeDevice {
  void operator()(void* p) const { cudaFree(p); }
};
struct DestroyStream {
  void operator()(cudaStream_t s) const { cudaStreamDestroy(s); }
};
struct DestroyEvent {
  void operator()(cudaEvent_t e) const { cudaEventDestroy(e); }
};
struct DestroyGraph {
  void operator()(cudaGraph_t g) const { cudaGraphDestroy(g); }
};
struct DestroyGraphExec {
  void operator()(cudaGraphExec_t g) const { cudaGraphExecDestroy(g); }
};

using Stream = Owner<cudaStream_t, DestroyStream>;
using Event = Owner<cudaEvent_t, DestroyEvent>;
using Graph = Owner<cudaGraph_t, DestroyGraph>;
using GraphExec = Owner<cudaGraphExec_t, DestroyGraphExec>;

/** Device memory of a known size. */
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(DeviceMemory&&) noexcept = default;
  DeviceMemory& operator=(DeviceMemory&&) noexcept = default;
  cudaError_t alloc(std::size_t bytes) {
    mem_.reset();
    bytes_ = 0;
    if (bytes == 0) return cudaSuccess;
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) return e;
    *mem_.out() = p;
    bytes_ = bytes;
    return cudaSuccess;
  }
  template <class T = void>
  T* as() const {
    return static_cast<T*>(mem_.get());
  }
  std::size_t bytes() const { return bytes_; }

 private:
  Owner<void*, FreeDevice> mem_;
  std::size_t bytes_ = 0;
};

}  // namespace gpu
}  // namespace fsmoe

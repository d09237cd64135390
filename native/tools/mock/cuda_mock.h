// A CPU stand-in for the CUDA runtime, for testing the CUDA executor on machines without a GPU
// (test/cuda-executor.test.ts builds fsmoe-replay against it). Device memory is host memory filled
// with NaN bytes (reads of memory nothing wrote show up); every stream runs its work at once, in
// issue order; a stream capture records the work instead and checks the capture's shape (work only
// on streams that joined it, every forked stream joined back, no synchronous call inside), and a
// graph launch replays the recording. Test-only: never part of a shipped build.
#pragma once
#include <cuda_runtime.h>

#include <functional>

namespace fsmoe {
namespace mock {

/** Run `work` on `stream` now, or record it into the capture under way. */
cudaError_t enqueue(cudaStream_t stream, std::function<void()> work);

}  // namespace mock
}  // namespace fsmoe

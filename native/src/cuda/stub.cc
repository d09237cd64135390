// The CUDA backend's entry points in a build without nvcc (backend.h): every one reports that
// this build has no CUDA backend, so the tools build and run everywhere.
#include "backend.h"

namespace fsmoe {
namespace gpu {

namespace {
const char* kNoCuda = "no CUDA device: this build has no CUDA backend (nvcc was not found when it was built; install the CUDA toolkit and rebuild)";
}

bool compiled() { return false; }

DeviceInfo probe() {
  DeviceInfo d;
  d.error = kNoCuda;
  return d;
}

Result run(const Plan&, const Options&) {
  Result r;
  r.run.error = kNoCuda;
  return r;
}

bool benchRouter(const RouterBench&, RouterBenchResult&, std::string& error) {
  error = kNoCuda;
  return false;
}

bool benchGemm(const GemmBench&, GemmBenchResult&, std::string& error) {
  error = kNoCuda;
  return false;
}

}  // namespace gpu
}  // namespace fsmoe

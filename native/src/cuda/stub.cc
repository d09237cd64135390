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

struct Session::Impl {
  Plan plan;
  Result info;
  std::string error = kNoCuda;
};
Session::Session() : impl_(new Impl) {}
Session::~Session() = default;
bool Session::open(Plan, const Options&) { return false; }
bool Session::isOpen() const { return false; }
const Plan& Session::plan() const { return impl_->plan; }
const Result& Session::info() const { return impl_->info; }
const std::string& Session::error() const { return impl_->error; }
int Session::rank() const { return -1; }
void* Session::stream(int) const { return nullptr; }
char* Session::arena() const { return nullptr; }
bool Session::begin() { return false; }
bool Session::launch(int) { return false; }
bool Session::end() { return false; }
bool Session::wait() { return false; }
bool Session::results(RunResult& out) {
  out = RunResult();
  out.error = kNoCuda;
  return false;
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

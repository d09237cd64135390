// fsmoe-replay: the standalone replay tool of the fsmoe runtime, built from the same C++ sources
// as the Node addon (native/src) plus the CUDA backend (native/src/cuda) where nvcc exists. It
// needs no Node: the GPU check (scripts/gpu-check.sh) runs it on plans that `fsmoec` compiled
// beforehand (scripts/gpu-prepare.ts), against host-reference outputs prepared with them.
//
//   fsmoe-replay info [--json FILE]                      build, device, cuBLAS, NCCL, bootstrap
//   fsmoe-replay run PLAN [options]                      replay one plan (cuda or host), compare with --expected
//   fsmoe-replay reference PLAN --write FILE             the host reference of a plan as an fsmoe-tensors/1 file
//   fsmoe-replay compare FILE REF [--tolerance X]        compare two fsmoe-tensors/1 files
//   fsmoe-replay suite MANIFEST --out DIR [options]      the GPU check's cases, profile sweep and benchmarks
//   fsmoe-replay bench-router [shape] [--json FILE]      routing + order + restore of our kernels
//   fsmoe-replay bench-gemm [shape] [--json FILE]        one GEMM's throughput against the device's peak
//   fsmoe-replay rendezvous [--payload S]                bootstrap from RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT and all-gather
//
// Exit status: 0 ok, 1 a check failed, 2 bad usage or a plan that does not load, 3 unavailable
// (no CUDA device, no NCCL or cuBLAS where one was required), 4 a run failed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "../src/cuda/backend.h"
#include "../src/cuda/bootstrap.h"
#include "../src/cuda/libs.h"
#include "../src/executor.h"
#include "../src/json.h"
#include "../src/plan.h"
#include "predict.h"
#include "tensors.h"

using namespace fsmoe;

namespace {

constexpr int kOk = 0, kCheckFailed = 1, kUsage = 2, kUnavailable = 3, kRunFailed = 4;

// ── Small utilities ──────────────────────────────────────────────────────────────────────────

bool readFile(const std::string& path, std::string& out, std::string& error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return error = "cannot read " + path, false;
  std::stringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

bool writeFile(const std::string& path, const std::string& text, std::string& error) {
  std::ofstream f(path, std::ios::binary);
  if (!f) return error = "cannot write " + path, false;
  f << text;
  return bool(f) || (error = "writing " + path + " failed", false);
}

std::string dirOf(const std::string& path) {
  const std::size_t s = path.rfind('/');
  return s == std::string::npos ? "." : path.substr(0, s);
}

std::string join(const std::string& dir, const std::string& rel) { return rel.empty() || rel[0] == '/' ? rel : dir + "/" + rel; }

bool makeDirs(const std::string& path) {
  std::string cur;
  for (std::size_t i = 0; i <= path.size(); i++) {
    if (i == path.size() || path[i] == '/') {
      if (!cur.empty()) mkdir(cur.c_str(), 0755);
    }
    if (i < path.size()) cur += path[i];
  }
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string jstr(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += char(c);
    else if (c == '\n') o += "\\n";
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else o += char(c);
  }
  return o + "\"";
}

std::string jnum(double v) {
  if (!std::isfinite(v)) return "null";
  char b[40];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

/** A JSON object built field by field. */
class Obj {
 public:
  Obj& add(const std::string& k, const std::string& rawJson) {
    body_ += (body_.empty() ? "" : ", ") + jstr(k) + ": " + rawJson;
    return *this;
  }
  Obj& str(const std::string& k, const std::string& v) { return add(k, jstr(v)); }
  Obj& num(const std::string& k, double v) { return add(k, jnum(v)); }
  Obj& boolean(const std::string& k, bool v) { return add(k, v ? "true" : "false"); }
  std::string text() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

std::string arr(const std::vector<std::string>& items) {
  std::string s = "[";
  for (std::size_t i = 0; i < items.size(); i++) s += (i ? ",\n  " : "") + items[i];
  return s + "]";
}

/** Arguments: positionals and --name value / --flag. */
struct Args {
  std::vector<std::string> pos;
  std::map<std::string, std::string> opt;
  std::string error;
  bool has(const std::string& k) const { return opt.count(k) > 0; }
  std::string get(const std::string& k, const std::string& d = "") const {
    auto it = opt.find(k);
    return it == opt.end() ? d : it->second;
  }
  bool number(const std::string& k, double& out, double lo, double hi) {
    if (!has(k)) return true;
    char* end = nullptr;
    const std::string v = get(k);
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(x >= lo && x <= hi)) {
      error = "--" + k + " " + v + ": expected a number in [" + jnum(lo) + ", " + jnum(hi) + "]";
      return false;
    }
    out = x;
    return true;
  }
  bool integer(const std::string& k, int64_t& out, int64_t lo, int64_t hi) {
    double x = double(out);
    if (!number(k, x, double(lo), double(hi))) return false;
    if (std::floor(x) != x) return error = "--" + k + ": expected a whole number", false;
    out = int64_t(x);
    return true;
  }
};

const std::vector<std::string> kFlags = {"no-sweep", "no-bench", "no-graph", "no-profile-ops", "help"};

Args parseArgs(int argc, char** argv, int first) {
  Args a;
  for (int i = first; i < argc; i++) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      std::string k = s.substr(2), v;
      const std::size_t eq = k.find('=');
      if (eq != std::string::npos) {
        v = k.substr(eq + 1);
        k = k.substr(0, eq);
      } else if (std::find(kFlags.begin(), kFlags.end(), k) == kFlags.end()) {
        if (i + 1 >= argc) {
          a.error = "--" + k + " needs a value";
          return a;
        }
        v = argv[++i];
      }
      a.opt[k] = v;
    } else {
      a.pos.push_back(s);
    }
  }
  return a;
}

int usage(const std::string& why) {
  if (!why.empty()) std::fprintf(stderr, "fsmoe-replay: %s\n", why.c_str());
  std::fprintf(stderr,
               "usage: fsmoe-replay info [--json FILE]\n"
               "       fsmoe-replay run PLAN [--backend cuda|host] [--expected FILE] [--tolerance X] [--precision fp32|bf16]\n"
               "                        [--comm auto|loopback|nccl] [--gemm auto|cublas|builtin] [--graph-iterations N]\n"
               "                        [--eager-iterations N] [--no-profile-ops] [--write FILE] [--json FILE]\n"
               "       fsmoe-replay reference PLAN --write FILE\n"
               "       fsmoe-replay compare FILE REF [--tolerance X]\n"
               "       fsmoe-replay suite MANIFEST --out DIR [--backend cuda|host] [--only NAME,...] [--no-sweep]\n"
               "       fsmoe-replay bench-router [--tokens T] [--hidden M] [--experts E] [--top-k K] [--capacity-factor F] [--iterations N] [--json FILE]\n"
               "       fsmoe-replay bench-gemm [--m M] [--n N] [--k K] [--batch B] [--dtype bf16|fp32] [--gemm auto|cublas|builtin] [--iterations N] [--json FILE]\n"
               "       fsmoe-replay rendezvous [--payload TEXT] [--timeout-ms N]\n");
  return kUsage;
}

bool unavailable(const std::string& e) {
  return e.rfind("no CUDA device", 0) == 0 || e.rfind("no usable CUDA device", 0) == 0 || e.rfind("NCCL unavailable", 0) == 0 || e.find("cuBLAS unavailable") != std::string::npos;
}

/** Load a plan with limits for the backend (the host's are host-sized). */
bool loadPlanFile(const std::string& path, bool cuda, Plan& plan, std::string& text, std::string& error) {
  if (!readFile(path, text, error)) return false;
  Limits limits;
  if (cuda) {
    limits.maxWorld = 64;
    limits.maxArenaBytes = int64_t(1) << 40;
    limits.maxTotalBytes = int64_t(1) << 46;
    limits.maxOps = int64_t(1) << 22;
    limits.maxPlanBytes = int64_t(1) << 30;
  }
  if (!loadPlan(text.data(), text.size(), limits, plan, error)) return error = path + ": " + error, false;
  return true;
}

// ── One run ─────────────────────────────────────────────────────────────────────────────────

struct RunSpec {
  bool cuda = true;
  gpu::Options gpu;
  int hostIterations = 2;
};

struct RunOutcome {
  bool ok = false;
  std::string error;
  std::vector<RankResult> ranks;
  std::vector<int> ids;
  gpu::Timing timing;
  std::string device, gemm, comm;
  double hostIterationUs = 0;
};

RunOutcome runOne(const Plan& plan, const RunSpec& spec) {
  RunOutcome o;
  if (spec.cuda) {
    gpu::Result r = gpu::run(plan, spec.gpu);
    o.ok = r.run.ok;
    o.error = r.run.error;
    o.ranks = std::move(r.run.ranks);
    o.ids = r.ranks;
    o.timing = r.timing;
    o.device = r.device;
    o.gemm = r.gemm;
    o.comm = r.comm;
    return o;
  }
  RunOptions ro;
  ro.iterations = spec.hostIterations;
  ro.timeoutMs = 60000;
  const auto t0 = std::chrono::steady_clock::now();
  RunResult r = runPlan(plan, ro);
  o.ok = r.ok;
  o.error = r.error;
  o.ranks = std::move(r.ranks);
  for (int i = 0; i < int(o.ranks.size()); i++) o.ids.push_back(i);
  if (!r.iterationUs.empty()) o.hostIterationUs = r.iterationUs.back();
  o.timing.eagerUs = o.hostIterationUs;
  o.timing.setupUs = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  o.device = "host (CPU threads)";
  o.gemm = "host loops";
  o.comm = "in-process";
  return o;
}

bool parseRunSpec(Args& a, RunSpec& s, std::string& error) {
  const std::string backend = a.get("backend", "cuda");
  if (backend != "cuda" && backend != "host") return error = "--backend: expected cuda or host", false;
  s.cuda = backend == "cuda";
  const std::string prec = a.get("precision", "fp32"), comm = a.get("comm", "auto"), gemm = a.get("gemm", "auto");
  if (prec != "fp32" && prec != "bf16") return error = "--precision: expected fp32 or bf16", false;
  if (comm != "auto" && comm != "loopback" && comm != "nccl") return error = "--comm: expected auto, loopback or nccl", false;
  if (gemm != "auto" && gemm != "cublas" && gemm != "builtin") return error = "--gemm: expected auto, cublas or builtin", false;
  s.gpu.precision = prec == "bf16" ? gpu::Precision::Bf16 : gpu::Precision::Fp32;
  s.gpu.comm = comm == "nccl" ? gpu::Comm::Nccl : comm == "loopback" ? gpu::Comm::Loopback : gpu::Comm::Auto;
  s.gpu.gemm = gemm == "cublas" ? gpu::Gemm::Cublas : gemm == "builtin" ? gpu::Gemm::Builtin : gpu::Gemm::Auto;
  int64_t g = s.gpu.graphIterations, e = s.gpu.eagerIterations, h = s.hostIterations, t = s.gpu.timeoutMs;
  if (!a.integer("graph-iterations", g, 0, 100000) || !a.integer("eager-iterations", e, 0, 100000) || !a.integer("host-iterations", h, 1, 1000) ||
      !a.integer("timeout-ms", t, 1, 86400000))
    return error = a.error, false;
  if (a.has("no-graph")) g = 0;
  s.gpu.graphIterations = int(g);
  s.gpu.eagerIterations = int(e);
  s.hostIterations = int(h);
  s.gpu.timeoutMs = t;
  s.gpu.profileOps = !a.has("no-profile-ops");
  return true;
}

std::string comparisonJson(const tensors::Comparison& c) {
  std::vector<std::string> ts;
  for (const auto& t : c.tensors) ts.push_back(Obj().num("rank", t.rank).str("name", t.name).num("elements", double(t.elements)).num("relError", t.relError).boolean("ok", t.ok).text());
  std::vector<std::string> miss;
  for (const auto& m : c.missing) miss.push_back(jstr(m));
  return Obj()
      .boolean("ok", c.ok)
      .num("tolerance", c.tolerance)
      .num("maxRelError", c.maxRelError)
      .num("lossRelError", c.lossRelError)
      .num("loss", c.loss)
      .num("referenceLoss", c.refLoss)
      .num("decisions", double(c.decisions))
      .num("routingMismatches", double(c.routingMismatches))
      .add("missing", arr(miss))
      .add("tensors", arr(ts))
      .text();
}

std::string timingJson(const RunOutcome& o) {
  return Obj()
      .num("setupUs", o.timing.setupUs)
      .num("firstUs", o.timing.firstUs)
      .num("eagerUs", o.timing.eagerUs)
      .num("captureUs", o.timing.captureUs)
      .num("graphUs", o.timing.graphUs)
      .num("eagerIterations", o.timing.eagerIterations)
      .num("graphIterations", o.timing.graphIterations)
      .num("prologueUs", o.timing.prologueUs)
      .str("opTimes", o.timing.profileSource)
      .text();
}

void printComparison(const tensors::Comparison& c) {
  for (const auto& t : c.tensors)
    if (!t.ok) std::printf("  rank %d %-22s rel. error %.3g > %.3g\n", t.rank, t.name.c_str(), t.relError, c.tolerance);
  for (const auto& r : c.routing)
    if (r.mismatches) std::printf("  rank %d %-22s %zu of %zu routing decisions differ\n", r.rank, r.name.c_str(), r.mismatches, r.decisions);
  for (const auto& m : c.missing) std::printf("  missing: %s\n", m.c_str());
  std::printf("  %s: %zu tensors, max rel. error %.3g (tolerance %.3g), loss rel. error %.3g, %zu/%zu routing decisions differ\n", c.ok ? "MATCH" : "MISMATCH", c.tensors.size(),
              c.maxRelError, c.tolerance, c.lossRelError, c.routingMismatches, c.decisions);
}

/** A parsed JSON value written back as JSON text. */
std::string toJson(const Json& v) {
  switch (v.type) {
    case Json::Type::Null: return "null";
    case Json::Type::Bool: return v.boolean ? "true" : "false";
    case Json::Type::Number: return jnum(v.number);
    case Json::Type::String: return jstr(v.string);
    case Json::Type::Array: {
      std::string s = "[";
      for (std::size_t i = 0; i < v.array.size(); i++) s += (i ? ", " : "") + toJson(v.array[i]);
      return s + "]";
    }
    case Json::Type::Object: {
      std::string s = "{";
      for (std::size_t i = 0; i < v.object.size(); i++) s += (i ? ", " : "") + jstr(v.object[i].first) + ": " + toJson(v.object[i].second);
      return s + "}";
    }
  }
  return "null";
}

/**
 * Run this tool again as a child with `args`, its output to `log`, killed after `timeoutMs`:
 * the exit status, or 124 on timeout. (NCCL can block in initialization; a child keeps that
 * from stopping the whole suite.)
 */
int runChild(const std::vector<std::string>& args, const std::string& log, int64_t timeoutMs) {
  std::vector<std::string> argv = {"/proc/self/exe"};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = fork();
  if (pid < 0) return kRunFailed;
  if (pid == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    if (f) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    std::vector<char*> cargs;
    for (auto& a : argv) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    execv("/proc/self/exe", cargs.data());
    _exit(kRunFailed);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    int st = 0;
    const pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : kRunFailed;
    if (r < 0) return kRunFailed;
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return 124;
    }
    usleep(20000);
  }
}

// ── Subcommands ─────────────────────────────────────────────────────────────────────────────

int cmdInfo(Args& a) {
  const gpu::DeviceInfo d = gpu::probe();
  const libs::Cublas& cb = libs::cublas();
  const libs::Nccl& nc = libs::nccl();
  const boot::Env env = boot::readEnv();
  std::printf("fsmoe-replay: the fsmoe runtime's standalone replay tool\n");
  std::printf("  build:     %s\n", gpu::compiled() ? "CUDA backend compiled in" : "host backend only (built without nvcc)");
  if (d.ok)
    std::printf("  device:    %s, %d device(s), driver %d, runtime %d, %d MHz\n", d.name.c_str(), d.count, d.driverVersion, d.runtimeVersion, d.clockKHz / 1000);
  else
    std::printf("  device:    %s\n", d.error.c_str());
  std::printf("  cuBLAS:    %s\n", cb.ok ? ("available (" + cb.path + ")").c_str() : cb.why.c_str());
  std::printf("  NCCL:      %s\n", nc.ok ? ("available, version " + std::to_string(nc.version) + " (" + nc.path + ")").c_str() : nc.why.c_str());
  std::printf("  bootstrap: %s, rank %d of %d, rendezvous %s:%d%s\n", env.source.c_str(), env.rank, env.world, env.addr.c_str(), env.port,
              env.error.empty() ? "" : (" (" + env.error + ")").c_str());
  if (a.has("json")) {
    std::string err;
    const std::string j = Obj()
                              .boolean("cudaCompiled", gpu::compiled())
                              .boolean("device", d.ok)
                              .str("deviceError", d.error)
                              .str("deviceName", d.name)
                              .num("deviceCount", d.count)
                              .num("smCount", d.smCount)
                              .num("clockKHz", d.clockKHz)
                              .num("computeCapability", d.major * 10 + d.minor)
                              .num("memoryBytes", double(d.memBytes))
                              .boolean("cublas", cb.ok)
                              .str("cublasPath", cb.path)
                              .str("cublasError", cb.why)
                              .boolean("nccl", nc.ok)
                              .str("ncclPath", nc.path)
                              .num("ncclVersion", nc.version)
                              .str("ncclError", nc.why)
                              .text() +
                          "\n";
    if (!writeFile(a.get("json"), j, err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kRunFailed;
  }
  return d.ok ? kOk : kUnavailable;
}

int cmdRun(Args& a) {
  if (a.pos.size() != 1) return usage("run: give one PLAN");
  RunSpec spec;
  std::string err, text;
  if (!parseRunSpec(a, spec, err)) return usage(err);
  double tol = spec.gpu.precision == gpu::Precision::Bf16 ? 2e-2 : 1e-4;
  if (!a.number("tolerance", tol, 0, 1)) return usage(a.error);
  Plan plan;
  if (!loadPlanFile(a.pos[0], spec.cuda, plan, text, err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kUsage;
  RunOutcome o = runOne(plan, spec);
  if (!o.ok) {
    std::fprintf(stderr, "fsmoe-replay: %s\n", o.error.c_str());
    return unavailable(o.error) ? kUnavailable : kRunFailed;
  }
  std::printf("%s: %s, %d rank(s) here, %s; GEMM %s; comm %s\n", plan.job.name.c_str(), o.device.c_str(), int(o.ids.size()), spec.cuda ? (spec.gpu.precision == gpu::Precision::Bf16 ? "bf16 GEMMs" : "fp32") : "fp32",
              o.gemm.c_str(), o.comm.c_str());
  if (spec.cuda)
    std::printf("  iteration: first %.1f us, eager %.1f us, CUDA graph %.1f us (capture %.1f us)\n", o.timing.firstUs, o.timing.eagerUs, o.timing.graphUs, o.timing.captureUs);
  else
    std::printf("  iteration: %.1f us (host)\n", o.hostIterationUs);
  int status = kOk;
  std::string cmpJson = "null";
  if (a.has("expected")) {
    std::vector<RankResult> ref;
    std::vector<int> ids;
    if (!tensors::read(a.get("expected"), ref, ids, err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kUsage;
    const tensors::Comparison c = tensors::compare(o.ranks, o.ids, ref, ids, tol);
    printComparison(c);
    cmpJson = comparisonJson(c);
    if (!c.ok) status = kCheckFailed;
  }
  if (a.has("write") && !tensors::write(a.get("write"), o.ranks, o.ids, err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kRunFailed;
  if (a.has("json")) {
    std::vector<std::string> ops;
    if (!o.ranks.empty())
      for (double us : o.ranks[0].opUs) ops.push_back(jnum(us));
    const std::string j = Obj()
                              .str("plan", a.pos[0])
                              .str("job", plan.job.name)
                              .str("device", o.device)
                              .str("gemm", o.gemm)
                              .str("comm", o.comm)
                              .add("timing", timingJson(o))
                              .add("comparison", cmpJson)
                              .add("opUs", arr(ops))
                              .text() +
                          "\n";
    if (!writeFile(a.get("json"), j, err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kRunFailed;
  }
  return status;
}

int cmdReference(Args& a) {
  if (a.pos.size() != 1 || !a.has("write")) return usage("reference: give one PLAN and --write FILE");
  Plan plan;
  std::string err, text;
  if (!loadPlanFile(a.pos[0], false, plan, text, err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kUsage;
  RunResult r = runReference(plan);
  if (!r.ok) return std::fprintf(stderr, "fsmoe-replay: %s\n", r.error.c_str()), kRunFailed;
  std::vector<int> ids;
  for (int i = 0; i < int(r.ranks.size()); i++) ids.push_back(i);
  if (!tensors::write(a.get("write"), r.ranks, ids, err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kRunFailed;
  std::printf("%s: reference of %d rank(s) written to %s\n", plan.job.name.c_str(), int(ids.size()), a.get("write").c_str());
  return kOk;
}

int cmdCompare(Args& a) {
  if (a.pos.size() != 2) return usage("compare: give FILE and REF");
  double tol = 1e-4;
  if (!a.number("tolerance", tol, 0, 1)) return usage(a.error);
  std::vector<RankResult> x, ref;
  std::vector<int> xi, ri;
  std::string err;
  if (!tensors::read(a.pos[0], x, xi, err) || !tensors::read(a.pos[1], ref, ri, err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kUsage;
  const tensors::Comparison c = tensors::compare(x, xi, ref, ri, tol);
  printComparison(c);
  return c.ok ? kOk : kCheckFailed;
}

bool routerBench(Args& a, gpu::RouterBench& b, std::string& err) {
  int64_t t = b.tokens, m = b.hidden, e = b.experts, k = b.topK, n = b.iterations;
  if (!a.integer("tokens", t, 1, 1 << 24) || !a.integer("hidden", m, 1, 1 << 16) || !a.integer("experts", e, 1, 4096) || !a.integer("top-k", k, 1, 4096) ||
      !a.integer("iterations", n, 1, 100000) || !a.number("capacity-factor", b.capacityFactor, 0.01, 1000))
    return err = a.error, false;
  b.tokens = t, b.hidden = m, b.experts = int(e), b.topK = int(k), b.iterations = int(n);
  return true;
}

std::string routerJson(const gpu::RouterBench& b, const gpu::RouterBenchResult& r) {
  return Obj()
      .num("tokens", double(b.tokens))
      .num("hidden", double(b.hidden))
      .num("experts", b.experts)
      .num("topK", b.topK)
      .num("capacityFactor", b.capacityFactor)
      .num("capacity", double(r.capacity))
      .num("dropped", r.dropped)
      .num("routeUs", r.routeUs)
      .num("orderUs", r.orderUs)
      .num("restoreUs", r.restoreUs)
      .num("totalUs", r.totalUs)
      .text();
}

int cmdBenchRouter(Args& a) {
  gpu::RouterBench b;
  gpu::RouterBenchResult r;
  std::string err;
  if (!routerBench(a, b, err)) return usage(err);
  if (!gpu::benchRouter(b, r, err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), unavailable(err) ? kUnavailable : kRunFailed;
  std::printf("router T=%lld M=%lld E=%d k=%d C=%lld: route %.1f us, order %.1f us, restore %.1f us, back to back %.1f us (%.2f%% dropped)\n", (long long)b.tokens,
              (long long)b.hidden, b.experts, b.topK, (long long)r.capacity, r.routeUs, r.orderUs, r.restoreUs, r.totalUs, 100 * r.dropped);
  if (a.has("json") && !writeFile(a.get("json"), routerJson(b, r) + "\n", err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kRunFailed;
  return kOk;
}

bool gemmBench(Args& a, gpu::GemmBench& b, std::string& err) {
  int64_t m = b.m, n = b.n, k = b.k, batch = b.batch, it = b.iterations;
  if (!a.integer("m", m, 1, 1 << 20) || !a.integer("n", n, 1, 1 << 20) || !a.integer("k", k, 1, 1 << 20) || !a.integer("batch", batch, 1, 65535) ||
      !a.integer("iterations", it, 1, 100000))
    return err = a.error, false;
  const std::string dt = a.get("dtype", "bf16"), g = a.get("gemm", "auto");
  if (dt != "bf16" && dt != "fp32") return err = "--dtype: expected bf16 or fp32", false;
  if (g != "auto" && g != "cublas" && g != "builtin") return err = "--gemm: expected auto, cublas or builtin", false;
  b.m = m, b.n = n, b.k = k, b.batch = batch, b.iterations = int(it), b.bf16 = dt == "bf16";
  b.gemm = g == "cublas" ? gpu::Gemm::Cublas : g == "builtin" ? gpu::Gemm::Builtin : gpu::Gemm::Auto;
  return true;
}

std::string gemmJson(const gpu::GemmBench& b, const gpu::GemmBenchResult& r) {
  return Obj()
      .num("m", double(b.m))
      .num("n", double(b.n))
      .num("k", double(b.k))
      .num("batch", double(b.batch))
      .str("dtype", b.bf16 ? "bf16" : "fp32")
      .str("engine", r.engine)
      .num("us", r.us)
      .num("tflops", r.tflops)
      .num("peakTflops", r.peakTflops)
      .str("peakNote", r.peakNote)
      .text();
}

int cmdBenchGemm(Args& a) {
  gpu::GemmBench b;
  gpu::GemmBenchResult r;
  std::string err;
  if (!gemmBench(a, b, err)) return usage(err);
  if (!gpu::benchGemm(b, r, err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), unavailable(err) ? kUnavailable : kRunFailed;
  std::printf("GEMM %lldx%lldx%lld x%lld %s via %s: %.1f us, %.1f TFLOP/s (peak %.0f: %s)\n", (long long)b.m, (long long)b.n, (long long)b.k, (long long)b.batch,
              b.bf16 ? "bf16" : "fp32", r.engine.c_str(), r.us, r.tflops, r.peakTflops, r.peakNote.c_str());
  if (a.has("json") && !writeFile(a.get("json"), gemmJson(b, r) + "\n", err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kRunFailed;
  return kOk;
}

int cmdRendezvous(Args& a) {
  const boot::Env env = boot::readEnv();
  if (!env.error.empty()) return std::fprintf(stderr, "fsmoe-replay: bootstrap: %s\n", env.error.c_str()), kUsage;
  int64_t timeout = 20000;
  if (!a.integer("timeout-ms", timeout, 1, 86400000)) return usage(a.error);
  boot::Rendezvous rv;
  std::string err;
  std::vector<std::string> all;
  const std::string payload = a.get("payload", "rank" + std::to_string(env.rank));
  if (!rv.connect(env.addr, env.port, env.rank, env.world, a.get("key", "fsmoe-replay"), timeout, err) || !rv.allGather(payload, all, err) || !rv.barrier(err))
    return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kRunFailed;
  std::vector<std::string> ps;
  for (const auto& p : all) ps.push_back(jstr(p));
  std::printf("%s\n", Obj().str("source", env.source).num("rank", env.rank).num("world", env.world).num("localRank", env.localRank).add("payloads", arr(ps)).text().c_str());
  return kOk;
}

// ── The GPU check's suite ───────────────────────────────────────────────────────────────────

int cmdSuite(Args& a) {
  if (a.pos.size() != 1 || !a.has("out")) return usage("suite: give MANIFEST and --out DIR");
  const std::string manifestPath = a.pos[0], dir = dirOf(manifestPath), out = a.get("out");
  std::string err, text;
  if (!makeDirs(out + "/cases")) return std::fprintf(stderr, "fsmoe-replay: cannot create %s\n", out.c_str()), kRunFailed;
  if (!readFile(manifestPath, text, err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kUsage;
  Json m;
  if (!parseJson(text.data(), text.size(), m, err)) return std::fprintf(stderr, "fsmoe-replay: %s: %s\n", manifestPath.c_str(), err.c_str()), kUsage;
  const Json* fmt = m.get("format");
  if (!fmt || !fmt->isString() || fmt->string != "fsmoe-gpu-check/1") return std::fprintf(stderr, "fsmoe-replay: %s: not an fsmoe-gpu-check/1 manifest\n", manifestPath.c_str()), kUsage;
  const bool cuda = a.get("backend", "cuda") == "cuda";
  std::vector<std::string> only;
  {
    std::stringstream ss(a.get("only"));
    std::string x;
    while (std::getline(ss, x, ','))
      if (!x.empty()) only.push_back(x);
  }
  auto wanted = [&](const std::string& n) { return only.empty() || std::find(only.begin(), only.end(), n) != only.end(); };
  auto str = [](const Json& o, const char* k, const std::string& d = "") {
    const Json* v = o.get(k);
    return v && v->isString() ? v->string : d;
  };
  auto num = [](const Json& o, const char* k, double d) {
    const Json* v = o.get(k);
    return v && v->isNumber() ? v->number : d;
  };
  if (cuda) {
    const gpu::DeviceInfo d = gpu::probe();
    if (!d.ok) {
      std::fprintf(stderr, "fsmoe-replay: %s\n", d.error.c_str());
      writeFile(out + "/suite.json", Obj().boolean("ok", false).str("error", d.error).boolean("unavailable", true).text() + "\n", err);
      return kUnavailable;
    }
  }
  int status = kOk;
  std::vector<std::string> cases, sweeps, routers, gemms;
  // 1. Cases: replay vs the host reference.
  if (const Json* cs = m.get("cases"); cs && cs->isArray())
    for (const Json& c : cs->array) {
      const std::string name = str(c, "name");
      if (!wanted(name)) continue;
      Args ca;
      ca.opt["backend"] = cuda ? "cuda" : "host";
      ca.opt["precision"] = str(c, "precision", "fp32");
      ca.opt["comm"] = str(c, "comm", "auto");
      ca.opt["gemm"] = str(c, "gemm", "auto");
      RunSpec spec;
      if (!parseRunSpec(ca, spec, err)) return std::fprintf(stderr, "fsmoe-replay: case %s: %s\n", name.c_str(), err.c_str()), kUsage;
      const double tol = num(c, "tolerance", spec.gpu.precision == gpu::Precision::Bf16 ? 2e-2 : 1e-4);
      Obj rec;
      rec.str("name", name).str("precision", ca.opt["precision"]).str("comm", ca.opt["comm"]).str("note", str(c, "note"));
      Plan plan;
      std::string planText;
      std::vector<RankResult> ref;
      std::vector<int> ids;
      bool ok = loadPlanFile(join(dir, str(c, "plan")), cuda, plan, planText, err) && tensors::read(join(dir, str(c, "expected")), ref, ids, err);
      std::string logText;
      if (ok && cuda && spec.gpu.comm == gpu::Comm::Nccl) {
        // Through NCCL: in a child process with a time limit.
        rec.num("world", plan.job.world).str("strategy", plan.strategy);
        const std::string json = out + "/cases/" + name + ".json", log = out + "/cases/" + name + ".log";
        const int rc = runChild({"run", join(dir, str(c, "plan")), "--expected", join(dir, str(c, "expected")), "--comm", "nccl", "--precision", ca.opt["precision"],
                                 "--tolerance", jnum(tol), "--json", json},
                                log, int64_t(num(c, "timeoutMs", 120000)));
        std::string childLog, childJson;
        readFile(log, childLog, err);
        err.clear();
        Json res;
        const bool haveJson = (rc == kOk || rc == kCheckFailed) && readFile(json, childJson, err) && parseJson(childJson.data(), childJson.size(), res, err);
        if (rc == kUnavailable) {
          std::string why = childLog.substr(childLog.find("fsmoe-replay: ") == std::string::npos ? 0 : childLog.find("fsmoe-replay: ") + 14);
          while (!why.empty() && why.back() == '\n') why.pop_back();
          rec.str("skipped", why);
          std::printf("case %-28s skipped (%s)\n", name.c_str(), why.substr(0, why.find(':')).c_str());
          cases.push_back(rec.boolean("ok", false).text());
          err.clear();
          continue;
        }
        if (haveJson) {
          if (const Json* v = res.get("comparison")) rec.add("comparison", toJson(*v));
          if (const Json* v = res.get("timing")) rec.add("timing", toJson(*v));
          if (const Json* v = res.get("device")) rec.add("device", toJson(*v));
          if (const Json* v = res.get("gemm")) rec.add("gemm", toJson(*v));
          if (const Json* v = res.get("comm")) rec.add("commLibrary", toJson(*v));
          ok = rc == kOk;
          if (!ok) status = std::max(status, kCheckFailed);
        } else {
          ok = false;
          err = rc == 124 ? "timed out after " + jnum(num(c, "timeoutMs", 120000) / 1000) + " s (NCCL initialization or a collective hung; see cases/" + name + ".log)"
                          : "the NCCL run failed (exit " + std::to_string(rc) + "): " + childLog.substr(0, 400);
          status = std::max(status, kRunFailed);
        }
        rec.boolean("ok", ok);
        if (!ok && !err.empty()) rec.str("error", err);
        std::printf("case %-28s %s\n", name.c_str(), ok ? "ok" : "FAILED");
        cases.push_back(rec.text());
        err.clear();
        continue;
      }
      if (ok) {
        rec.num("world", plan.job.world).str("strategy", plan.strategy);
        const RunOutcome o = runOne(plan, spec);
        if (!o.ok && unavailable(o.error)) {
          // A library this case needs is missing here (NCCL, or cuBLAS when asked for): skipped, with the reason.
          rec.str("skipped", o.error);
          logText = name + ": skipped: " + o.error + "\n";
          std::printf("case %-28s skipped (%s)\n", name.c_str(), o.error.substr(0, o.error.find(':')).c_str());
          writeFile(out + "/cases/" + name + ".log", logText, err);
          cases.push_back(rec.boolean("ok", false).text());
          err.clear();
          continue;
        }
        if (!o.ok) {
          ok = false;
          err = o.error;
        } else {
          const tensors::Comparison cmp = tensors::compare(o.ranks, o.ids, ref, ids, tol);
          rec.add("comparison", comparisonJson(cmp)).add("timing", timingJson(o)).str("device", o.device).str("gemm", o.gemm).str("commLibrary", o.comm);
          ok = cmp.ok;
          if (!cmp.ok) status = std::max(status, kCheckFailed);
          logText = name + ": " + o.device + ", " + o.gemm + ", " + o.comm + "\n";
          for (const auto& t : cmp.tensors) logText += "  rank " + std::to_string(t.rank) + " " + t.name + " rel. error " + jnum(t.relError) + (t.ok ? "" : "  FAIL") + "\n";
          logText += "  loss rel. error " + jnum(cmp.lossRelError) + ", routing mismatches " + std::to_string(cmp.routingMismatches) + "/" + std::to_string(cmp.decisions) + "\n";
          for (const auto& x : cmp.missing) logText += "  missing " + x + "\n";
        }
      }
      if (!err.empty() && !ok) {
        rec.str("error", err);
        logText += name + ": " + err + "\n";
        if (status == kOk) status = kRunFailed;
        err.clear();
      }
      rec.boolean("ok", ok);
      std::printf("case %-28s %s\n", name.c_str(), ok ? "ok" : "FAILED");
      writeFile(out + "/cases/" + name + ".log", logText, err);
      cases.push_back(rec.text());
    }
  // 2. The profile sweep: fit on the GPU, predict each plan's iteration, compare.
  std::string profile = "null";
  if (!a.has("no-sweep"))
    if (const Json* sw = m.get("sweep"); sw && sw->isArray() && !sw->array.empty()) {
      struct Item {
        std::string name;
        Plan plan;
        std::vector<predict::OpSize> sizes;
        std::vector<double> opUs;
        double measuredUs = 0, prologueBytes = 0, eagerUs = 0;
        std::string source;
      };
      std::vector<Item> items;
      std::vector<predict::Sample> samples, profSamples;
      for (const Json& s : sw->array) {
        const std::string name = str(s, "name");
        if (!wanted(name) && !wanted("sweep")) continue;
        Item it;
        it.name = name;
        std::string planText;
        RunSpec spec;
        Args sa;
        sa.opt["backend"] = cuda ? "cuda" : "host";
        sa.opt["comm"] = str(s, "comm", "auto");
        parseRunSpec(sa, spec, err);
        spec.hostIterations = 3;
        spec.gpu.eagerIterations = int(num(s, "eagerIterations", 3));
        spec.gpu.graphIterations = int(num(s, "graphIterations", 10));
        if (!loadPlanFile(join(dir, str(s, "plan")), cuda, it.plan, planText, err) || !predict::opSizes(planText, it.sizes, err)) {
          sweeps.push_back(Obj().str("name", name).str("error", err).text());
          err.clear();
          status = std::max(status, kRunFailed);
          continue;
        }
        const RunOutcome o = runOne(it.plan, spec);
        if (!o.ok || o.ranks.empty()) {
          sweeps.push_back(Obj().str("name", name).str("error", o.error).text());
          status = std::max(status, unavailable(o.error) ? kUnavailable : kRunFailed);
          continue;
        }
        it.opUs = o.ranks[0].opUs;
        it.source = o.timing.profileSource;
        it.eagerUs = cuda ? o.timing.eagerUs : o.hostIterationUs;
        // The iteration's prologue (gradients zeroed, inputs copied in) is a class of its own, sized in bytes.
        for (const Buffer& b : it.plan.buffers)
          if (b.persistent) it.prologueBytes += double(b.bytes);
        samples.push_back({"prologue", it.prologueBytes, o.timing.prologueUs});
        it.measuredUs = cuda ? (o.timing.graphUs > 0 ? o.timing.graphUs : o.timing.eagerUs) : o.hostIterationUs;
        auto add = predict::samplesOf(it.plan, it.sizes, it.opUs);
        samples.insert(samples.end(), add.begin(), add.end());
        auto padd = predict::profileSamples(it.plan, it.sizes, it.opUs);
        profSamples.insert(profSamples.end(), padd.begin(), padd.end());
        std::printf("sweep %-27s measured %.1f us per iteration\n", name.c_str(), it.measuredUs);
        items.push_back(std::move(it));
      }
      if (!items.empty()) {
        const auto fits = predict::fit(samples);
        std::vector<std::string> fitJ;
        for (const auto& [cls, f] : fits)
          fitJ.push_back(Obj().str("class", cls).num("alphaUs", f.alphaUs).num("betaUs", f.betaUs).num("r2", f.r2).num("samples", f.samples).text());
        double worst = 0, sumAbs = 0;
        for (const Item& it : items) {
          // Predicted from the fits alone (no measured op time is used for an op whose class has a fit).
          const auto pf = fits.find("prologue");
          const double prologue = pf == fits.end() ? 0 : pf->second.alphaUs + pf->second.betaUs * it.prologueBytes;
          const double pred = prologue + predict::simulate(it.plan, it.sizes, fits, it.opUs);
          const double e = it.measuredUs > 0 ? (pred - it.measuredUs) / it.measuredUs : 0;
          worst = std::max(worst, std::fabs(e));
          sumAbs += std::fabs(e);
          sweeps.push_back(Obj().str("name", it.name).num("world", it.plan.job.world).num("measuredUs", it.measuredUs).num("predictedUs", pred).num("relError", e).num("eagerUs", it.eagerUs).str("opTimes", it.source).text());
        }
        const std::string desc = std::string("Fitted on ") + (cuda ? "the GPU (cuda backend" : "the host (host backend") + ") by fsmoe-replay suite: " + std::to_string(items.size()) +
                                 " layer jobs, alpha in us, beta in us per element or MAC.";
        writeFile(out + "/gpu-profile.json", predict::profileJson(cuda ? "gpu" : "host", desc, profSamples), err);
        profile = Obj().add("fits", arr(fitJ)).num("maxAbsRelError", worst).num("meanAbsRelError", sumAbs / items.size()).str("profileFile", "gpu-profile.json").text();
      }
    }
  // 3. Micro-benchmarks (GPU only).
  if (cuda && !a.has("no-bench")) {
    if (const Json* rs = m.get("router"); rs && rs->isArray())
      for (const Json& r : rs->array) {
        gpu::RouterBench b;
        b.tokens = int64_t(num(r, "tokens", double(b.tokens)));
        b.hidden = int64_t(num(r, "hidden", double(b.hidden)));
        b.experts = int(num(r, "experts", b.experts));
        b.topK = int(num(r, "topK", b.topK));
        b.capacityFactor = num(r, "capacityFactor", b.capacityFactor);
        b.iterations = int(num(r, "iterations", 50));
        gpu::RouterBenchResult res;
        if (gpu::benchRouter(b, res, err)) routers.push_back(routerJson(b, res));
        else routers.push_back(Obj().str("error", err).text()), err.clear();
      }
    if (const Json* gs = m.get("gemm"); gs && gs->isArray())
      for (const Json& g : gs->array) {
        gpu::GemmBench b;
        b.m = int64_t(num(g, "m", double(b.m)));
        b.n = int64_t(num(g, "n", double(b.n)));
        b.k = int64_t(num(g, "k", double(b.k)));
        b.batch = int64_t(num(g, "batch", 1));
        b.bf16 = str(g, "dtype", "bf16") == "bf16";
        b.iterations = int(num(g, "iterations", 20));
        gpu::GemmBenchResult res;
        if (gpu::benchGemm(b, res, err)) gemms.push_back(gemmJson(b, res));
        else gemms.push_back(Obj().str("error", err).text()), err.clear();
      }
  }
  const gpu::DeviceInfo d = gpu::probe();
  const std::string j = Obj()
                            .boolean("ok", status == kOk)
                            .str("backend", cuda ? "cuda" : "host")
                            .str("device", d.ok ? d.name : "host")
                            .add("cases", arr(cases))
                            .add("sweep", arr(sweeps))
                            .add("profile", profile)
                            .add("router", arr(routers))
                            .add("gemm", arr(gemms))
                            .text() +
                        "\n";
  if (!writeFile(out + "/suite.json", j, err)) return std::fprintf(stderr, "fsmoe-replay: %s\n", err.c_str()), kRunFailed;
  std::printf("suite: %s (%s/suite.json)\n", status == kOk ? "all checks passed" : "some checks FAILED", out.c_str());
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) return usage("");
    const std::string cmd = argv[1];
    Args a = parseArgs(argc, argv, 2);
    if (!a.error.empty()) return usage(a.error);
    if (cmd == "info") return cmdInfo(a);
    if (cmd == "run") return cmdRun(a);
    if (cmd == "reference") return cmdReference(a);
    if (cmd == "compare") return cmdCompare(a);
    if (cmd == "suite") return cmdSuite(a);
    if (cmd == "bench-router") return cmdBenchRouter(a);
    if (cmd == "bench-gemm") return cmdBenchGemm(a);
    if (cmd == "rendezvous") return cmdRendezvous(a);
    if (cmd == "--help" || cmd == "help" || cmd == "-h") return usage(""), kOk;
    return usage("unknown command '" + cmd + "'");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fsmoe-replay: internal error: %s\n", e.what());
    return kRunFailed;
  }
}

// The Node-API binding of the host runtime (node-addon-api, NAPI 8). Plans arrive as JSON text
// and are loaded and validated in C++ before anything runs; runs happen on an AsyncWorker so the
// event loop is never blocked. No C++ exception crosses this boundary: failures come back as
// { ok: false, error } objects, and bad arguments as JS TypeErrors.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "comm_mpi.h"
#include "cuda/backend.h"
#include "executor.h"
#include "json.h"
#include "model.h"
#include "peak.h"
#include "plan.h"

namespace {

using namespace fsmoe;

/** Options of validate/run/reference, parsed from JSON: { iterations, warmup, timeoutMs, emptyKernels, spinUs, skip, limits }. */
struct Options {
  RunOptions run;
  Limits limits;
};

bool parseOptions(const std::string& text, Options& o, std::string& error) {
  if (text.empty()) return true;
  Json root;
  std::string err;
  if (!parseJson(text.data(), text.size(), root, err)) return error = "options: malformed JSON: " + err, false;
  if (!root.isObject()) return error = "options: expected an object", false;
  auto integer = [&](const Json* v, const char* name, int64_t lo, int64_t hi, int64_t& out) {
    if (!v) return true;
    if (!v->isNumber() || std::floor(v->number) != v->number || v->number < lo || v->number > hi)
      return error = std::string("options.") + name + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", false;
    out = int64_t(v->number);
    return true;
  };
  int64_t iterations = o.run.iterations, warmup = o.run.warmup, spin = o.run.spinUs, world = o.limits.maxWorld;
  if (!integer(root.get("iterations"), "iterations", 1, 100000, iterations) || !integer(root.get("warmup"), "warmup", 0, 100000, warmup) || !integer(root.get("timeoutMs"), "timeoutMs", 1, 86400000, o.run.timeoutMs) ||
      !integer(root.get("spinUs"), "spinUs", -1, 1000000, spin) || !integer(root.get("maxWorld"), "maxWorld", 1, 64, world) ||
      !integer(root.get("maxArenaBytes"), "maxArenaBytes", 0, int64_t(1) << 40, o.limits.maxArenaBytes) ||
      !integer(root.get("maxTotalBytes"), "maxTotalBytes", 0, int64_t(1) << 42, o.limits.maxTotalBytes))
    return false;
  o.run.iterations = int(iterations);
  if (warmup >= iterations) return error = "options.warmup: expected fewer warm-up iterations (" + std::to_string(warmup) + ") than iterations (" + std::to_string(iterations) + ")", false;
  o.run.warmup = int(warmup);
  o.run.spinUs = int(spin);
  o.limits.maxWorld = int(world);
  if (const Json* c = root.get("capture")) {
    if (!c->isBool()) return error = "options.capture: expected true or false", false;
    o.run.capture = c->boolean;
  }
  if (const Json* e = root.get("emptyKernels")) {
    if (!e->isBool()) return error = "options.emptyKernels: expected true or false", false;
    o.run.emptyKernels = e->boolean;
  }
  if (const Json* s = root.get("skip")) {
    if (!s->isArray()) return error = "options.skip: expected an array of { rank, op }", false;
    for (const Json& f : s->array) {
      int64_t rank = -1, op = -1;
      if (!f.isObject() || !integer(f.get("rank"), "skip.rank", 0, 1 << 20, rank) || !integer(f.get("op"), "skip.op", 0, int64_t(1) << 40, op) || rank < 0 || op < 0)
        return error.empty() ? (error = "options.skip: expected { rank, op }", false) : false;
      o.run.skip.emplace_back(int(rank), int(op));
    }
  }
  return true;
}

bool load(const std::string& planText, const std::string& optionsText, Plan& plan, Options& o, std::string& error) {
  if (!parseOptions(optionsText, o, error)) return false;
  return loadPlan(planText.data(), planText.size(), o.limits, plan, error);
}

bool stringArg(const Napi::CallbackInfo& info, std::size_t i, std::string& out, bool optional) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) {
    if (optional) return true;
  } else if (info[i].IsString()) {
    out = info[i].As<Napi::String>().Utf8Value();
    return true;
  }
  Napi::TypeError::New(info.Env(), "argument " + std::to_string(i + 1) + " must be a string (JSON text)").ThrowAsJavaScriptException();
  return false;
}

Napi::Object toJs(Napi::Env env, const RunResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", Napi::Boolean::New(env, r.ok));
  if (!r.ok) {
    o.Set("error", Napi::String::New(env, r.error));
    return o;
  }
  Napi::Array iters = Napi::Array::New(env, r.iterationUs.size());
  for (std::size_t i = 0; i < r.iterationUs.size(); i++) iters.Set(uint32_t(i), Napi::Number::New(env, r.iterationUs[i]));
  o.Set("iterationUs", iters);
  Napi::Array cpu = Napi::Array::New(env, r.iterationCpuUs.size());
  for (std::size_t i = 0; i < r.iterationCpuUs.size(); i++) cpu.Set(uint32_t(i), Napi::Number::New(env, r.iterationCpuUs[i]));
  o.Set("iterationCpuUs", cpu);
  o.Set("firstRank", Napi::Number::New(env, r.firstRank));
  if (r.processes > 0) o.Set("processes", Napi::Number::New(env, r.processes));
  Napi::Array ranks = Napi::Array::New(env, r.ranks.size());
  auto f64 = [&](const std::vector<double>& v) {
    Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
    for (std::size_t i = 0; i < v.size(); i++) a[i] = v[i];
    return a;
  };
  for (std::size_t k = 0; k < r.ranks.size(); k++) {
    const RankResult& rr = r.ranks[k];
    Napi::Object x = Napi::Object::New(env);
    x.Set("loss", Napi::Number::New(env, rr.loss));
    x.Set("lossScale", Napi::Number::New(env, rr.lossScale));
    Napi::Object tensors = Napi::Object::New(env);
    for (const auto& t : rr.tensors) {
      Napi::Float32Array a = Napi::Float32Array::New(env, t.data.size());
      for (std::size_t i = 0; i < t.data.size(); i++) a[i] = t.data[i];
      tensors.Set(t.name, a);
    }
    x.Set("tensors", tensors);
    Napi::Object ints = Napi::Object::New(env);
    for (const auto& t : rr.ints) {
      Napi::Int32Array a = Napi::Int32Array::New(env, t.data.size());
      for (std::size_t i = 0; i < t.data.size(); i++) a[i] = t.data[i];
      ints.Set(t.name, a);
    }
    x.Set("ints", ints);
    x.Set("opUs", f64(rr.opUs));
    x.Set("workUs", f64(rr.workUs));
    x.Set("cpuUs", f64(rr.cpuUs));
    x.Set("prologueUs", Napi::Number::New(env, rr.prologueUs));
    x.Set("startUs", f64(rr.startUs));
    x.Set("endUs", f64(rr.endUs));
    ranks.Set(uint32_t(k), x);
  }
  o.Set("ranks", ranks);
  return o;
}

/** Runs a plan (or its reference) off the event loop and resolves with the result object. */
class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, std::string plan, std::string options, bool reference)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), planText_(std::move(plan)), optionsText_(std::move(options)), reference_(reference) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      Plan plan;
      Options o;
      std::string error;
      if (!load(planText_, optionsText_, plan, o, error)) {
        result_.error = error;
        return;
      }
      planText_.clear();
      planText_.shrink_to_fit();
      result_ = reference_ ? runReference(plan) : runPlan(plan, o.run);
    } catch (const std::bad_alloc&) {
      result_.ok = false;
      result_.error = "out of memory";
    } catch (const std::exception& e) {
      result_.ok = false;
      result_.error = std::string("internal error: ") + e.what();
    }
  }
  void OnOK() override { deferred_.Resolve(toJs(Env(), result_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string planText_, optionsText_;
  bool reference_;
  RunResult result_;
};

Napi::Value Validate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string plan, options;
  if (!stringArg(info, 0, plan, false) || !stringArg(info, 1, options, true)) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  std::string error;
  bool ok;
  try {
    Plan p;
    Options opts;
    ok = load(plan, options, p, opts, error);
    if (ok) {
      o.Set("ops", Napi::Number::New(env, double(p.ops.size())));
      o.Set("world", Napi::Number::New(env, p.job.world));
      o.Set("arenaBytes", Napi::Number::New(env, double(p.arenaBytes)));
    }
  } catch (const std::exception& e) {
    ok = false;
    error = std::string("internal error: ") + e.what();
  }
  o.Set("ok", Napi::Boolean::New(env, ok));
  if (!ok) o.Set("error", Napi::String::New(env, error));
  return o;
}

Napi::Value Start(const Napi::CallbackInfo& info, bool reference) {
  Napi::Env env = info.Env();
  std::string plan, options;
  if (!stringArg(info, 0, plan, false) || !stringArg(info, 1, options, true)) return env.Undefined();
  auto* w = new RunWorker(env, std::move(plan), std::move(options), reference);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value Run(const Napi::CallbackInfo& info) { return Start(info, false); }
Napi::Value Reference(const Napi::CallbackInfo& info) { return Start(info, true); }

/** philox(counter[4], key[2]) → the block, for known-answer tests. */
Napi::Value Philox(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsArray()) {
    Napi::TypeError::New(env, "philox(counter: number[4], key: number[2])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array c = info[0].As<Napi::Array>(), k = info[1].As<Napi::Array>();
  if (c.Length() != 4 || k.Length() != 2) {
    Napi::TypeError::New(env, "philox(counter: number[4], key: number[2])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t ctr[4], key[2], out[4];
  for (uint32_t i = 0; i < 4; i++) ctr[i] = c.Get(i).ToNumber().Uint32Value();
  for (uint32_t i = 0; i < 2; i++) key[i] = k.Get(i).ToNumber().Uint32Value();
  philox4x32_10(ctr, key, out);
  Napi::Array r = Napi::Array::New(env, 4);
  for (uint32_t i = 0; i < 4; i++) r.Set(i, Napi::Number::New(env, out[i]));
  return r;
}

/** uniform(seed, tensorName, index, a): one generated element, for tests of the generator's keying. */
Napi::Value Uniform(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "uniform(seed: number, tensor: string, index: number, a: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double seed = info[0].As<Napi::Number>().DoubleValue(), index = info[2].As<Napi::Number>().DoubleValue();
  if (!(seed >= 0) || !(index >= 0) || seed > 9007199254740991.0 || index > 9007199254740991.0) {
    Napi::RangeError::New(env, "seed and index must be non-negative safe integers").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, uniformAt(uint64_t(seed), tensorId(info[1].As<Napi::String>().Utf8Value()), uint64_t(index), info[3].As<Napi::Number>().FloatValue()));
}

// ── The CUDA backend (src/cuda/backend.h): runCuda(plan, options) ─────────────────────────────
// Linked from the static fsmoe_cuda library where nvcc was found, otherwise from src/cuda/stub.cc;
// either way a machine without a device answers { ok: false, error: "no CUDA device: …" }.

/** Options of runCuda: the host options plus { precision, comm, gemm, graph }, GPU-sized limits. */
struct CudaOptions {
  Options base;
  gpu::Options gpu;
};

bool parseCudaOptions(const std::string& text, CudaOptions& o, std::string& error) {
  o.base.limits.maxWorld = 64;
  o.base.limits.maxArenaBytes = int64_t(1) << 40;
  o.base.limits.maxTotalBytes = int64_t(1) << 42;
  o.base.limits.maxOps = int64_t(1) << 22;
  o.base.limits.maxPlanBytes = int64_t(1) << 30;
  if (!parseOptions(text, o.base, error)) return false;
  if (o.base.run.emptyKernels || !o.base.run.skip.empty()) return error = "options: emptyKernels and skip are host-backend options; the cuda backend runs every op", false;
  o.gpu.timeoutMs = o.base.run.timeoutMs;
  o.gpu.graphIterations = o.base.run.iterations;
  o.gpu.eagerIterations = std::min(o.base.run.iterations, 5);
  if (text.empty()) return true;
  Json root;
  std::string err;
  if (!parseJson(text.data(), text.size(), root, err) || !root.isObject()) return error = "options: expected a JSON object", false;
  auto choice = [&](const char* name, std::initializer_list<const char*> names, int& out) {
    const Json* v = root.get(name);
    if (!v) return true;
    int i = 0;
    std::string list;
    for (const char* n : names) {
      if (v->isString() && v->string == n) return out = i, true;
      list += (i++ ? ", " : "") + std::string(n);
    }
    return error = std::string("options.") + name + ": expected one of " + list, false;
  };
  int precision = 0, comm = 0, gemm = 0;
  if (!choice("precision", {"fp32", "bf16"}, precision) || !choice("comm", {"auto", "loopback", "nccl"}, comm) || !choice("gemm", {"auto", "cublas", "builtin"}, gemm)) return false;
  o.gpu.precision = precision ? gpu::Precision::Bf16 : gpu::Precision::Fp32;
  o.gpu.comm = comm == 1 ? gpu::Comm::Loopback : comm == 2 ? gpu::Comm::Nccl : gpu::Comm::Auto;
  o.gpu.gemm = gemm == 1 ? gpu::Gemm::Cublas : gemm == 2 ? gpu::Gemm::Builtin : gpu::Gemm::Auto;
  if (const Json* g = root.get("graph")) {
    if (!g->isBool()) return error = "options.graph: expected true or false", false;
    if (!g->boolean) o.gpu.graphIterations = 0;
  }
  return true;
}

/** Replays a plan on the CUDA backend off the event loop; resolves with run's shape plus { ranksHere, device, gemm, comm, timing }. */
class CudaWorker : public Napi::AsyncWorker {
 public:
  CudaWorker(Napi::Env env, std::string plan, std::string options)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), planText_(std::move(plan)), optionsText_(std::move(options)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      Plan plan;
      CudaOptions o;
      std::string error;
      if (!parseCudaOptions(optionsText_, o, error) || !loadPlan(planText_.data(), planText_.size(), o.base.limits, plan, error)) {
        result_.run.error = error;
        return;
      }
      planText_.clear();
      planText_.shrink_to_fit();
      result_ = gpu::run(plan, o.gpu);
    } catch (const std::bad_alloc&) {
      result_.run.ok = false;
      result_.run.error = "out of memory";
    } catch (const std::exception& e) {
      result_.run.ok = false;
      result_.run.error = std::string("internal error: ") + e.what();
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object o = toJs(env, result_.run);
    if (result_.run.ok) {
      Napi::Array here = Napi::Array::New(env, result_.ranks.size());
      for (std::size_t i = 0; i < result_.ranks.size(); i++) here.Set(uint32_t(i), Napi::Number::New(env, result_.ranks[i]));
      o.Set("ranksHere", here);
      o.Set("device", Napi::String::New(env, result_.device));
      o.Set("gemm", Napi::String::New(env, result_.gemm));
      o.Set("comm", Napi::String::New(env, result_.comm));
      const gpu::Timing& t = result_.timing;
      Napi::Object timing = Napi::Object::New(env);
      timing.Set("setupUs", Napi::Number::New(env, t.setupUs));
      timing.Set("firstUs", Napi::Number::New(env, t.firstUs));
      timing.Set("eagerUs", Napi::Number::New(env, t.eagerUs));
      timing.Set("captureUs", Napi::Number::New(env, t.captureUs));
      timing.Set("graphUs", Napi::Number::New(env, t.graphUs));
      timing.Set("eagerIterations", Napi::Number::New(env, t.eagerIterations));
      timing.Set("graphIterations", Napi::Number::New(env, t.graphIterations));
      timing.Set("profileSource", Napi::String::New(env, t.profileSource));
      o.Set("timing", timing);
    }
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string planText_, optionsText_;
  gpu::Result result_;
};

Napi::Value RunCuda(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string plan, options;
  if (!stringArg(info, 0, plan, false) || !stringArg(info, 1, options, true)) return env.Undefined();
  auto* w = new CudaWorker(env, std::move(plan), std::move(options));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

/** cudaDevice(): whether this build has the CUDA backend and the first device (or why there is none); nothing runs. */
Napi::Value CudaDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const gpu::DeviceInfo d = gpu::probe();
  Napi::Object o = Napi::Object::New(env);
  o.Set("compiled", Napi::Boolean::New(env, gpu::compiled()));
  o.Set("ok", Napi::Boolean::New(env, d.ok));
  if (!d.ok) {
    o.Set("error", Napi::String::New(env, d.error));
    return o;
  }
  o.Set("count", Napi::Number::New(env, d.count));
  o.Set("name", Napi::String::New(env, d.name));
  o.Set("computeCapability", Napi::Number::New(env, d.major * 10 + d.minor));
  o.Set("smCount", Napi::Number::New(env, d.smCount));
  o.Set("memoryBytes", Napi::Number::New(env, double(d.memBytes)));
  return o;
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#ifdef FSMOEC_HAVE_CUDA
  o.Set("cuda", Napi::Boolean::New(env, true));
#else
  o.Set("cuda", Napi::Boolean::New(env, false));
#endif
  o.Set("mpi", Napi::Boolean::New(env, mpiProcess().built));
  o.Set("hardwareThreads", Napi::Number::New(env, std::thread::hardware_concurrency()));
  o.Set("backends", Napi::String::New(env, gpu::compiled() ? "host,cuda" : "host"));
  return o;
}

/** peakGflops(threads, seconds) → the host's measured fp32 peak (peak.h); blocks the caller for about 3 × seconds. */
Napi::Value PeakGflops(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "peakGflops(threads, seconds) expects two numbers").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double threads = info[0].As<Napi::Number>().DoubleValue(), seconds = info[1].As<Napi::Number>().DoubleValue();
  if (!(threads >= 1 && threads <= 1024) || !(seconds > 0 && seconds <= 10)) {
    Napi::RangeError::New(env, "peakGflops: threads must be in 1 … 1024 and seconds in (0, 10]").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, measurePeakGflops(int(threads), seconds));
}

/** mpi() → { rank, size } when this process is one rank of an MPI job, { error } when it was launched so but cannot be, else null. */
Napi::Value Mpi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const MpiProcess& p = mpiProcess();
  if (!p.active && p.error.empty()) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("rank", Napi::Number::New(env, p.rank));
  o.Set("size", Napi::Number::New(env, p.size));
  if (!p.error.empty()) o.Set("error", Napi::String::New(env, p.error));
  return o;
}

/** mpiAllgather(text, timeoutMs) → every process's text in rank order; throws on a timeout or without MPI. */
Napi::Value MpiAllgather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "mpiAllgather(text: string, timeoutMs: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<std::string> all;
  std::string error;
  const double t = info[1].As<Napi::Number>().DoubleValue();
  if (!mpiAllgatherText(info[0].As<Napi::String>().Utf8Value(), int64_t(t >= 1 && t <= 86400000 ? t : 10000), all, error)) {
    Napi::Error::New(env, error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array a = Napi::Array::New(env, all.size());
  for (std::size_t i = 0; i < all.size(); i++) a.Set(uint32_t(i), Napi::String::New(env, all[i]));
  return a;
}

/** mpiFinalize(): MPI_Finalize once (also run at exit if nobody called it). */
Napi::Value MpiFinalize(const Napi::CallbackInfo& info) {
  mpiShutdown();
  return info.Env().Undefined();
}

/** mpiAbort(code): MPI_Abort of the whole job (after a failed run its requests cannot complete). */
Napi::Value MpiAbort(const Napi::CallbackInfo& info) {
  const int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  mpiAbortJob(code == 0 ? 1 : code);
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  mpiStartup();  // on the main thread, before any run: only under an MPI launcher
  exports.Set("peakGflops", Napi::Function::New(env, PeakGflops, "peakGflops"));
  exports.Set("mpi", Napi::Function::New(env, Mpi, "mpi"));
  exports.Set("mpiAllgather", Napi::Function::New(env, MpiAllgather, "mpiAllgather"));
  exports.Set("mpiFinalize", Napi::Function::New(env, MpiFinalize, "mpiFinalize"));
  exports.Set("mpiAbort", Napi::Function::New(env, MpiAbort, "mpiAbort"));
  exports.Set("validate", Napi::Function::New(env, Validate, "validate"));
  exports.Set("run", Napi::Function::New(env, Run, "run"));
  exports.Set("reference", Napi::Function::New(env, Reference, "reference"));
  exports.Set("philox", Napi::Function::New(env, Philox, "philox"));
  exports.Set("uniform", Napi::Function::New(env, Uniform, "uniform"));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  exports.Set("runCuda", Napi::Function::New(env, RunCuda, "runCuda"));
  exports.Set("cudaDevice", Napi::Function::New(env, CudaDevice, "cudaDevice"));
  return exports;
}

}  // namespace

NODE_API_MODULE(fsmoec_native, Init)

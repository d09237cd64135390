// The C API of generated code (native/include/fsmoe_runtime.h) on the CUDA backend
// (../cuda/backend.h, gpu::Session), plus its host-side functions (fsmoe_runtime_cuda.h). A
// generated plan.cu issues one iteration op by op; this file checks every call against the
// plan.json the runtime was created from (the op in plan order, its kind, stream, byte ranges
// and group) and hands the op to the session, which launches the same kernels and collectives as
// gpu::run. Streams and events are CUDA's own: the generated code orders the streams, so the
// session issues no waits of its own. Nothing throws across this boundary; a failure is a status
// and a message (fsmoe_cuda_error).
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "../../include/fsmoe_runtime_cuda.h"
#include "../../tools/tensors.h"
#include "../cuda/backend.h"
#include "../json.h"
#include "../plan.h"

struct fsmoe_rt {
  fsmoe::gpu::Session session;
  std::string error;
  const fsmoe_plan_desc* desc = nullptr;  // the generated plan this runtime was begun with
  std::vector<cudaEvent_t> events;
  std::vector<int32_t> commTags;          // fsmoe_comm_t handles: &commTags[group]
  int32_t next = -1;                      // the op the generated code issues next; -1 outside an iteration
  bool issued = false;                    // an iteration was issued since the last synchronize
  bool abandoned = false;                 // an iteration stopped at a failure, its streams not joined
  ~fsmoe_rt() {
    for (cudaEvent_t e : events) cudaEventDestroy(e);
  }
};

namespace {

using namespace fsmoe;

fsmoe_status failWith(fsmoe_rt* rt, fsmoe_status st, const std::string& message) {
  if (rt) rt->error = message;
  return st;
}

/** A session failure: "no CUDA device" and missing libraries are UNAVAILABLE, NCCL errors COMM, the rest CUDA. */
fsmoe_status sessionFailure(fsmoe_rt* rt) {
  const std::string& e = rt->session.error();
  fsmoe_status st = FSMOE_ERROR_CUDA;
  if (e.rfind("no CUDA device", 0) == 0 || e.rfind("no usable CUDA device", 0) == 0 || e.find("unavailable: ") != std::string::npos) st = FSMOE_ERROR_UNAVAILABLE;
  else if (e.find("nccl") != std::string::npos || e.find("NCCL") != std::string::npos || e.rfind("bootstrap", 0) == 0) st = FSMOE_ERROR_COMM;
  else if (e.find("not supported by the cuda backend") != std::string::npos || e.find("C API runs one rank") != std::string::npos) st = FSMOE_ERROR_UNSUPPORTED;
  return failWith(rt, st, e);
}

fsmoe_status cudaFailure(fsmoe_rt* rt, cudaError_t e, const char* call) {
  return failWith(rt, FSMOE_ERROR_CUDA, std::string(call) + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

bool parseCreateOptions(const char* text, gpu::Options& o, std::string& error) {
  if (text == nullptr || *text == 0) return true;
  Json root;
  std::string err;
  if (!parseJson(text, std::strlen(text), root, err) || !root.isObject()) return error = "options: expected a JSON object" + (err.empty() ? "" : ": " + err), false;
  auto choice = [&](const char* name, std::initializer_list<const char*> names, int& out) {
    const Json* v = root.get(name);
    if (!v) return true;
    int i = 0;
    for (const char* n : names) {
      if (v->isString() && v->string == n) return out = i, true;
      i++;
    }
    return error = std::string("options.") + name + ": unknown value", false;
  };
  int precision = 0, comm = 0, gemm = 0;
  if (!choice("precision", {"fp32", "bf16"}, precision) || !choice("comm", {"auto", "loopback", "nccl"}, comm) || !choice("gemm", {"auto", "cublas", "builtin"}, gemm)) return false;
  o.precision = precision ? gpu::Precision::Bf16 : gpu::Precision::Fp32;
  o.comm = comm == 1 ? gpu::Comm::Loopback : comm == 2 ? gpu::Comm::Nccl : gpu::Comm::Auto;
  o.gemm = gemm == 1 ? gpu::Gemm::Cublas : gemm == 2 ? gpu::Gemm::Builtin : gpu::Gemm::Auto;
  if (const Json* t = root.get("timeoutMs")) {
    if (!t->isNumber() || t->number < 1 || t->number > 86400000 || std::floor(t->number) != t->number) return error = "options.timeoutMs: expected milliseconds from 1 to 86400000", false;
    o.timeoutMs = int64_t(t->number);
  }
  return true;
}

/** Check the generated plan against plan.json: the same job, world, ops, arena and groups. */
fsmoe_status matchPlan(fsmoe_rt* rt, const fsmoe_plan_desc* d) {
  const Plan& p = rt->session.plan();
  auto mismatch = [&](const std::string& what) { return failWith(rt, FSMOE_ERROR_MISMATCH, "the generated plan does not match plan.json: " + what); };
  if (d->api_version != FSMOE_RUNTIME_API_VERSION) return mismatch("API version " + std::to_string(d->api_version) + ", this runtime implements " + std::to_string(FSMOE_RUNTIME_API_VERSION));
  if (d->world_size != p.job.world) return mismatch("world size " + std::to_string(d->world_size) + " vs " + std::to_string(p.job.world));
  if (d->num_ops != int32_t(p.ops.size())) return mismatch(std::to_string(d->num_ops) + " ops vs " + std::to_string(p.ops.size()));
  if (int64_t(d->arena_bytes) != p.arenaBytes) return mismatch("arena of " + std::to_string(d->arena_bytes) + " bytes vs " + std::to_string(p.arenaBytes));
  if (d->num_groups != int32_t(p.groups.size())) return mismatch(std::to_string(d->num_groups) + " groups vs " + std::to_string(p.groups.size()));
  if (d->num_events < 0 || d->num_events > (1 << 24)) return mismatch("event count " + std::to_string(d->num_events));
  if (d->job == nullptr || p.job.name != d->job) return mismatch(std::string("job '") + (d->job ? d->job : "(null)") + "' vs '" + p.job.name + "'");
  for (int g = 0; g < d->num_groups; g++)
    if (d->groups[g].size != p.groups[g].size || d->groups[g].stride != p.groups[g].stride)
      return mismatch("group " + std::to_string(g) + " (" + p.groups[g].name + ") has size " + std::to_string(d->groups[g].size) + ", stride " + std::to_string(d->groups[g].stride));
  return FSMOE_OK;
}

/** The op the generated code issues now, checked: it is next in plan order, has this kind, and runs on `stream`. */
fsmoe_status expectOp(fsmoe_rt* rt, int32_t id, OpKind kind, fsmoe_stream_t stream, const Op** out) {
  const Plan& p = rt->session.plan();
  if (rt->next < 0) return failWith(rt, FSMOE_ERROR_MISMATCH, "an op was issued outside fsmoe_plan_begin … fsmoe_plan_end");
  if (rt->next >= int32_t(p.ops.size())) return failWith(rt, FSMOE_ERROR_MISMATCH, "more ops issued than the plan has (" + std::to_string(p.ops.size()) + ")");
  if (id >= 0 && id != rt->next) return failWith(rt, FSMOE_ERROR_MISMATCH, "op " + std::to_string(id) + " issued where the plan's op " + std::to_string(rt->next) + " comes next");
  const Op& op = p.ops[std::size_t(rt->next)];
  if (op.kind != kind) return failWith(rt, FSMOE_ERROR_MISMATCH, "op " + std::to_string(op.id) + " is " + kindName(op.kind) + " in plan.json, issued as " + kindName(kind));
  if (stream != static_cast<fsmoe_stream_t>(rt->session.stream(op.stream)))
    return failWith(rt, FSMOE_ERROR_MISMATCH, "op " + std::to_string(op.id) + " issued on another stream than its stream " + std::to_string(op.stream));
  *out = &op;
  return FSMOE_OK;
}

/** Access `i` of `op` must be the arena range at `data` of `bytes` bytes. */
fsmoe_status expectRange(fsmoe_rt* rt, const Op& op, std::size_t i, const void* data, uint64_t bytes) {
  if (i >= op.accesses.size()) return failWith(rt, FSMOE_ERROR_MISMATCH, "op " + std::to_string(op.id) + " has " + std::to_string(op.accesses.size()) + " byte ranges in plan.json, more were passed");
  const Access& a = op.accesses[i];
  if (data != rt->session.arena() + a.abs || int64_t(bytes) != a.bytes)
    return failWith(rt, FSMOE_ERROR_MISMATCH, "op " + std::to_string(op.id) + " range " + std::to_string(i) + " is not plan.json's (offset " + std::to_string(a.abs) + ", " + std::to_string(a.bytes) + " bytes)");
  return FSMOE_OK;
}

fsmoe_status issue(fsmoe_rt* rt, const Op& op) {
  if (!rt->session.launch(op.id)) return sessionFailure(rt);
  rt->next++;
  return FSMOE_OK;
}

fsmoe_status kernel(fsmoe_rt* rt, OpKind kind, const fsmoe_op_info* info, const fsmoe_tensor* tensors, int32_t n, fsmoe_stream_t stream) {
  if (!rt || !info || (n > 0 && !tensors) || n < 0) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "a kernel launch with a null op, null tensors or a negative count");
  const Op* op = nullptr;
  if (fsmoe_status st = expectOp(rt, info->id, kind, stream, &op); st != FSMOE_OK) return st;
  if (std::size_t(n) != op->accesses.size())
    return failWith(rt, FSMOE_ERROR_MISMATCH, "op " + std::to_string(op->id) + " got " + std::to_string(n) + " byte ranges, plan.json has " + std::to_string(op->accesses.size()));
  for (int32_t i = 0; i < n; i++)
    if (fsmoe_status st = expectRange(rt, *op, std::size_t(i), tensors[i].data, tensors[i].bytes); st != FSMOE_OK) return st;
  return issue(rt, *op);
}

fsmoe_status collective(fsmoe_rt* rt, OpKind kind, fsmoe_comm_t comm, const void* send, uint64_t sendBytes, void* recv, uint64_t recvBytes, int32_t dtype, fsmoe_stream_t stream) {
  if (!rt || !comm) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "a collective with a null runtime or communicator");
  if (dtype != FSMOE_DTYPE_FP32) return failWith(rt, FSMOE_ERROR_UNSUPPORTED, "the cuda runtime moves fp32 data only (plans are fp32)");
  const Op* op = nullptr;
  if (fsmoe_status st = expectOp(rt, -1, kind, stream, &op); st != FSMOE_OK) return st;
  const int32_t* tag = reinterpret_cast<const int32_t*>(comm);
  if (rt->commTags.empty() || tag < rt->commTags.data() || tag >= rt->commTags.data() + rt->commTags.size() || *tag != op->group)
    return failWith(rt, FSMOE_ERROR_MISMATCH, "op " + std::to_string(op->id) + " issued on another communicator than its group's");
  if (fsmoe_status st = expectRange(rt, *op, 0, send, sendBytes); st != FSMOE_OK) return st;
  if (fsmoe_status st = expectRange(rt, *op, 1, recv, recvBytes); st != FSMOE_OK) return st;
  return issue(rt, *op);
}

}  // namespace

extern "C" {

const char* fsmoe_status_name(fsmoe_status s) {
  switch (s) {
    case FSMOE_OK: return "FSMOE_OK";
    case FSMOE_ERROR_INVALID_ARGUMENT: return "FSMOE_ERROR_INVALID_ARGUMENT";
    case FSMOE_ERROR_OUT_OF_RANGE: return "FSMOE_ERROR_OUT_OF_RANGE";
    case FSMOE_ERROR_OUT_OF_MEMORY: return "FSMOE_ERROR_OUT_OF_MEMORY";
    case FSMOE_ERROR_UNSUPPORTED: return "FSMOE_ERROR_UNSUPPORTED";
    case FSMOE_ERROR_UNAVAILABLE: return "FSMOE_ERROR_UNAVAILABLE";
    case FSMOE_ERROR_MISMATCH: return "FSMOE_ERROR_MISMATCH";
    case FSMOE_ERROR_CUDA: return "FSMOE_ERROR_CUDA";
    case FSMOE_ERROR_COMM: return "FSMOE_ERROR_COMM";
    case FSMOE_ERROR_INTERNAL: return "FSMOE_ERROR_INTERNAL";
  }
  return "FSMOE_ERROR_UNKNOWN";
}

fsmoe_status fsmoe_cuda_create(const char* planJson, uint64_t bytes, const char* optionsJson, fsmoe_rt** out) {
  if (!out) return FSMOE_ERROR_INVALID_ARGUMENT;
  *out = nullptr;
  fsmoe_rt* rt = new (std::nothrow) fsmoe_rt;
  if (!rt) return FSMOE_ERROR_OUT_OF_MEMORY;
  *out = rt;
  if (!planJson) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "no plan.json text");
  try {
    gpu::Options o;
    o.graphIterations = 0;
    o.eagerIterations = 0;
    o.profileOps = false;
    std::string error;
    if (!parseCreateOptions(optionsJson, o, error)) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, error);
    Limits limits;
    limits.maxWorld = 64;
    limits.maxArenaBytes = int64_t(1) << 40;
    limits.maxTotalBytes = int64_t(1) << 46;
    limits.maxOps = int64_t(1) << 22;
    limits.maxPlanBytes = int64_t(1) << 30;
    Plan plan;
    if (!loadPlan(planJson, std::size_t(bytes), limits, plan, error)) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "plan.json: " + error);
    if (!rt->session.open(std::move(plan), o)) return sessionFailure(rt);
    return FSMOE_OK;
  } catch (const std::bad_alloc&) {
    return failWith(rt, FSMOE_ERROR_OUT_OF_MEMORY, "out of host memory");
  } catch (const std::exception& e) {
    return failWith(rt, FSMOE_ERROR_INTERNAL, std::string("internal error: ") + e.what());
  }
}

void fsmoe_cuda_destroy(fsmoe_rt* rt) { delete rt; }

const char* fsmoe_cuda_error(const fsmoe_rt* rt) { return rt ? rt->error.c_str() : "no runtime (out of memory)"; }

int32_t fsmoe_cuda_rank(const fsmoe_rt* rt) { return rt ? rt->session.rank() : -1; }

fsmoe_status fsmoe_plan_begin(fsmoe_rt* rt, const fsmoe_plan_desc* plan, int32_t rank) {
  if (!rt || !plan) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "fsmoe_plan_begin: a null runtime or plan");
  if (!rt->session.isOpen()) return failWith(rt, FSMOE_ERROR_MISMATCH, "fsmoe_plan_begin: the runtime is not set up (" + rt->error + ")");
  if (rt->next >= 0) return failWith(rt, FSMOE_ERROR_MISMATCH, "fsmoe_plan_begin: the previous iteration was not ended (fsmoe_plan_end)");
  if (rank != rt->session.rank()) return failWith(rt, FSMOE_ERROR_MISMATCH, "fsmoe_plan_begin: rank " + std::to_string(rank) + " asked, this process runs rank " + std::to_string(rt->session.rank()));
  if (rt->desc != plan) {
    if (fsmoe_status st = matchPlan(rt, plan); st != FSMOE_OK) return st;
    for (cudaEvent_t e : rt->events) cudaEventDestroy(e);
    rt->events.assign(std::size_t(plan->num_events), nullptr);
    for (cudaEvent_t& e : rt->events)
      if (cudaError_t ce = cudaEventCreateWithFlags(&e, cudaEventDisableTiming); ce != cudaSuccess) return cudaFailure(rt, ce, "cudaEventCreateWithFlags");
    rt->commTags.resize(std::size_t(plan->num_groups));
    for (std::size_t g = 0; g < rt->commTags.size(); g++) rt->commTags[g] = int32_t(g);
    rt->desc = plan;
  }
  // An abandoned iteration's streams join the compute stream first, so the prologue cannot overwrite what they still read.
  if (rt->abandoned && !rt->session.end()) return sessionFailure(rt);
  rt->abandoned = false;
  if (!rt->session.begin()) return sessionFailure(rt);
  rt->next = 0;
  rt->issued = true;
  return FSMOE_OK;
}

fsmoe_status fsmoe_plan_end(fsmoe_rt* rt) {
  if (!rt) return FSMOE_ERROR_INVALID_ARGUMENT;
  const int32_t n = int32_t(rt->session.plan().ops.size());
  if (rt->next != n) {
    const std::string what = rt->next < 0 ? "no iteration was begun" : "only " + std::to_string(rt->next) + " of " + std::to_string(n) + " ops were issued";
    if (rt->next >= 0) rt->abandoned = true;
    rt->next = -1;
    return failWith(rt, FSMOE_ERROR_MISMATCH, "fsmoe_plan_end: " + what);
  }
  rt->next = -1;
  if (!rt->session.end()) return sessionFailure(rt);
  return FSMOE_OK;
}

fsmoe_status fsmoe_report(fsmoe_rt* rt, int32_t op, fsmoe_status status, const char* what) {
  if (!rt) return status;
  std::string m = std::string(fsmoe_status_name(status)) + (op >= 0 ? " at op " + std::to_string(op) : std::string(" outside any op")) + " in " + (what ? what : "(unknown call)");
  if (!rt->error.empty()) m += ": " + rt->error;
  rt->error = m;
  if (rt->next >= 0) rt->abandoned = true;  // a new fsmoe_plan_begin starts over
  rt->next = -1;
  return status;
}

fsmoe_status fsmoe_stream(fsmoe_rt* rt, int32_t id, fsmoe_stream_t* out) {
  if (!rt || !out || id < 0 || id >= FSMOE_STREAM_COUNT) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "fsmoe_stream: a null argument or an unknown stream id " + std::to_string(id));
  *out = static_cast<fsmoe_stream_t>(rt->session.stream(id));
  return *out ? FSMOE_OK : failWith(rt, FSMOE_ERROR_MISMATCH, "fsmoe_stream: the runtime is not set up");
}

fsmoe_status fsmoe_event(fsmoe_rt* rt, int32_t id, fsmoe_event_t* out) {
  if (!rt || !out) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "fsmoe_event: a null argument");
  if (id < 0 || std::size_t(id) >= rt->events.size()) return failWith(rt, FSMOE_ERROR_OUT_OF_RANGE, "fsmoe_event: event " + std::to_string(id) + " of " + std::to_string(rt->events.size()));
  *out = reinterpret_cast<fsmoe_event_t>(rt->events[std::size_t(id)]);
  return FSMOE_OK;
}

fsmoe_status fsmoe_event_record(fsmoe_rt* rt, fsmoe_event_t event, fsmoe_stream_t stream) {
  if (!rt || !event || !stream) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "fsmoe_event_record: a null argument");
  cudaError_t e = cudaEventRecord(reinterpret_cast<cudaEvent_t>(event), reinterpret_cast<cudaStream_t>(stream));
  return e == cudaSuccess ? FSMOE_OK : cudaFailure(rt, e, "cudaEventRecord");
}

fsmoe_status fsmoe_event_wait(fsmoe_rt* rt, fsmoe_stream_t stream, fsmoe_event_t event) {
  if (!rt || !event || !stream) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "fsmoe_event_wait: a null argument");
  cudaError_t e = cudaStreamWaitEvent(reinterpret_cast<cudaStream_t>(stream), reinterpret_cast<cudaEvent_t>(event), 0);
  return e == cudaSuccess ? FSMOE_OK : cudaFailure(rt, e, "cudaStreamWaitEvent");
}

fsmoe_status fsmoe_buffer(fsmoe_rt* rt, uint64_t offset, uint64_t bytes, void** out) {
  if (!rt || !out) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "fsmoe_buffer: a null argument");
  const uint64_t arena = uint64_t(rt->session.plan().arenaBytes);
  if (!rt->session.arena()) return failWith(rt, FSMOE_ERROR_MISMATCH, "fsmoe_buffer: the runtime is not set up");
  if (offset > arena || bytes > arena - offset)
    return failWith(rt, FSMOE_ERROR_OUT_OF_RANGE, "fsmoe_buffer: " + std::to_string(bytes) + " bytes at " + std::to_string(offset) + " outside the arena of " + std::to_string(arena));
  *out = rt->session.arena() + offset;
  return FSMOE_OK;
}

fsmoe_status fsmoe_comm(fsmoe_rt* rt, const fsmoe_group_desc* group, int32_t rank, fsmoe_comm_t* out) {
  if (!rt || !group || !out) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "fsmoe_comm: a null argument");
  if (!rt->desc || group < rt->desc->groups || group >= rt->desc->groups + rt->desc->num_groups)
    return failWith(rt, FSMOE_ERROR_OUT_OF_RANGE, "fsmoe_comm: a group that is not one of the begun plan's");
  if (rank != rt->session.rank()) return failWith(rt, FSMOE_ERROR_MISMATCH, "fsmoe_comm: rank " + std::to_string(rank) + " is not this process's");
  *out = reinterpret_cast<fsmoe_comm_t>(&rt->commTags[std::size_t(group - rt->desc->groups)]);
  return FSMOE_OK;
}

#define FSMOE_KERNEL(fn, kind) \
  fsmoe_status fn(FSMOE_KERNEL_PARAMS) { return kernel(rt, OpKind::kind, op, tensors, num_tensors, stream); }
FSMOE_KERNEL(fsmoe_launch_embed, Embed)
FSMOE_KERNEL(fsmoe_launch_lm_head, LmHead)
FSMOE_KERNEL(fsmoe_launch_loss, Loss)
FSMOE_KERNEL(fsmoe_launch_attention, Attention)
FSMOE_KERNEL(fsmoe_launch_dense_ffn, DenseFfn)
FSMOE_KERNEL(fsmoe_launch_shared_expert, SharedExpert)
FSMOE_KERNEL(fsmoe_launch_norm, Norm)
FSMOE_KERNEL(fsmoe_launch_gate, Gate)
FSMOE_KERNEL(fsmoe_launch_order, Order)
FSMOE_KERNEL(fsmoe_launch_dispatch_gemm, DispatchGemm)
FSMOE_KERNEL(fsmoe_launch_expert_gemm, Expert)
FSMOE_KERNEL(fsmoe_launch_combine_gemm, CombineGemm)
FSMOE_KERNEL(fsmoe_launch_iorder, Iorder)
#undef FSMOE_KERNEL

fsmoe_status fsmoe_all_to_all(fsmoe_rt* rt, fsmoe_comm_t comm, const void* send, uint64_t sendBytes, void* recv, uint64_t recvBytes, int32_t dtype, fsmoe_stream_t stream) {
  return collective(rt, OpKind::AllToAll, comm, send, sendBytes, recv, recvBytes, dtype, stream);
}
fsmoe_status fsmoe_all_gather(fsmoe_rt* rt, fsmoe_comm_t comm, const void* send, uint64_t sendBytes, void* recv, uint64_t recvBytes, int32_t dtype, fsmoe_stream_t stream) {
  return collective(rt, OpKind::AllGather, comm, send, sendBytes, recv, recvBytes, dtype, stream);
}
fsmoe_status fsmoe_reduce_scatter(fsmoe_rt* rt, fsmoe_comm_t comm, const void* send, uint64_t sendBytes, void* recv, uint64_t recvBytes, int32_t dtype, fsmoe_stream_t stream) {
  return collective(rt, OpKind::ReduceScatter, comm, send, sendBytes, recv, recvBytes, dtype, stream);
}

fsmoe_status fsmoe_all_reduce(fsmoe_rt* rt, fsmoe_comm_t comm, const fsmoe_tensor* pieces, int32_t n, int32_t dtype, fsmoe_stream_t stream) {
  if (!rt || !comm || (n > 0 && !pieces) || n < 0) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "fsmoe_all_reduce: a null argument or a negative count");
  if (dtype != FSMOE_DTYPE_FP32) return failWith(rt, FSMOE_ERROR_UNSUPPORTED, "the cuda runtime moves fp32 data only (plans are fp32)");
  const Op* op = nullptr;
  if (fsmoe_status st = expectOp(rt, -1, OpKind::AllReduce, stream, &op); st != FSMOE_OK) return st;
  const int32_t* tag = reinterpret_cast<const int32_t*>(comm);
  if (rt->commTags.empty() || tag < rt->commTags.data() || tag >= rt->commTags.data() + rt->commTags.size() || *tag != op->group)
    return failWith(rt, FSMOE_ERROR_MISMATCH, "op " + std::to_string(op->id) + " issued on another communicator than its group's");
  if (std::size_t(n) != op->accesses.size())
    return failWith(rt, FSMOE_ERROR_MISMATCH, "op " + std::to_string(op->id) + " got " + std::to_string(n) + " pieces, plan.json has " + std::to_string(op->accesses.size()));
  for (int32_t i = 0; i < n; i++)
    if (fsmoe_status st = expectRange(rt, *op, std::size_t(i), pieces[i].data, pieces[i].bytes); st != FSMOE_OK) return st;
  return issue(rt, *op);
}

fsmoe_status fsmoe_cuda_synchronize(fsmoe_rt* rt) {
  if (!rt) return FSMOE_ERROR_INVALID_ARGUMENT;
  if (!rt->issued) return failWith(rt, FSMOE_ERROR_MISMATCH, "fsmoe_cuda_synchronize: no iteration was issued");
  if (!rt->session.wait()) return sessionFailure(rt);
  return FSMOE_OK;
}

fsmoe_status fsmoe_cuda_write_results(fsmoe_rt* rt, const char* path) {
  if (!rt || !path) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, "fsmoe_cuda_write_results: a null argument");
  if (!rt->issued) return failWith(rt, FSMOE_ERROR_MISMATCH, "fsmoe_cuda_write_results: no iteration was issued");
  try {
    RunResult r;
    if (!rt->session.results(r)) return sessionFailure(rt);
    std::string error;
    if (!tensors::write(path, r.ranks, {rt->session.rank()}, error)) return failWith(rt, FSMOE_ERROR_INVALID_ARGUMENT, error);
    return FSMOE_OK;
  } catch (const std::bad_alloc&) {
    return failWith(rt, FSMOE_ERROR_OUT_OF_MEMORY, "out of host memory");
  }
}

}  // extern "C"

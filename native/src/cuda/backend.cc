// The CUDA executor (backend.h). One host thread issues every op of every local rank in plan
// order on the rank's streams; a cross-stream wait of the plan is a cudaStreamWaitEvent on the
// event recorded after the op it names. Loopback collectives are issued for all their members at
// once (every member records an arrival event, every member waits for all arrivals, moves its
// data, records a done event, and waits for every member's done event: the host communicator's
// two rendezvous as events), so one thread can issue, and capture, a multi-rank iteration.
#include "backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <memory>
#include <thread>

#include "../model.h"
#include "bootstrap.h"
#include "dense_kernels.cuh"
#include "gemm.h"
#include "kernels.cuh"
#include "libs.h"
#include "model_ops.h"
#include "util.h"

namespace fsmoe {
namespace gpu {

// The kernels take the router and activation as plan.h numbers them.
static_assert(int(Router::SoftmaxTopk) == kSoftmaxTopk && int(Router::Gshard) == kGshard && int(Router::Switch) == kSwitch && int(Router::Sigmoid) == kSigmoid,
              "kernels.cuh RouterKind must follow plan.h Router");
static_assert(int(Activation::Relu) == kRelu && int(Activation::Gelu) == kGelu && int(Activation::Swiglu) == kSwiglu && int(Activation::Geglu) == kGeglu,
              "kernels.cuh ActKind must follow plan.h Activation");

bool compiled() { return true; }

DeviceInfo probe() {
  DeviceInfo d;
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  cudaDriverGetVersion(&d.driverVersion);
  cudaRuntimeGetVersion(&d.runtimeVersion);
  if (e != cudaSuccess) {
    d.error = "no CUDA device: cudaGetDeviceCount failed: " + cudaText(e);
    if (e == cudaErrorInsufficientDriver)
      d.error += d.driverVersion == 0 ? " [no NVIDIA driver is loaded]"
                                      : " [the driver supports CUDA " + std::to_string(d.driverVersion / 1000) + "." + std::to_string(d.driverVersion % 1000 / 10) +
                                            ", this build's runtime is " + std::to_string(d.runtimeVersion / 1000) + "." + std::to_string(d.runtimeVersion % 1000 / 10) +
                                            ": rebuild with the toolkit that matches the driver]";
    cudaGetLastError();  // not sticky, but clear it
    return d;
  }
  if (n <= 0) {
    d.error = "no CUDA device: cudaGetDeviceCount found none";
    return d;
  }
  d.count = n;
  cudaDeviceProp p{};
  const cudaError_t pe = cudaGetDeviceProperties(&p, 0);
  if (pe != cudaSuccess) {
    d.error = "no usable CUDA device: cudaGetDeviceProperties failed: " + cudaText(pe);
    return d;
  }
  d.name = p.name;
  d.major = p.major;
  d.minor = p.minor;
  d.smCount = p.multiProcessorCount;
  d.memBytes = p.totalGlobalMem;
  if (cudaDeviceGetAttribute(&d.clockKHz, cudaDevAttrClockRate, 0) != cudaSuccess) d.clockKHz = 0;  // unknown: no peak figure
  d.ok = true;
  return d;
}

namespace {

using Clock = std::chrono::steady_clock;
double micros(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); }

std::string describe(const Op& op, int rank) {
  std::string s = std::string(isCollective(op.kind) ? "collective " : "op ") + kindName(op.kind) + " '" + op.role + "' (op " + std::to_string(op.id);
  if (op.layer >= 0) s += ", layer " + std::to_string(op.layer);
  s += std::string(op.bwd ? " bwd" : " fwd") + ", micro-batch " + std::to_string(op.mb);
  if (op.chunk >= 0) s += ", chunk " + std::to_string(op.chunk);
  return s + ") on stream " + streamName(op.stream) + " of rank " + std::to_string(rank);
}

std::string deviceText(const DeviceInfo& d) {
  return d.name + " (sm_" + std::to_string(d.major) + std::to_string(d.minor) + ", " + std::to_string(d.smCount) + " SMs, " + std::to_string(d.memBytes >> 30) + " GiB)";
}

bool supportedKind(OpKind k) {
  switch (k) {
    case OpKind::Gate:
    case OpKind::Order:
    case OpKind::DispatchGemm:
    case OpKind::Expert:
    case OpKind::CombineGemm:
    case OpKind::Iorder:
    case OpKind::AllToAll:
    case OpKind::AllGather:
    case OpKind::ReduceScatter:
    case OpKind::AllReduce:
    case OpKind::Embed:
    case OpKind::Attention:
    case OpKind::DenseFfn:
    case OpKind::SharedExpert:
    case OpKind::LmHead:
    case OpKind::Loss: return true;
    default: return false;
  }
}

/** An NCCL communicator, destroyed with its owner. */
class NcclComm {
 public:
  NcclComm() = default;
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;
  ~NcclComm() {
    if (c_ != nullptr) libs::nccl().commDestroy(c_);
  }
  ncclComm_t get() const { return c_; }
  ncclComm_t* out() { return &c_; }
  void abort() {
    if (c_ != nullptr) libs::nccl().commAbort(c_);
    c_ = nullptr;
  }

 private:
  ncclComm_t c_ = nullptr;
};

/** Row lists of one expert op (host-computed, uploaded once): offsets into RankState::expertIdx. */
struct ExpertRows {
  int first = 0, count = 0;   // local experts first … first + count − 1
  int64_t R = 0;              // rows of one local expert in the chunk
  int64_t rows = -1;          // fwd: rows of in/out; bwd: rows of dOut/dIn
  int64_t hidden[2] = {-1, -1};   // fwd: rows of the hidden buffer (Hs wide) per GEMM; bwd: of the saved hidden
  int64_t saved = -1;         // bwd: rows of the saved input
};

/** Per stream: scratch for the kernels of ops on that stream, and its GEMM engine. */
struct Scratch {
  GemmEngine gemm;
  bool ready = false;
  DeviceMemory dlogits, inv, mask, dense, X, Y, D, H1, H3, A, dA, D1, D3, lowA, lowB;
  // Model jobs: the normalized stream and its gradient (N × M), each row's 1 / rms (N doubles), and the dense blocks' scratch (model_ops.h).
  DeviceMemory nrm, dnrm, rowInv, q, k, v, o, p, dO, dq, dk, dv, dp, fh1, fh3, fa, fda, fd1, fd3;
  DeviceMemory lat[12];  // MLA's latent vectors, in DenseScratch's order
  DenseScratch denseScratch() {
    DenseScratch s;
    s.q = q.as<float>(), s.k = k.as<float>(), s.v = v.as<float>(), s.o = o.as<float>(), s.p = p.as<float>();
    s.dO = dO.as<float>(), s.dq = dq.as<float>(), s.dk = dk.as<float>(), s.dv = dv.as<float>(), s.dp = dp.as<float>();
    s.h1 = fh1.as<float>(), s.h3 = fh3.as<float>(), s.a = fa.as<float>(), s.da = fda.as<float>(), s.d1 = fd1.as<float>(), s.d3 = fd3.as<float>();
    float** latent[12] = {&s.cqRaw, &s.cq, &s.dcq, &s.dcqRaw, &s.c, &s.dc, &s.ckvRaw, &s.ckv, &s.dckv, &s.dckvRaw, &s.kpe, &s.dkpe};
    for (int i = 0; i < 12; i++) *latent[i] = lat[i].as<float>();
    s.inv = rowInv.as<double>();
    return s;
  }
};

struct LayerWeightsD {
  DeviceMemory router, bias, experts;
  DeviceMemory attentionNorm, ffnNorm, attention, ffn;  // model jobs (model.h DenseWeights)
};

struct RankState {
  int rank = 0;
  Stream streams[kStreams];
  DeviceMemory arena, givens, cot, gshardU, loss, tapOut, tapDx, tapRoute, expertIdx;
  DeviceMemory reduce[kStreams];  // loopback reductions, per stream (collectives on two streams may overlap)
  std::vector<LayerWeightsD> weights;  // by layer
  DeviceMemory embedding, lmHead, finalNorm;  // model jobs (model.h HeadWeights)
  DeviceMemory tapLogits, tapLoss;            // model jobs: each micro-batch's logits (N · V/tp) and this rank's per-token losses (T)
  struct Copy {
    int64_t arenaOffset, storeOffset, bytes;
  };
  std::vector<Copy> givenCopies;
  std::vector<Event> opEvent, tStart, tEnd;
  Event iterStart, prologueEnd, prologueDone, arrive, done;
  Event join[kStreams];
  Scratch scratch[kStreams];
  cudaStream_t s(int id) const { return streams[id].get(); }
};

class Executor {
 public:
  Executor(const Plan& p, const Options& o) : p_(p), j_(p.job), o_(o) {}

  Result run() {
    Result out;
    const auto t0 = Clock::now();
    if (!setup(out) || !iterate(out)) {
      out.run.ok = false;
      out.run.error = error_;
      out.run.ranks.clear();
      abortComms();
      return out;
    }
    out.run.ok = true;
    (void)t0;
    return out;
  }

  // Driven op by op from outside (Session, the C API): one local rank, the caller orders the streams.
  /** Setup; fails unless this process runs exactly one rank (world 1, or one rank of an NCCL world). */
  bool open(Result& out) {
    if (!setup(out)) return false;
    if (ranks_.size() != 1)
      return fail("the C API runs one rank per process, but this plan has " + std::to_string(j_.world) + " ranks and no launcher started one process per rank (torchrun or an MPI launcher, with NCCL)");
    return true;
  }
  int rank() const { return ranks_[0]->rank; }
  cudaStream_t stream(int id) const { return ranks_[0]->s(id); }
  char* arena() { return base(*ranks_[0]); }
  bool begin() {
    ctx_ = "iteration prologue";
    return prologue(*ranks_[0], false);
  }
  /** Issue op `id` (a kernel, or a collective on its group's communicator) on its stream, without the plan's waits: the caller issued those. */
  bool launch(int id) {
    RankState& r = *ranks_[0];
    const Op& op = p_.ops[std::size_t(id)];
    ctx_ = describe(op, r.rank);
    return isCollective(op.kind) ? ncclOrLocalCollective(r, op) : kernel(r, op);
  }
  bool end() { return epilogue(); }
  bool wait() { return sync(s0(), "the iteration"); }
  const std::string& error() const { return error_; }
  void clearError() { error_.clear(); }
  void abort() { abortComms(); }
  bool results(RunResult& out) { return collect(out); }

 private:
  const Plan& p_;
  const Job& j_;
  const Options& o_;
  std::string error_;
  std::string ctx_ = "setup";
  bool nccl_ = false;
  std::vector<std::unique_ptr<RankState>> ranks_;  // local ranks
  std::vector<int> localOf_;                       // plan rank → index in ranks_, -1 elsewhere
  std::vector<char> needsEvent_;                   // op → a later op on another stream waits for it
  std::vector<ExpertRows> expertRows_;             // by op (expert ops)
  std::vector<int64_t> hostIdx_;
  std::vector<int> moeIndex_;                      // layer → index among MoE layers
  Event fork_;
  Event timeA_, timeB_;
  NcclComm world_, node_, rail_;
  std::deque<NcclComm> groupComms_;  // splits that are neither node nor rail
  std::vector<ncclComm_t> commOfGroup_;
  int64_t maxC_ = 1;
  bool profiling_ = false;
  bool capturing_ = false;  // a timing event inside a capture is an external event record node
  boot::Rendezvous rendezvous_;

  bool fail(const std::string& m) {
    if (error_.empty()) error_ = m;
    return false;
  }
  bool cuda(cudaError_t e, const char* call) {
    if (e == cudaSuccess) return true;
    return fail(ctx_ + ": " + call + " failed: " + cudaText(e));
  }
#define CU(call)                      \
  do {                                \
    if (!cuda((call), #call)) return false; \
  } while (0)
  bool ncclCall(ncclResult_t r, const char* call, ncclComm_t comm = nullptr) {
    if (r == ncclSuccess) return true;
    return fail(ctx_ + ": " + call + " failed: " + libs::nccl().describe(r, comm));
  }
#define NC(call, comm)                              \
  do {                                              \
    if (!ncclCall((call), #call, (comm))) return false; \
  } while (0)

  void abortComms() {
    for (auto& c : groupComms_) c.abort();
    node_.abort();
    rail_.abort();
    world_.abort();
  }

  int64_t T() const { return j_.tokens; }
  int64_t M() const { return j_.hidden; }
  int64_t E() const { return j_.experts; }
  int64_t K() const { return j_.topK; }

  char* base(RankState& r) { return r.arena.as<char>(); }
  float* at(RankState& r, int64_t abs) { return reinterpret_cast<float*>(base(r) + abs); }
  float* acc(RankState& r, const Op& op, int i) { return at(r, op.accesses[i].abs); }
  float* buf(RankState& r, const Op& op, int i) { return at(r, p_.buffers[op.accesses[i].buffer].offset); }

  // ── Setup ──────────────────────────────────────────────────────────────────────────────────

  bool setup(Result& out) {
    const auto t0 = Clock::now();
    const DeviceInfo dev = probe();
    if (!dev.ok) return fail(dev.error);
    for (const Op& op : p_.ops)
      if (!supportedKind(op.kind))
        return fail(describe(op, 0) + ": op kind " + kindName(op.kind) +
                    " is not supported by the cuda backend yet (it runs embed, attention, dense_ffn, shared_expert, gate, order, dispatch_gemm, expert, combine_gemm, iorder, lm_head, loss and the four collectives)");
    const boot::Env env = boot::readEnv();
    if (!env.error.empty()) return fail("bootstrap: " + env.error);
    Comm mode = o_.comm;
    if (mode == Comm::Auto) mode = env.present && env.world > 1 ? Comm::Nccl : Comm::Loopback;
    nccl_ = mode == Comm::Nccl;
    const int W = j_.world;
    localOf_.assign(W, -1);
    std::vector<int> local;
    if (nccl_) {
      const int world = env.present ? env.world : 1, rank = env.present ? env.rank : 0;
      if (world != W) return fail("bootstrap: the plan has " + std::to_string(W) + " ranks but " + env.source + " started " + std::to_string(world) + " process" + (world == 1 ? "" : "es") + " (one process per rank with --comm nccl; --comm loopback runs every rank in one process on one GPU)");
      local.push_back(rank);
    } else {
      if (env.present && env.world > 1) return fail("bootstrap: --comm loopback runs every rank in this one process, but " + env.source + " started " + std::to_string(env.world) + " processes (use --comm nccl, one process per GPU)");
      for (int r = 0; r < W; r++) local.push_back(r);
    }
    if (!nccl_ && W > kMaxPeers) return fail("loopback: at most " + std::to_string(kMaxPeers) + " ranks in one process");
    int device = o_.device >= 0 ? o_.device : (nccl_ ? (env.localRank >= 0 ? env.localRank : (env.present ? env.rank : 0)) % dev.count : 0);
    if (device >= dev.count) return fail("device " + std::to_string(device) + " requested, " + std::to_string(dev.count) + " present");
    ctx_ = "setup of device " + std::to_string(device);
    CU(cudaSetDevice(device));
    CU(cudaFree(nullptr));  // create the context now
    cudaDeviceProp prop{};
    CU(cudaGetDeviceProperties(&prop, device));
    out.device = prop.name + std::string(" (sm_") + std::to_string(prop.major) + std::to_string(prop.minor) + ", " + std::to_string(prop.multiProcessorCount) + " SMs, " +
                 std::to_string(prop.totalGlobalMem >> 30) + " GiB)";
    (void)deviceText;

    // Plan-wide tables.
    needsEvent_.assign(p_.ops.size(), 0);
    for (const Op& op : p_.ops)
      for (int w : op.waits)
        if (p_.ops[w].stream != op.stream) needsEvent_[w] = 1;
    moeIndex_.assign(j_.layers, -1);
    for (std::size_t i = 0; i < j_.moeLayers.size(); i++) moeIndex_[j_.moeLayers[i]] = int(i);
    for (int l : j_.moeLayers) maxC_ = std::max<int64_t>(maxC_, p_.layers[l].capacity);
    buildExpertRows();
    if (!checkMemory(prop, int(local.size()))) return false;

    for (int r : local) {
      localOf_[r] = int(ranks_.size());
      ranks_.push_back(std::make_unique<RankState>());
      ranks_.back()->rank = r;
    }
    for (auto& r : ranks_)
      if (!setupRank(*r)) return false;
    ctx_ = "setup";
    CU(cudaEventCreateWithFlags(fork_.out(), cudaEventDisableTiming));
    CU(cudaEventCreate(timeA_.out()));
    CU(cudaEventCreate(timeB_.out()));
    if (nccl_ && !setupNccl(env, out)) return false;
    if (!nccl_) out.comm = W == 1 ? "none (one rank)" : "loopback (" + std::to_string(W) + " ranks on one GPU)";
    out.gemm = ranks_[0]->scratch[0].ready ? ranks_[0]->scratch[0].gemm.name() : (ranks_[0]->scratch[1].ready ? ranks_[0]->scratch[1].gemm.name() : "none");
    for (int s = 0; s < kStreams; s++)
      if (ranks_[0]->scratch[s].ready) out.gemm = ranks_[0]->scratch[s].gemm.name();
    CU(cudaDeviceSynchronize());
    out.ranks = local;
    out.timing.setupUs = micros(t0, Clock::now());
    return true;
  }

  /** Rough device memory the run needs; a clear error instead of an allocation failure deep inside. */
  bool checkMemory(const cudaDeviceProp&, int localRanks) {
    std::size_t freeB = 0, totalB = 0;
    CU(cudaMemGetInfo(&freeB, &totalB));
    long double need = (long double)p_.arenaBytes;
    need += 4.0L * j_.moeLayers.size() * (j_.routerParams() + j_.expertShardParams() * (o_.precision == Precision::Bf16 ? 1.5L : 1.0L));
    need += 4.0L * j_.microBatches * T() * M() * 4;  // inputs, cotangents, taps
    if (j_.model) {
      need += 4.0L * j_.layers * (2.0L * M() + j_.attentionParams() + std::max(j_.ffnParams(), j_.sharedParams()));
      need += 4.0L * (2.0L * j_.vocabParams() + M());
      need += 4.0L * j_.microBatches * (int64_t(j_.groupTokens) * j_.localVocab + T() + 2 * j_.groupTokens);  // logits and loss taps, token ids
    }
    need += scratchElements() * 4.0L;
    need *= localRanks;
    need += (64 << 20);
    if (need > (long double)freeB)
      return fail("the plan needs about " + std::to_string((long long)(need / (1 << 20))) + " MiB of device memory for " + std::to_string(localRanks) + " rank(s); " +
                  std::to_string(freeB >> 20) + " MiB are free");
    return true;
  }

  /** Elements of one stream's scratch (upper bound). */
  long double scratchElements() const {
    long double n = (long double)T() * E() + E() * maxC_;
    bool einsum = false;
    for (const Op& op : p_.ops) einsum |= op.kind == OpKind::DispatchGemm || op.kind == OpKind::CombineGemm;
    if (einsum) n += 2.0L * T() * E() * maxC_;
    int64_t xr = 0, hr = 0;
    for (const ExpertRows& e : expertRows_) {
      xr = std::max<int64_t>(xr, e.count * e.R * M());
      hr = std::max<int64_t>(hr, e.count * e.R * j_.shardHidden);
    }
    n += 3.0L * xr + 6.0L * hr;
    if (o_.precision == Precision::Bf16) n += lowElements();
    if (j_.model) {
      const DenseScratchSizes d = denseScratchSizes(j_);
      n += 4.0L * int64_t(j_.groupTokens) * M() + 8.0L * d.head + 2.0L * d.probs + 6.0L * d.ffn + 12.0L * d.latent;
    }
    return n;
  }

  int64_t lowElements() const {
    int64_t n = std::max<int64_t>(T() * M(), E() * maxC_ * M());
    bool einsum = false;
    for (const Op& op : p_.ops) einsum |= op.kind == OpKind::DispatchGemm || op.kind == OpKind::CombineGemm;
    if (einsum) n = std::max<int64_t>(n, T() * E() * maxC_);
    for (const ExpertRows& e : expertRows_) n = std::max<int64_t>(n, e.count * e.R * std::max<int64_t>(M(), j_.shardHidden));
    return n;
  }

  /** The row lists of every expert op, exactly as kernels.cc walks them. */
  void buildExpertRows() {
    expertRows_.assign(p_.ops.size(), ExpertRows{});
    hostIdx_.clear();
    const int64_t S = j_.esp, ep = j_.ep, El = j_.localExperts, G = j_.gemms;
    for (const Op& op : p_.ops) {
      if (op.kind != OpKind::Expert) continue;
      const MoeLayer& L = p_.layers[op.layer];
      const int64_t C = L.capacity, r = op.bwd ? L.bwdDegree : L.fwdDegree, rf = L.fwdDegree;
      const int64_t cr = C / r, perChunk = S * ep * El * cr;
      const int64_t fcr = C / rf, fperChunk = S * ep * El * fcr;
      auto row = [&](int64_t pc, int64_t crr, int64_t i, int64_t q, int64_t p, int64_t le, int64_t c) { return i * pc + ((q * ep + p) * El + le) * crr + c; };
      ExpertRows e;
      e.first = op.localExpert < 0 ? 0 : op.localExpert;
      e.count = op.localExpert < 0 ? int(El) : 1;
      e.R = S * ep * cr;
      const int64_t n = e.count * e.R;
      std::vector<int64_t> rows(n), hid0(n), hid1(n), saved(n);
      int64_t at = 0;
      for (int le = e.first; le < e.first + e.count; le++)
        for (int64_t q = 0; q < S; q++)
          for (int64_t p = 0; p < ep; p++)
            for (int64_t c = 0; c < cr; c++, at++) {
              const int64_t rw = row(perChunk, cr, op.chunk, q, p, le, c);
              rows[at] = rw;
              if (!op.bwd) {
                const int64_t inChunk = rw - op.chunk * perChunk;
                hid0[at] = (op.chunk * (G - 1) + 0) * perChunk + inChunk;
                hid1[at] = (op.chunk * (G - 1) + 1) * perChunk + inChunk;
              } else {
                const int64_t s = op.chunk * cr + c, fi = s / fcr, fc = s % fcr;
                const int64_t frow = row(fperChunk, fcr, fi, q, p, le, fc), fin = frow - fi * fperChunk;
                saved[at] = frow;
                hid0[at] = (fi * (G - 1) + 0) * fperChunk + fin;
                hid1[at] = (fi * (G - 1) + 1) * fperChunk + fin;
              }
            }
      auto push = [&](const std::vector<int64_t>& v) {
        const int64_t off = int64_t(hostIdx_.size());
        hostIdx_.insert(hostIdx_.end(), v.begin(), v.end());
        return off;
      };
      e.rows = push(rows);
      e.hidden[0] = push(hid0);
      if (G == 3) e.hidden[1] = push(hid1);
      if (op.bwd) e.saved = push(saved);
      expertRows_[op.id] = e;
    }
  }

  template <class T>
  bool upload(DeviceMemory& m, const std::vector<T>& v, const char* what) {
    ctx_ = std::string("setup of ") + what;
    CU(m.alloc(sizeof(T) * v.size()));
    if (!v.empty()) CU(cudaMemcpy(m.as(), v.data(), sizeof(T) * v.size(), cudaMemcpyHostToDevice));
    return true;
  }

  bool setupRank(RankState& r) {
    const int rank = r.rank;
    ctx_ = "setup of rank " + std::to_string(rank);
    for (int s = 0; s < kStreams; s++) CU(cudaStreamCreateWithFlags(r.streams[s].out(), cudaStreamNonBlocking));
    CU(r.arena.alloc(std::size_t(std::max<int64_t>(p_.arenaBytes, 4))));
    CU(cudaMemset(r.arena.as(), 0, r.arena.bytes()));
    // Weights.
    r.weights.resize(j_.layers);
    for (int l : j_.moeLayers) {
      LayerWeights w;
      makeLayerWeights(j_, l, rank, w);
      if (!upload(r.weights[l].router, w.router, "the router weights") || !upload(r.weights[l].bias, w.bias, "the expert bias") ||
          !upload(r.weights[l].experts, w.experts, "the expert weights"))
        return false;
    }
    if (j_.model) {
      for (int l = 0; l < j_.layers; l++) {
        DenseWeights w;
        makeDenseWeights(j_, l, rank, false, w);
        LayerWeightsD& d = r.weights[l];
        if (!upload(d.attentionNorm, w.attentionNorm, "the attention norm") || !upload(d.ffnNorm, w.ffnNorm, "the FFN norm") || !upload(d.attention, w.attention, "the attention weights") ||
            !upload(d.ffn, w.ffn, "the FFN weights"))
          return false;
      }
      HeadWeights h;
      makeHeadWeights(j_, rank, false, h);
      if (!upload(r.embedding, h.embedding, "the embedding") || !upload(r.lmHead, h.lmHead, "the LM head") || !upload(r.finalNorm, h.finalNorm, "the final norm")) return false;
    }
    // Inputs of the iteration (the host fills them before every iteration; here they are generated
    // once and copied in by the iteration's prologue, so a captured graph replays them).
    std::vector<float> store;
    const int64_t n = T() * M();
    for (const Buffer& b : p_.buffers) {
      if (b.given == Given::Tokens || b.given == Given::Targets) {  // a model's token ids: N int32 of the tp group, bit for bit in the float store
        const int64_t N = j_.groupTokens, off = int64_t(store.size());
        std::vector<int32_t> tok(static_cast<std::size_t>(N));
        fillTokens(j_, b.givenMb, rank, b.given == Given::Targets, tok.data());
        store.resize(store.size() + std::size_t(N));
        std::memcpy(store.data() + off, tok.data(), sizeof(int32_t) * N);
        r.givenCopies.push_back({b.offset, off * 4, std::min<int64_t>(N * 4, b.bytes)});
        continue;
      }
      if (b.given != Given::Input && b.given != Given::Cotangent) continue;
      const char* name = b.given == Given::Input ? kInputTensor : kCotangentTensor;
      const int64_t off = int64_t(store.size());
      store.resize(store.size() + std::size_t(n));
      fillUniform(store.data() + off, std::size_t(n), j_.seed, tensorId(name), tokenIndex(j_, b.givenMb, rank, 0) * j_.hidden, 1.0f);
      r.givenCopies.push_back({b.offset, off * 4, std::min<int64_t>(n * 4, b.bytes)});
    }
    if (!upload(r.givens, store, "the inputs")) return false;
    std::vector<float> cot(std::size_t(j_.microBatches * n));
    for (int mb = 0; mb < j_.microBatches; mb++)
      fillUniform(cot.data() + mb * n, std::size_t(n), j_.seed, tensorId(kCotangentTensor), tokenIndex(j_, mb, rank, 0) * j_.hidden, 1.0f);
    if (!upload(r.cot, cot, "the cotangents")) return false;
    if (j_.router == Router::Gshard) {
      std::vector<double> u(j_.layers * std::size_t(j_.microBatches) * T());
      for (int l : j_.moeLayers)
        for (int mb = 0; mb < j_.microBatches; mb++) {
          const uint32_t tid = tensorId(Tensors::gshard(l));
          for (int64_t t = 0; t < T(); t++) u[(std::size_t(l) * j_.microBatches + mb) * T() + t] = unitAt(j_.seed, tid, tokenIndex(j_, mb, rank, int(t)));
        }
      if (!upload(r.gshardU, u, "the gshard draws")) return false;
    }
    ctx_ = "setup of rank " + std::to_string(rank);
    CU(r.loss.alloc(2 * sizeof(double)));
    CU(r.tapOut.alloc(sizeof(float) * j_.microBatches * n));
    CU(r.tapDx.alloc(sizeof(float) * j_.microBatches * n));
    CU(r.tapRoute.alloc(sizeof(int32_t) * j_.moeLayers.size() * j_.microBatches * 2 * T() * K()));
    if (j_.model) {
      CU(r.tapLogits.alloc(sizeof(float) * j_.microBatches * int64_t(j_.groupTokens) * j_.localVocab));
      CU(r.tapLoss.alloc(sizeof(float) * j_.microBatches * T()));
    }
    if (!upload(r.expertIdx, hostIdx_, "the expert row lists")) return false;
    // All-reduce scratch (loopback).
    int64_t reduce = 1;
    for (const Op& op : p_.ops)
      if (op.kind == OpKind::AllReduce) {
        int64_t t = 0;
        for (const Access& a : op.accesses) t += a.bytes / 4;
        reduce = std::max(reduce, t);
      } else if (op.kind == OpKind::ReduceScatter) {
        reduce = std::max<int64_t>(reduce, op.accesses[1].bytes / 4);
      }
    ctx_ = "setup of rank " + std::to_string(rank);
    if (!nccl_)
      for (int s = 0; s < kStreams; s++)
        if (!p_.streamOps[s].empty()) CU(r.reduce[s].alloc(sizeof(float) * reduce));
    // Events.
    r.opEvent.resize(p_.ops.size());
    for (const Op& op : p_.ops)
      if (needsEvent_[op.id]) CU(cudaEventCreateWithFlags(r.opEvent[op.id].out(), cudaEventDisableTiming));
    if (o_.profileOps) {
      r.tStart.resize(p_.ops.size());
      r.tEnd.resize(p_.ops.size());
      for (const Op& op : p_.ops) {
        CU(cudaEventCreate(r.tStart[op.id].out()));
        CU(cudaEventCreate(r.tEnd[op.id].out()));
      }
      CU(cudaEventCreate(r.iterStart.out()));
      CU(cudaEventCreate(r.prologueEnd.out()));
    }
    CU(cudaEventCreateWithFlags(r.prologueDone.out(), cudaEventDisableTiming));
    CU(cudaEventCreateWithFlags(r.arrive.out(), cudaEventDisableTiming));
    CU(cudaEventCreateWithFlags(r.done.out(), cudaEventDisableTiming));
    for (int s = 0; s < kStreams; s++) CU(cudaEventCreateWithFlags(r.join[s].out(), cudaEventDisableTiming));
    // Scratch and GEMM engines of the streams that run kernels.
    for (int s = 0; s < kStreams; s++) {
      bool kernels = false;
      for (int id : p_.streamOps[s]) kernels |= !isCollective(p_.ops[id].kind);
      if (!kernels) continue;
      if (!setupScratch(r, s)) return false;
    }
    return true;
  }

  bool setupScratch(RankState& r, int s) {
    Scratch& x = r.scratch[s];
    ctx_ = "setup of rank " + std::to_string(r.rank) + ", stream " + streamName(s);
    std::string err;
    const GemmMode mode = o_.gemm == Gemm::Cublas ? GemmMode::Cublas : o_.gemm == Gemm::Builtin ? GemmMode::Builtin : GemmMode::Auto;
    if (!x.gemm.init(r.s(s), mode, err)) return fail(ctx_ + ": " + err);
    bool einsum = false, combineBwd = false;
    for (const Op& op : p_.ops) {
      einsum |= op.kind == OpKind::DispatchGemm || op.kind == OpKind::CombineGemm;
      combineBwd |= op.kind == OpKind::CombineGemm && op.bwd;
    }
    int64_t xr = 1, hr = 1;
    for (const ExpertRows& e : expertRows_) {
      xr = std::max<int64_t>(xr, e.count * e.R * M());
      hr = std::max<int64_t>(hr, e.count * e.R * j_.shardHidden);
    }
    CU(x.dlogits.alloc(sizeof(float) * T() * E()));
    CU(x.inv.alloc(sizeof(int32_t) * E() * maxC_));
    if (einsum) CU(x.mask.alloc(sizeof(float) * T() * E() * maxC_));
    if (combineBwd) CU(x.dense.alloc(sizeof(float) * T() * E() * maxC_));
    for (DeviceMemory* m : {&x.X, &x.Y, &x.D}) CU(m->alloc(sizeof(float) * xr));
    for (DeviceMemory* m : {&x.H1, &x.H3, &x.A, &x.dA, &x.D1, &x.D3}) CU(m->alloc(sizeof(float) * hr));
    if (o_.precision == Precision::Bf16) {
      CU(x.lowA.alloc(2 * std::size_t(lowElements())));
      CU(x.lowB.alloc(2 * std::size_t(std::max<int64_t>(lowElements(), int64_t(j_.expertShardParams())))));
    }
    if (j_.model) {
      const DenseScratchSizes d = denseScratchSizes(j_);
      const int64_t NM = int64_t(j_.groupTokens) * M();
      for (DeviceMemory* m : {&x.nrm, &x.dnrm}) CU(m->alloc(sizeof(float) * NM));
      CU(x.rowInv.alloc(sizeof(double) * j_.groupTokens));
      for (DeviceMemory* m : {&x.q, &x.k, &x.v, &x.o, &x.dO, &x.dq, &x.dk, &x.dv}) CU(m->alloc(sizeof(float) * std::max<int64_t>(d.head, 1)));
      if (d.latent > 0)
        for (DeviceMemory& m : x.lat) CU(m.alloc(sizeof(float) * d.latent));
      for (DeviceMemory* m : {&x.p, &x.dp}) CU(m->alloc(sizeof(float) * std::max<int64_t>(d.probs, 1)));
      for (DeviceMemory* m : {&x.fh1, &x.fh3, &x.fa, &x.fda, &x.fd1, &x.fd3}) CU(m->alloc(sizeof(float) * std::max<int64_t>(d.ffn, 1)));
    }
    x.ready = true;
    return true;
  }

  bool setupNccl(const boot::Env& env, Result& out) {
    const libs::Nccl& nc = libs::nccl();
    if (!nc.ok) return fail(nc.why);
    RankState& r = *ranks_[0];
    const int W = j_.world, rank = r.rank;
    ctx_ = "NCCL bootstrap of rank " + std::to_string(rank);
    int device = 0;
    CU(cudaGetDevice(&device));
    char bus[64] = {0};
    CU(cudaDeviceGetPCIBusId(bus, sizeof bus, device));
    ncclUniqueId id{};
    if (rank == 0) NC(nc.getUniqueId(&id), nullptr);
    std::string mine = boot::hostName() + "\n" + bus + "\n";
    if (rank == 0) mine.append(id.internal, sizeof id.internal);
    const std::string key = j_.name + "/" + std::to_string(p_.ops.size()) + "/" + std::to_string(p_.arenaBytes);
    std::vector<std::string> all;
    std::string err;
    if (W > 1) {
      const int64_t timeout = std::getenv("FSMOE_RENDEZVOUS_TIMEOUT_MS") ? std::atoll(std::getenv("FSMOE_RENDEZVOUS_TIMEOUT_MS")) : 60000;
      if (!rendezvous_.connect(env.addr, env.port, rank, W, key, timeout, err) || !rendezvous_.allGather(mine, all, err)) return fail("bootstrap: " + err);
    } else {
      all = {mine};
    }
    // Two ranks on one GPU: NCCL refuses (and may hang), so say so first.
    std::vector<std::string> where(W);
    for (int q = 0; q < W; q++) {
      const std::string& b = all[q];
      const std::size_t a = b.find('\n'), c = a == std::string::npos ? a : b.find('\n', a + 1);
      if (c == std::string::npos) return fail("bootstrap: rank " + std::to_string(q) + " sent a malformed greeting");
      where[q] = b.substr(0, c);
      for (int o = 0; o < q; o++)
        if (where[o] == where[q])
          return fail("bootstrap: ranks " + std::to_string(o) + " and " + std::to_string(q) + " both use GPU " + b.substr(a + 1, c - a - 1) + " on " + b.substr(0, a) +
                      "; NCCL refuses two ranks on one GPU (start one process per GPU, or run every rank in one process with --comm loopback)");
      if (q == 0) {
        if (b.size() != c + 1 + sizeof id.internal) return fail("bootstrap: rank 0 sent no NCCL unique id");
        std::memcpy(id.internal, b.data() + c + 1, sizeof id.internal);
      }
    }
    NC(nc.commInitRank(world_.out(), W, id, rank), nullptr);
    // node and rail communicators, then one per group that is neither (every rank splits in the same order).
    const int gpn = j_.gpusPerNode;
    NC(nc.commSplit(world_.get(), rank / gpn, rank % gpn, node_.out(), nullptr), world_.get());
    NC(nc.commSplit(world_.get(), rank % gpn, rank / gpn, rail_.out(), nullptr), world_.get());
    commOfGroup_.assign(p_.groups.size(), nullptr);
    groupComms_.clear();
    for (std::size_t g = 0; g < p_.groups.size(); g++) {
      const Group& grp = p_.groups[g];
      if (grp.size == 1 && W > 1) continue;  // a copy, no communicator
      if (grp.size == W && grp.stride == 1) commOfGroup_[g] = world_.get();
      else if (grp.stride == 1 && grp.size == gpn) commOfGroup_[g] = node_.get();
      else if (grp.stride == gpn && grp.size * gpn == W) commOfGroup_[g] = rail_.get();
      else {
        groupComms_.emplace_back();
        NC(nc.commSplit(world_.get(), groupBase(grp, rank), groupIndex(grp, rank), groupComms_.back().out(), nullptr), world_.get());
        commOfGroup_[g] = groupComms_.back().get();
      }
    }
    out.comm = "NCCL " + std::to_string(nc.version) + " (" + nc.path + "), rank " + std::to_string(rank) + " of " + std::to_string(W);
    return true;
  }

  // ── Iterations ─────────────────────────────────────────────────────────────────────────────

  cudaStream_t s0() { return ranks_[0]->s(0); }

  /** Wait for `stream` with a deadline, watching NCCL's asynchronous errors. */
  bool sync(cudaStream_t stream, const char* what) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(o_.timeoutMs);
    int sleepUs = 20;
    for (;;) {
      const cudaError_t e = cudaStreamQuery(stream);
      if (e == cudaSuccess) return true;
      if (e != cudaErrorNotReady) return fail(std::string("waiting for ") + what + ": " + cudaText(e));
      if (nccl_) {
        for (ncclComm_t c : {world_.get(), node_.get(), rail_.get()}) {
          ncclResult_t ar = ncclSuccess;
          if (c != nullptr && libs::nccl().commGetAsyncError(c, &ar) == ncclSuccess && ar != ncclSuccess && ar != ncclInProgress)
            return fail(std::string("waiting for ") + what + ": NCCL reported " + libs::nccl().describe(ar, c));
        }
      }
      if (Clock::now() >= deadline) return fail(std::string("waiting for ") + what + ": timed out after " + std::to_string(o_.timeoutMs) + " ms (a peer stopped, or the GPU hangs)");
      std::this_thread::sleep_for(std::chrono::microseconds(sleepUs));
      sleepUs = std::min(sleepUs * 2, 2000);
    }
  }

  /** Issue one iteration of every local rank (eagerly, or into the capture that is under way). */
  bool issueIteration(bool profile) {
    profiling_ = profile;
    ctx_ = "iteration prologue";
    CU(cudaEventRecord(fork_.get(), s0()));
    for (auto& rp : ranks_) {
      RankState& r = *rp;
      for (int s = 0; s < kStreams; s++)
        if (&r != ranks_[0].get() || s != 0) CU(cudaStreamWaitEvent(r.s(s), fork_.get(), 0));
      if (!prologue(r, profile)) return false;
    }
    if (!issueOps()) return false;
    return epilogue();
  }

  /** One rank's prologue on its compute stream: gradients start at zero, the inputs are copied in, the loss restarts; the other streams wait for it. */
  bool prologue(RankState& r, bool profile) {
    cudaStream_t c = r.s(0);
    if (profile && !timing(r.iterStart.get(), c)) return false;
    for (const Buffer& b : p_.buffers)
      if (b.persistent && b.given == Given::None && b.bytes > 0) CU(cudaMemsetAsync(base(r) + b.offset, 0, std::size_t(b.bytes), c));
    for (const auto& g : r.givenCopies)
      CU(cudaMemcpyAsync(base(r) + g.arenaOffset, r.givens.as<char>() + g.storeOffset, std::size_t(g.bytes), cudaMemcpyDeviceToDevice, c));
    CU(cudaMemsetAsync(r.loss.as(), 0, 2 * sizeof(double), c));
    if (profile && !timing(r.prologueEnd.get(), c)) return false;
    CU(cudaEventRecord(r.prologueDone.get(), c));
    CU(cudaStreamWaitEvent(r.s(1), r.prologueDone.get(), 0));
    CU(cudaStreamWaitEvent(r.s(2), r.prologueDone.get(), 0));
    return true;
  }

  /** Every stream of every local rank joins the first rank's compute stream. */
  bool epilogue() {
    ctx_ = "iteration epilogue";
    for (auto& rp : ranks_) {
      RankState& r = *rp;
      for (int s = 0; s < kStreams; s++) {
        if (&r == ranks_[0].get() && s == 0) continue;
        CU(cudaEventRecord(r.join[s].get(), r.s(s)));
        CU(cudaStreamWaitEvent(s0(), r.join[s].get(), 0));
      }
    }
    return true;
  }

  /** Every op of every local rank in plan order; loopback collectives once all their members reached them. */
  bool issueOps() {
    const int n = int(p_.ops.size());
    std::vector<int> pc(ranks_.size(), 0);
    for (;;) {
      bool progress = false, done = true;
      for (std::size_t i = 0; i < ranks_.size(); i++) {
        RankState& r = *ranks_[i];
        while (pc[i] < n) {
          const Op& op = p_.ops[pc[i]];
          if (!nccl_ && isCollective(op.kind) && p_.groups[op.group].size > 1) break;
          if (!issueOp(r, op)) return false;
          pc[i]++;
          progress = true;
        }
        done &= pc[i] == n;
      }
      if (done) return true;
      // Loopback collectives whose members have all arrived.
      for (std::size_t i = 0; i < ranks_.size(); i++) {
        if (pc[i] >= n) continue;
        const Op& op = p_.ops[pc[i]];
        if (!isCollective(op.kind) || p_.groups[op.group].size == 1) continue;  // advanced by an earlier collective of this pass
        const Group& g = p_.groups[op.group];
        const int baseRank = groupBase(g, ranks_[i]->rank);
        std::vector<int> members;
        bool ready = true;
        for (int m = 0; m < g.size; m++) {
          const int q = baseRank + m * g.stride, li = localOf_[q];
          members.push_back(li);
          ready &= li >= 0 && pc[li] == pc[i];
        }
        if (!ready) continue;
        if (!loopbackCollective(op, members)) return false;
        for (int li : members) pc[li]++;
        progress = true;
      }
      if (!progress) {
        std::string s;
        for (std::size_t i = 0; i < ranks_.size(); i++)
          if (pc[i] < n) s += (s.empty() ? "" : "; ") + describe(p_.ops[pc[i]], ranks_[i]->rank);
        return fail("loopback: no rank can go on (members of a group wait in different collectives): " + s);
      }
    }
  }

  bool waitsAndStart(RankState& r, const Op& op) {
    cudaStream_t s = r.s(op.stream);
    for (int w : op.waits)
      if (p_.ops[w].stream != op.stream) CU(cudaStreamWaitEvent(s, r.opEvent[w].get(), 0));
    return true;
  }
  bool finishOp(RankState& r, const Op& op) {
    if (profiling_ && !timing(r.tEnd[op.id].get(), r.s(op.stream))) return false;
    if (needsEvent_[op.id]) CU(cudaEventRecord(r.opEvent[op.id].get(), r.s(op.stream)));
    return true;
  }

  /** Record a timing event: in a capture, as an external event record node (read after the graph ran). */
  bool timing(cudaEvent_t e, cudaStream_t s) {
    CU(capturing_ ? cudaEventRecordWithFlags(e, s, cudaEventRecordExternal) : cudaEventRecord(e, s));
    return true;
  }

  bool issueOp(RankState& r, const Op& op) {
    ctx_ = describe(op, r.rank);
    if (!waitsAndStart(r, op)) return false;
    if (profiling_ && !timing(r.tStart[op.id].get(), r.s(op.stream))) return false;
    const bool ok = isCollective(op.kind) ? ncclOrLocalCollective(r, op) : kernel(r, op);
    return ok && finishOp(r, op);
  }

  // ── Kernels ────────────────────────────────────────────────────────────────────────────────

  bool gemm(Scratch& x, cudaStream_t s, GemmCall c, bool low, int64_t aElems, int64_t bElems) {
    if (low && o_.precision == Precision::Bf16) {
      CU(toBf16(aElems, static_cast<const float*>(c.A), x.lowA.as(), s));
      CU(toBf16(bElems, static_cast<const float*>(c.B), x.lowB.as(), s));
      c.A = x.lowA.as();
      c.B = x.lowB.as();
      c.bf16 = true;
    }
    std::string err;
    if (!x.gemm.run(c, err)) return fail(ctx_ + ": " + err);
    return true;
  }

  /** Elements a strided batched operand spans. */
  static int64_t span(int64_t rows, int64_t ld, int64_t stride, int64_t batch) { return (batch - 1) * stride + rows * ld; }

  RouteArgs routeArgs(RankState& r, const Op& op, float* logits, int32_t* routing) {
    RouteArgs a;
    a.T = T();
    a.E = int(E());
    a.k = int(K());
    a.router = int(j_.router);
    a.groups = j_.ro.groups;
    a.topkGroups = j_.ro.topkGroups;
    a.normalize = j_.ro.normalize ? 1 : 0;
    a.routeScale = j_.ro.routeScale;
    a.C = p_.layers[op.layer].capacity;
    a.logits = logits;
    a.bias = r.weights[op.layer].bias.as<float>();
    if (j_.router == Router::Gshard) a.gshardU = r.gshardU.as<double>() + (std::size_t(op.layer) * j_.microBatches + op.mb) * T();
    a.choice = routing;
    a.slot = routing + T() * K();
    a.weight = reinterpret_cast<float*>(routing + 2 * T() * K());
    return a;
  }

  bool kernel(RankState& r, const Op& op) {
    cudaStream_t s = r.s(op.stream);
    Scratch& x = r.scratch[op.stream];
    if (!x.ready) return fail(ctx_ + ": internal error: no scratch for the stream");
    switch (op.kind) {
      case OpKind::Attention:
      case OpKind::DenseFfn:
      case OpKind::SharedExpert: return denseOp(r, op, x, s);
      case OpKind::Embed: return embedOp(r, op, s);
      case OpKind::LmHead: return lmHeadOp(r, op, x, s);
      case OpKind::Loss: return lossOp(r, op, s);
      default: break;
    }
    const MoeLayer& L = p_.layers[op.layer];
    const LayerWeightsD& W = r.weights[op.layer];
    const int64_t C = L.capacity, TM = T() * M();
    const OrderGeom g{T(), K(), M(), E(), C};
    const int mi = moeIndex_[op.layer];
    auto routing = [&](int i) { return reinterpret_cast<int32_t*>(acc(r, op, i)); };
    auto choice = [&](int i) { return routing(i); };
    auto slot = [&](int i) { return routing(i) + T() * K(); };
    auto weight = [&](int i) { return reinterpret_cast<float*>(routing(i) + 2 * T() * K()); };
    switch (op.kind) {
      case OpKind::Gate:
        if (!op.bwd) {
          // x, logits (w), routing (w) [, the normalized x (w): a model's, which the router reads]
          if (j_.model) CU(rmsNormRows(T(), M(), acc(r, op, 0), W.ffnNorm.as<float>(), acc(r, op, 3), s));
          GemmCall c;
          c.m = T(), c.n = E(), c.k = M();
          c.A = acc(r, op, j_.model ? 3 : 0), c.lda = M();
          c.B = W.router.as<float>(), c.ldb = E();
          c.C = acc(r, op, 1), c.ldc = E();
          if (!gemm(x, s, c, false, 0, 0)) return false;
          CU(routeForward(routeArgs(r, op, acc(r, op, 1), routing(2)), s));
          if (!op.recompute)
            CU(cudaMemcpyAsync(r.tapRoute.as<int32_t>() + (std::size_t(mi) * j_.microBatches + op.mb) * 2 * T() * K(), routing(2), sizeof(int32_t) * 2 * T() * K(),
                               cudaMemcpyDeviceToDevice, s));
        } else {
          // logits, routing, x, dL/dweight, gx (w, accumulated), router gradient (w); a model's:
          // logits, routing, normalized x, x, dL/dweight, the stream's gradient, gx (w), router gradient (w), norm gradient (w)
          const int m = j_.model ? 1 : 0;
          float* gx = acc(r, op, 4 + 2 * m);
          CU(routeBackward(routeArgs(r, op, acc(r, op, 0), routing(1)), acc(r, op, 3 + m), x.dlogits.as<float>(), s));
          GemmCall c;  // gx += dlogits · Wᵀ
          c.transB = true;
          c.m = T(), c.n = M(), c.k = E();
          c.A = x.dlogits.as<float>(), c.lda = E();
          c.B = W.router.as<float>(), c.ldb = E();
          c.C = gx, c.ldc = M();
          c.accumulate = true;
          if (!gemm(x, s, c, false, 0, 0)) return false;
          GemmCall d;  // dW += xᵀ · dlogits
          d.transA = true;
          d.m = M(), d.n = E(), d.k = T();
          d.A = acc(r, op, 2), d.lda = M();
          d.B = x.dlogits.as<float>(), d.ldb = E();
          d.C = acc(r, op, 5 + 2 * m), d.ldc = E();
          d.accumulate = true;
          if (!gemm(x, s, d, false, 0, 0)) return false;
          if (j_.model) {  // through the FFN norm, plus the residual's gradient: gx = the stream's gradient + (∂norm)ᵀ · gx
            CU(rmsNormRowsBackward(T(), M(), acc(r, op, 3), W.ffnNorm.as<float>(), gx, x.dnrm.as<float>(), acc(r, op, 8), x.rowInv.as<double>(), s));
            CU(addTo(TM, acc(r, op, 5), x.dnrm.as<float>(), gx, s));
          }
          if (op.dxTap) CU(cudaMemcpyAsync(r.tapDx.as<float>() + op.mb * TM, gx, sizeof(float) * TM, cudaMemcpyDeviceToDevice, s));
        }
        return true;
      case OpKind::Order:
        if (!op.bwd) CU(orderForward(g, L.fwdDegree, acc(r, op, 0), choice(1), slot(1), buf(r, op, 2), x.inv.as<int32_t>(), s));
        else CU(orderBackward(g, L.bwdDegree, buf(r, op, 0), choice(1), slot(1), acc(r, op, 2), s));
        return true;
      case OpKind::DispatchGemm: {
        const int64_t EC = E() * C;
        CU(denseMask(g, op.bwd ? L.bwdDegree : L.fwdDegree, choice(1), slot(1), nullptr, false, x.mask.as<float>(), s));
        GemmCall c;
        if (!op.bwd) {  // out (EC × M) = maskᵀ · x
          c.transA = true;
          c.m = EC, c.n = M(), c.k = T();
          c.A = x.mask.as<float>(), c.lda = EC;
          c.B = acc(r, op, 0), c.ldb = M();
          c.C = buf(r, op, 2), c.ldc = M();
        } else {  // gx (T × M) = mask · gorder
          c.m = T(), c.n = M(), c.k = EC;
          c.A = x.mask.as<float>(), c.lda = EC;
          c.B = buf(r, op, 0), c.ldb = M();
          c.C = acc(r, op, 2), c.ldc = M();
        }
        return gemm(x, s, c, true, T() * EC, op.bwd ? EC * M() : TM);
      }
      case OpKind::Iorder:
        if (!op.bwd) {  // combined, routing [, the residual: a model's], y (w)
          float* y = acc(r, op, j_.model ? 3 : 2);
          CU(iorderForward(g, L.fwdDegree, buf(r, op, 0), choice(1), slot(1), weight(1), y, s));
          if (j_.model) CU(addInto(TM, y, acc(r, op, 2), s));
          return outputTap(r, op, y, s);
        }
        CU(iorderBackward(g, L.fwdDegree, L.bwdDegree, acc(r, op, 0), buf(r, op, 2), choice(1), slot(1), weight(1), buf(r, op, 3), acc(r, op, 4), s));
        return true;
      case OpKind::CombineGemm: {
        const int64_t EC = E() * C;
        CU(denseMask(g, op.bwd ? L.bwdDegree : L.fwdDegree, choice(1), slot(1), weight(1), true, x.mask.as<float>(), s));
        if (!op.bwd) {  // y = maskW · comb [+ the residual: a model's]
          float* y = acc(r, op, j_.model ? 3 : 2);
          GemmCall c;
          c.m = T(), c.n = M(), c.k = EC;
          c.A = x.mask.as<float>(), c.lda = EC;
          c.B = buf(r, op, 0), c.ldb = M();
          c.C = y, c.ldc = M();
          if (!gemm(x, s, c, true, T() * EC, EC * M())) return false;
          if (j_.model) CU(addInto(TM, y, acc(r, op, 2), s));
          return outputTap(r, op, y, s);
        }
        GemmCall c;  // gcomb (EC × M) = maskWᵀ · dy
        c.transA = true;
        c.m = EC, c.n = M(), c.k = T();
        c.A = x.mask.as<float>(), c.lda = EC;
        c.B = acc(r, op, 0), c.ldb = M();
        c.C = buf(r, op, 3), c.ldc = M();
        if (!gemm(x, s, c, true, T() * EC, TM)) return false;
        GemmCall d;  // dW (T × EC) = dy · combSavedᵀ
        d.transB = true;
        d.m = T(), d.n = EC, d.k = M();
        d.A = acc(r, op, 0), d.lda = M();
        d.B = buf(r, op, 2), d.ldb = M();
        d.C = x.dense.as<float>(), d.ldc = EC;
        if (!gemm(x, s, d, true, TM, EC * M())) return false;
        CU(gatherDweight(g, L.fwdDegree, choice(1), slot(1), x.dense.as<float>(), acc(r, op, 4), s));
        return true;
      }
      case OpKind::Expert: return op.bwd ? expertBackward(r, op, x, s) : expertForward(r, op, x, s);
      default: return fail(ctx_ + ": op kind not supported by the cuda backend");
    }
  }

  // ── A model's dense ops (native/README.md, "The model"; the host's executor.cc denseOp, embedOp, lmHeadOp, lossOp) ──

  /** The dense blocks' context on stream `s`; a failure inside names the op. */
  DenseCtx denseCtx(Scratch& x, cudaStream_t s) {
    DenseCtx c;
    c.stream = s;
    c.gemm = &x.gemm;
    c.x = x.denseScratch();
    return c;
  }
  bool denseFailed(const DenseCtx& c) { return fail(ctx_ + ": " + c.error); }
  const int32_t* ids(RankState& r, const Op& op, int i) { return reinterpret_cast<const int32_t*>(acc(r, op, i)); }

  /**
   * Attention, dense FFN, shared experts: forward normalizes the gathered stream, runs the block
   * on this rank's heads or units and — on the first rank of the tp group — adds the stream;
   * backward recomputes the norm, runs the block's backward, the norm's, and adds the residual's gradient.
   */
  bool denseOp(RankState& r, const Op& op, Scratch& x, cudaStream_t s) {
    const int64_t N = j_.groupTokens, Mm = M(), NM = N * Mm;
    const LayerWeightsD& W = r.weights[op.layer];
    const bool attention = op.kind == OpKind::Attention, moe = j_.isMoe(op.layer);
    const float* gamma = attention ? W.attentionNorm.as<float>() : W.ffnNorm.as<float>();
    const int G = moe ? j_.gemms : j_.ffnGemms;
    const int act = int(moe ? j_.activation : j_.ffnActivation);
    const int64_t F = ffnUnits(j_, op.layer, false);
    const AttentionLayout lay = attentionLayout(j_, false);
    const bool first = tpIndex(j_, r.rank) == 0;
    float* n = x.nrm.as<float>();
    DenseCtx c = denseCtx(x, s);
    if (!op.bwd) {
      // gathered stream; partial output (w) [, probabilities (w)]
      const float* st = acc(r, op, 0);
      float* out = acc(r, op, 1);
      CU(rmsNormRows(N, Mm, st, gamma, n, s));
      const bool ran = attention ? attentionForwardD(c, j_, lay, n, W.attention.as<float>(), out, op.accesses.size() == 3 ? acc(r, op, 2) : nullptr)
                                 : ffnForwardD(c, N, Mm, F, G, act, n, W.ffn.as<float>(), out);
      if (!ran) return denseFailed(c);
      if (first) CU(addInto(NM, out, st, s));
      return true;
    }
    // gathered gradient, saved stream [, probabilities]; partial input gradient (w), weights' gradient (w), norm's gradient (w)
    const int sc = attention && op.accesses.size() == 6 ? 1 : 0;
    const float *g = acc(r, op, 0), *st = acc(r, op, 1);
    float* gin = acc(r, op, 2 + sc);
    float* dn = x.dnrm.as<float>();
    CU(rmsNormRows(N, Mm, st, gamma, n, s));
    const bool ran = attention ? attentionBackwardD(c, j_, lay, n, W.attention.as<float>(), g, dn, acc(r, op, 3 + sc))
                               : ffnBackwardD(c, N, Mm, F, G, act, n, W.ffn.as<float>(), g, dn, acc(r, op, 3 + sc));
    if (!ran) return denseFailed(c);
    CU(rmsNormRowsBackward(N, Mm, st, gamma, dn, gin, acc(r, op, 4 + sc), x.rowInv.as<double>(), s));
    if (first) CU(addInto(NM, gin, g, s));
    return true;
  }

  /** The vocabulary-parallel embedding: tokens → rows of this rank's shard (zero for the others'); backward: the shard's gradient. */
  bool embedOp(RankState& r, const Op& op, cudaStream_t s) {
    const int64_t first = int64_t(tpIndex(j_, r.rank)) * j_.localVocab;
    if (!op.bwd) CU(embedGather(j_.groupTokens, M(), first, j_.localVocab, ids(r, op, 0), r.embedding.as<float>(), acc(r, op, 1), s));
    else CU(embedScatterAdd(j_.groupTokens, M(), first, j_.localVocab, ids(r, op, 1), acc(r, op, 0), acc(r, op, 2), s));
    return true;
  }

  /** The final norm and the LM head: logits of this rank's vocabulary shard (N × V/tp); backward: input, LM head and final norm gradients. */
  bool lmHeadOp(RankState& r, const Op& op, Scratch& x, cudaStream_t s) {
    const int64_t N = j_.groupTokens, Mm = M(), V = j_.localVocab;
    float* n = x.nrm.as<float>();
    const float* lm = r.lmHead.as<float>();
    CU(rmsNormRows(N, Mm, acc(r, op, op.bwd ? 1 : 0), r.finalNorm.as<float>(), n, s));
    if (!op.bwd) {
      GemmCall c;  // logits (N × V) = n · LMᵀ
      c.transB = true;
      c.m = N, c.n = V, c.k = Mm;
      c.A = n, c.lda = Mm;
      c.B = lm, c.ldb = Mm;
      c.C = acc(r, op, 1), c.ldc = V;
      if (!gemm(x, s, c, false, 0, 0)) return false;
      if (!op.recompute) CU(cudaMemcpyAsync(r.tapLogits.as<float>() + op.mb * N * V, acc(r, op, 1), sizeof(float) * N * V, cudaMemcpyDeviceToDevice, s));
      return true;
    }
    // dlogits, saved stream; input gradient (w), LM head gradient (w), final norm gradient (w)
    float* dn = x.dnrm.as<float>();
    GemmCall c;  // dn = dlogits · LM
    c.m = N, c.n = Mm, c.k = V;
    c.A = acc(r, op, 0), c.lda = V;
    c.B = lm, c.ldb = Mm;
    c.C = dn, c.ldc = Mm;
    if (!gemm(x, s, c, false, 0, 0)) return false;
    GemmCall d;  // dLM += dlogitsᵀ · n
    d.transA = true;
    d.m = V, d.n = Mm, d.k = N;
    d.A = acc(r, op, 0), d.lda = V;
    d.B = n, d.ldb = Mm;
    d.C = acc(r, op, 3), d.ldc = Mm;
    d.accumulate = true;
    if (!gemm(x, s, d, false, 0, 0)) return false;
    CU(rmsNormRowsBackward(N, Mm, acc(r, op, 1), r.finalNorm.as<float>(), dn, acc(r, op, 2), acc(r, op, 4), x.rowInv.as<double>(), s));
    return true;
  }

  /** The vocabulary-parallel cross-entropy (mean over every token of the iteration): loss_max, loss_sumexp, loss, and the backward. */
  bool lossOp(RankState& r, const Op& op, cudaStream_t s) {
    const int64_t N = j_.groupTokens, V = j_.localVocab, first = int64_t(tpIndex(j_, r.rank)) * V, P = j_.tp;
    const double scale = 1.0 / (double(j_.microBatches) * j_.dp * N);
    if (op.bwd) {
      CU(lossRowBackward(N, V, P, first, scale, acc(r, op, 0), acc(r, op, 1), acc(r, op, 2), ids(r, op, 3), acc(r, op, 4), s));
    } else if (op.role == "loss_max") {
      CU(lossRowMax(N, V, acc(r, op, 0), acc(r, op, 1), s));
    } else if (op.role == "loss_sumexp") {
      CU(lossRowSumExp(N, V, P, first, acc(r, op, 0), acc(r, op, 1), ids(r, op, 2), acc(r, op, 3), s));
    } else {
      float* loss = acc(r, op, 2);
      CU(lossRowValue(N, P, scale, acc(r, op, 0), acc(r, op, 1), loss, s));
      const int64_t t0 = int64_t(tpIndex(j_, r.rank)) * T();  // this rank's share: the tokens of its sequence slice
      CU(sumAccumulate(T(), loss + t0, r.loss.as<double>(), s));
      CU(cudaMemcpyAsync(r.tapLoss.as<float>() + op.mb * T(), loss + t0, sizeof(float) * T(), cudaMemcpyDeviceToDevice, s));
    }
    return true;
  }

  bool outputTap(RankState& r, const Op& op, const float* y, cudaStream_t s) {
    if (!op.outputTap) return true;
    const int64_t TM = T() * M();
    CU(lossAccumulate(TM, y, r.cot.as<float>() + op.mb * TM, r.loss.as<double>(), s));
    CU(cudaMemcpyAsync(r.tapOut.as<float>() + op.mb * TM, y, sizeof(float) * TM, cudaMemcpyDeviceToDevice, s));
    return true;
  }

  const int64_t* idx(RankState& r, int64_t off) { return r.expertIdx.as<int64_t>() + off; }

  bool expertForward(RankState& r, const Op& op, Scratch& x, cudaStream_t s) {
    const ExpertRows& e = expertRows_[op.id];
    const ShardLayout lay = shardLayout(j_);
    const int64_t Mm = M(), Hs = j_.shardHidden, G = j_.gemms, R = e.R, n = e.count * e.R;
    const float* Wt = r.weights[op.layer].experts.as<float>();
    float *in = buf(r, op, 0), *hidden = buf(r, op, 1), *out = buf(r, op, 2);
    CU(gatherRows(x.X.as<float>(), in, idx(r, e.rows), n, Mm, s));
    auto up = [&](float* C, int64_t woff) {  // C [count][R][Hs] = X · W (M × Hs)
      GemmCall c;
      c.m = R, c.n = Hs, c.k = Mm;
      c.A = x.X.as<float>(), c.lda = Mm, c.strideA = R * Mm;
      c.B = Wt + woff, c.ldb = Hs, c.strideB = lay.perExpert();
      c.C = C, c.ldc = Hs, c.strideC = R * Hs;
      c.batch = e.count;
      return gemm(x, s, c, true, n * Mm, span(Mm, Hs, lay.perExpert(), e.count));
    };
    if (!up(x.H1.as<float>(), lay.w1(e.first))) return false;
    if (G == 3 && !up(x.H3.as<float>(), lay.w3(e.first))) return false;
    CU(activationForward(int(j_.activation), G == 3, n * Hs, x.H1.as<float>(), x.H3.as<float>(), x.A.as<float>(), s));
    GemmCall c;  // Y = A · W2 (Hs × M)
    c.m = R, c.n = Mm, c.k = Hs;
    c.A = x.A.as<float>(), c.lda = Hs, c.strideA = R * Hs;
    c.B = Wt + lay.w2(e.first), c.ldb = Mm, c.strideB = lay.perExpert();
    c.C = x.Y.as<float>(), c.ldc = Mm, c.strideC = R * Mm;
    c.batch = e.count;
    if (!gemm(x, s, c, true, n * Hs, span(Hs, Mm, lay.perExpert(), e.count))) return false;
    CU(scatterRows(out, x.Y.as<float>(), idx(r, e.rows), n, Mm, s));
    CU(scatterRows(hidden, x.H1.as<float>(), idx(r, e.hidden[0]), n, Hs, s));
    if (G == 3) CU(scatterRows(hidden, x.H3.as<float>(), idx(r, e.hidden[1]), n, Hs, s));
    return true;
  }

  bool expertBackward(RankState& r, const Op& op, Scratch& x, cudaStream_t s) {
    const ExpertRows& e = expertRows_[op.id];
    const ShardLayout lay = shardLayout(j_);
    const int64_t Mm = M(), Hs = j_.shardHidden, G = j_.gemms, R = e.R, n = e.count * e.R, pe = lay.perExpert();
    const MoeLayer& L = p_.layers[op.layer];
    const float* Wt = r.weights[op.layer].experts.as<float>();
    float* grad = at(r, L.expertGradAbs);
    float *dOut = buf(r, op, 0), *savedIn = buf(r, op, 1), *savedHidden = buf(r, op, 2), *dIn = buf(r, op, 3);
    CU(gatherRows(x.D.as<float>(), dOut, idx(r, e.rows), n, Mm, s));
    CU(gatherRows(x.X.as<float>(), savedIn, idx(r, e.saved), n, Mm, s));
    CU(gatherRows(x.H1.as<float>(), savedHidden, idx(r, e.hidden[0]), n, Hs, s));
    if (G == 3) CU(gatherRows(x.H3.as<float>(), savedHidden, idx(r, e.hidden[1]), n, Hs, s));
    CU(activationForward(int(j_.activation), G == 3, n * Hs, x.H1.as<float>(), x.H3.as<float>(), x.A.as<float>(), s));
    {  // dA = D · W2ᵀ
      GemmCall c;
      c.transB = true;
      c.m = R, c.n = Hs, c.k = Mm;
      c.A = x.D.as<float>(), c.lda = Mm, c.strideA = R * Mm;
      c.B = Wt + lay.w2(e.first), c.ldb = Mm, c.strideB = pe;
      c.C = x.dA.as<float>(), c.ldc = Hs, c.strideC = R * Hs;
      c.batch = e.count;
      if (!gemm(x, s, c, true, n * Mm, span(Hs, Mm, pe, e.count))) return false;
    }
    {  // dW2 += Aᵀ · D
      GemmCall c;
      c.transA = true;
      c.m = Hs, c.n = Mm, c.k = R;
      c.A = x.A.as<float>(), c.lda = Hs, c.strideA = R * Hs;
      c.B = x.D.as<float>(), c.ldb = Mm, c.strideB = R * Mm;
      c.C = grad + lay.w2(e.first), c.ldc = Mm, c.strideC = pe;
      c.batch = e.count;
      c.accumulate = true;
      if (!gemm(x, s, c, true, n * Hs, n * Mm)) return false;
    }
    CU(activationBackward(int(j_.activation), G == 3, n * Hs, x.dA.as<float>(), x.H1.as<float>(), x.H3.as<float>(), x.D1.as<float>(), x.D3.as<float>(), s));
    auto weightGrad = [&](float* D, int64_t woff) {  // dW (M × Hs) += Xᵀ · D
      GemmCall c;
      c.transA = true;
      c.m = Mm, c.n = Hs, c.k = R;
      c.A = x.X.as<float>(), c.lda = Mm, c.strideA = R * Mm;
      c.B = D, c.ldb = Hs, c.strideB = R * Hs;
      c.C = grad + woff, c.ldc = Hs, c.strideC = pe;
      c.batch = e.count;
      c.accumulate = true;
      return gemm(x, s, c, true, n * Mm, n * Hs);
    };
    auto inputGrad = [&](float* D, int64_t woff, bool accumulate) {  // dX (R × M) (+)= D · Wᵀ, W (M × Hs)
      GemmCall c;
      c.transB = true;
      c.m = R, c.n = Mm, c.k = Hs;
      c.A = D, c.lda = Hs, c.strideA = R * Hs;
      c.B = Wt + woff, c.ldb = Hs, c.strideB = pe;
      c.C = x.Y.as<float>(), c.ldc = Mm, c.strideC = R * Mm;
      c.batch = e.count;
      c.accumulate = accumulate;
      return gemm(x, s, c, true, n * Hs, span(Mm, Hs, pe, e.count));
    };
    if (!weightGrad(x.D1.as<float>(), lay.w1(e.first)) || !inputGrad(x.D1.as<float>(), lay.w1(e.first), false)) return false;
    if (G == 3 && (!weightGrad(x.D3.as<float>(), lay.w3(e.first)) || !inputGrad(x.D3.as<float>(), lay.w3(e.first), true))) return false;
    CU(scatterRows(dIn, x.Y.as<float>(), idx(r, e.rows), n, Mm, s));
    return true;
  }

  // ── Collectives ────────────────────────────────────────────────────────────────────────────

  /** A collective of a one-rank group (a copy), or an NCCL collective. */
  bool ncclOrLocalCollective(RankState& r, const Op& op) {
    cudaStream_t s = r.s(op.stream);
    const Group& grp = p_.groups[op.group];
    if (grp.size == 1 && !(nccl_ && j_.world == 1)) {  // one rank: a copy (with one process, NCCL's own one-rank communicator)
      if (op.kind != OpKind::AllReduce && acc(r, op, 0) != acc(r, op, 1))
        CU(cudaMemcpyAsync(acc(r, op, 1), acc(r, op, 0), std::size_t(op.accesses[1].bytes), cudaMemcpyDeviceToDevice, s));
      return true;
    }
    const libs::Nccl& nc = libs::nccl();
    ncclComm_t comm = commOfGroup_[op.group];
    const int P = grp.size;
    switch (op.kind) {
      case OpKind::AllToAll: {
        const std::size_t block = std::size_t(op.accesses[0].bytes / 4 / P);
        const float* in = acc(r, op, 0);
        float* out = acc(r, op, 1);
        NC(nc.groupStart(), comm);
        for (int p = 0; p < P; p++) {
          NC(nc.send(in + p * block, block, ncclFloat32, p, comm, s), comm);
          NC(nc.recv(out + p * block, block, ncclFloat32, p, comm, s), comm);
        }
        NC(nc.groupEnd(), comm);
        return true;
      }
      case OpKind::AllGather: NC(nc.allGather(acc(r, op, 0), acc(r, op, 1), std::size_t(op.accesses[0].bytes / 4), ncclFloat32, comm, s), comm); return true;
      case OpKind::ReduceScatter:
        NC(nc.reduceScatter(acc(r, op, 0), acc(r, op, 1), std::size_t(op.accesses[1].bytes / 4), ncclFloat32, ncclSum, comm, s), comm);
        return true;
      case OpKind::AllReduce:
        NC(nc.groupStart(), comm);
        for (const Access& a : op.accesses) NC(nc.allReduce(at(r, a.abs), at(r, a.abs), std::size_t(a.bytes / 4), ncclFloat32, op.reduceMax ? ncclMax : ncclSum, comm, s), comm);
        NC(nc.groupEnd(), comm);
        return true;
      default: return fail(ctx_ + ": not a collective");
    }
  }

  /** A loopback collective of `members` (indices into ranks_, in group order) at `op`. */
  bool loopbackCollective(const Op& op, const std::vector<int>& members) {
    const int P = int(members.size());
    std::vector<RankState*> m;
    for (int li : members) m.push_back(ranks_[li].get());
    auto stream = [&](int q) { return m[q]->s(op.stream); };
    // Arrival: every member's work so far, then every member waits for all.
    for (int q = 0; q < P; q++) {
      ctx_ = describe(op, m[q]->rank);
      if (!waitsAndStart(*m[q], op)) return false;
      CU(cudaEventRecord(m[q]->arrive.get(), stream(q)));
    }
    for (int q = 0; q < P; q++) {
      ctx_ = describe(op, m[q]->rank);
      for (int p = 0; p < P; p++)
        if (p != q) CU(cudaStreamWaitEvent(stream(q), m[p]->arrive.get(), 0));
      if (profiling_ && !timing(m[q]->tStart[op.id].get(), stream(q))) return false;
    }
    // Data: each member pulls its part from its peers' arenas (comm.cc's arithmetic).
    for (int q = 0; q < P; q++) {
      RankState& r = *m[q];
      ctx_ = describe(op, r.rank);
      cudaStream_t s = stream(q);
      switch (op.kind) {
        case OpKind::AllToAll: {
          const int64_t block = op.accesses[0].bytes / 4 / P;
          for (int p = 0; p < P; p++)
            CU(cudaMemcpyAsync(acc(r, op, 1) + p * block, acc(*m[p], op, 0) + q * block, sizeof(float) * block, cudaMemcpyDeviceToDevice, s));
          break;
        }
        case OpKind::AllGather: {
          const int64_t n = op.accesses[0].bytes / 4;
          for (int p = 0; p < P; p++) CU(cudaMemcpyAsync(acc(r, op, 1) + p * n, acc(*m[p], op, 0), sizeof(float) * n, cudaMemcpyDeviceToDevice, s));
          break;
        }
        case OpKind::ReduceScatter: {
          const int64_t n = op.accesses[1].bytes / 4;
          PeerPtrs ptrs{};
          for (int p = 0; p < P; p++) ptrs.p[p] = acc(*m[p], op, 0) + q * n;
          CU(reducePeers(P, ptrs, n, r.reduce[op.stream].as<float>(), false, s));  // peers may read our input: write the result after the done barrier
          break;
        }
        case OpKind::AllReduce: {
          int64_t at0 = 0;
          for (std::size_t a = 0; a < op.accesses.size(); a++) {
            const int64_t n = op.accesses[a].bytes / 4;
            PeerPtrs ptrs{};
            for (int p = 0; p < P; p++) ptrs.p[p] = at(*m[p], op.accesses[a].abs);
            CU(reducePeers(P, ptrs, n, r.reduce[op.stream].as<float>() + at0, op.reduceMax, s));
            at0 += n;
          }
          break;
        }
        default: return fail(ctx_ + ": not a collective");
      }
      CU(cudaEventRecord(r.done.get(), s));
    }
    // Nobody changes a buffer a peer still reads.
    for (int q = 0; q < P; q++) {
      RankState& r = *m[q];
      ctx_ = describe(op, r.rank);
      for (int p = 0; p < P; p++)
        if (p != q) CU(cudaStreamWaitEvent(stream(q), m[p]->done.get(), 0));
      cudaStream_t s = stream(q);
      if (op.kind == OpKind::ReduceScatter) {
        CU(cudaMemcpyAsync(acc(r, op, 1), r.reduce[op.stream].as(), std::size_t(op.accesses[1].bytes), cudaMemcpyDeviceToDevice, s));
      } else if (op.kind == OpKind::AllReduce) {
        int64_t at0 = 0;
        for (const Access& a : op.accesses) {
          CU(cudaMemcpyAsync(at(r, a.abs), r.reduce[op.stream].as<float>() + at0, std::size_t(a.bytes), cudaMemcpyDeviceToDevice, s));
          at0 += a.bytes / 4;
        }
      }
      if (!finishOp(r, op)) return false;
    }
    return true;
  }

  // ── The run ────────────────────────────────────────────────────────────────────────────────

  bool readOpTimes(std::vector<std::vector<double>>& opUs, std::vector<std::vector<double>>& startUs, std::vector<std::vector<double>>& endUs, Timing& tm) {
    ctx_ = "reading the op timings";
    for (std::size_t i = 0; i < ranks_.size(); i++) {
      RankState& r = *ranks_[i];
      opUs[i].assign(p_.ops.size(), 0);
      startUs[i].assign(p_.ops.size(), 0);
      endUs[i].assign(p_.ops.size(), 0);
      for (const Op& op : p_.ops) {
        float a = 0, b = 0, d = 0;
        CU(cudaEventElapsedTime(&a, r.iterStart.get(), r.tStart[op.id].get()));
        CU(cudaEventElapsedTime(&b, r.iterStart.get(), r.tEnd[op.id].get()));
        CU(cudaEventElapsedTime(&d, r.tStart[op.id].get(), r.tEnd[op.id].get()));
        startUs[i][op.id] = a * 1000.0;
        endUs[i][op.id] = b * 1000.0;
        opUs[i][op.id] = d * 1000.0;
      }
      if (i == 0) {
        float pro = 0;
        CU(cudaEventElapsedTime(&pro, r.iterStart.get(), r.prologueEnd.get()));
        tm.prologueUs = pro * 1000.0;
      }
    }
    return true;
  }

  /** Capture the profiled iteration (timing events as external records), launch it once. */
  bool profileGraph() {
    Graph graph;
    GraphExec exec;
    ctx_ = "capturing the profiled iteration";
    CU(cudaStreamBeginCapture(s0(), cudaStreamCaptureModeThreadLocal));
    capturing_ = true;
    const bool issued = issueIteration(true);
    capturing_ = false;
    ctx_ = "capturing the profiled iteration";
    const cudaError_t ended = cudaStreamEndCapture(s0(), graph.out());
    if (!issued) return false;
    CU(ended);
    CU(cudaGraphInstantiate(exec.out(), graph.get(), 0));
    CU(cudaGraphLaunch(exec.get(), s0()));
    return sync(s0(), "the profiled graph");
  }

  bool iterate(Result& out) {
    Timing& tm = out.timing;
    // 1. Warm-up (lazy initialization stays out of the capture).
    auto t0 = Clock::now();
    if (!issueIteration(false) || !sync(s0(), "the first iteration")) return false;
    tm.firstUs = micros(t0, Clock::now());
    // 2. One iteration timed op by op: eagerly, then (where it works) as a CUDA graph with external
    // event records, which times the ops without the host's launch gaps between them.
    std::vector<std::vector<double>> opUs(ranks_.size()), startUs(ranks_.size()), endUs(ranks_.size());
    if (o_.profileOps) {
      if (!issueIteration(true) || !sync(s0(), "the profiled iteration") || !readOpTimes(opUs, startUs, endUs, tm)) return false;
      tm.profileSource = "eager";
      if (o_.graphIterations > 0 && !(nccl_ && j_.world > 1)) {  // (across processes a timing graph that fails on one rank only would desynchronize NCCL)
        const std::string saved = error_;
        auto ops2 = opUs, start2 = startUs, end2 = endUs;
        Timing t2 = tm;
        if (profileGraph() && readOpTimes(ops2, start2, end2, t2)) {
          opUs = ops2, startUs = start2, endUs = end2;
          tm.prologueUs = t2.prologueUs;
          tm.profileSource = "graph";
        } else {
          tm.profileSource = "eager (graph timing failed: " + error_ + ")";
          error_ = saved;
          cudaGetLastError();
        }
      }
    }
    // 3. Eager iterations, timed on the GPU.
    if (o_.eagerIterations > 0) {
      ctx_ = "timing eager iterations";
      CU(cudaEventRecord(timeA_.get(), s0()));
      for (int i = 0; i < o_.eagerIterations; i++)
        if (!issueIteration(false)) return false;
      ctx_ = "timing eager iterations";
      CU(cudaEventRecord(timeB_.get(), s0()));
      if (!sync(s0(), "the eager iterations")) return false;
      float ms = 0;
      CU(cudaEventElapsedTime(&ms, timeA_.get(), timeB_.get()));
      tm.eagerUs = ms * 1000.0 / o_.eagerIterations;
      tm.eagerIterations = o_.eagerIterations;
    }
    // 4. Capture one iteration into a CUDA graph and launch it.
    if (o_.graphIterations > 0) {
      Graph graph;
      GraphExec exec;
      t0 = Clock::now();
      ctx_ = "capturing the iteration";
      CU(cudaStreamBeginCapture(s0(), cudaStreamCaptureModeThreadLocal));
      const bool issued = issueIteration(false);
      ctx_ = "capturing the iteration";
      const cudaError_t ended = cudaStreamEndCapture(s0(), graph.out());
      if (!issued) return false;
      CU(ended);
      CU(cudaGraphInstantiate(exec.out(), graph.get(), 0));
      CU(cudaGraphUpload(exec.get(), s0()));
      if (!sync(s0(), "the graph upload")) return false;
      tm.captureUs = micros(t0, Clock::now());
      ctx_ = "launching the CUDA graph";
      CU(cudaGraphLaunch(exec.get(), s0()));  // warm
      if (!sync(s0(), "the first graph launch")) return false;
      ctx_ = "timing CUDA graph iterations";
      CU(cudaEventRecord(timeA_.get(), s0()));
      for (int i = 0; i < o_.graphIterations; i++) CU(cudaGraphLaunch(exec.get(), s0()));
      CU(cudaEventRecord(timeB_.get(), s0()));
      if (!sync(s0(), "the graph iterations")) return false;
      float ms = 0;
      CU(cudaEventElapsedTime(&ms, timeA_.get(), timeB_.get()));
      tm.graphUs = ms * 1000.0 / o_.graphIterations;
      tm.graphIterations = o_.graphIterations;
      for (int i = 0; i < o_.graphIterations; i++) out.run.iterationUs.push_back(tm.graphUs);
    } else if (o_.eagerIterations > 0) {
      for (int i = 0; i < o_.eagerIterations; i++) out.run.iterationUs.push_back(tm.eagerUs);
    }
    // 5. Results of the last iteration.
    if (!collect(out.run)) return false;
    for (std::size_t i = 0; i < ranks_.size(); i++) {
      RankResult& rr = out.run.ranks[i];
      rr.opUs = opUs[i];
      rr.workUs = opUs[i];
      rr.startUs = startUs[i];
      rr.endUs = endUs[i];
    }
    if (nccl_ && j_.world > 1) {
      std::string err;
      if (!rendezvous_.barrier(err)) return fail("final barrier: " + err);
    }
    return true;
  }

  /** Every local rank's tensors, routing and loss of the last iteration (after the device is idle). */
  bool collect(RunResult& out) {
    ctx_ = "reading the results";
    CU(cudaDeviceSynchronize());
    for (std::size_t i = 0; i < ranks_.size(); i++) {
      RankState& r = *ranks_[i];
      RankResult rr;
      const int64_t TM = T() * M();
      auto tensor = [&](const std::string& name, const void* src, int64_t n) {
        NamedFloats t{name, std::vector<float>(std::size_t(n))};
        CU(cudaMemcpy(t.data.data(), src, sizeof(float) * n, cudaMemcpyDeviceToHost));
        rr.tensors.push_back(std::move(t));
        return true;
      };
      for (const Op& op : p_.ops) {
        if (op.kind == OpKind::Gate && !op.bwd && !op.recompute) {
          const int64_t n = T() * K();
          std::vector<int32_t> cs(std::size_t(2 * n));
          CU(cudaMemcpy(cs.data(), r.tapRoute.as<int32_t>() + (std::size_t(moeIndex_[op.layer]) * j_.microBatches + op.mb) * 2 * n, sizeof(int32_t) * 2 * n,
                        cudaMemcpyDeviceToHost));
          std::vector<int32_t> pairs(std::size_t(2 * n));
          for (int64_t e = 0; e < n; e++) {
            pairs[2 * e] = cs[e];
            pairs[2 * e + 1] = cs[n + e];
          }
          rr.ints.push_back({"route.L" + std::to_string(op.layer) + ".mb" + std::to_string(op.mb), std::move(pairs)});
        }
        if (op.outputTap && !tensor("out.mb" + std::to_string(op.mb), r.tapOut.as<float>() + op.mb * TM, TM)) return false;
        if (op.dxTap && !tensor("dx.mb" + std::to_string(op.mb), r.tapDx.as<float>() + op.mb * TM, TM)) return false;
      }
      for (const Op& op : p_.ops) {  // a model's taps, in plan order
        const std::string mb = ".mb" + std::to_string(op.mb);
        if (op.kind == OpKind::LmHead && !op.bwd && !op.recompute && !tensor("logits" + mb, r.tapLogits.as<float>() + op.mb * int64_t(j_.groupTokens) * j_.localVocab, int64_t(j_.groupTokens) * j_.localVocab))
          return false;
        if (op.kind == OpKind::Loss && !op.bwd && op.role != "loss_max" && op.role != "loss_sumexp" && !tensor("loss" + mb, r.tapLoss.as<float>() + op.mb * T(), T())) return false;
      }
      // Every gradient after the iteration's all-reduces, where the backward ops declared it (the host's names).
      for (int l = 0; l < j_.layers; l++) {
        const MoeLayer& L = p_.layers[l];
        const std::string at_ = "grad.L" + std::to_string(l) + ".";
        const std::pair<int64_t, int64_t> sized[] = {{L.attentionNormAbs, M()}, {L.ffnNormAbs, M()}, {L.routerGradAbs, M() * E()}, {L.attentionAbs, j_.attentionParams()},
                                                     {L.ffnAbs, j_.ffnParams()}, {L.sharedAbs, j_.sharedParams()}, {L.expertGradAbs, j_.expertShardParams()}};
        const char* names[] = {"attention_norm", "ffn_norm", "router", "attention", "dense_ffn", "shared_expert", "expert"};
        for (int i = 0; i < 7; i++)
          if (sized[i].first >= 0 && !tensor(at_ + names[i], at(r, sized[i].first), sized[i].second)) return false;
      }
      const HeadGrads& hg = p_.head;
      if (hg.embeddingAbs >= 0 && !tensor("grad.embedding", at(r, hg.embeddingAbs), j_.vocabParams())) return false;
      if (hg.lmHeadAbs >= 0 && !tensor("grad.lm_head", at(r, hg.lmHeadAbs), j_.vocabParams())) return false;
      if (hg.finalNormAbs >= 0 && !tensor("grad.final_norm", at(r, hg.finalNormAbs), M())) return false;
      double loss[2] = {0, 0};
      CU(cudaMemcpy(loss, r.loss.as(), sizeof loss, cudaMemcpyDeviceToHost));
      rr.loss = loss[0];
      rr.lossScale = loss[1];
      out.ranks.push_back(std::move(rr));
    }
    return true;
  }
#undef CU
#undef NC
};

}  // namespace

// ── Session ──────────────────────────────────────────────────────────────────────────────────

struct Session::Impl {
  Plan plan;
  Options options;
  std::unique_ptr<Executor> ex;
  Result info;
  std::string error;
};

Session::Session() : impl_(new Impl) {}
Session::~Session() {
  if (impl_->ex && !impl_->error.empty()) impl_->ex->abort();
}

/** Runs `f` on the executor; a failure (or an exception) leaves its message in error(). */
template <class F>
static bool guarded(Session::Impl& s, F f) {
  if (!s.ex) return s.error = s.error.empty() ? "the session is not open" : s.error, false;
  try {
    if (f(*s.ex)) return true;
    s.error = s.ex->error();
    s.ex->clearError();
  } catch (const std::bad_alloc&) {
    s.error = "cuda backend: out of host memory";
  } catch (const std::exception& e) {
    s.error = std::string("cuda backend: internal error: ") + e.what();
  }
  return false;
}

bool Session::open(Plan plan, const Options& options) {
  if (impl_->ex) return impl_->error = "the session is already open", false;
  impl_->plan = std::move(plan);
  impl_->options = options;
  impl_->ex.reset(new Executor(impl_->plan, impl_->options));
  if (guarded(*impl_, [&](Executor& e) { return e.open(impl_->info); })) return true;
  impl_->ex->abort();
  impl_->ex.reset();
  return false;
}
bool Session::isOpen() const { return impl_->ex != nullptr; }
const Plan& Session::plan() const { return impl_->plan; }
const Result& Session::info() const { return impl_->info; }
const std::string& Session::error() const { return impl_->error; }
int Session::rank() const { return impl_->ex ? impl_->ex->rank() : -1; }
void* Session::stream(int id) const { return impl_->ex && id >= 0 && id < kStreams ? static_cast<void*>(impl_->ex->stream(id)) : nullptr; }
char* Session::arena() const { return impl_->ex ? impl_->ex->arena() : nullptr; }
bool Session::begin() { return guarded(*impl_, [](Executor& e) { return e.begin(); }); }
bool Session::launch(int op) { return guarded(*impl_, [op](Executor& e) { return e.launch(op); }); }
bool Session::end() { return guarded(*impl_, [](Executor& e) { return e.end(); }); }
bool Session::wait() { return guarded(*impl_, [](Executor& e) { return e.wait(); }); }
bool Session::results(RunResult& out) {
  out = RunResult();
  out.ok = guarded(*impl_, [&](Executor& e) { return e.results(out); });
  if (!out.ok) out.error = impl_->error;
  return out.ok;
}

Result run(const Plan& plan, const Options& options) {
  try {
    Executor e(plan, options);
    return e.run();
  } catch (const std::bad_alloc&) {
    Result r;
    r.run.error = "cuda backend: out of host memory";
    return r;
  } catch (const std::exception& ex) {
    Result r;
    r.run.error = std::string("cuda backend: internal error: ") + ex.what();
    return r;
  }
}

}  // namespace gpu
}  // namespace fsmoe

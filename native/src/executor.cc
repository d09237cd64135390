// The host executor (executor.h). Threads: per rank a host thread that issues ops in plan order
// and one worker per used stream; every wait (queue, event, collective, barrier) gives up when
// the run has failed, and the ones that depend on another rank also after the timeout, so a
// fault ends the run with a message instead of a hang.
#include "executor.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <new>
#include <thread>
#include <ctime>

#include "comm.h"
#include "comm_mpi.h"
#include "dense.h"
#include "kernels.h"
#include "model.h"

namespace fsmoe {

namespace {

double micros(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); }

/** CPU time of a clock (the calling thread's or the process's), µs. */
double cpuMicros(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return double(ts.tv_sec) * 1e6 + double(ts.tv_nsec) / 1e3;
}

std::string describe(const Op& op, int rank) {
  std::string s = std::string(isCollective(op.kind) ? "collective " : "op ") + kindName(op.kind) + " '" + op.role + "' (op " + std::to_string(op.id);
  if (op.layer >= 0) s += ", layer " + std::to_string(op.layer);
  s += std::string(op.bwd ? " bwd" : " fwd") + ", micro-batch " + std::to_string(op.mb);
  if (op.chunk >= 0) s += ", chunk " + std::to_string(op.chunk);
  return s + ") on stream " + streamName(op.stream) + " of rank " + std::to_string(rank);
}

/** A reusable barrier of all ranks that gives up on failure or timeout. */
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  bool wait(Failure& f, int64_t timeoutMs, int rank) {
    std::unique_lock<std::mutex> lock(m_);
    const uint64_t gen = gen_;
    if (++count_ == n_) {
      count_ = 0;
      gen_++;
      cv_.notify_all();
      return !f.failed();
    }
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
    while (gen_ == gen) {
      if (f.failed()) return false;
      if (Clock::now() >= deadline) {
        f.fail("rank " + std::to_string(rank) + " timed out after " + std::to_string(timeoutMs) + " ms at the barrier between iterations");
        return false;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(5));
    }
    return !f.failed();
  }

 private:
  int n_;
  int count_ = 0;
  uint64_t gen_ = 0;
  std::mutex m_;
  std::condition_variable cv_;
};

/** Threads joined when it goes out of scope, also when an exception leaves the scope (never std::terminate). */
class Threads {
 public:
  Threads() = default;
  Threads(const Threads&) = delete;
  Threads& operator=(const Threads&) = delete;
  ~Threads() { join(); }
  /** Start `f`; false (after failing the run, so started threads wind down) when no thread can be made. */
  template <class F>
  bool start(F&& f, Failure& failure, const std::string& what) {
    try {
      threads_.emplace_back(std::forward<F>(f));
      return true;
    } catch (const std::exception& e) {
      failure.fail("cannot start " + what + ": " + e.what());
      return false;
    }
  }
  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

 private:
  std::vector<std::thread> threads_;
};

/** State every rank of this process shares. */
struct World {
  const Plan& plan;
  const RunOptions& opt;
  Failure failure;
  Barrier barrier;  // the ranks of this process
  std::vector<std::unique_ptr<Communicator>> comms;
  std::vector<std::vector<Communicator*>> commOf;  // [group][rank]; in process only
  /** Ranks are MPI processes: this process's rank uses its communicators (comm_mpi.h). */
  std::unique_ptr<MpiTransport> net;
  Clock::time_point t0 = Clock::now();
  int spinUs = 0;
  /**
   * Waits that depend on a collective (events, the barrier between iterations) give up only
   * after a multiple of the collective timeout, so that the collective that is stuck reports
   * first, with its op, stream and rank.
   */
  int64_t safetyMs = 0;
  std::vector<std::vector<double>> iterStart, iterEnd;  // [rank][iteration], µs since t0
  /** The process's CPU time when each iteration began (its first rank, after the barrier that starts it) and after the last, µs. */
  std::vector<double> cpuMark;
  /** The first rank this process runs (0 with ranks as threads; the process's rank over MPI). */
  int firstRank = 0;

  World(const Plan& p, const RunOptions& o, int localRanks, bool overMpi) : plan(p), opt(o), barrier(localRanks), safetyMs(4 * o.timeoutMs + 1000) {
    const int W = p.job.world;
    commOf.assign(p.groups.size(), std::vector<Communicator*>(W, nullptr));
    for (std::size_t g = 0; g < p.groups.size() && !overMpi; g++) {
      const Group& grp = p.groups[g];
      for (int r = 0; r < W; r++) {
        if (commOf[g][r]) continue;
        std::vector<int> members;
        const int base = groupBase(grp, r);
        for (int i = 0; i < grp.size; i++) members.push_back(base + i * grp.stride);
        comms.push_back(std::make_unique<Communicator>(grp.name, members));
        for (int m : members) commOf[g][m] = comms.back().get();
      }
    }
    iterStart.assign(W, std::vector<double>(o.iterations, 0));
    iterEnd.assign(W, std::vector<double>(o.iterations, 0));
    cpuMark.assign(o.iterations + 1, 0);
  }

  /** The barrier between iterations: the ranks of this process, then (over MPI) every process. */
  bool sync(int rank) {
    if (!barrier.wait(failure, safetyMs, rank)) return false;
    return !net || net->barrier(safetyMs, failure, rank);
  }

  /** The collectives of `group` for `rank`'s op on `stream`. */
  Collectives* collectives(int group, int rank, int stream) { return net ? net->comm(group, stream) : commOf[group][rank]; }
};

/** A stream's FIFO: one producer (the rank's host thread), one consumer (the stream's worker). */
class StreamQueue {
 public:
  void init(std::size_t capacity) { ring_.assign(capacity + 2, -1); }
  void push(int v) {
    const uint64_t t = tail_.load(std::memory_order_relaxed);
    ring_[t % ring_.size()] = v;
    tail_.store(t + 1, std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst)) {
      std::lock_guard<std::mutex> lock(m_);
      cv_.notify_one();
    }
  }
  bool pop(int& v, int spinUs, const Failure& f) {
    if (tail_.load(std::memory_order_acquire) == head_ && spinUs > 0) {
      const auto until = Clock::now() + std::chrono::microseconds(spinUs);
      while (tail_.load(std::memory_order_acquire) == head_ && Clock::now() < until) {}
    }
    if (tail_.load(std::memory_order_acquire) == head_) {
      std::unique_lock<std::mutex> lock(m_);
      sleeping_.store(true, std::memory_order_seq_cst);
      while (tail_.load(std::memory_order_seq_cst) == head_) {
        if (f.failed()) {
          sleeping_.store(false);
          return false;
        }
        cv_.wait_for(lock, std::chrono::milliseconds(5));
      }
      sleeping_.store(false);
    }
    v = ring_[head_ % ring_.size()];
    head_++;
    return true;
  }

 private:
  std::vector<int> ring_;
  std::atomic<uint64_t> tail_{0};
  uint64_t head_ = 0;
  std::atomic<bool> sleeping_{false};
  std::mutex m_;
  std::condition_variable cv_;
};

class Rank {
 public:
  Rank(World& w, int rank) : w_(w), p_(w.plan), j_(w.plan.job), rank_(rank), done_(new std::atomic<int>[w.plan.ops.size()]) {
    for (std::size_t i = 0; i < p_.ops.size(); i++) done_[i].store(0);
    opSum_.assign(p_.ops.size(), 0.0);
    cpuSum_.assign(p_.ops.size(), 0.0);
    workSum_.assign(p_.ops.size(), 0.0);
    result.startUs.assign(p_.ops.size(), 0.0);
    result.endUs.assign(p_.ops.size(), 0.0);
    for (const auto& s : w.opt.skip)
      if (s.first == rank) skip_.push_back(s.second);
  }

  RankResult result;

  /** The rank's host thread. */
  void main() {
    try {
      if (!setup()) return;
      Threads workers;
      bool started = true;
      for (int s = 0; s < kStreams && started; s++) {
        if (p_.streamOps[s].empty()) continue;
        queues_[s].init(p_.streamOps[s].size());
        started = workers.start([this, s] { worker(s); }, w_.failure, std::string("the ") + streamName(s) + " stream of rank " + std::to_string(rank_));
      }
      if (started) iterate();
      for (int s = 0; s < kStreams; s++)
        if (!p_.streamOps[s].empty()) queues_[s].push(-1);
      workers.join();
      if (!w_.failure.failed()) finish();
    } catch (const std::bad_alloc&) {
      w_.failure.fail("rank " + std::to_string(rank_) + ": out of memory");
    } catch (const std::exception& e) {
      w_.failure.fail("rank " + std::to_string(rank_) + ": internal error: " + e.what());
    }
  }

 private:
  World& w_;
  const Plan& p_;
  const Job& j_;
  int rank_;
  std::vector<float> arena_;
  std::vector<LayerWeights> weights_;
  std::vector<DenseWeights> dense_;  // model jobs, by layer
  HeadWeights head_;
  std::unique_ptr<std::atomic<int>[]> done_;
  StreamQueue queues_[kStreams];
  /**
   * Targeted wake-ups: each thread of the rank (its stream workers, then its host thread) sleeps
   * on a condition variable of its own and says what it waits for — an op's id, or kIterationEnd —
   * so that an op's completion wakes only a thread waiting for that op (and the host thread only
   * when the iteration's last op is done) rather than every sleeper of the rank.
   */
  static constexpr int kAwake = -1, kIterationEnd = -2, kHostSlot = kStreams;
  std::mutex evm_;
  std::condition_variable wakeCv_[kStreams + 1];
  std::atomic<int> waitingOn_[kStreams + 1] = {kAwake, kAwake, kAwake, kAwake};
  std::atomic<int> completed_{0};
  std::atomic<int> iteration_{0};
  std::vector<double> opSum_, workSum_, cpuSum_;
  double prologueSum_ = 0;
  std::vector<int> skip_;

  char* base() { return reinterpret_cast<char*>(arena_.data()); }
  float* at(int64_t abs) { return reinterpret_cast<float*>(base() + abs); }
  float* acc(const Op& op, int i) { return at(op.accesses[i].abs); }
  float* buf(const Op& op, int i) { return at(p_.buffers[op.accesses[i].buffer].offset); }
  RouteView routing(const Op& op, int i) { return routeView(acc(op, i), int64_t(j_.tokens) * j_.topK); }
  bool last() const { return iteration_.load() == w_.opt.iterations - 1; }

  bool setup() {
    arena_.assign(std::size_t((p_.arenaBytes + 3) / 4), 0.0f);
    weights_.resize(j_.layers);
    for (int l : j_.moeLayers) makeLayerWeights(j_, l, rank_, weights_[l]);
    if (j_.model) {
      dense_.resize(j_.layers);
      for (int l = 0; l < j_.layers; l++) makeDenseWeights(j_, l, rank_, false, dense_[l]);
      makeHeadWeights(j_, rank_, false, head_);
    }
    return true;
  }

  void iterate() {
    const int n = int(p_.ops.size());
    for (int it = 0; it < w_.opt.iterations; it++) {
      if (!w_.sync(rank_)) return;
      if (rank_ == w_.firstRank) w_.cpuMark[it] = cpuMicros(CLOCK_PROCESS_CPUTIME_ID);
      const double p0 = cpuMicros(CLOCK_THREAD_CPUTIME_ID);
      for (const Buffer& b : p_.buffers) {
        if (b.given != Given::None) fill(b);
        else if (b.persistent) std::memset(base() + b.offset, 0, std::size_t(b.bytes));  // gradients start at zero
      }
      if (it >= w_.opt.warmup) prologueSum_ += cpuMicros(CLOCK_THREAD_CPUTIME_ID) - p0;
      completed_.store(0);
      iteration_.store(it);
      w_.iterStart[rank_][it] = micros(w_.t0, Clock::now());
      for (const Op& op : p_.ops) queues_[op.stream].push(op.id);
      // Wait for the iteration's last op.
      std::unique_lock<std::mutex> lock(evm_);
      waitingOn_[kHostSlot].store(kIterationEnd, std::memory_order_seq_cst);
      while (completed_.load(std::memory_order_seq_cst) < n) {
        if (w_.failure.failed()) {
          waitingOn_[kHostSlot].store(kAwake);
          return;
        }
        wakeCv_[kHostSlot].wait_for(lock, std::chrono::milliseconds(5));
      }
      waitingOn_[kHostSlot].store(kAwake);
      w_.iterEnd[rank_][it] = micros(w_.t0, Clock::now());
    }
    if (w_.sync(rank_) && rank_ == w_.firstRank) w_.cpuMark[w_.opt.iterations] = cpuMicros(CLOCK_PROCESS_CPUTIME_ID);
  }

  bool waitEvent(const Op& op, int w, int stamp) {
    if (done_[w].load(std::memory_order_acquire) >= stamp) return true;
    if (w_.spinUs > 0) {
      const auto until = Clock::now() + std::chrono::microseconds(w_.spinUs);
      while (done_[w].load(std::memory_order_acquire) < stamp && Clock::now() < until) {}
      if (done_[w].load(std::memory_order_acquire) >= stamp) return true;
    }
    const auto deadline = Clock::now() + std::chrono::milliseconds(w_.safetyMs);
    std::unique_lock<std::mutex> lock(evm_);
    const int slot = op.stream;
    waitingOn_[slot].store(w, std::memory_order_seq_cst);
    bool ok = true;
    while (done_[w].load(std::memory_order_seq_cst) < stamp) {
      if (w_.failure.failed()) {
        ok = false;
        break;
      }
      if (Clock::now() >= deadline) {
        w_.failure.fail(describe(op, rank_) + " timed out after " + std::to_string(w_.safetyMs) + " ms waiting for the event of op " + std::to_string(w) + " (" + kindName(p_.ops[w].kind) + " '" + p_.ops[w].role + "' on stream " + streamName(p_.ops[w].stream) + ")");
        ok = false;
        break;
      }
      wakeCv_[slot].wait_for(lock, std::chrono::milliseconds(5));
    }
    waitingOn_[slot].store(kAwake);
    return ok;
  }

  /**
   * Op `id` is done (its stamp and the completion count are stored, sequentially consistent):
   * wake the thread waiting for it, if any, and the host thread when the iteration is complete.
   * A sleeper publishes what it waits for before it checks, and the waker reads that after
   * publishing, so one of the two always sees the other: no wake-up is lost (the 5 ms timeouts
   * of the waits are a safety net, not the mechanism).
   */
  void signal(int id) {
    for (int s = 0; s < kStreams; s++)
      if (waitingOn_[s].load(std::memory_order_seq_cst) == id) {
        std::lock_guard<std::mutex> lock(evm_);
        wakeCv_[s].notify_one();
      }
    if (waitingOn_[kHostSlot].load(std::memory_order_seq_cst) == kIterationEnd && completed_.load(std::memory_order_seq_cst) >= int(p_.ops.size())) {
      std::lock_guard<std::mutex> lock(evm_);
      wakeCv_[kHostSlot].notify_one();
    }
  }

  void worker(int s) {
    try {
      int id;
      while (queues_[s].pop(id, w_.spinUs, w_.failure)) {
        if (id < 0) return;
        const Op& op = p_.ops[id];
        const int it = iteration_.load(std::memory_order_acquire);
        const int stamp = it + 1;
        for (int w : op.waits)
          if (!waitEvent(op, w, stamp)) return;
        const bool skipped = std::find(skip_.begin(), skip_.end(), id) != skip_.end();
        const bool timeCpu = !w_.opt.emptyKernels;  // two clock_gettime calls would dominate an empty op
        const double c0 = timeCpu ? cpuMicros(CLOCK_THREAD_CPUTIME_ID) : 0;
        const auto t0 = Clock::now();
        Clock::time_point work = t0;
        if (!skipped && !w_.opt.emptyKernels && !execute(op, work)) return;
        const auto t1 = Clock::now();
        const double us = micros(t0, t1);
        if (it >= w_.opt.warmup) {
          if (timeCpu) cpuSum_[id] += cpuMicros(CLOCK_THREAD_CPUTIME_ID) - c0;
          opSum_[id] += us;
          workSum_[id] += micros(std::max(work, t0), t1);
        }
        if (it == w_.opt.iterations - 1) {
          const double start = micros(w_.t0, t0) - w_.iterStart[rank_][it];
          result.startUs[id] = start;
          result.endUs[id] = start + us;
        }
        done_[id].store(stamp, std::memory_order_seq_cst);
        completed_.fetch_add(1, std::memory_order_seq_cst);
        signal(id);
      }
    } catch (const std::bad_alloc&) {
      w_.failure.fail("rank " + std::to_string(rank_) + ", stream " + streamName(s) + ": out of memory");
    } catch (const std::exception& e) {
      w_.failure.fail("rank " + std::to_string(rank_) + ", stream " + streamName(s) + ": internal error: " + e.what());
    }
  }

  /** An input of the iteration, generated for this rank and its micro-batch. */
  void fill(const Buffer& b) {
    if (b.given == Given::Tokens || b.given == Given::Targets) {
      fillTokens(j_, b.givenMb, rank_, b.given == Given::Targets, reinterpret_cast<int32_t*>(base() + b.offset));
      return;
    }
    const char* name = b.given == Given::Input ? kInputTensor : kCotangentTensor;
    const int64_t n = int64_t(j_.tokens) * j_.hidden;
    fillUniform(at(b.offset), std::size_t(n), j_.seed, tensorId(name), tokenIndex(j_, b.givenMb, rank_, 0) * j_.hidden, 1.0f);
  }

  bool fail(const Op& op, const std::string& what) {
    w_.failure.fail(describe(op, rank_) + ": " + what);
    return false;
  }

  /** Run one op; `work` is set to when a collective's transfer started (after its wait for peers). */
  bool execute(const Op& op, Clock::time_point& work) {
    if (isCollective(op.kind)) return collective(op, work);
    switch (op.kind) {
      case OpKind::Attention:
      case OpKind::DenseFfn:
      case OpKind::SharedExpert: return denseOp(op);
      case OpKind::Embed: return embedOp(op);
      case OpKind::LmHead: return lmHeadOp(op);
      case OpKind::Loss: return lossOp(op);
      default: return moeOp(op);
    }
  }

  /** Token ids or targets another op cannot have written, checked anyway before they index a table. */
  bool tokensValid(const Op& op, const int32_t* t) {
    for (int64_t i = 0; i < j_.groupTokens; i++)
      if (t[i] < 0 || t[i] >= j_.vocab) return fail(op, "token id " + std::to_string(t[i]) + " outside the vocabulary");
    return true;
  }
  const int32_t* ids(const Op& op, int i) { return reinterpret_cast<const int32_t*>(acc(op, i)); }

  /**
   * Attention, dense FFN, shared experts of a model: forward normalizes the gathered stream,
   * runs the block on this rank's heads or units and — on the first rank of the tp group — adds
   * the stream, so the ReduceScatter after it leaves the next stream; backward mirrors it.
   */
  bool denseOp(const Op& op) {
    const int64_t N = j_.groupTokens, M = j_.hidden;
    const DenseWeights& W = dense_[op.layer];
    const bool attention = op.kind == OpKind::Attention;
    const bool moe = j_.isMoe(op.layer);
    const float* gamma = attention ? W.attentionNorm.data() : W.ffnNorm.data();
    const int G = moe ? j_.gemms : j_.ffnGemms;
    const Activation act = moe ? j_.activation : j_.ffnActivation;
    const int64_t F = ffnUnits(j_, op.layer, false);
    const bool first = tpIndex(j_, rank_) == 0;
    thread_local std::vector<float> n, dn;
    n.resize(N * M);
    if (!op.bwd) {
      // gathered stream; partial output (w) [, probabilities (w)]
      const float* s = acc(op, 0);
      float* out = acc(op, 1);
      rmsNorm(s, gamma, N, M, n.data());
      if (attention) attentionForward(j_, attentionLayout(j_, false), n.data(), W.attention.data(), out, op.accesses.size() == 3 ? acc(op, 2) : nullptr);
      else ffnForward(N, M, F, G, act, n.data(), W.ffn.data(), out);
      if (first)
        for (int64_t i = 0; i < N * M; i++) out[i] += s[i];
      return true;
    }
    // gathered gradient, saved stream [, probabilities]; partial input gradient (w), weights' gradient (w), norm's gradient (w)
    const int sc = attention && op.accesses.size() == 6 ? 1 : 0;
    const float* g = acc(op, 0);
    const float* s = acc(op, 1);
    float* gin = acc(op, 2 + sc);
    rmsNorm(s, gamma, N, M, n.data());
    dn.resize(N * M);
    if (attention) attentionBackward(j_, attentionLayout(j_, false), n.data(), W.attention.data(), g, sc ? acc(op, 2) : nullptr, dn.data(), acc(op, 3 + sc));
    else ffnBackward(N, M, F, G, act, n.data(), W.ffn.data(), g, dn.data(), acc(op, 3 + sc));
    rmsNormBackward(s, gamma, dn.data(), N, M, gin, acc(op, 4 + sc));
    if (first)
      for (int64_t i = 0; i < N * M; i++) gin[i] += g[i];
    return true;
  }

  /** The vocabulary-parallel embedding: forward tokens → rows of this rank's shard; backward gradient, tokens → the shard's gradient. */
  bool embedOp(const Op& op) {
    const int64_t first = int64_t(tpIndex(j_, rank_)) * j_.localVocab;
    if (!op.bwd) {
      if (!tokensValid(op, ids(op, 0))) return false;
      embedForward(ids(op, 0), j_.groupTokens, j_.hidden, first, j_.localVocab, head_.embedding.data(), acc(op, 1));
    } else {
      if (!tokensValid(op, ids(op, 1))) return false;
      embedBackward(ids(op, 1), j_.groupTokens, j_.hidden, first, j_.localVocab, acc(op, 0), acc(op, 2));
    }
    return true;
  }

  /** The final norm and the LM head on the gathered stream: logits of this rank's vocabulary shard. */
  bool lmHeadOp(const Op& op) {
    const int64_t N = j_.groupTokens, M = j_.hidden, V = j_.localVocab;
    thread_local std::vector<float> n, dn, scratch;
    n.resize(N * M);
    rmsNorm(acc(op, op.bwd ? 1 : 0), head_.finalNorm.data(), N, M, n.data());
    if (!op.bwd) {
      float* logits = acc(op, 1);
      gemmNT(N, V, M, n.data(), head_.lmHead.data(), logits, scratch, false);
      if (!op.recompute && last()) capture("logits.mb" + std::to_string(op.mb), logits, N * V);
      return true;
    }
    // dlogits, saved stream; input gradient (w), LM head gradient (w), final norm gradient (w)
    const float* gl = acc(op, 0);
    dn.resize(N * M);
    gemmNN(N, M, V, gl, head_.lmHead.data(), dn.data(), false);
    gemmTN(V, M, N, gl, n.data(), acc(op, 3));
    rmsNormBackward(acc(op, 1), head_.finalNorm.data(), dn.data(), N, M, acc(op, 2), acc(op, 4));
    return true;
  }

  /** The cross-entropy, mean over every token of the iteration (micro-batches × dp groups × B · L). */
  bool lossOp(const Op& op) {
    const int64_t N = j_.groupTokens, V = j_.localVocab, first = int64_t(tpIndex(j_, rank_)) * V;
    const double scale = 1.0 / (double(j_.microBatches) * j_.dp * N);
    const int64_t P = j_.tp;
    if (op.bwd) {
      if (!tokensValid(op, ids(op, 3))) return false;
      lossBackward(acc(op, 0), acc(op, 1), acc(op, 2), P, ids(op, 3), N, V, first, scale, acc(op, 4));
      return true;
    }
    if (op.role == "loss_max") {
      lossMax(acc(op, 0), N, V, acc(op, 1));
    } else if (op.role == "loss_sumexp") {
      if (!tokensValid(op, ids(op, 2))) return false;
      lossSumExp(acc(op, 0), acc(op, 1), P, ids(op, 2), N, V, first, acc(op, 3));
    } else {
      float* loss = acc(op, 2);
      lossValue(acc(op, 0), acc(op, 1), P, N, scale, loss);
      if (last()) {
        // This rank's share: the tokens of its sequence slice.
        const int64_t T = j_.tokens, t0 = int64_t(tpIndex(j_, rank_)) * T;
        for (int64_t t = t0; t < t0 + T; t++) {
          result.loss += loss[t];
          result.lossScale += std::fabs(loss[t]);
        }
        capture("loss.mb" + std::to_string(op.mb), loss + t0, T);
      }
    }
    return true;
  }

  bool moeOp(const Op& op) {
    const MoeLayer& L = p_.layers[op.layer];
    const LayerWeights& W = weights_[op.layer];
    const int64_t T = j_.tokens, M = j_.hidden, C = L.capacity;
    // Decisions another op wrote: checked before they index anything (a skipped gate leaves garbage).
    auto decisions = [&](int i, RouteView& rt) {
      rt = routing(op, i);
      return routingValid(j_, C, rt) || fail(op, "routing decisions out of range (did the gate run?)");
    };
    RouteView rt{};
    switch (op.kind) {
      case OpKind::Gate:
        if (!op.bwd) {
          // x, logits (w), routing (w) [, the normalized x (w): a model's]
          float* logits = acc(op, 1);
          const float* x = acc(op, 0);
          if (j_.model) {
            rmsNorm(x, dense_[op.layer].ffnNorm.data(), T, M, acc(op, 3));
            x = acc(op, 3);
          }
          routerLogits(x, W.router.data(), T, M, j_.experts, logits);
          rt = routing(op, 2);
          route(j_, op.layer, op.mb, rank_, C, logits, W.bias.data(), rt);
          if (!op.recompute && last() && w_.opt.capture) {
            std::vector<int32_t> r(std::size_t(T) * j_.topK * 2);
            for (int64_t i = 0; i < T * j_.topK; i++) {
              r[2 * i] = rt.choice[i];
              r[2 * i + 1] = rt.slot[i];
            }
            result.ints.push_back({"route.L" + std::to_string(op.layer) + ".mb" + std::to_string(op.mb), std::move(r)});
          }
        } else {
          // logits, routing, x, dL/dweight, gx (w, accumulated), router gradient (w); a model's:
          // logits, routing, normalized x, x, dL/dweight, the stream's gradient, gx (w), router gradient (w), norm gradient (w)
          if (!decisions(1, rt)) return false;
          const int m = j_.model ? 1 : 0;
          thread_local std::vector<float> dlogits, ds;
          dlogits.resize(std::size_t(T) * j_.experts);
          routeBackward(j_, acc(op, 0), W.bias.data(), rt, acc(op, 3 + m), dlogits.data());
          float* gx = acc(op, 4 + 2 * m);
          gateBackward(j_, acc(op, 2), W.router.data(), dlogits.data(), gx, acc(op, 5 + 2 * m));
          if (j_.model) {
            ds.resize(std::size_t(T) * M);
            rmsNormBackward(acc(op, 3), dense_[op.layer].ffnNorm.data(), gx, T, M, ds.data(), acc(op, 8));
            const float* res = acc(op, 5);
            for (int64_t i = 0; i < T * M; i++) gx[i] = res[i] + ds[i];
          }
          if (op.dxTap && last()) capture("dx.mb" + std::to_string(op.mb), gx, T * M);
        }
        return true;
      case OpKind::Order:
      case OpKind::DispatchGemm:
        if (!decisions(1, rt)) return false;
        if (!op.bwd) {
          // x, routing, order buffer (w)
          if (op.kind == OpKind::DispatchGemm) dispatchEinsum(j_, C, L.fwdDegree, acc(op, 0), rt, buf(op, 2));
          else orderForward(j_, C, L.fwdDegree, acc(op, 0), rt, buf(op, 2));
        } else {
          // gradient of the order buffer, routing, gx (w)
          if (op.kind == OpKind::DispatchGemm) dispatchEinsumBackward(j_, C, L.bwdDegree, buf(op, 0), rt, acc(op, 2));
          else orderBackward(j_, C, L.bwdDegree, buf(op, 0), rt, acc(op, 2));
        }
        return true;
      case OpKind::Iorder:
      case OpKind::CombineGemm:
        if (!decisions(1, rt)) return false;
        if (!op.bwd) {
          // combined, routing [, the residual: a model's], y (w)
          float* y = acc(op, j_.model ? 3 : 2);
          if (op.kind == OpKind::CombineGemm) combineEinsum(j_, C, L.fwdDegree, buf(op, 0), rt, y);
          else iorderForward(j_, C, L.fwdDegree, buf(op, 0), rt, y);
          if (j_.model) {
            const float* res = acc(op, 2);
            for (int64_t i = 0; i < T * M; i++) y[i] += res[i];
          }
          if (op.outputTap) {
            // loss = Σ y ⊙ cotangent, the cotangent being the given gradient of the output.
            const uint32_t cot = tensorId(kCotangentTensor);
            const uint64_t first = tokenIndex(j_, op.mb, rank_, 0) * j_.hidden;
            double loss = 0, scale = 0;
            for (int64_t i = 0; i < T * M; i++) {
              const double v = double(y[i]) * uniformAt(j_.seed, cot, first + i, 1.0f);
              loss += v;
              scale += std::fabs(v);
            }
            if (last()) {
              result.loss += loss;
              result.lossScale += scale;
              capture("out.mb" + std::to_string(op.mb), y, T * M);
            }
          }
        } else {
          // dy, routing, saved combined, gradient of combined (w), dL/dweight (w)
          if (op.kind == OpKind::CombineGemm) combineEinsumBackward(j_, C, L.fwdDegree, L.bwdDegree, acc(op, 0), buf(op, 2), rt, buf(op, 3), acc(op, 4));
          else iorderBackward(j_, C, L.fwdDegree, L.bwdDegree, acc(op, 0), buf(op, 2), rt, buf(op, 3), acc(op, 4));
        }
        return true;
      case OpKind::Expert: {
        ExpertArgs a{&j_, C, op.bwd ? L.bwdDegree : L.fwdDegree, L.fwdDegree, op.chunk, op.localExpert, W.experts.data()};
        if (!op.bwd) expertForward(a, buf(op, 0), buf(op, 1), buf(op, 2));
        else expertBackward(a, buf(op, 0), buf(op, 1), buf(op, 2), buf(op, 3), at(L.expertGradAbs));
        return true;
      }
      default: return fail(op, "op kind not supported by the host backend");
    }
  }

  bool collective(const Op& op, Clock::time_point& work) {
    Collectives* comm = w_.collectives(op.group, rank_, op.stream);
    if (!comm) return fail(op, "no communicator for its group on this stream");
    const Group& g = p_.groups[op.group];
    CollectiveCall c;
    c.op = op.id;
    c.kind = op.kind;
    if (op.kind == OpKind::AllReduce) {
      for (const Access& a : op.accesses) c.ranges.emplace_back(at(a.abs), a.bytes / 4);
      c.max = op.reduceMax;
    } else {
      c.in = acc(op, 0);
      c.out = acc(op, 1);
      c.inElems = op.accesses[0].bytes / 4;
      c.outElems = op.accesses[1].bytes / 4;
    }
    const bool ok = comm->run(groupIndex(g, rank_), c, describe(op, rank_), w_.opt.timeoutMs, w_.failure);
    work = c.arrived;
    return ok;
  }

  void capture(const std::string& name, const float* data, int64_t n) {
    if (w_.opt.capture) result.tensors.push_back({name, std::vector<float>(data, data + n)});
  }

  void finish() {
    // Every gradient after the iteration's all-reduces, where the backward ops declared it.
    const int64_t M = j_.hidden;
    for (int l = 0; l < j_.layers; l++) {
      const MoeLayer& L = p_.layers[l];
      const std::string at_ = "grad.L" + std::to_string(l) + ".";
      auto grad = [&](int64_t abs, const char* name, int64_t n) {
        if (abs >= 0) capture(at_ + name, at(abs), n);
      };
      grad(L.attentionNormAbs, "attention_norm", M);
      grad(L.ffnNormAbs, "ffn_norm", M);
      grad(L.routerGradAbs, "router", M * j_.experts);
      grad(L.attentionAbs, "attention", j_.attentionParams());
      grad(L.ffnAbs, "dense_ffn", j_.ffnParams());
      grad(L.sharedAbs, "shared_expert", j_.sharedParams());
      grad(L.expertGradAbs, "expert", j_.expertShardParams());
    }
    if (p_.head.embeddingAbs >= 0) capture("grad.embedding", at(p_.head.embeddingAbs), j_.vocabParams());
    if (p_.head.lmHeadAbs >= 0) capture("grad.lm_head", at(p_.head.lmHeadAbs), j_.vocabParams());
    if (p_.head.finalNormAbs >= 0) capture("grad.final_norm", at(p_.head.finalNormAbs), M);
    const int timed = std::max(1, w_.opt.iterations - w_.opt.warmup);
    result.opUs.resize(opSum_.size());
    result.workUs.resize(opSum_.size());
    for (std::size_t i = 0; i < opSum_.size(); i++) {
      result.opUs[i] = opSum_[i] / timed;
      result.workUs[i] = workSum_[i] / timed;
    }
    result.cpuUs.resize(cpuSum_.size());
    for (std::size_t i = 0; i < cpuSum_.size(); i++) result.cpuUs[i] = cpuSum_[i] / timed;
    result.prologueUs = prologueSum_ / timed;
  }
};

}  // namespace

RunResult runPlan(const Plan& plan, const RunOptions& options) {
  RunResult out;
  try {
    // Ranks are threads of this process, or (started by an MPI launcher) this process is one rank.
    const MpiProcess& mpi = mpiProcess();
    std::vector<int> local;
    if (mpi.active) {
      if (!mpi.error.empty()) return out.error = mpi.error, out;
      if (mpi.size != plan.job.world)
        return out.error = "this job has " + std::to_string(plan.job.world) + " ranks but the MPI launcher started " + std::to_string(mpi.size) + " processes; run it with mpirun -np " + std::to_string(plan.job.world) + " (one rank per process), or without mpirun (ranks as threads)", out;
      local.push_back(mpi.rank);
      out.processes = mpi.size;
    } else {
      for (int r = 0; r < plan.job.world; r++) local.push_back(r);
    }
    out.firstRank = local.front();
    World world(plan, options, int(local.size()), mpi.active);
    world.firstRank = local.front();
    if (mpi.active) {
      std::string error;
      world.net = MpiTransport::create(plan, mpi.rank, options.timeoutMs, error);
      if (!world.net) return out.error = error, out;
    }
    int streams = 0;
    for (int s = 0; s < kStreams; s++) streams += plan.streamOps[s].empty() ? 0 : 1;
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    world.spinUs = options.spinUs >= 0 ? options.spinUs : (unsigned(plan.job.world * (streams + 1)) <= hw ? 50 : 0);
    std::vector<std::unique_ptr<Rank>> ranks;
    for (int r : local) ranks.push_back(std::make_unique<Rank>(world, r));
    const auto t0 = Clock::now();
    {
      Threads threads;
      for (auto& r : ranks)
        if (!threads.start([&r] { r->main(); }, world.failure, "a rank")) break;
    }
    if (world.failure.failed()) {
      out.error = world.failure.message();
      return out;
    }
    for (int it = 0; it < options.iterations; it++) {
      double s = 1e300, e = 0;
      for (int r : local) {
        s = std::min(s, world.iterStart[r][it]);
        e = std::max(e, world.iterEnd[r][it]);
      }
      out.iterationUs.push_back(e - s);
      out.iterationCpuUs.push_back(world.cpuMark[it + 1] - world.cpuMark[it]);
    }
    out.setupUs = micros(t0, Clock::now());
    if (world.net) world.net->release();
    for (auto& r : ranks) out.ranks.push_back(std::move(r->result));
    out.ok = true;
  } catch (const std::bad_alloc&) {
    out.error = "out of memory";
  } catch (const std::exception& e) {
    out.error = std::string("internal error: ") + e.what();
  }
  return out;
}

}  // namespace fsmoe

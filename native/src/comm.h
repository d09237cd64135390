// In-process collectives for ranks that are threads of one process (ARCHITECTURE.md, "Runtime":
// the host backend's embedded default). One communicator per group instance (members base +
// i·stride); a call is a rendezvous: every member posts its buffers, each copies or reduces its
// own part straight out of its peers' arenas, and a second rendezvous keeps every buffer alive
// until all peers are done. A member that waits past the timeout fails the run with the op,
// stream and rank named; a member that posts a different collective fails it as a mismatch.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "plan.h"

namespace fsmoe {

using Clock = std::chrono::steady_clock;


/** The first failure of a run; every wait in the run gives up once it is set. */
class Failure {
 public:
  void fail(const std::string& message);
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string message() const;

 private:
  std::atomic<bool> failed_{false};
  mutable std::mutex m_;
  std::string message_;
};

/** One member's side of a collective call. */
struct CollectiveCall {
  int op = -1;
  OpKind kind = OpKind::AllReduce;
  const float* in = nullptr;
  float* out = nullptr;
  int64_t inElems = 0, outElems = 0;
  std::vector<std::pair<float*, int64_t>> ranges;  // all-reduce, in place
  bool max = false;                                 // all-reduce: the maximum instead of the sum
  /** Set by run: when every member had arrived (the transfer's start, after any wait for peers). */
  Clock::time_point arrived{};
  std::vector<float> scratch;
};

/**
 * What the executor needs of a transport: one group instance's collectives. Implemented in
 * process (Communicator, below) and over MPI (comm_mpi.h), so the executor is the same either way.
 */
class Collectives {
 public:
  virtual ~Collectives() = default;
  /**
   * Run `call` as member `member` of this group instance. `who` describes the calling op for
   * messages ("collective all_to_all 'dispatch' (op 3, …) on stream inter of rank 1"). False
   * when the run failed (the failure names why).
   */
  virtual bool run(int member, CollectiveCall& call, const std::string& who, int64_t timeoutMs, Failure& failure) = 0;
};

/** The in-process communicator: ranks are threads of this process. */
class Communicator final : public Collectives {
 public:
  Communicator(std::string group, std::vector<int> members) : group_(std::move(group)), members_(std::move(members)), posts_(members_.size()), here_(members_.size(), 0) {}

  bool run(int member, CollectiveCall& call, const std::string& who, int64_t timeoutMs, Failure& failure) override;

  const std::vector<int>& members() const { return members_; }

 private:
  bool rendezvous(int member, CollectiveCall* post, const std::string& who, int64_t timeoutMs, Failure& failure);
  std::string membersText() const;

  std::string group_;
  std::vector<int> members_;
  std::mutex m_;
  std::condition_variable cv_;
  /** Copies of what each member posted (buffers live in arenas that outlive every thread of the run). */
  std::vector<CollectiveCall> posts_;
  bool broken_ = false;
  std::vector<char> here_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  std::string mismatch_;
};

}  // namespace fsmoe

// The plan executor of the host backend (ARCHITECTURE.md, "Runtime": replay). Per rank: one
// worker thread per stream with a FIFO queue, events as per-op completion stamps, one arena of
// the plan's size laid out by its memory plan; the rank's host thread issues every op in plan
// order. Ranks are threads of one process and share the in-process communicators (comm.h), or
// MPI processes, each running its own rank with the MPI transport (comm_mpi.h).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "plan.h"

namespace fsmoe {

struct RunOptions {
  int iterations = 1;
  /** The first `warmup` iterations run but are left out of the per-op means (first touches of the arena, cold caches). */
  int warmup = 0;
  int64_t timeoutMs = 10000;
  /** Copy the last iteration's outputs, gradients and routing into the result (verification needs them; a timing run does not). */
  bool capture = true;
  /** Skip every kernel and collective: measures the executor's own cost per op. */
  bool emptyKernels = false;
  /** Seeded faults: (rank, op) pairs whose op that rank skips. */
  std::vector<std::pair<int, int>> skip;
  /** Busy-wait this long before sleeping on a queue or event; -1: automatic. */
  int spinUs = -1;
};

struct NamedFloats {
  std::string name;
  std::vector<float> data;
};
struct NamedInts {
  std::string name;
  std::vector<int32_t> data;
};

/** What one rank reports: tensors of the last iteration, its loss, and times per op. */
struct RankResult {
  std::vector<NamedFloats> tensors;
  std::vector<NamedInts> ints;
  double loss = 0;
  double lossScale = 0;  // Σ |y ⊙ cotangent|, the scale the loss is judged against
  std::vector<double> opUs;            // mean over iterations
  std::vector<double> workUs;          // the same without a collective's wait for its peers
  std::vector<double> cpuUs;           // mean CPU time of the thread that ran the op (empty with emptyKernels)
  double prologueUs = 0;               // mean CPU time of the rank's thread filling inputs and zeroing gradients before an iteration's ops
  std::vector<double> startUs, endUs;  // last iteration, from its start
};

struct RunResult {
  bool ok = false;
  std::string error;
  std::vector<RankResult> ranks;
  std::vector<double> iterationUs;
  /** CPU time of the whole process (every rank's threads) during each iteration, µs. */
  std::vector<double> iterationCpuUs;
  double setupUs = 0;
  /** ranks[i] is rank firstRank + i: 0 in process; over MPI, this process's rank. */
  int firstRank = 0;
  /** The MPI job's processes when ranks are MPI processes; 0 when they are threads of this process. */
  int processes = 0;
};

/**
 * Replay a validated plan on every rank, or, in a process an MPI launcher started (comm_mpi.h),
 * on this process's rank only. Never throws; failures come back in `error`.
 */
RunResult runPlan(const Plan& plan, const RunOptions& options);

/** The same model unscheduled in one process, no chunking, no collectives (reference.cc). */
RunResult runReference(const Plan& plan);

}  // namespace fsmoe

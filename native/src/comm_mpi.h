// The MPI transport of the host backend (ARCHITECTURE.md, "Runtime"): ranks are MPI processes,
// one rank per process, and the same executor runs this process's rank with collectives over
// MPI instead of the in-process communicators (comm.h). Compiled with MPI only where the build
// found it (FSMOEC_HAVE_MPI); elsewhere every function here reports that MPI is not built in.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm.h"
#include "plan.h"

namespace fsmoe {

/** This process's place in an MPI job: active when built with MPI and started by an MPI launcher. */
struct MpiProcess {
  bool built = false;   // the addon was built with MPI
  bool active = false;  // MPI is initialized: this process is one rank of an MPI job
  int rank = 0;
  int size = 1;
  /** Why MPI could not be used although the process was launched by mpirun (empty: no problem). */
  std::string error;
};

/**
 * Initialize MPI (MPI_THREAD_MULTIPLE) when the build has MPI and the environment says an MPI
 * launcher started this process (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK), unless
 * FSMOEC_TRANSPORT=threads. Call on the main thread (MPI_Finalize must run on the same one);
 * idempotent. Registers an exit hook that finalizes MPI if nobody did.
 */
void mpiStartup();

/** What mpiStartup found. */
const MpiProcess& mpiProcess();

/** MPI_Finalize if MPI is initialized and not finalized yet (main thread). */
void mpiShutdown();

/** MPI_Abort(MPI_COMM_WORLD, code): ends every process of the job. No-op without MPI. */
void mpiAbortJob(int code);

/**
 * Every process's `mine`, in rank order, through a nonblocking all-gather that gives up after
 * `timeoutMs`. False with `error` set on a timeout or without MPI.
 */
bool mpiAllgatherText(const std::string& mine, int64_t timeoutMs, std::vector<std::string>& all, std::string& error);

/**
 * The MPI side of one run: one communicator per (group instance, stream) that this rank's
 * collectives use, split from MPI_COMM_WORLD at setup in plan order, and one for the barrier
 * between iterations. Every process must create it for the same plan.
 */
class MpiTransport {
 public:
  /**
   * The transport for `rank` (this process's MPI rank); null with `error` when it cannot be made.
   * Waits for every process to reach the run (at least two minutes, or `timeoutMs` if longer).
   */
  static std::unique_ptr<MpiTransport> create(const Plan& plan, int rank, int64_t timeoutMs, std::string& error);
  virtual ~MpiTransport() = default;
  /** The collectives of group `group` (plan index) issued on stream `stream`. */
  virtual Collectives* comm(int group, int stream) = 0;
  /** A barrier of every process; gives up on failure or after `timeoutMs`, failing the run. */
  virtual bool barrier(int64_t timeoutMs, Failure& failure, int rank) = 0;
  /** Free the communicators (only after a run that ended cleanly: pending requests would block it). */
  virtual void release() = 0;
};

}  // namespace fsmoe

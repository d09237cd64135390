// Bootstrap of a multi-process CUDA run (ARCHITECTURE.md, "Runtime": one process per GPU).
//
// Who am I: torchrun-style variables RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT; or, when RANK is unset, an MPI launcher's variables (Open MPI:
// OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK; MPICH, Intel MPI and other PMI launchers: PMI_RANK/PMI_SIZE,
// MPI_LOCALRANKID; PMIx: PMIX_RANK; Slurm: SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID). MPI itself is
// not linked: under mpirun the rendezvous still goes over TCP, to MASTER_ADDR:MASTER_PORT
// (defaults 127.0.0.1:29500, right for one node).
//
// The rendezvous: rank 0 listens on MASTER_PORT, every other rank connects (retrying until the
// timeout: rank 0 may start later), sends its rank, world size, a job key and a payload; rank 0
// checks them (same world size and key, every rank once) and sends every payload back to every
// rank. The connections stay open, so a run can gather again (allGather) or wait for all (barrier).
// Every failure is a message that names the ranks and the address; nothing blocks past the timeout.
// This file is plain POSIX C++ (no CUDA), compiled into every build.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fsmoe {
namespace boot {

/** Where this process stands, from the environment. */
struct Env {
  bool present = false;      // some launcher set a rank
  std::string source;        // "torchrun", "Open MPI", "PMI", "PMIx", "Slurm" or "default"
  int rank = 0;
  int world = 1;
  int localRank = -1;        // -1: unknown (derived from host names after the rendezvous)
  int localWorld = -1;
  std::string addr = "127.0.0.1";
  int port = 29500;
  std::string error;         // a malformed variable
};

/** Read the environment (see the file comment). `error` is set for malformed values. */
Env readEnv();

/** A TCP rendezvous among `world` processes. */
class Rendezvous {
 public:
  Rendezvous();
  ~Rendezvous();
  Rendezvous(const Rendezvous&) = delete;
  Rendezvous& operator=(const Rendezvous&) = delete;

  /**
   * Connect: rank 0 listens on `port` (all interfaces), the others connect to addr:port. `key`
   * (e.g. the plan's hash) must be the same on every rank. False with `error` on failure.
   */
  bool connect(const std::string& addr, int port, int rank, int world, const std::string& key, int64_t timeoutMs, std::string& error);

  /** Every rank's payload, in rank order (a collective call: every rank must make it). */
  bool allGather(const std::string& mine, std::vector<std::string>& all, std::string& error);

  /** Wait until every rank arrived. */
  bool barrier(std::string& error);

  int rank() const;
  int world() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/** Host name of this machine (gethostname). */
std::string hostName();

}  // namespace boot
}  // namespace fsmoe

// The MPI transport (comm_mpi.h). Every wait is a nonblocking MPI request polled with MPI_Test,
// so a peer that never arrives fails the run after the timeout, naming the op, stream and rank,
// instead of hanging. A collective is two steps: members exchange a header (op, kind, sizes)
// point to point, which tells a missing peer from a mismatched one exactly as the in-process
// communicator does; then the data moves with a nonblocking collective. Reductions gather the
// peers' parts and add them in member order, so the results are bit for bit those of the
// in-process communicator.
#include "comm_mpi.h"

#ifdef FSMOEC_HAVE_MPI

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace fsmoe {

namespace {

MpiProcess g_process;
bool g_started = false;
/** A duplicate of MPI_COMM_WORLD for the run's setup and the CLI's exchanges, apart from the collectives of ops. */
MPI_Comm g_control = MPI_COMM_NULL;

std::string mpiError(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int n = 0;
  if (MPI_Error_string(code, text, &n) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, std::size_t(n));
}

void shutdownAtExit() { mpiShutdown(); }

enum class Waited { Done, Failed, TimedOut, Error };

/**
 * Poll `reqs` (completed ones become MPI_REQUEST_NULL) until all are done, the run fails
 * elsewhere, the deadline passes, or MPI reports an error (`code`).
 */
Waited poll(std::vector<MPI_Request>& reqs, Clock::time_point deadline, const Failure* failure, int& code) {
  for (int round = 0;; round++) {
    bool all = true;
    for (MPI_Request& r : reqs) {
      if (r == MPI_REQUEST_NULL) continue;
      int flag = 0;
      const int rc = MPI_Test(&r, &flag, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS) {
        code = rc;
        return Waited::Error;
      }
      if (!flag) all = false;
    }
    if (all) return Waited::Done;
    if (failure && failure->failed()) return Waited::Failed;
    if (Clock::now() >= deadline) return Waited::TimedOut;
    // Nonblocking collectives progress only inside MPI calls: poll often at first, then back off
    // so that processes sharing cores leave them to the peers they wait for.
    if (round < 64) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(round < 2048 ? 20 : 200));
  }
}

Clock::time_point after(int64_t ms) { return Clock::now() + std::chrono::milliseconds(ms); }

/** FNV-1a over 64-bit words. */
struct Hash {
  uint64_t h = 1469598103934665603ull;
  void add(uint64_t v) {
    for (int i = 0; i < 8; i++) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  void add(const std::string& s) {
    for (unsigned char c : s) add(uint64_t(c));
  }
};

/** One group instance's collectives on one stream, as MPI communicator ranks = member indexes. */
class MpiComm final : public Collectives {
 public:
  MpiComm(MPI_Comm comm, std::string group, std::vector<int> members) : comm_(comm), group_(std::move(group)), members_(std::move(members)) {}
  ~MpiComm() override = default;
  MPI_Comm handle() const { return comm_; }

  bool run(int q, CollectiveCall& c, const std::string& who, int64_t timeoutMs, Failure& failure) override {
    const int64_t P = int64_t(members_.size());
    if (P == 1) {
      c.arrived = Clock::now();
      if (c.kind != OpKind::AllReduce && c.out != c.in) std::memcpy(c.out, c.in, sizeof(float) * c.outElems);
      return true;
    }
    const auto deadline = after(timeoutMs);
    if (!exchangeHeaders(q, c, who, timeoutMs, deadline, failure)) return false;
    c.arrived = Clock::now();
    std::vector<MPI_Request> req(1, MPI_REQUEST_NULL);
    int rc = MPI_SUCCESS;
    int64_t total = 0;
    switch (c.kind) {
      case OpKind::AllToAll: {
        const int64_t block = c.inElems / P;
        if (!fits(block, who, failure)) return false;
        rc = MPI_Ialltoall(c.in == c.out ? MPI_IN_PLACE : c.in, int(block), MPI_FLOAT, c.out, int(block), MPI_FLOAT, comm_, &req[0]);
        break;
      }
      case OpKind::AllGather:
        if (!fits(c.inElems, who, failure)) return false;
        rc = MPI_Iallgather(c.in, int(c.inElems), MPI_FLOAT, c.out, int(c.inElems), MPI_FLOAT, comm_, &req[0]);
        break;
      case OpKind::ReduceScatter:
        // Member p's part q arrives as block p; summed below in member order.
        if (!fits(c.outElems, who, failure)) return false;
        c.scratch.resize(std::size_t(P * c.outElems));
        rc = MPI_Ialltoall(c.in, int(c.outElems), MPI_FLOAT, c.scratch.data(), int(c.outElems), MPI_FLOAT, comm_, &req[0]);
        break;
      case OpKind::AllReduce: {
        for (auto& r : c.ranges) total += r.second;
        if (!fits(total, who, failure)) return false;
        pack_.resize(std::size_t(total));
        int64_t at = 0;
        for (auto& r : c.ranges) {
          std::memcpy(pack_.data() + at, r.first, sizeof(float) * r.second);
          at += r.second;
        }
        c.scratch.resize(std::size_t(P * total));
        rc = MPI_Iallgather(pack_.data(), int(total), MPI_FLOAT, c.scratch.data(), int(total), MPI_FLOAT, comm_, &req[0]);
        break;
      }
      default: return failure.fail(who + ": not a collective"), false;
    }
    if (rc != MPI_SUCCESS) return failure.fail(who + ": MPI failed to start the transfer in group " + group_ + ": " + mpiError(rc)), false;
    int code = MPI_SUCCESS;
    switch (poll(req, deadline, &failure, code)) {
      case Waited::Done: break;
      case Waited::Failed: return false;
      case Waited::TimedOut:
        failure.fail(who + " timed out after " + std::to_string(timeoutMs) + " ms in the MPI transfer in group " + group_ + " " + membersText());
        return false;
      case Waited::Error: return failure.fail(who + ": MPI transfer in group " + group_ + " failed: " + mpiError(code)), false;
    }
    if (c.kind == OpKind::ReduceScatter) {
      const int64_t n = c.outElems;
      for (int64_t e = 0; e < n; e++) {
        float s = 0;
        for (int64_t p = 0; p < P; p++) s += c.scratch[p * n + e];
        c.out[e] = s;
      }
    } else if (c.kind == OpKind::AllReduce) {
      int64_t at = 0;
      for (auto& r : c.ranges) {
        const int64_t n = r.second;
        float* dst = r.first;
        for (int64_t e = 0; e < n; e++) dst[e] = c.max ? -INFINITY : 0.0f;
        for (int64_t p = 0; p < P; p++) {
          const float* src = c.scratch.data() + p * total + at;
          if (c.max)
            for (int64_t e = 0; e < n; e++) dst[e] = std::max(dst[e], src[e]);
          else
            for (int64_t e = 0; e < n; e++) dst[e] += src[e];
        }
        at += n;
      }
    }
    return true;
  }

 private:
  static constexpr int kHeader = 7;
  static constexpr int kTag = 17;

  std::string membersText() const {
    std::string s = "{";
    for (std::size_t i = 0; i < members_.size(); i++) s += (i ? ", " : "") + std::to_string(members_[i]);
    return s + "}";
  }

  bool fits(int64_t n, const std::string& who, Failure& failure) {
    if (n <= int64_t(INT32_MAX)) return true;
    failure.fail(who + ": " + std::to_string(n) + " elements exceed what one MPI call moves");
    return false;
  }

  static void header(const CollectiveCall& c, int64_t* h) {
    Hash ranges;
    for (auto& r : c.ranges) ranges.add(uint64_t(r.second));
    h[0] = c.op;
    h[1] = int64_t(c.kind);
    h[2] = c.inElems;
    h[3] = c.outElems;
    h[4] = int64_t(c.ranges.size());
    h[5] = c.max ? 1 : 0;
    h[6] = int64_t(ranges.h & 0x7fffffffffffffffull);
  }

  /** Every member's header, point to point; a missing peer is named on timeout, a different collective is a mismatch. */
  bool exchangeHeaders(int q, const CollectiveCall& c, const std::string& who, int64_t timeoutMs, Clock::time_point deadline, Failure& failure) {
    const int P = int(members_.size());
    headers_.assign(std::size_t(P) * kHeader, 0);
    header(c, headers_.data() + std::size_t(q) * kHeader);
    std::vector<MPI_Request> recv(P, MPI_REQUEST_NULL), send(P, MPI_REQUEST_NULL);
    for (int p = 0; p < P; p++) {
      if (p == q) continue;
      int rc = MPI_Irecv(headers_.data() + std::size_t(p) * kHeader, kHeader, MPI_INT64_T, p, kTag, comm_, &recv[p]);
      if (rc == MPI_SUCCESS) rc = MPI_Isend(headers_.data() + std::size_t(q) * kHeader, kHeader, MPI_INT64_T, p, kTag, comm_, &send[p]);
      if (rc != MPI_SUCCESS) return failure.fail(who + ": MPI failed in group " + group_ + ": " + mpiError(rc)), false;
    }
    int code = MPI_SUCCESS;
    Waited w = poll(recv, deadline, &failure, code);
    if (w == Waited::Done) w = poll(send, deadline, &failure, code);
    switch (w) {
      case Waited::Done: break;
      case Waited::Failed: return false;
      case Waited::Error: return failure.fail(who + ": MPI failed in group " + group_ + ": " + mpiError(code)), false;
      case Waited::TimedOut: {
        std::string missing;
        for (int p = 0; p < P; p++)
          if (recv[p] != MPI_REQUEST_NULL) missing += (missing.empty() ? "" : ", ") + std::to_string(members_[p]);
        if (missing.empty()) missing = "(their receipt of this rank's header)";
        failure.fail(who + " timed out after " + std::to_string(timeoutMs) + " ms waiting in group " + group_ + " " + membersText() + " for rank" + (missing.find(',') != std::string::npos ? "s " : " ") + missing);
        return false;
      }
    }
    // The same check as the in-process communicator: member 0's collective against each other's.
    const int64_t* a = headers_.data();
    for (int p = 1; p < P; p++) {
      const int64_t* b = headers_.data() + std::size_t(p) * kHeader;
      if (a[0] != b[0] || a[1] != b[1] || a[2] != b[2] || a[3] != b[3] || a[4] != b[4] || a[5] != b[5]) {
        failure.fail(who + ": collective mismatch in group " + group_ + " " + membersText() + ": rank " + std::to_string(members_[0]) + " issued op " + std::to_string(a[0]) + " (" + kindName(OpKind(a[1])) + ") while rank " +
                     std::to_string(members_[p]) + " issued op " + std::to_string(b[0]) + " (" + kindName(OpKind(b[1])) + ")");
        return false;
      }
      if (a[6] != b[6]) return failure.fail(who + ": collective mismatch in group " + group_ + ": all-reduce ranges differ between ranks"), false;
    }
    return true;
  }

  MPI_Comm comm_;
  std::string group_;
  std::vector<int> members_;
  std::vector<int64_t> headers_;
  std::vector<float> pack_;
};

class Transport final : public MpiTransport {
 public:
  ~Transport() override = default;
  Collectives* comm(int group, int stream) override {
    if (group < 0 || group >= int(of_.size()) || stream < 0 || stream >= kStreams) return nullptr;
    return of_[group][stream];
  }
  bool barrier(int64_t timeoutMs, Failure& failure, int rank) override {
    std::vector<MPI_Request> req(1, MPI_REQUEST_NULL);
    const int rc = MPI_Ibarrier(barrier_, &req[0]);
    if (rc != MPI_SUCCESS) return failure.fail("rank " + std::to_string(rank) + ": MPI barrier failed: " + mpiError(rc)), false;
    int code = MPI_SUCCESS;
    switch (poll(req, after(timeoutMs), &failure, code)) {
      case Waited::Done: return true;
      case Waited::Failed: return false;
      case Waited::TimedOut: return failure.fail("rank " + std::to_string(rank) + " timed out after " + std::to_string(timeoutMs) + " ms at the barrier between iterations (MPI)"), false;
      case Waited::Error: return failure.fail("rank " + std::to_string(rank) + ": MPI barrier failed: " + mpiError(code)), false;
    }
    return false;
  }
  void release() override {
    for (auto& c : owned_) {
      MPI_Comm h = c->handle();
      MPI_Comm_free(&h);
    }
    owned_.clear();
    of_.clear();
    if (barrier_ != MPI_COMM_NULL) MPI_Comm_free(&barrier_);
  }

  std::vector<std::unique_ptr<MpiComm>> owned_;
  std::vector<std::vector<Collectives*>> of_;  // [group][stream]
  MPI_Comm barrier_ = MPI_COMM_NULL;
};

/** A fingerprint of what setup depends on: every process must replay the same plan. */
uint64_t fingerprint(const Plan& plan) {
  Hash h;
  h.add(uint64_t(plan.job.world));
  h.add(uint64_t(plan.ops.size()));
  for (const Group& g : plan.groups) {
    h.add(g.name);
    h.add(uint64_t(g.size));
    h.add(uint64_t(g.stride));
  }
  for (const Op& op : plan.ops) {
    h.add(uint64_t(op.kind));
    h.add(uint64_t(op.stream));
    h.add(uint64_t(int64_t(op.group)));
  }
  h.add(uint64_t(plan.arenaBytes));
  return h.h;
}

}  // namespace

void mpiStartup() {
  if (g_started) return;
  g_started = true;
  g_process.built = true;
  const char* transport = std::getenv("FSMOEC_TRANSPORT");
  if (transport && std::string(transport) == "threads") return;
  if (!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMI_SIZE") && !std::getenv("PMIX_RANK")) return;
  int initialized = 0, provided = MPI_THREAD_SINGLE;
  MPI_Initialized(&initialized);
  if (!initialized) {
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
      g_process.error = "MPI_Init_thread failed";
      return;
    }
    std::atexit(shutdownAtExit);
  } else {
    MPI_Query_thread(&provided);
  }
  g_process.active = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_process.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_process.size);
  if (provided < MPI_THREAD_MULTIPLE) {
    g_process.error = "this MPI provides thread level " + std::to_string(provided) + ", and the executor's stream threads need MPI_THREAD_MULTIPLE (" + std::to_string(int(MPI_THREAD_MULTIPLE)) + ")";
    return;
  }
  MPI_Comm_dup(MPI_COMM_WORLD, &g_control);
  MPI_Comm_set_errhandler(g_control, MPI_ERRORS_RETURN);
}

const MpiProcess& mpiProcess() {
  g_process.built = true;
  return g_process;
}

void mpiShutdown() {
  if (!g_process.active) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (g_control != MPI_COMM_NULL) MPI_Comm_free(&g_control);
  MPI_Finalize();
}

void mpiAbortJob(int code) {
  if (!g_process.active) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Abort(MPI_COMM_WORLD, code);
}

bool mpiAllgatherText(const std::string& mine, int64_t timeoutMs, std::vector<std::string>& all, std::string& error) {
  if (!g_process.active || g_control == MPI_COMM_NULL) return error = g_process.error.empty() ? "this process is not part of an MPI job" : g_process.error, false;
  const int P = g_process.size;
  const auto deadline = after(timeoutMs);
  int code = MPI_SUCCESS;
  auto wait = [&](MPI_Request r, const char* what) {
    std::vector<MPI_Request> req(1, r);
    switch (poll(req, deadline, nullptr, code)) {
      case Waited::Done: return true;
      case Waited::TimedOut: error = std::string("timed out after ") + std::to_string(timeoutMs) + " ms gathering " + what + " from every MPI process"; return false;
      default: error = std::string("MPI failed gathering ") + what + ": " + mpiError(code); return false;
    }
  };
  if (mine.size() > std::size_t(INT32_MAX) / std::size_t(P)) return error = "the text to gather is too large", false;
  int length = int(mine.size());
  std::vector<int> lengths(P, 0);
  MPI_Request r = MPI_REQUEST_NULL;
  if ((code = MPI_Iallgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, g_control, &r)) != MPI_SUCCESS) return error = "MPI failed: " + mpiError(code), false;
  if (!wait(r, "lengths")) return false;
  std::vector<int> displs(P, 0);
  int64_t sum = 0;
  for (int p = 0; p < P; p++) {
    displs[p] = int(sum);
    sum += lengths[p];
    if (sum > INT32_MAX) return error = "the texts to gather are too large", false;
  }
  std::vector<char> buffer(std::size_t(std::max<int64_t>(sum, 1)));
  if ((code = MPI_Iallgatherv(mine.data(), length, MPI_CHAR, buffer.data(), lengths.data(), displs.data(), MPI_CHAR, g_control, &r)) != MPI_SUCCESS) return error = "MPI failed: " + mpiError(code), false;
  if (!wait(r, "results")) return false;
  all.clear();
  for (int p = 0; p < P; p++) all.emplace_back(buffer.data() + displs[p], std::size_t(lengths[p]));
  return true;
}

std::unique_ptr<MpiTransport> MpiTransport::create(const Plan& plan, int rank, int64_t timeoutMs, std::string& error) {
  if (!g_process.active || g_control == MPI_COMM_NULL) return error = g_process.error.empty() ? "MPI is not initialized in this process" : g_process.error, nullptr;
  // Every process must split the same communicators in the same order: check the plans agree first.
  const uint64_t mine = fingerprint(plan);
  std::vector<uint64_t> prints(std::size_t(g_process.size), 0);
  MPI_Request r = MPI_REQUEST_NULL;
  int code = MPI_Iallgather(&mine, 1, MPI_UINT64_T, prints.data(), 1, MPI_UINT64_T, g_control, &r);
  if (code != MPI_SUCCESS) return error = "MPI setup failed: " + mpiError(code), nullptr;
  std::vector<MPI_Request> req(1, r);
  // Processes reach the run at different times (each compiles the job first): the setup waits
  // longer than a collective may.
  const int64_t setupMs = std::max<int64_t>(timeoutMs, 120000);
  switch (poll(req, after(setupMs), nullptr, code)) {
    case Waited::Done: break;
    case Waited::TimedOut: return error = "rank " + std::to_string(rank) + " timed out after " + std::to_string(setupMs) + " ms waiting for every MPI process to start the run", nullptr;
    default: return error = "MPI setup failed: " + mpiError(code), nullptr;
  }
  for (std::size_t p = 0; p < prints.size(); p++)
    if (prints[p] != prints[0]) return error = "MPI process " + std::to_string(p) + " replays a different plan than process 0 (every process must compile the same job)", nullptr;
  auto t = std::make_unique<Transport>();
  if ((code = MPI_Comm_dup(g_control, &t->barrier_)) != MPI_SUCCESS) return error = "MPI setup failed: " + mpiError(code), nullptr;
  t->of_.assign(plan.groups.size(), std::vector<Collectives*>(kStreams, nullptr));
  std::vector<std::vector<char>> used(plan.groups.size(), std::vector<char>(kStreams, 0));
  for (const Op& op : plan.ops)
    if (isCollective(op.kind) && op.group >= 0 && op.group < int(plan.groups.size()) && op.stream >= 0 && op.stream < kStreams) used[op.group][op.stream] = 1;
  for (std::size_t g = 0; g < plan.groups.size(); g++) {
    const Group& grp = plan.groups[g];
    const int base = groupBase(grp, rank), index = groupIndex(grp, rank);
    std::vector<int> members;
    for (int i = 0; i < grp.size; i++) members.push_back(base + i * grp.stride);
    for (int s = 0; s < kStreams; s++) {
      if (!used[g][s]) continue;
      MPI_Comm c = MPI_COMM_NULL;
      if ((code = MPI_Comm_split(g_control, base, index, &c)) != MPI_SUCCESS) {
        t->release();
        return error = "MPI_Comm_split for group " + grp.name + " failed: " + mpiError(code), nullptr;
      }
      MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
      int size = 0, me = -1;
      MPI_Comm_size(c, &size);
      MPI_Comm_rank(c, &me);
      t->owned_.push_back(std::make_unique<MpiComm>(c, grp.name, members));
      t->of_[g][s] = t->owned_.back().get();
      if (size != grp.size || me != index) {
        t->release();
        return error = "MPI communicator of group " + grp.name + " has " + std::to_string(size) + " members (rank " + std::to_string(me) + "), the plan says " + std::to_string(grp.size) + " (rank " + std::to_string(index) + ")", nullptr;
      }
    }
  }
  return t;
}

}  // namespace fsmoe

#else  // no MPI in this build

namespace fsmoe {

namespace {
MpiProcess g_process;
}

void mpiStartup() {}
const MpiProcess& mpiProcess() { return g_process; }
void mpiShutdown() {}
void mpiAbortJob(int) {}
bool mpiAllgatherText(const std::string&, int64_t, std::vector<std::string>&, std::string& error) {
  error = "this build of the native runtime has no MPI (rebuild where MPI is installed)";
  return false;
}
std::unique_ptr<MpiTransport> MpiTransport::create(const Plan&, int, int64_t, std::string& error) {
  error = "this build of the native runtime has no MPI (rebuild where MPI is installed)";
  return nullptr;
}

}  // namespace fsmoe

#endif

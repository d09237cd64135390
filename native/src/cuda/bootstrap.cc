// The bootstrap (bootstrap.h): environment and a TCP rendezvous over POSIX sockets.
#include "bootstrap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace fsmoe {
namespace boot {

namespace {

using Clock = std::chrono::steady_clock;

const char* get(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

/** A whole non-negative decimal number (no sign, no spaces), or -1. */
long long parse(const char* s) {
  if (s == nullptr || *s == '\0') return -1;
  long long v = 0;
  for (const char* p = s; *p; p++) {
    if (*p < '0' || *p > '9' || v > (1LL << 40)) return -1;
    v = v * 10 + (*p - '0');
  }
  return v;
}

constexpr uint32_t kHello = 0x484d5346;  // "FSMH"
constexpr uint32_t kMaxPayload = 64u << 20;

/** A socket closed on destruction. */
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

int remainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : int(std::min<long long>(left, 1 << 30));
}

bool waitFd(int fd, short events, Clock::time_point deadline, const std::string& what, std::string& error) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int ms = remainingMs(deadline);
    const int r = ::poll(&p, 1, ms);
    if (r > 0) return true;
    if (r == 0) return error = what + ": timed out", false;
    if (errno != EINTR) return error = what + ": poll failed: " + std::strerror(errno), false;
  }
}

bool sendAll(int fd, const void* data, std::size_t n, Clock::time_point deadline, const std::string& what, std::string& error) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    if (!waitFd(fd, POLLOUT, deadline, what, error)) return false;
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return error = what + ": send failed: " + std::strerror(errno), false;
    }
    p += k;
    n -= std::size_t(k);
  }
  return true;
}

bool recvAll(int fd, void* data, std::size_t n, Clock::time_point deadline, const std::string& what, std::string& error) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    if (!waitFd(fd, POLLIN, deadline, what, error)) return false;
    const ssize_t k = ::recv(fd, p, n, 0);
    if (k == 0) return error = what + ": the peer closed the connection", false;
    if (k < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return error = what + ": recv failed: " + std::strerror(errno), false;
    }
    p += k;
    n -= std::size_t(k);
  }
  return true;
}

bool sendU32(int fd, uint32_t v, Clock::time_point d, const std::string& what, std::string& e) {
  unsigned char b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
  return sendAll(fd, b, 4, d, what, e);
}
bool recvU32(int fd, uint32_t& v, Clock::time_point d, const std::string& what, std::string& e) {
  unsigned char b[4];
  if (!recvAll(fd, b, 4, d, what, e)) return false;
  v = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
  return true;
}
bool sendBlob(int fd, const std::string& s, Clock::time_point d, const std::string& what, std::string& e) {
  return sendU32(fd, uint32_t(s.size()), d, what, e) && sendAll(fd, s.data(), s.size(), d, what, e);
}
bool recvBlob(int fd, std::string& s, Clock::time_point d, const std::string& what, std::string& e) {
  uint32_t n = 0;
  if (!recvU32(fd, n, d, what, e)) return false;
  if (n > kMaxPayload) return e = what + ": a message of " + std::to_string(n) + " bytes is too large (not an fsmoe peer?)", false;
  s.assign(n, '\0');
  return recvAll(fd, s.data(), n, d, what, e);
}

void setNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

Env readEnv() {
  Env e;
  auto number = [&](const char* name, long long lo, long long hi, int& out) {
    const char* v = get(name);
    if (v == nullptr) return false;
    const long long x = parse(v);
    if (x < lo || x > hi) {
      if (e.error.empty()) e.error = std::string(name) + "='" + v + "' is not a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
      return false;
    }
    out = int(x);
    return true;
  };
  struct Source {
    const char* name;
    const char* rank;
    const char* size;
    const char* local;
    const char* localSize;
  };
  const Source sources[] = {
      {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
      {"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
      {"PMI", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
      {"PMIx", "PMIX_RANK", "PMIX_SIZE", "PMIX_LOCAL_RANK", "PMIX_LOCAL_SIZE"},
      {"Slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"},
  };
  e.source = "default";
  for (const Source& s : sources) {
    if (get(s.rank) == nullptr) continue;
    e.source = s.name;
    e.present = true;
    number(s.rank, 0, 1 << 24, e.rank);
    if (!number(s.size, 1, 1 << 24, e.world) && e.error.empty()) e.error = std::string(s.rank) + " is set but " + s.size + " is not";
    number(s.local, 0, 1 << 24, e.localRank);
    number(s.localSize, 1, 1 << 24, e.localWorld);
    break;
  }
  if (e.error.empty() && e.rank >= e.world) e.error = "rank " + std::to_string(e.rank) + " is not below the world size " + std::to_string(e.world);
  if (const char* a = get("MASTER_ADDR")) e.addr = a;
  number("MASTER_PORT", 1, 65535, e.port);
  return e;
}

std::string hostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

struct Rendezvous::Impl {
  int rank = 0, world = 1;
  int64_t timeoutMs = 60000;
  std::string where;           // "127.0.0.1:29500"
  Fd listener;                 // rank 0
  std::vector<Fd> peers;       // rank 0: one per other rank, by rank
  Fd server;                   // other ranks: the connection to rank 0
  bool connected = false;

  Clock::time_point deadline() const { return Clock::now() + std::chrono::milliseconds(timeoutMs); }

  /** Rank 0: tell every connected peer the rendezvous failed. */
  void broadcastError(const std::string& message) {
    const auto d = Clock::now() + std::chrono::milliseconds(2000);
    for (Fd& p : peers) {
      if (!p.valid()) continue;
      std::string ignored;
      const unsigned char status = 1;
      if (sendAll(p.get(), &status, 1, d, "error", ignored)) sendBlob(p.get(), message, d, "error", ignored);
    }
  }
};

Rendezvous::Rendezvous() : impl_(new Impl()) {}
Rendezvous::~Rendezvous() = default;
int Rendezvous::rank() const { return impl_->rank; }
int Rendezvous::world() const { return impl_->world; }

bool Rendezvous::connect(const std::string& addr, int port, int rank, int world, const std::string& key, int64_t timeoutMs, std::string& error) {
  Impl& s = *impl_;
  s.rank = rank;
  s.world = world;
  s.timeoutMs = timeoutMs;
  s.where = addr + ":" + std::to_string(port);
  if (world < 1 || rank < 0 || rank >= world) return error = "rendezvous: rank " + std::to_string(rank) + " of world " + std::to_string(world) + " is out of range", false;
  if (port < 1 || port > 65535) return error = "rendezvous: port " + std::to_string(port) + " is out of range", false;
  if (world == 1) return s.connected = true;
  const auto deadline = s.deadline();
  const std::string me = "rendezvous at " + s.where + " (rank " + std::to_string(rank) + " of " + std::to_string(world) + ")";

  if (rank == 0) {
    Fd l(::socket(AF_INET6, SOCK_STREAM, 0));
    bool v6 = l.valid();
    if (!v6) l = Fd(::socket(AF_INET, SOCK_STREAM, 0));
    if (!l.valid()) return error = me + ": socket failed: " + std::strerror(errno), false;
    int one = 1, zero = 0;
    ::setsockopt(l.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc;
    if (v6) {
      ::setsockopt(l.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // IPv4 peers too
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_any;
      a.sin6_port = htons(uint16_t(port));
      rc = ::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_ANY);
      a.sin_port = htons(uint16_t(port));
      rc = ::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    if (rc != 0) return error = me + ": cannot listen on port " + std::to_string(port) + ": " + std::strerror(errno) + " (set MASTER_PORT to a free port)", false;
    if (::listen(l.get(), world) != 0) return error = me + ": listen failed: " + std::strerror(errno), false;
    setNonBlocking(l.get());
    s.listener = std::move(l);
    s.peers.clear();
    s.peers.resize(world);
    int joined = 1;
    while (joined < world) {
      std::string e;
      if (!waitFd(s.listener.get(), POLLIN, deadline, "accept", e)) {
        std::string missing;
        for (int r = 1; r < world; r++)
          if (!s.peers[r].valid()) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
        error = me + ": timed out after " + std::to_string(timeoutMs) + " ms waiting for rank" + (missing.find(',') != std::string::npos ? "s " : " ") + missing;
        s.broadcastError(error);
        return false;
      }
      Fd c(::accept(s.listener.get(), nullptr, nullptr));
      if (!c.valid()) continue;
      setNonBlocking(c.get());
      uint32_t magic = 0, r = 0, w = 0;
      std::string k;
      if (!recvU32(c.get(), magic, deadline, "hello", e) || magic != kHello) continue;  // not an fsmoe peer: ignore it
      if (!recvU32(c.get(), r, deadline, "hello", e) || !recvU32(c.get(), w, deadline, "hello", e) || !recvBlob(c.get(), k, deadline, "hello", e)) continue;
      std::string bad;
      if (int(w) != world) bad = "rank " + std::to_string(r) + " says the world has " + std::to_string(w) + " ranks; rank 0 says " + std::to_string(world);
      else if (r == 0 || int(r) >= world) bad = "a peer claims rank " + std::to_string(r) + ", outside 1…" + std::to_string(world - 1);
      else if (s.peers[r].valid()) bad = "two processes claim rank " + std::to_string(r);
      else if (k != key) bad = "rank " + std::to_string(r) + " runs a different job (key '" + k + "', rank 0 has '" + key + "')";
      if (!bad.empty()) {
        error = me + ": " + bad;
        s.peers[0] = std::move(c);  // tell it too
        s.broadcastError(error);
        return false;
      }
      s.peers[r] = std::move(c);
      joined++;
    }
    // Everybody is here: welcome.
    for (int r = 1; r < world; r++) {
      const unsigned char ok = 0;
      if (!sendAll(s.peers[r].get(), &ok, 1, deadline, "welcome", error)) return error = me + ": rank " + std::to_string(r) + ": " + error, false;
    }
    return s.connected = true;
  }

  // Other ranks: connect to rank 0, retrying while it is not listening yet.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  std::string last = "no attempt";
  for (;;) {
    addrinfo* res = nullptr;
    const int g = ::getaddrinfo(addr.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (g != 0) {
      last = std::string("cannot resolve MASTER_ADDR '") + addr + "': " + gai_strerror(g);
    } else {
      for (addrinfo* a = res; a != nullptr && !s.server.valid(); a = a->ai_next) {
        Fd c(::socket(a->ai_family, a->ai_socktype, a->ai_protocol));
        if (!c.valid()) continue;
        setNonBlocking(c.get());
        int rc = ::connect(c.get(), a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
          pollfd p{c.get(), POLLOUT, 0};
          if (::poll(&p, 1, std::min(1000, std::max(1, remainingMs(deadline)))) == 1) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(c.get(), SOL_SOCKET, SO_ERROR, &err, &len);
            rc = err == 0 ? 0 : -1;
            errno = err;
          } else {
            errno = ETIMEDOUT;
          }
        }
        if (rc == 0) s.server = std::move(c);
        else last = std::string("connect: ") + std::strerror(errno);
      }
      ::freeaddrinfo(res);
    }
    if (s.server.valid()) break;
    if (Clock::now() >= deadline) return error = me + ": timed out after " + std::to_string(timeoutMs) + " ms connecting to rank 0 (" + last + ")", false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const int fd = s.server.get();
  if (!sendU32(fd, kHello, deadline, "hello", error) || !sendU32(fd, uint32_t(rank), deadline, "hello", error) || !sendU32(fd, uint32_t(world), deadline, "hello", error) ||
      !sendBlob(fd, key, deadline, "hello", error))
    return error = me + ": " + error, false;
  unsigned char status = 1;
  if (!recvAll(fd, &status, 1, deadline, "waiting for the other ranks", error)) return error = me + ": " + error, false;
  if (status != 0) {
    std::string why;
    recvBlob(fd, why, deadline, "error", error);
    return error = "rendezvous failed at rank 0: " + why, false;
  }
  return s.connected = true;
}

bool Rendezvous::allGather(const std::string& mine, std::vector<std::string>& all, std::string& error) {
  Impl& s = *impl_;
  all.assign(s.world, std::string());
  if (!s.connected) return error = "rendezvous: not connected", false;
  all[s.rank] = mine;
  if (s.world == 1) return true;
  const auto deadline = s.deadline();
  const std::string me = "rendezvous at " + s.where + " (rank " + std::to_string(s.rank) + ")";
  if (s.rank == 0) {
    for (int r = 1; r < s.world; r++)
      if (!recvBlob(s.peers[r].get(), all[r], deadline, "gathering from rank " + std::to_string(r), error)) {
        error = me + ": " + error;
        s.broadcastError(error);
        return false;
      }
    for (int r = 1; r < s.world; r++) {
      const int fd = s.peers[r].get();
      const unsigned char ok = 0;
      if (!sendAll(fd, &ok, 1, deadline, "to rank " + std::to_string(r), error) || !sendU32(fd, uint32_t(s.world), deadline, "to rank " + std::to_string(r), error))
        return error = me + ": " + error, false;
      for (const std::string& b : all)
        if (!sendBlob(fd, b, deadline, "to rank " + std::to_string(r), error)) return error = me + ": " + error, false;
    }
    return true;
  }
  const int fd = s.server.get();
  if (!sendBlob(fd, mine, deadline, "sending to rank 0", error)) return error = me + ": " + error, false;
  unsigned char status = 1;
  if (!recvAll(fd, &status, 1, deadline, "waiting for rank 0", error)) return error = me + ": " + error, false;
  if (status != 0) {
    std::string why;
    recvBlob(fd, why, deadline, "error", error);
    return error = "rendezvous failed at rank 0: " + why, false;
  }
  uint32_t n = 0;
  if (!recvU32(fd, n, deadline, "from rank 0", error)) return error = me + ": " + error, false;
  if (int(n) != s.world) return error = me + ": rank 0 sent " + std::to_string(n) + " payloads for a world of " + std::to_string(s.world), false;
  for (int r = 0; r < s.world; r++)
    if (!recvBlob(fd, all[r], deadline, "from rank 0", error)) return error = me + ": " + error, false;
  return true;
}

bool Rendezvous::barrier(std::string& error) {
  std::vector<std::string> ignored;
  return allGather(std::string(), ignored, error);
}

}  // namespace boot
}  // namespace fsmoe

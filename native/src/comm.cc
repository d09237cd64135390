// The in-process communicator (comm.h).
#include "comm.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace fsmoe {

void Failure::fail(const std::string& message) {
  std::lock_guard<std::mutex> lock(m_);
  if (!failed_.load(std::memory_order_relaxed)) {
    message_ = message;
    failed_.store(true, std::memory_order_release);
  }
}

std::string Failure::message() const {
  std::lock_guard<std::mutex> lock(m_);
  return message_;
}

std::string Communicator::membersText() const {
  std::string s = "{";
  for (std::size_t i = 0; i < members_.size(); i++) s += (i ? ", " : "") + std::to_string(members_[i]);
  return s + "}";
}

bool Communicator::rendezvous(int member, CollectiveCall* post, const std::string& who, int64_t timeoutMs, Failure& failure) {
  std::unique_lock<std::mutex> lock(m_);
  if (broken_) return false;
  const uint64_t gen = generation_;
  if (post) {
    posts_[member].op = post->op;
    posts_[member].kind = post->kind;
    posts_[member].in = post->in;
    posts_[member].out = post->out;
    posts_[member].inElems = post->inElems;
    posts_[member].outElems = post->outElems;
    posts_[member].ranges = post->ranges;
    posts_[member].max = post->max;
    // The last to arrive checks that every member posted the same collective.
    if (arrived_ + 1 == int(members_.size())) {
      mismatch_.clear();
      const CollectiveCall& a = posts_[0];
      for (std::size_t p = 1; p < posts_.size() && mismatch_.empty(); p++) {
        const CollectiveCall& b = posts_[p];
        if (a.op != b.op || a.kind != b.kind || a.inElems != b.inElems || a.outElems != b.outElems || a.ranges.size() != b.ranges.size() || a.max != b.max) {
          mismatch_ = "collective mismatch in group " + group_ + " " + membersText() + ": rank " + std::to_string(members_[0]) + " issued op " + std::to_string(a.op) + " (" + kindName(a.kind) + ") while rank " +
                      std::to_string(members_[p]) + " issued op " + std::to_string(b.op) + " (" + kindName(b.kind) + ")";
          break;
        }
        for (std::size_t r = 0; r < a.ranges.size() && mismatch_.empty(); r++)
          if (a.ranges[r].second != b.ranges[r].second) mismatch_ = "collective mismatch in group " + group_ + ": all-reduce ranges differ between ranks";
      }
    }
  }
  here_[member] = 1;
  if (++arrived_ == int(members_.size())) {
    arrived_ = 0;
    std::fill(here_.begin(), here_.end(), 0);
    generation_++;
    cv_.notify_all();
  } else {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
    while (generation_ == gen) {
      if (failure.failed() || broken_) {
        broken_ = true;
        return false;
      }
      if (Clock::now() >= deadline) {
        std::string missing;
        for (std::size_t p = 0; p < members_.size(); p++)
          if (!here_[p]) missing += (missing.empty() ? "" : ", ") + std::to_string(members_[p]);
        failure.fail(who + " timed out after " + std::to_string(timeoutMs) + " ms waiting in group " + group_ + " " + membersText() + " for rank" + (missing.find(',') != std::string::npos ? "s " : " ") + missing);
        broken_ = true;  // nobody completes this rendezvous any more
        return false;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(5));
    }
  }
  if (!mismatch_.empty()) {
    failure.fail(who + ": " + mismatch_);
    broken_ = true;
    return false;
  }
  return !broken_;
}

bool Communicator::run(int q, CollectiveCall& c, const std::string& who, int64_t timeoutMs, Failure& failure) {
  const int64_t P = int64_t(members_.size());
  if (P == 1) {
    c.arrived = Clock::now();
    if (c.kind != OpKind::AllReduce && c.out != c.in) std::memcpy(c.out, c.in, sizeof(float) * c.outElems);
    return true;
  }
  if (!rendezvous(q, &c, who, timeoutMs, failure)) return false;
  c.arrived = Clock::now();
  switch (c.kind) {
    case OpKind::AllToAll: {
      const int64_t block = c.inElems / P;
      for (int64_t p = 0; p < P; p++) std::memcpy(c.out + p * block, posts_[p].in + q * block, sizeof(float) * block);
      break;
    }
    case OpKind::AllGather:
      for (int64_t p = 0; p < P; p++) std::memcpy(c.out + p * c.inElems, posts_[p].in, sizeof(float) * c.inElems);
      break;
    case OpKind::ReduceScatter: {
      const int64_t n = c.outElems;
      for (int64_t e = 0; e < n; e++) {
        float s = 0;
        for (int64_t p = 0; p < P; p++) s += posts_[p].in[q * n + e];
        c.out[e] = s;
      }
      break;
    }
    case OpKind::AllReduce: {
      int64_t total = 0;
      for (auto& r : c.ranges) total += r.second;
      c.scratch.assign(total, c.max ? -INFINITY : 0.0f);
      int64_t at = 0;
      for (std::size_t r = 0; r < c.ranges.size(); r++) {
        const int64_t n = c.ranges[r].second;
        for (int64_t p = 0; p < P; p++) {
          const float* src = posts_[p].ranges[r].first;
          if (c.max)
            for (int64_t e = 0; e < n; e++) c.scratch[at + e] = std::max(c.scratch[at + e], src[e]);
          else
            for (int64_t e = 0; e < n; e++) c.scratch[at + e] += src[e];
        }
        at += n;
      }
      break;
    }
    default: break;
  }
  // Nobody may change a buffer a peer still reads.
  if (!rendezvous(q, nullptr, who, timeoutMs, failure)) return false;
  if (c.kind == OpKind::AllReduce) {
    int64_t at = 0;
    for (auto& r : c.ranges) {
      std::memcpy(r.first, c.scratch.data() + at, sizeof(float) * r.second);
      at += r.second;
    }
  }
  return true;
}

}  // namespace fsmoe

// fsmoe-tensors/1: the tensors, routing decisions and loss of every rank of a run, as one file
// (written by scripts/gpu-prepare.ts from the addon's host reference, and by fsmoe-replay):
//
//   bytes 0–7    "FSMOETNS"
//   bytes 8–11   header length H (uint32, little-endian)
//   bytes 12…    the header, JSON: {"format":"fsmoe-tensors/1","ranks":[{"rank":0,"loss":…,"lossScale":…,
//                "tensors":[{"name":"out.mb0","offset":0,"length":1024}],"ints":[{"name":"route.L0.mb0","offset":4096,"length":64}]}]}
//   then the data: little-endian float32 (tensors) and int32 (ints), at byte `offset` from the
//   first byte after the header, `length` elements each.
//
// Comparison follows runtime/replay/compare.ts: per tensor ‖x − ref‖ / ‖ref‖, routing decisions
// compared pair by pair, the loss judged against Σ |y ⊙ cotangent|.
#pragma once
#include <string>
#include <vector>

#include "../src/executor.h"

namespace fsmoe {
namespace tensors {

/** Write `ranks` (with their plan rank numbers) to `path`. */
bool write(const std::string& path, const std::vector<RankResult>& ranks, const std::vector<int>& rankIds, std::string& error);
/** Read a file; `rankIds` gets the plan rank of each entry. */
bool read(const std::string& path, std::vector<RankResult>& ranks, std::vector<int>& rankIds, std::string& error);

struct TensorCheck {
  int rank;
  std::string name;
  std::size_t elements;
  double relError;
  bool ok;
};
struct RoutingCheck {
  int rank;
  std::string name;
  std::size_t decisions, mismatches;
};
struct Comparison {
  bool ok = false;
  double tolerance = 0;
  std::vector<TensorCheck> tensors;
  std::vector<RoutingCheck> routing;
  double loss = 0, refLoss = 0, lossRelError = 0;
  std::vector<std::string> missing;
  double maxRelError = 0;
  std::size_t routingMismatches = 0, decisions = 0;
};

double relativeError(const std::vector<float>& x, const std::vector<float>& ref);

/** Compare the ranks a run reported (plan ranks `ids`) with the reference's same ranks. */
Comparison compare(const std::vector<RankResult>& got, const std::vector<int>& ids, const std::vector<RankResult>& ref, const std::vector<int>& refIds, double tolerance);

}  // namespace tensors
}  // namespace fsmoe

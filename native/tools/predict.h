// The GPU check's profile (ARCHITECTURE.md, "Profiling"): time every op of a sweep of plans on
// the real backend, fit t = α + β·n per op class by least squares (n: MACs for GEMM-like ops,
// elements for the others, bytes when a plan gives neither), and predict each plan's iteration
// with a discrete-event replay of its streams and waits using the fitted times; then compare the
// prediction with the measured iteration. The fits of the classes fsmoec's cost model knows are
// also written as an fsmoe-profile/1 file that a cluster's `profile` field can name.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "../src/plan.h"

namespace fsmoe {
namespace predict {

/** Per op of a plan.json: its size fields (the native loader does not keep them). */
struct OpSize {
  double elements = 0, macs = 0, bytes = 0;
  std::string group;
};
bool opSizes(const std::string& planText, std::vector<OpSize>& out, std::string& error);

/** One op class: kind and direction (and GEMM count for experts). */
std::string classOf(const Plan& p, const Op& op);
/** The size an op's class is fitted against. */
double sizeOf(const Op& op, const OpSize& s);

struct Fit {
  double alphaUs = 0, betaUs = 0, r2 = 1;
  int samples = 0;
};
/** Least squares with α, β ≥ 0 (runtime/replay/profile.ts fitLine). */
Fit fitLine(const std::vector<std::pair<double, double>>& points);

struct Sample {
  std::string cls;
  double n, us;
};
std::vector<Sample> samplesOf(const Plan& p, const std::vector<OpSize>& sizes, const std::vector<double>& opUs);
std::map<std::string, Fit> fit(const std::vector<Sample>& samples);

/** The iteration's makespan with every op taking its class's fitted time (unknown classes: measured `fallbackUs`, 0 if none). */
double simulate(const Plan& p, const std::vector<OpSize>& sizes, const std::map<std::string, Fit>& fits, const std::vector<double>& fallbackUs);

/**
 * Samples in fsmoec's cost classes (runtime/replay/profile.ts samplesOf): expert → expert_gemm by
 * direction and GEMM count (MACs), gate fwd → dense_gemm (MACs), order and iorder → memory
 * (elements), collectives of groups larger than one rank → their kind and group (elements). `cls`
 * is the entry's JSON fields.
 */
std::vector<Sample> profileSamples(const Plan& p, const std::vector<OpSize>& sizes, const std::vector<double>& opUs);
/** An fsmoe-profile/1 JSON document of the fits of profileSamples' classes. */
std::string profileJson(const std::string& name, const std::string& description, const std::vector<Sample>& samples);

}  // namespace predict
}  // namespace fsmoe

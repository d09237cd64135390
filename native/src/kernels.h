// fp32 host kernels of the MoE layer (SCHEDULING.md §1): router GEMM and routing, Order (capacity
// assignment in token order, scatter into the chunk-major [r, E, C/r, M] buffer), the expert FFN
// on an ESP shard, I-Order, and the backward of each. The executor and the reference call the
// same routing code, so routing decisions are bit-identical.
#pragma once
#include <cstdint>
#include <vector>

#include "plan.h"

namespace fsmoe {

/** Routing of one rank's tokens in one layer and micro-batch; T × k entries, choice-major per token. */
struct Routing {
  std::vector<int32_t> choice;  // the selected expert
  std::vector<int32_t> slot;    // its slot in [0, C), -1 dropped for capacity, -2 not sent (gshard's policy)
  std::vector<float> weight;    // the combine weight
};

/** logits[t, e] = Σ_m x[t, m] · W[m, e], summed in m order for every element (deterministic). */
void routerLogits(const float* x, const float* W, int64_t T, int64_t M, int64_t E, float* logits);

/** Choose experts, weights and slots (capacity C per expert, first choices of all tokens first). */
void route(const Job& j, int layer, int mb, int rank, int64_t C, const float* logits, const float* bias, Routing& out);

/** dlogits from dL/dweight (T × k) through the router function. */
void routeBackward(const Job& j, const float* logits, const float* bias, const Routing& r, const float* dweight, float* dlogits);

/** Row of slot s of expert e in a chunk-major [r, E, C/r, ·] buffer. */
inline int64_t slotRow(int64_t e, int64_t s, int64_t E, int64_t C, int64_t r) {
  const int64_t cr = C / r;
  return ((s / cr) * E + e) * cr + s % cr;
}

void orderForward(const Job& j, int64_t C, int64_t r, const float* x, const Routing& rt, float* out);
void iorderForward(const Job& j, int64_t C, int64_t r, const float* comb, const Routing& rt, float* y);
void iorderBackward(const Job& j, int64_t C, int64_t rf, int64_t rb, const float* dy, const float* combSaved, const Routing& rt, float* gcomb, float* dweight);
void orderBackward(const Job& j, int64_t C, int64_t r, const float* gorder, const Routing& rt, float* gx);
/** DeepSpeed's dense einsum forms of Order, I-Order and their backward (T·E·C·M MACs each). */
void dispatchEinsum(const Job& j, int64_t C, int64_t r, const float* x, const Routing& rt, float* out);
void dispatchEinsumBackward(const Job& j, int64_t C, int64_t r, const float* gorder, const Routing& rt, float* gx);
void combineEinsum(const Job& j, int64_t C, int64_t r, const float* comb, const Routing& rt, float* y);
void combineEinsumBackward(const Job& j, int64_t C, int64_t rf, int64_t rb, const float* dy, const float* combSaved, const Routing& rt, float* gcomb, float* dweight);

/** gx += dlogits · Wᵀ; dW += xᵀ · dlogits. */
void gateBackward(const Job& j, const float* x, const float* W, const float* dlogits, float* gx, float* dW);

/** One expert op: chunk `chunk` of degree r (forward degree rf), one local expert or all (-1). */
struct ExpertArgs {
  const Job* job;
  int64_t C, r, rf, chunk;
  int localExpert;
  const float* weights;  // the rank's shard (model.h ShardLayout)
};
void expertForward(const ExpertArgs& a, const float* in, float* hidden, float* out);
void expertBackward(const ExpertArgs& a, const float* dOut, const float* savedIn, const float* savedHidden, float* dIn, float* dW);

/** Activations and their derivatives. */
float activate(Activation a, float h);
float activateGrad(Activation a, float h);

/** C (m × n) (+)= A (m × k) · B (k × n), row-major. */
void gemmNN(int64_t m, int64_t n, int64_t k, const float* A, const float* B, float* C, bool accumulate);

}  // namespace fsmoe

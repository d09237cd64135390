// fp32 host kernels of the MoE layer (SCHEDULING.md §1): router GEMM and routing, Order (capacity
// assignment in token order, scatter into the chunk-major [r, E, C/r, M] buffer), the expert FFN
// on an ESP shard, I-Order, and the backward of each. The executor and the reference call the
// same routing code, so routing decisions are bit-identical.
#pragma once
#include <cstdint>
#include <vector>

#include "plan.h"

namespace fsmoe {

/**
 * Routing decisions of one rank's tokens in one layer and micro-batch: T × k entries, choice-major
 * per token. In the arena (the plan's `routing` buffer) they are three arrays one after another:
 * the selected experts (int32), their slots (int32: [0, C), -1 dropped for capacity, -2 not sent,
 * gshard's policy) and the combine weights (fp32).
 */
struct RouteView {
  int32_t* choice;
  int32_t* slot;
  float* weight;
};
/** A routing buffer's three arrays. */
inline RouteView routeView(void* base, int64_t entries) {
  int32_t* p = static_cast<int32_t*>(base);
  return {p, p + entries, reinterpret_cast<float*>(p + 2 * entries)};
}
/** Decisions held in vectors (the reference). */
struct Routing {
  std::vector<int32_t> choice, slot;
  std::vector<float> weight;
  void resize(int64_t n) {
    choice.assign(n, -1);
    slot.assign(n, -1);
    weight.assign(n, 0.0f);
  }
  RouteView view() { return {choice.data(), slot.data(), weight.data()}; }
};
/** Decisions read from memory another op wrote: false when an entry is out of range (expert, or slot of capacity C). */
bool routingValid(const Job& j, int64_t C, const RouteView& r);

/** logits[t, e] = Σ_m x[t, m] · W[m, e], summed in m order for every element (deterministic). */
void routerLogits(const float* x, const float* W, int64_t T, int64_t M, int64_t E, float* logits);

/** Choose experts, weights and slots (capacity C per expert, first choices of all tokens first). */
void route(const Job& j, int layer, int mb, int rank, int64_t C, const float* logits, const float* bias, const RouteView& out);

/** dlogits from dL/dweight (T × k) through the router function. */
void routeBackward(const Job& j, const float* logits, const float* bias, const RouteView& r, const float* dweight, float* dlogits);

/** Row of slot s of expert e in a chunk-major [r, E, C/r, ·] buffer. */
inline int64_t slotRow(int64_t e, int64_t s, int64_t E, int64_t C, int64_t r) {
  const int64_t cr = C / r;
  return ((s / cr) * E + e) * cr + s % cr;
}

void orderForward(const Job& j, int64_t C, int64_t r, const float* x, const RouteView& rt, float* out);
void iorderForward(const Job& j, int64_t C, int64_t r, const float* comb, const RouteView& rt, float* y);
void iorderBackward(const Job& j, int64_t C, int64_t rf, int64_t rb, const float* dy, const float* combSaved, const RouteView& rt, float* gcomb, float* dweight);
void orderBackward(const Job& j, int64_t C, int64_t r, const float* gorder, const RouteView& rt, float* gx);
/** DeepSpeed's dense einsum forms of Order, I-Order and their backward (T·E·C·M MACs each). */
void dispatchEinsum(const Job& j, int64_t C, int64_t r, const float* x, const RouteView& rt, float* out);
void dispatchEinsumBackward(const Job& j, int64_t C, int64_t r, const float* gorder, const RouteView& rt, float* gx);
void combineEinsum(const Job& j, int64_t C, int64_t r, const float* comb, const RouteView& rt, float* y);
void combineEinsumBackward(const Job& j, int64_t C, int64_t rf, int64_t rb, const float* dy, const float* combSaved, const RouteView& rt, float* gcomb, float* dweight);

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
/** C (m × n) += Aᵀ · B with A (k × m), B (k × n). */
void gemmTN(int64_t m, int64_t n, int64_t k, const float* A, const float* B, float* C);
/** C (m × n) (+)= A · Bᵀ with A (m × k), B (n × k); `scratch` holds Bᵀ. */
void gemmNT(int64_t m, int64_t n, int64_t k, const float* A, const float* B, float* C, std::vector<float>& scratch, bool accumulate);

}  // namespace fsmoe

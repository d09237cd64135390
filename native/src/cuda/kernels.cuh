// The CUDA kernels of the MoE layer (ARCHITECTURE.md, "Runtime": cuda backend), as host-callable
// launchers: each enqueues its work on `stream` and returns the launch's cudaError_t (never
// synchronizes, so every launcher can be captured into a CUDA graph). They compute what the host
// kernels (../kernels.cc) compute, on the same layouts: routing buffers of three arrays (choice,
// slot, weight), chunk-major [r, E, C/r, M] order buffers, the expert shard layout of ../model.h.
// Where the host adds products one by one, these kernels add in the same order with rounded
// (unfused) float operations, so most results are bit-identical; sums the host does in double are
// reduced in double here in another order (last-bit differences after rounding, at most).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace fsmoe {
namespace gpu {

/** Router kinds, in plan.h's Router order. */
enum RouterKind : int { kSoftmaxTopk = 0, kGshard = 1, kSwitch = 2, kSigmoid = 3 };
/** Activations, in plan.h's Activation order. */
enum ActKind : int { kRelu = 0, kGelu = 1, kSwiglu = 2, kGeglu = 3 };

/** One gate's routing: scores from logits [T, E] into choice/slot/weight [T·k]. */
struct RouteArgs {
  int64_t T = 0;
  int E = 0, k = 0, router = 0, groups = 1, topkGroups = 1, normalize = 1;
  double routeScale = 1.0;
  int64_t C = 0;                 // capacity per expert
  const float* logits = nullptr; // [T, E]
  const float* bias = nullptr;   // [E] (sigmoid) or null
  const double* gshardU = nullptr;  // [T] uniform draws (gshard) or null
  int32_t* choice = nullptr;
  int32_t* slot = nullptr;
  float* weight = nullptr;
};

/** Choose experts, weights and slots (kernels.cc route): scores per token, then capacity in choice-major token order. */
cudaError_t routeForward(const RouteArgs& a, cudaStream_t stream);
/** dlogits [T, E] from dL/dweight [T·k] (kernels.cc routeBackward). */
cudaError_t routeBackward(const RouteArgs& a, const float* dweight, float* dlogits, cudaStream_t stream);

/** Geometry of the order buffers of one layer. */
struct OrderGeom {
  int64_t T = 0, k = 0, M = 0, E = 0, C = 0;
};

/** Order forward: out [E·C, M] in degree r's chunk-major rows; `inv` is scratch of E·C int32. */
cudaError_t orderForward(const OrderGeom& g, int64_t r, const float* x, const int32_t* choice, const int32_t* slot, float* out, int32_t* inv, cudaStream_t stream);
/** Order backward: gx [T, M] = Σ over a token's routed copies of gorder's rows. */
cudaError_t orderBackward(const OrderGeom& g, int64_t r, const float* gorder, const int32_t* choice, const int32_t* slot, float* gx, cudaStream_t stream);
/** I-Order forward: y [T, M] = Σ_c weight · comb row. */
cudaError_t iorderForward(const OrderGeom& g, int64_t r, const float* comb, const int32_t* choice, const int32_t* slot, const float* weight, float* y, cudaStream_t stream);
/** I-Order backward: gcomb (degree rb rows) = weight · dy, dweight = dy · saved comb row (degree rf). */
cudaError_t iorderBackward(const OrderGeom& g, int64_t rf, int64_t rb, const float* dy, const float* combSaved, const int32_t* choice, const int32_t* slot,
                           const float* weight, float* gcomb, float* dweight, cudaStream_t stream);
/** DeepSpeed's dense mask [T, E·C]: 1 (or the combine weight) at each routed (token, row of degree r). */
cudaError_t denseMask(const OrderGeom& g, int64_t r, const int32_t* choice, const int32_t* slot, const float* weight, bool useWeights, float* mask, cudaStream_t stream);
/** dweight[i] = dW[t, row of degree rf] for routed entries, 0 otherwise (dW is [T, E·C]). */
cudaError_t gatherDweight(const OrderGeom& g, int64_t rf, const int32_t* choice, const int32_t* slot, const float* dW, float* dweight, cudaStream_t stream);

/** dst[i, :] = src[idx[i], :] for i < n rows of width w. */
cudaError_t gatherRows(float* dst, const float* src, const int64_t* idx, int64_t n, int64_t w, cudaStream_t stream);
/** dst[idx[i], :] = src[i, :]. */
cudaError_t scatterRows(float* dst, const float* src, const int64_t* idx, int64_t n, int64_t w, cudaStream_t stream);

/** A = act(H1) · (H3 when gated), n elements. */
cudaError_t activationForward(int act, bool gated, int64_t n, const float* h1, const float* h3, float* a, cudaStream_t stream);
/** D1 = dA · H3 · act'(H1), D3 = dA · act(H1) (gated); D1 = dA · act'(H1) otherwise. */
cudaError_t activationBackward(int act, bool gated, int64_t n, const float* dA, const float* h1, const float* h3, float* d1, float* d3, cudaStream_t stream);

/** acc[0] += Σ y·c, acc[1] += Σ |y·c| in double (one block, deterministic). */
cudaError_t lossAccumulate(int64_t n, const float* y, const float* c, double* acc, cudaStream_t stream);

/** Round to bfloat16 (nearest even). */
cudaError_t toBf16(int64_t n, const float* src, void* dst, cudaStream_t stream);

/** Up to this many members in a loopback reduction. */
constexpr int kMaxPeers = 64;
struct PeerPtrs {
  const float* p[kMaxPeers];
};
/** out[e] = Σ_p in[p][e] (or max), members in order: the host communicator's arithmetic. */
cudaError_t reducePeers(int P, const PeerPtrs& in, int64_t n, float* out, bool max, cudaStream_t stream);

/**
 * The built-in GEMM (used when cuBLAS is unavailable, or on request): row-major
 * C (m×n) = op(A) · op(B) (+ C when accumulate), batched with element strides; A and B fp32 or
 * bf16 (`bf16`), accumulation and C in fp32. Slow but exact enough for correctness runs.
 */
cudaError_t gemmBuiltin(bool transA, bool transB, int64_t m, int64_t n, int64_t k, const void* A, int64_t lda, int64_t strideA, const void* B, int64_t ldb,
                        int64_t strideB, float* C, int64_t ldc, int64_t strideC, int64_t batch, bool accumulate, bool bf16, cudaStream_t stream);

/** Fill n floats with a uniform value pattern (benchmarks): v[i] = ((i · 2654435761) mod 2^24) / 2^23 − 1, scaled. */
cudaError_t fillPattern(int64_t n, float* v, uint32_t salt, float scale, cudaStream_t stream);

}  // namespace gpu
}  // namespace fsmoe

// The model the plan computes, shared by the executor and the reference path: the
// counter-based generator (Philox4x32-10, keyed by seed, tensor and element index), the
// weights and inputs it makes, and the layouts of a rank's expert shard and of the chunk-major
// MoE buffers ([r, E, C/r, M], spec/compiler.md §5).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "plan.h"

namespace fsmoe {

/** Philox4x32-10 (Salmon et al., SC'11): one block of four 32-bit outputs. */
void philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/** A tensor's id in the generator: FNV-1a of its name. */
uint32_t tensorId(const std::string& name);

/**
 * Element `index` of tensor `tensor` for `seed`, uniform in [-a, a): block index / 4 (counter
 * words: index low, index high, seed high, 0; key: seed low, tensor), lane index % 4, its top 24
 * bits as a fraction.
 */
float uniformAt(uint64_t seed, uint32_t tensor, uint64_t index, float a);
/** The same stream as a fraction in [0, 1). */
double unitAt(uint64_t seed, uint32_t tensor, uint64_t index);
/** dst[i] = uniformAt(seed, tensor, base + i, a). */
void fillUniform(float* dst, std::size_t n, uint64_t seed, uint32_t tensor, uint64_t base, float a);

/** Generated tensors: names and scales. */
struct Tensors {
  static std::string at(int layer, const char* what) { return "L" + std::to_string(layer) + "." + what; }
  static std::string router(int layer) { return "L" + std::to_string(layer) + ".router"; }
  static std::string bias(int layer) { return "L" + std::to_string(layer) + ".expert_bias"; }
  static std::string w1(int layer) { return "L" + std::to_string(layer) + ".w1"; }
  static std::string w2(int layer) { return "L" + std::to_string(layer) + ".w2"; }
  static std::string w3(int layer) { return "L" + std::to_string(layer) + ".w3"; }
  static std::string gshard(int layer) { return "L" + std::to_string(layer) + ".gshard"; }
};

/** Index of token t of `rank` in micro-batch mb, over the whole job (inputs, cotangents, gshard draws). */
inline uint64_t tokenIndex(const Job& j, int mb, int rank, int t) { return (uint64_t(mb) * j.world + rank) * j.tokens + t; }

/** A rank's weights of one MoE layer: the router (M × E, and the expert bias) and its expert shard. */
struct LayerWeights {
  std::vector<float> router;  // [M, E]
  std::vector<float> bias;    // [E] (sigmoid only)
  std::vector<float> experts; // shard layout below
};

/**
 * The expert shard of a rank: for each local expert, W1[:, hs] (M × Hs), W3[:, hs] (M × Hs, gated
 * activations only), W2[hs, :] (Hs × M), with hs = esp_i·Hs … (esp_i + 1)·Hs − 1 of the full
 * expert (expert = ep_i·E_local + local expert). Gradients use the same layout.
 */
struct ShardLayout {
  int64_t M, Hs, G;
  int64_t perExpert() const { return M * Hs * G; }
  int64_t w1(int le) const { return le * perExpert(); }
  int64_t w3(int le) const { return le * perExpert() + M * Hs; }
  int64_t w2(int le) const { return le * perExpert() + (G - 1) * M * Hs; }
};
inline ShardLayout shardLayout(const Job& j) { return {j.hidden, j.shardHidden, j.gemms}; }

/** The weights of layer `layer` as rank `rank` holds them. `fullShard`: the whole expert (esp = 1 view) for the reference. */
void makeLayerWeights(const Job& j, int layer, int rank, LayerWeights& w);
/** The full expert e's weights as the reference uses them: W1 [M, H], W3 [M, H], W2 [H, M]. */
void makeFullExpert(const Job& j, int layer, int e, std::vector<float>& w1, std::vector<float>& w3, std::vector<float>& w2);

/**
 * A model's dense weights of one layer as one rank holds them (tp rank t of the job, or the whole
 * of them for the reference): the norms' weights (γ = 1 + U[-0.1, 0.1)), attention's shard
 * [Wq (M × h·d) | Wk (M × kv·d) | Wv (M × kv·d) | Wo (h·d × M)] for its query heads t·h … and
 * key/value heads t·kv …, and the FFN's — the dense FFN of a non-MoE layer or the shared experts
 * of an MoE layer, taken as one FFN of sharedExperts · sharedHidden units — shard
 * [W1 (M × F) | W3 (M × F, gated activations) | W2 (F × M)] for its units t·F …. Each is a slice
 * of the whole tensor ("L<l>.wq" [M, heads·d], "L<l>.wk", "L<l>.wv" [M, kvHeads·d], "L<l>.wo"
 * [heads·d, M], "L<l>.ffn.w1" or "L<l>.shared.w1" [M, units], … "w2" [units, M]) generated
 * element by element. MLA's shard is laid out as AttentionLayout says; its whole tensors are
 * "L<l>.wdq" [M, qLora], "L<l>.wdkv" [M, kvLora + rope], "L<l>.q_norm" [qLora], "L<l>.kv_norm"
 * [kvLora], "L<l>.wuq" [qLora, heads·(nope + rope)], "L<l>.wukv" [kvLora, heads·(nope + v)] and
 * "L<l>.wo" [heads·v, M]. The gradients the backward writes have the same layouts.
 */
struct DenseWeights {
  std::vector<float> attentionNorm, ffnNorm;
  std::vector<float> attention;
  std::vector<float> ffn;
};
/**
 * Where each matrix of an attention shard starts (elements). MHA / GQA: [Wq | Wk | Wv | Wo].
 * MLA (`mla`, native/README.md "Multi-head latent attention"): first what every tp rank holds
 * whole — Wdq (M × qLora), Wdkv (M × (kvLora + rope)), γq (qLora), γkv (kvLora) — then the
 * rank's heads: Wuq (qLora × h·(nope + rope), per head [nope | rope]), Wukv (kvLora ×
 * h·(nope + v), per head [k nope | v]), Wo (h·v × M).
 */
struct AttentionLayout {
  int64_t M, h, kv, d;
  bool mla = false;
  int64_t qLora = 0, kvLora = 0, nope = 0, rope = 0, v = 0;
  int64_t wq() const { return 0; }
  int64_t wk() const { return M * h * d; }
  int64_t wv() const { return M * h * d + M * kv * d; }
  int64_t wo() const { return mla ? wukv() + kvLora * h * (nope + v) : M * h * d + 2 * M * kv * d; }
  int64_t size() const { return wo() + h * (mla ? v : d) * M; }
  // MLA only.
  int64_t qk() const { return nope + rope; }
  int64_t wdq() const { return 0; }
  int64_t wdkv() const { return M * qLora; }
  int64_t gq() const { return wdkv() + M * (kvLora + rope); }
  int64_t gkv() const { return gq() + qLora; }
  /** The replicated part's size: the head-split matrices start here. */
  int64_t replicated() const { return gkv() + kvLora; }
  int64_t wuq() const { return replicated(); }
  int64_t wukv() const { return wuq() + qLora * h * qk(); }
};
/** A rank's attention shard layout (`whole`: every head, the reference's). */
AttentionLayout attentionLayout(const Job& j, bool whole);
/** The FFN units of a layer on a rank: the dense FFN's or the shared experts' (whole: all of them). */
int64_t ffnUnits(const Job& j, int layer, bool whole);
void makeDenseWeights(const Job& j, int layer, int rank, bool whole, DenseWeights& w);

/** The embedding [V, M] and LM head [V, M] shards of a rank (rows t·V/tp …; whole: every row) and the final norm's weight. */
struct HeadWeights {
  std::vector<float> embedding, lmHead, finalNorm;
};
void makeHeadWeights(const Job& j, int rank, bool whole, HeadWeights& w);

/** RMS norm's ε. */
constexpr float kNormEps = 1e-5f;

/**
 * Token ids of a model job: sequence s (global: (mb · dp + dp_i) · B + b) is the L + 1 ids
 * floor(V · unit("tokens", s · (L + 1) + p)), p = 0 … L; its inputs are the first L, its
 * next-token targets the last L.
 */
int32_t tokenAt(const Job& j, int64_t sequence, int64_t position);
/** The inputs (or targets) of the tensor-parallel group of `rank` in micro-batch mb: N = B · L ids. */
void fillTokens(const Job& j, int mb, int rank, bool targets, int32_t* out);

/** Scale of the generated values of each tensor. */
float routerScale(const Job& j);
float w1Scale(const Job& j);
float w2Scale(const Job& j);
constexpr float kBiasScale = 0.1f;

}  // namespace fsmoe

namespace fsmoe {
/** The layer input x[mb][rank][t][m] and the loss cotangent dL/dy (loss = Σ y ⊙ cotangent), both uniform in [-1, 1). */
constexpr const char* kInputTensor = "input";
constexpr const char* kCotangentTensor = "cotangent";
}  // namespace fsmoe

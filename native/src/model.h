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

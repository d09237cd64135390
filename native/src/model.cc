// The generator and the weights (model.h).
#include "model.h"

#include <cmath>

namespace fsmoe {

void philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    if (round > 0) {
      k0 += W0;
      k1 += W1;
    }
    uint64_t p0 = uint64_t(M0) * c0;
    uint64_t p1 = uint64_t(M1) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = uint32_t(p1);
    uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = uint32_t(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

uint32_t tensorId(const std::string& name) {
  uint32_t h = 2166136261u;
  for (unsigned char c : name) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

static uint32_t word(uint64_t seed, uint32_t tensor, uint64_t index) {
  uint64_t block = index >> 2;
  uint32_t ctr[4] = {uint32_t(block), uint32_t(block >> 32), uint32_t(seed >> 32), 0};
  uint32_t key[2] = {uint32_t(seed), tensor};
  uint32_t out[4];
  philox4x32_10(ctr, key, out);
  return out[index & 3];
}

float uniformAt(uint64_t seed, uint32_t tensor, uint64_t index, float a) {
  float u = float(word(seed, tensor, index) >> 8) * (1.0f / 16777216.0f);  // exact: 24 bits
  return a * (2.0f * u - 1.0f);
}

double unitAt(uint64_t seed, uint32_t tensor, uint64_t index) { return double(word(seed, tensor, index) >> 8) / 16777216.0; }

void fillUniform(float* dst, std::size_t n, uint64_t seed, uint32_t tensor, uint64_t base, float a) {
  for (std::size_t i = 0; i < n; i++) dst[i] = uniformAt(seed, tensor, base + i, a);
}

float routerScale(const Job& j) { return 1.0f / std::sqrt(float(j.hidden)); }
float w1Scale(const Job& j) { return 1.0f / std::sqrt(float(j.hidden)); }
float w2Scale(const Job& j) { return 1.0f / std::sqrt(float(j.expertHidden)); }

void makeLayerWeights(const Job& j, int layer, int rank, LayerWeights& w) {
  const int64_t M = j.hidden, E = j.experts, H = j.expertHidden, Hs = j.shardHidden;
  w.router.resize(M * E);
  fillUniform(w.router.data(), w.router.size(), j.seed, tensorId(Tensors::router(layer)), 0, routerScale(j));
  w.bias.assign(E, 0.0f);
  if (j.router == Router::Sigmoid) fillUniform(w.bias.data(), E, j.seed, tensorId(Tensors::bias(layer)), 0, kBiasScale);
  const ShardLayout s = shardLayout(j);
  w.experts.assign(s.perExpert() * j.localExperts, 0.0f);
  const int espi = espIndex(j, rank), epi = epIndex(j, rank);
  const uint32_t t1 = tensorId(Tensors::w1(layer)), t2 = tensorId(Tensors::w2(layer)), t3 = tensorId(Tensors::w3(layer));
  for (int le = 0; le < j.localExperts; le++) {
    const int64_t e = int64_t(epi) * j.localExperts + le;
    for (int64_t m = 0; m < M; m++)
      for (int64_t h = 0; h < Hs; h++) {
        const uint64_t full = uint64_t((e * M + m) * H + espi * Hs + h);
        w.experts[s.w1(le) + m * Hs + h] = uniformAt(j.seed, t1, full, w1Scale(j));
        if (j.gemms == 3) w.experts[s.w3(le) + m * Hs + h] = uniformAt(j.seed, t3, full, w1Scale(j));
      }
    for (int64_t h = 0; h < Hs; h++)
      for (int64_t m = 0; m < M; m++) {
        const uint64_t full = uint64_t((e * H + espi * Hs + h) * M + m);
        w.experts[s.w2(le) + h * M + m] = uniformAt(j.seed, t2, full, w2Scale(j));
      }
  }
}

void makeFullExpert(const Job& j, int layer, int e, std::vector<float>& w1, std::vector<float>& w3, std::vector<float>& w2) {
  const int64_t M = j.hidden, H = j.expertHidden;
  w1.resize(M * H);
  w2.resize(H * M);
  fillUniform(w1.data(), w1.size(), j.seed, tensorId(Tensors::w1(layer)), uint64_t(e) * M * H, w1Scale(j));
  fillUniform(w2.data(), w2.size(), j.seed, tensorId(Tensors::w2(layer)), uint64_t(e) * H * M, w2Scale(j));
  w3.clear();
  if (j.gemms == 3) {
    w3.resize(M * H);
    fillUniform(w3.data(), w3.size(), j.seed, tensorId(Tensors::w3(layer)), uint64_t(e) * M * H, w1Scale(j));
  }
}

}  // namespace fsmoe

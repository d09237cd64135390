// The generator and the weights (model.h).
#include "model.h"

#include <algorithm>
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

// ── Model jobs ───────────────────────────────────────────────────────────────────────────────

AttentionLayout attentionLayout(const Job& j, bool whole) {
  AttentionLayout a{j.hidden, whole ? j.heads : j.localHeads, whole ? j.kvHeads : j.localKvHeads, j.headDim};
  if (j.mla) {
    a.mla = true;
    a.kv = a.h;
    a.d = 0;
    a.qLora = j.qLoraRank;
    a.kvLora = j.kvLoraRank;
    a.nope = j.qkNopeDim;
    a.rope = j.ropeDim;
    a.v = j.vHeadDim;
  }
  return a;
}

int64_t ffnUnits(const Job& j, int layer, bool whole) {
  if (j.isMoe(layer)) return whole ? int64_t(j.sharedExperts) * j.sharedHidden : j.localShared;
  return whole ? j.ffnHidden : j.localFfn;
}

namespace {

/** A norm's weight of n elements: 1 + U[-0.1, 0.1). */
void fillNorm(const Job& j, const std::string& name, float* g, int64_t n) {
  fillUniform(g, std::size_t(n), j.seed, tensorId(name), 0, 0.1f);
  for (int64_t i = 0; i < n; i++) g[i] += 1.0f;
}

void makeNorm(const Job& j, const std::string& name, std::vector<float>& g) {
  g.resize(j.hidden);
  fillNorm(j, name, g.data(), j.hidden);
}

/**
 * Rows × cols block of the whole row-major tensor `name` [rows, full] from column `first`, into
 * dst (row stride cols), scaled.
 */
void fillColumns(const Job& j, const std::string& name, int64_t rows, int64_t full, int64_t first, int64_t cols, float scale, float* dst) {
  const uint32_t id = tensorId(name);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) dst[r * cols + c] = uniformAt(j.seed, id, uint64_t(r * full + first + c), scale);
}

/** MLA's shard on tp rank t (AttentionLayout; the replicated part whole, heads t·h …). */
void makeMlaWeights(const Job& j, int layer, int t, const AttentionLayout& a, std::vector<float>& w) {
  const int64_t M = a.M, H = j.heads, h = a.h;
  w.assign(a.size(), 0.0f);
  const float sIn = 1.0f / std::sqrt(float(M));
  fillColumns(j, Tensors::at(layer, "wdq"), M, a.qLora, 0, a.qLora, sIn, w.data() + a.wdq());
  fillColumns(j, Tensors::at(layer, "wdkv"), M, a.kvLora + a.rope, 0, a.kvLora + a.rope, sIn, w.data() + a.wdkv());
  fillNorm(j, Tensors::at(layer, "q_norm"), w.data() + a.gq(), a.qLora);
  fillNorm(j, Tensors::at(layer, "kv_norm"), w.data() + a.gkv(), a.kvLora);
  fillColumns(j, Tensors::at(layer, "wuq"), a.qLora, H * a.qk(), t * h * a.qk(), h * a.qk(), 1.0f / std::sqrt(float(a.qLora)), w.data() + a.wuq());
  fillColumns(j, Tensors::at(layer, "wukv"), a.kvLora, H * (a.nope + a.v), t * h * (a.nope + a.v), h * (a.nope + a.v), 1.0f / std::sqrt(float(a.kvLora)), w.data() + a.wukv());
  // Wo's rows t·h·v …: a contiguous block of the whole [H·v, M].
  const uint32_t to = tensorId(Tensors::at(layer, "wo"));
  const float sOut = 1.0f / std::sqrt(float(H * a.v));
  for (int64_t r = 0; r < h * a.v; r++)
    for (int64_t m = 0; m < M; m++) w[a.wo() + r * M + m] = uniformAt(j.seed, to, uint64_t((t * h * a.v + r) * M + m), sOut);
}

/** MHA / GQA's shard on tp rank t: query heads t·h … and key/value heads t·kv … (their groups line up: h / kv = heads / kvHeads). */
void makeMhaWeights(const Job& j, int layer, int t, const AttentionLayout& a, std::vector<float>& attention) {
  const int64_t M = a.M, d = a.d, H = j.heads, KV = j.kvHeads;
  attention.assign(a.size(), 0.0f);
  const float sIn = 1.0f / std::sqrt(float(M)), sOut = 1.0f / std::sqrt(float(H * d));
  const uint32_t tq = tensorId(Tensors::at(layer, "wq")), tk = tensorId(Tensors::at(layer, "wk")), tv = tensorId(Tensors::at(layer, "wv")), to = tensorId(Tensors::at(layer, "wo"));
  for (int64_t m = 0; m < M; m++) {
    for (int64_t c = 0; c < a.h * d; c++) attention[a.wq() + m * a.h * d + c] = uniformAt(j.seed, tq, uint64_t(m * H * d + t * a.h * d + c), sIn);
    for (int64_t c = 0; c < a.kv * d; c++) {
      attention[a.wk() + m * a.kv * d + c] = uniformAt(j.seed, tk, uint64_t(m * KV * d + t * a.kv * d + c), sIn);
      attention[a.wv() + m * a.kv * d + c] = uniformAt(j.seed, tv, uint64_t(m * KV * d + t * a.kv * d + c), sIn);
    }
  }
  for (int64_t r = 0; r < a.h * d; r++)
    for (int64_t m = 0; m < M; m++) attention[a.wo() + r * M + m] = uniformAt(j.seed, to, uint64_t((t * a.h * d + r) * M + m), sOut);
}

}  // namespace

void makeDenseWeights(const Job& j, int layer, int rank, bool whole, DenseWeights& w) {
  const int64_t M = j.hidden;
  const int t = whole ? 0 : tpIndex(j, rank);
  makeNorm(j, Tensors::at(layer, "attention_norm"), w.attentionNorm);
  makeNorm(j, Tensors::at(layer, "ffn_norm"), w.ffnNorm);
  const AttentionLayout a = attentionLayout(j, whole);
  const float sIn = 1.0f / std::sqrt(float(M));
  if (a.mla) makeMlaWeights(j, layer, t, a, w.attention);
  else makeMhaWeights(j, layer, t, a, w.attention);
  // The FFN: the dense FFN, or the shared experts as one FFN; this rank's units t·F ….
  const bool moe = j.isMoe(layer);
  const int64_t F = ffnUnits(j, layer, true), Fl = ffnUnits(j, layer, whole);
  const int G = moe ? j.gemms : j.ffnGemms;
  w.ffn.assign(M * Fl * G, 0.0f);
  if (Fl == 0) return;
  const char* prefix = moe ? "shared." : "ffn.";
  const uint32_t t1 = tensorId(Tensors::at(layer, (std::string(prefix) + "w1").c_str())), t3 = tensorId(Tensors::at(layer, (std::string(prefix) + "w3").c_str())),
                 t2 = tensorId(Tensors::at(layer, (std::string(prefix) + "w2").c_str()));
  const ShardLayout s{M, Fl, G};
  const float s2 = 1.0f / std::sqrt(float(F));
  for (int64_t m = 0; m < M; m++)
    for (int64_t f = 0; f < Fl; f++) {
      const uint64_t i = uint64_t(m * F + t * Fl + f);
      w.ffn[s.w1(0) + m * Fl + f] = uniformAt(j.seed, t1, i, sIn);
      if (G == 3) w.ffn[s.w3(0) + m * Fl + f] = uniformAt(j.seed, t3, i, sIn);
    }
  for (int64_t f = 0; f < Fl; f++)
    for (int64_t m = 0; m < M; m++) w.ffn[s.w2(0) + f * M + m] = uniformAt(j.seed, t2, uint64_t((t * Fl + f) * M + m), s2);
}

void makeHeadWeights(const Job& j, int rank, bool whole, HeadWeights& w) {
  const int64_t M = j.hidden, V = whole ? j.vocab : j.localVocab;
  const int64_t first = whole ? 0 : int64_t(tpIndex(j, rank)) * j.localVocab;
  w.embedding.resize(V * M);
  w.lmHead.resize(V * M);
  fillUniform(w.embedding.data(), w.embedding.size(), j.seed, tensorId("embedding"), uint64_t(first * M), 1.0f);
  fillUniform(w.lmHead.data(), w.lmHead.size(), j.seed, tensorId("lm_head"), uint64_t(first * M), 1.0f / std::sqrt(float(M)));
  makeNorm(j, "final_norm", w.finalNorm);
}

int32_t tokenAt(const Job& j, int64_t sequence, int64_t position) {
  const double u = unitAt(j.seed, tensorId("tokens"), uint64_t(sequence * (j.seqLen + 1) + position));
  return int32_t(std::min<int64_t>(j.vocab - 1, int64_t(u * j.vocab)));
}

void fillTokens(const Job& j, int mb, int rank, bool targets, int32_t* out) {
  for (int64_t b = 0; b < j.microBatch; b++) {
    const int64_t seq = (int64_t(mb) * j.dp + dpIndex(j, rank)) * j.microBatch + b;
    for (int64_t p = 0; p < j.seqLen; p++) out[b * j.seqLen + p] = tokenAt(j, seq, p + (targets ? 1 : 0));
  }
}

}  // namespace fsmoe

// The reference path (executor.h runReference): the plan's model run unscheduled in one
// process — every rank's tokens, routed with the same routing code and the plan's capacities,
// each expert with its full hidden size and double accumulation, no chunks, no collectives —
// reporting the same tensors under the same names as the replay, sliced to each rank's view.
#include <cmath>
#include <cstring>
#include <map>

#include "executor.h"
#include "kernels.h"
#include "model.h"

namespace fsmoe {

namespace {

struct Full {
  std::vector<float> w1, w3, w2;
};

/** Forward state of one routed token copy. */
struct Copy {
  int rank, t, c, expert;
  std::vector<double> h1, h3, o;
};

}  // namespace

RunResult runReference(const Plan& plan) {
  RunResult out;
  try {
    const Job& j = plan.job;
    const int W = j.world;
    const int64_t T = j.tokens, M = j.hidden, E = j.experts, H = j.expertHidden, k = j.topK;
    const bool gated = j.gemms == 3;
    out.ranks.resize(W);
    std::vector<int> layers = j.moeLayers;  // ascending: the stack of MoE layers
    std::map<int, std::vector<double>> dRouter, dW1, dW3, dW2;
    std::map<int, std::vector<Full>> experts;
    std::map<int, LayerWeights> router;
    for (int l : layers) {
      makeLayerWeights(j, l, 0, router[l]);
      auto& ex = experts[l];
      ex.resize(E);
      for (int e = 0; e < E; e++) makeFullExpert(j, l, e, ex[e].w1, ex[e].w3, ex[e].w2);
      dRouter[l].assign(M * E, 0.0);
      dW1[l].assign(E * M * H, 0.0);
      dW2[l].assign(E * H * M, 0.0);
      if (gated) dW3[l].assign(E * M * H, 0.0);
    }
    for (int mb = 0; mb < j.microBatches; mb++) {
      // Inputs of every rank.
      std::vector<std::vector<float>> x(W, std::vector<float>(T * M));
      for (int r = 0; r < W; r++) fillUniform(x[r].data(), T * M, j.seed, tensorId(kInputTensor), tokenIndex(j, mb, r, 0) * M, 1.0f);
      struct LayerState {
        std::vector<std::vector<float>> in, logits;
        std::vector<Routing> routing;
        std::vector<Copy> copies;
      };
      std::vector<LayerState> st(layers.size());
      // Forward through the stack.
      for (std::size_t li = 0; li < layers.size(); li++) {
        const int l = layers[li];
        const int64_t C = plan.layers[l].capacity;
        LayerState& s = st[li];
        s.in = x;
        s.logits.assign(W, std::vector<float>(T * E));
        s.routing.resize(W);
        std::vector<std::vector<float>> y(W, std::vector<float>(T * M, 0.0f));
        for (int r = 0; r < W; r++) {
          routerLogits(x[r].data(), router[l].router.data(), T, M, E, s.logits[r].data());
          route(j, l, mb, r, C, s.logits[r].data(), router[l].bias.data(), s.routing[r]);
          std::vector<double> acc(T * M, 0.0);
          for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < k; c++) {
              const int64_t i = t * k + c;
              if (s.routing[r].slot[i] < 0) continue;
              Copy cp{r, int(t), int(c), s.routing[r].choice[i], {}, {}, {}};
              const Full& f = experts[l][cp.expert];
              const float* xt = x[r].data() + t * M;
              cp.h1.assign(H, 0.0);
              if (gated) cp.h3.assign(H, 0.0);
              for (int64_t m = 0; m < M; m++)
                for (int64_t h = 0; h < H; h++) {
                  cp.h1[h] += double(xt[m]) * f.w1[m * H + h];
                  if (gated) cp.h3[h] += double(xt[m]) * f.w3[m * H + h];
                }
              cp.o.assign(M, 0.0);
              for (int64_t h = 0; h < H; h++) {
                const double a = activate(j.activation, float(cp.h1[h])) * (gated ? cp.h3[h] : 1.0);
                for (int64_t m = 0; m < M; m++) cp.o[m] += a * f.w2[h * M + m];
              }
              const double w = s.routing[r].weight[i];
              for (int64_t m = 0; m < M; m++) acc[t * M + m] += w * cp.o[m];
              s.copies.push_back(std::move(cp));
            }
          for (int64_t i = 0; i < T * M; i++) y[r][i] = float(acc[i]);
          std::vector<int32_t> rr(T * k * 2);
          for (int64_t i = 0; i < T * k; i++) {
            rr[2 * i] = s.routing[r].choice[i];
            rr[2 * i + 1] = s.routing[r].slot[i];
          }
          out.ranks[r].ints.push_back({"route.L" + std::to_string(l) + ".mb" + std::to_string(mb), std::move(rr)});
        }
        x = std::move(y);
      }
      // Loss and the output's gradient.
      std::vector<std::vector<float>> dy(W, std::vector<float>(T * M));
      for (int r = 0; r < W; r++) {
        fillUniform(dy[r].data(), T * M, j.seed, tensorId(kCotangentTensor), tokenIndex(j, mb, r, 0) * M, 1.0f);
        double loss = 0, scale = 0;
        for (int64_t i = 0; i < T * M; i++) {
          loss += double(x[r][i]) * dy[r][i];
          scale += std::fabs(double(x[r][i]) * dy[r][i]);
        }
        out.ranks[r].loss += loss;
        out.ranks[r].lossScale += scale;
        out.ranks[r].tensors.push_back({"out.mb" + std::to_string(mb), x[r]});
      }
      // Backward through the stack.
      for (std::size_t li = layers.size(); li-- > 0;) {
        const int l = layers[li];
        LayerState& s = st[li];
        std::vector<std::vector<double>> dx(W, std::vector<double>(T * M, 0.0));
        std::vector<std::vector<float>> dweight(W, std::vector<float>(T * k, 0.0f));
        for (const Copy& cp : s.copies) {
          const Full& f = experts[l][cp.expert];
          const int64_t i = int64_t(cp.t) * k + cp.c;
          const float* g = dy[cp.rank].data() + int64_t(cp.t) * M;
          const float* xt = s.in[cp.rank].data() + int64_t(cp.t) * M;
          const double w = s.routing[cp.rank].weight[i];
          double dot = 0;
          for (int64_t m = 0; m < M; m++) dot += double(g[m]) * cp.o[m];
          dweight[cp.rank][i] = float(dot);
          std::vector<double> dO(M), dA(H, 0.0);
          for (int64_t m = 0; m < M; m++) dO[m] = w * g[m];
          double* gw2 = dW2[l].data() + int64_t(cp.expert) * H * M;
          for (int64_t h = 0; h < H; h++) {
            const double a = activate(j.activation, float(cp.h1[h])) * (gated ? cp.h3[h] : 1.0);
            double sum = 0;
            for (int64_t m = 0; m < M; m++) {
              sum += dO[m] * f.w2[h * M + m];
              gw2[h * M + m] += a * dO[m];
            }
            dA[h] = sum;
          }
          std::vector<double> d1(H), d3(H);
          for (int64_t h = 0; h < H; h++) {
            const float hv = float(cp.h1[h]);
            if (gated) {
              d1[h] = dA[h] * cp.h3[h] * activateGrad(j.activation, hv);
              d3[h] = dA[h] * activate(j.activation, hv);
            } else {
              d1[h] = dA[h] * activateGrad(j.activation, hv);
            }
          }
          double* gw1 = dW1[l].data() + int64_t(cp.expert) * M * H;
          double* gw3 = gated ? dW3[l].data() + int64_t(cp.expert) * M * H : nullptr;
          double* gx = dx[cp.rank].data() + int64_t(cp.t) * M;
          for (int64_t m = 0; m < M; m++) {
            double sum = 0;
            for (int64_t h = 0; h < H; h++) {
              gw1[m * H + h] += double(xt[m]) * d1[h];
              sum += d1[h] * f.w1[m * H + h];
              if (gated) {
                gw3[m * H + h] += double(xt[m]) * d3[h];
                sum += d3[h] * f.w3[m * H + h];
              }
            }
            gx[m] += sum;
          }
        }
        // Router.
        std::vector<float> dlogits(T * E);
        const float* Wr = router[l].router.data();
        for (int r = 0; r < W; r++) {
          routeBackward(j, s.logits[r].data(), router[l].bias.data(), s.routing[r], dweight[r].data(), dlogits.data());
          for (int64_t t = 0; t < T; t++)
            for (int64_t m = 0; m < M; m++) {
              double sum = 0;
              for (int64_t e = 0; e < E; e++) {
                sum += double(dlogits[t * E + e]) * Wr[m * E + e];
                dRouter[l][m * E + e] += double(s.in[r][t * M + m]) * dlogits[t * E + e];
              }
              dx[r][t * M + m] += sum;
            }
          for (int64_t i = 0; i < T * M; i++) dy[r][i] = float(dx[r][i]);
        }
      }
      for (int r = 0; r < W; r++) out.ranks[r].tensors.push_back({"dx.mb" + std::to_string(mb), dy[r]});
    }
    // Gradients as each rank holds them: the router's summed over every token, its expert shard.
    const ShardLayout lay = shardLayout(j);
    for (int l : layers) {
      for (int r = 0; r < W; r++) {
        std::vector<float> gr(M * E);
        for (int64_t i = 0; i < M * E; i++) gr[i] = float(dRouter[l][i]);
        out.ranks[r].tensors.push_back({"grad.L" + std::to_string(l) + ".router", std::move(gr)});
        std::vector<float> ge(j.expertShardParams());
        const int espi = espIndex(j, r), epi = epIndex(j, r);
        const int64_t Hs = j.shardHidden;
        for (int le = 0; le < j.localExperts; le++) {
          const int64_t e = int64_t(epi) * j.localExperts + le;
          for (int64_t m = 0; m < M; m++)
            for (int64_t h = 0; h < Hs; h++) {
              const int64_t full = (e * M + m) * H + espi * Hs + h;
              ge[lay.w1(le) + m * Hs + h] = float(dW1[l][full]);
              if (gated) ge[lay.w3(le) + m * Hs + h] = float(dW3[l][full]);
            }
          for (int64_t h = 0; h < Hs; h++)
            for (int64_t m = 0; m < M; m++) ge[lay.w2(le) + h * M + m] = float(dW2[l][(e * H + espi * Hs + h) * M + m]);
        }
        out.ranks[r].tensors.push_back({"grad.L" + std::to_string(l) + ".expert", std::move(ge)});
      }
    }
    out.iterationUs.push_back(0);
    out.ok = true;
  } catch (const std::bad_alloc&) {
    out.error = "reference: out of memory";
  } catch (const std::exception& e) {
    out.error = std::string("reference: internal error: ") + e.what();
  }
  return out;
}

}  // namespace fsmoe

// gradcheck: an independent check of the host kernels' backward math (native/README.md,
// "Verification"). `fsmoec run --verify` compares the scheduled replay with the reference path,
// which shares kernels with it (mla.cc serves both), so it proves the schedule, not the
// derivatives. Here every backward is held against central finite differences of its own forward
// on tiny shapes with fixed seeds: the objective is f = Σ out ⊙ c for a fixed cotangent c (the
// loss itself for the cross-entropy, Σ combine weight ⊙ g for the gate), so the backward fed with c
// must give ∂f/∂x for every input x.
// MLA runs in double (its template allows it); the fp32 kernels in float with looser tolerances.
//
// One line per checked block: its name, the number of elements, the largest |analytic − numeric|
// relative to the block's largest |numeric| and the tolerance. Exit 1 when any check fails.
// `--corrupt` moves the largest analytic entry of every block by 10 × the tolerance (relative)
// before comparing, so every check must fail: it shows that each check catches an error that small.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../src/dense.h"
#include "../src/kernels.h"
#include "../src/mla.h"
#include "../src/model.h"

using namespace fsmoe;

namespace {

/** Compares analytic gradients with central differences and prints one line per block. */
class Checker {
 public:
  explicit Checker(bool corrupt) : corrupt_(corrupt) {}

  /**
   * Block `name`: the n parameters at x against `analytic` (∂f/∂x as the backward gave it).
   * Each x[i] moves to x[i] ± h (rounded to P); the difference quotient uses the rounded step.
   */
  template <typename P>
  void block(const std::string& name, P* x, int64_t n, std::vector<double> analytic, const std::function<double()>& f, double h, double tol) {
    std::vector<double> numeric(n);
    for (int64_t i = 0; i < n; i++) {
      const P x0 = x[i], xp = P(double(x0) + h), xm = P(double(x0) - h);
      x[i] = xp;
      const double fp = f();
      x[i] = xm;
      const double fm = f();
      x[i] = x0;
      numeric[i] = (fp - fm) / (double(xp) - double(xm));
    }
    if (corrupt_) {
      int64_t at = 0;
      for (int64_t i = 1; i < n; i++)
        if (std::fabs(analytic[i]) > std::fabs(analytic[at])) at = i;
      analytic[at] += 10 * tol * std::fabs(analytic[at]);
    }
    double scale = 0, worst = 0;
    for (int64_t i = 0; i < n; i++) scale = std::max(scale, std::fabs(numeric[i]));
    for (int64_t i = 0; i < n; i++) worst = std::max(worst, std::fabs(analytic[i] - numeric[i]));
    // A block whose gradient vanishes checks nothing: it fails (rel = inf).
    const double rel = scale > 1e-12 ? worst / scale : INFINITY;
    const bool ok = rel <= tol;  // false for NaN too
    if (!ok) failed_++;
    checks_++;
    std::printf("%-32s n=%-4lld max_rel_err=%.2e tol=%.0e %s\n", name.c_str(), static_cast<long long>(n), rel, tol, ok ? "ok" : "FAIL");
  }

  int failed() const { return failed_; }
  int checks() const { return checks_; }

 private:
  bool corrupt_;
  int failed_ = 0, checks_ = 0;
};

/** n values uniform in [-a, a) from the project's generator (tensor `name`, fixed seed). */
std::vector<float> uniform(const std::string& name, int64_t n, float a) {
  std::vector<float> v(n);
  fillUniform(v.data(), v.size(), 20251130, tensorId("gradcheck." + name), 0, a);
  return v;
}

/** Σ a ⊙ b in double. */
template <typename A, typename B>
double dot(const A* a, const B* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += double(a[i]) * double(b[i]);
  return s;
}

/** The slice [at, at + n) of v as doubles, less `base` (the value an accumulated gradient started from). */
template <typename T>
std::vector<double> slice(const std::vector<T>& v, int64_t at, int64_t n, double base = 0) {
  std::vector<double> s(n);
  for (int64_t i = 0; i < n; i++) s[i] = double(v[at + i]) - base;
  return s;
}

// Written outputs start from this (a backward that leaves one unwritten fails); accumulated
// gradients start from kAccumulated and are compared less it (one that overwrites fails).
constexpr float kGarbage = 1e3f;
constexpr float kAccumulated = 0.5f;

/** A job of B sequences of L tokens (the fields the dense kernels read). */
Job attentionJob(int B, int L) {
  Job j;
  j.microBatch = B;
  j.seqLen = L;
  j.groupTokens = B * L;
  return j;
}

/** The weight blocks of an attention layout: (name, offset, size, generator scale, norm γ). */
struct WeightBlock {
  std::string name;
  int64_t at, size;
  float scale;
  bool gamma;
};
std::vector<WeightBlock> attentionBlocks(const AttentionLayout& a) {
  const float iM = float(1 / std::sqrt(double(a.M)));
  if (!a.mla)
    return {{"dWq", a.wq(), a.wk() - a.wq(), iM, false},
            {"dWk", a.wk(), a.wv() - a.wk(), iM, false},
            {"dWv", a.wv(), a.wo() - a.wv(), iM, false},
            {"dWo", a.wo(), a.size() - a.wo(), float(1 / std::sqrt(double(a.h * a.d))), false}};
  return {{"dWdq", a.wdq(), a.wdkv() - a.wdq(), iM, false},
          {"dWdkv", a.wdkv(), a.gq() - a.wdkv(), iM, false},
          {"dgamma_q", a.gq(), a.gkv() - a.gq(), 0.1f, true},
          {"dgamma_kv", a.gkv(), a.wuq() - a.gkv(), 0.1f, true},
          {"dWuq", a.wuq(), a.wukv() - a.wuq(), float(1 / std::sqrt(double(a.qLora))), false},
          {"dWukv", a.wukv(), a.wo() - a.wukv(), float(1 / std::sqrt(double(a.kvLora))), false},
          {"dWo", a.wo(), a.size() - a.wo(), float(1 / std::sqrt(double(a.h * a.v))), false}};
}

/** Weights of an attention layout as the model makes them (γ = 1 + U[-0.1, 0.1)). */
std::vector<float> attentionWeights(const std::string& name, const AttentionLayout& a) {
  std::vector<float> w(a.size());
  for (const WeightBlock& b : attentionBlocks(a)) {
    const std::vector<float> u = uniform(name + "." + b.name, b.size, b.scale);
    for (int64_t i = 0; i < b.size; i++) w[b.at + i] = (b.gamma ? 1.0f : 0.0f) + u[i];
  }
  return w;
}

/** MLA's layout: M = 8, h = 2 heads, q_lora 6, kv_lora 4, nope 4, rope 2, v 3. */
AttentionLayout mlaLayout() {
  AttentionLayout a{8, 2, 0, 0};
  a.mla = true;
  a.qLora = 6;
  a.kvLora = 4;
  a.nope = 4;
  a.rope = 2;
  a.v = 3;
  return a;
}

/** MLA in double: mlaForward / mlaBackward<double>, dn and every weight block. */
void checkMla(Checker& ck) {
  const Job j = attentionJob(2, 3);
  const AttentionLayout a = mlaLayout();
  const int64_t N = j.groupTokens, M = a.M;
  std::vector<float> w = attentionWeights("mla", a);
  const std::vector<float> nf = uniform("mla.n", N * M, 1), cf = uniform("mla.c", N * M, 1);
  std::vector<double> n(nf.begin(), nf.end()), c(cf.begin(), cf.end()), out(N * M);
  std::vector<double> dn(N * M, kGarbage), dw(a.size(), kAccumulated);
  mlaBackward<double>(j, a, n.data(), w.data(), c.data(), dn.data(), dw.data());
  const auto f = [&] {
    mlaForward<double>(j, a, n.data(), w.data(), out.data(), nullptr);
    return dot(out.data(), c.data(), N * M);
  };
  const double h = 1e-5, tol = 1e-7;
  ck.block("mla.f64.dn", n.data(), N * M, slice(dn, 0, N * M), f, h, tol);
  for (const WeightBlock& b : attentionBlocks(a)) ck.block("mla.f64." + b.name, w.data() + b.at, b.size, slice(dw, b.at, b.size, kAccumulated), f, h, tol);
}

/** fp32 attention through dense.h (MHA, GQA or MLA by the layout), dn and every weight block. */
void checkAttention(Checker& ck, const std::string& name, const AttentionLayout& a, bool savedProbs) {
  const Job j = attentionJob(2, 3);
  const int64_t N = j.groupTokens, M = a.M, L = j.seqLen;
  std::vector<float> w = attentionWeights(name, a);
  std::vector<float> n = uniform(name + ".n", N * M, 1), c = uniform(name + ".c", N * M, 1), out(N * M);
  std::vector<float> probs(j.microBatch * a.h * L * L);
  attentionForward(j, a, n.data(), w.data(), out.data(), probs.data());
  std::vector<float> dn(N * M, kGarbage), dw(a.size(), kAccumulated);
  attentionBackward(j, a, n.data(), w.data(), c.data(), savedProbs ? probs.data() : nullptr, dn.data(), dw.data());
  const auto f = [&] {
    attentionForward(j, a, n.data(), w.data(), out.data(), nullptr);
    return dot(out.data(), c.data(), N * M);
  };
  const double h = 1e-2, tol = 2e-3;
  ck.block(name + ".dn", n.data(), N * M, slice(dn, 0, N * M), f, h, tol);
  for (const WeightBlock& b : attentionBlocks(a)) ck.block(name + "." + b.name, w.data() + b.at, b.size, slice(dw, b.at, b.size, kAccumulated), f, h, tol);
}

const char* activationName(Activation act) {
  switch (act) {
    case Activation::Relu: return "relu";
    case Activation::Gelu: return "gelu";
    case Activation::Swiglu: return "swiglu";
    case Activation::Geglu: return "geglu";
  }
  return "?";
}

bool gated(Activation act) { return act == Activation::Swiglu || act == Activation::Geglu; }

/** The FFN on R = 6 rows, M = 6, F = 5 units: dn, dW1, (dW3), dW2. */
void checkFfn(Checker& ck, Activation act) {
  const std::string name = std::string("ffn.") + activationName(act);
  const int64_t R = 6, M = 6, F = 5;
  const int G = gated(act) ? 3 : 2;
  const ShardLayout s{M, F, G};
  std::vector<float> w(M * F * G);
  const std::vector<float> u1 = uniform(name + ".w13", (G - 1) * M * F, float(1 / std::sqrt(double(M)))), u2 = uniform(name + ".w2", F * M, float(1 / std::sqrt(double(F))));
  std::copy(u1.begin(), u1.end(), w.begin());
  std::copy(u2.begin(), u2.end(), w.begin() + s.w2(0));
  std::vector<float> n = uniform(name + ".n", R * M, 1), c = uniform(name + ".c", R * M, 1), out(R * M);
  std::vector<float> dn(R * M, kGarbage), dw(w.size(), kAccumulated);
  ffnBackward(R, M, F, G, act, n.data(), w.data(), c.data(), dn.data(), dw.data());
  const auto f = [&] {
    ffnForward(R, M, F, G, act, n.data(), w.data(), out.data());
    return dot(out.data(), c.data(), R * M);
  };
  // relu: a step small enough that no pre-activation crosses its kink.
  const double h = act == Activation::Relu ? 1e-3 : 1e-2, tol = 2e-3;
  ck.block(name + ".dn", n.data(), R * M, slice(dn, 0, R * M), f, h, tol);
  ck.block(name + ".dW1", w.data() + s.w1(0), M * F, slice(dw, s.w1(0), M * F, kAccumulated), f, h, tol);
  if (G == 3) ck.block(name + ".dW3", w.data() + s.w3(0), M * F, slice(dw, s.w3(0), M * F, kAccumulated), f, h, tol);
  ck.block(name + ".dW2", w.data() + s.w2(0), F * M, slice(dw, s.w2(0), F * M, kAccumulated), f, h, tol);
}

/** The expert FFN of kernels.h on a shard of 2 local experts, capacity 3 (one chunk): dIn and each expert's matrices. */
void checkExpert(Checker& ck, Activation act) {
  const std::string name = std::string("expert.") + activationName(act);
  Job j;
  j.hidden = 6;
  j.shardHidden = 5;
  j.gemms = gated(act) ? 3 : 2;
  j.localExperts = 2;
  j.activation = act;
  const int64_t C = 3, M = j.hidden, Hs = j.shardHidden, G = j.gemms, rows = j.localExperts * C;
  const ShardLayout s = shardLayout(j);
  std::vector<float> w = uniform(name + ".w", j.expertShardParams(), float(1 / std::sqrt(double(M))));
  std::vector<float> in = uniform(name + ".in", rows * M, 1), c = uniform(name + ".c", rows * M, 1), out(rows * M), hidden((G - 1) * rows * Hs);
  const ExpertArgs args{&j, C, 1, 1, 0, -1, w.data()};
  expertForward(args, in.data(), hidden.data(), out.data());
  std::vector<float> dIn(rows * M, kGarbage), dW(w.size(), kAccumulated);
  expertBackward(args, c.data(), in.data(), hidden.data(), dIn.data(), dW.data());
  std::vector<float> scratch(hidden.size());
  const auto f = [&] {
    expertForward(args, in.data(), scratch.data(), out.data());
    return dot(out.data(), c.data(), rows * M);
  };
  const double h = 1e-2, tol = 2e-3;
  ck.block(name + ".dIn", in.data(), rows * M, slice(dIn, 0, rows * M), f, h, tol);
  for (int le = 0; le < j.localExperts; le++) {
    const std::string e = name + ".e" + std::to_string(le);
    ck.block(e + ".dW1", w.data() + s.w1(le), M * Hs, slice(dW, s.w1(le), M * Hs, kAccumulated), f, h, tol);
    if (G == 3) ck.block(e + ".dW3", w.data() + s.w3(le), M * Hs, slice(dW, s.w3(le), M * Hs, kAccumulated), f, h, tol);
    ck.block(e + ".dW2", w.data() + s.w2(le), Hs * M, slice(dW, s.w2(le), Hs * M, kAccumulated), f, h, tol);
  }
}

/** RMS norm of R = 5 rows of M = 7: ds and dγ. */
void checkRmsNorm(Checker& ck) {
  const int64_t R = 5, M = 7;
  std::vector<float> s = uniform("norm.s", R * M, 1), gamma = uniform("norm.gamma", M, 0.1f), c = uniform("norm.c", R * M, 1), out(R * M);
  for (float& g : gamma) g += 1.0f;
  std::vector<float> ds(R * M, kGarbage), dgamma(M, kAccumulated);
  rmsNormBackward(s.data(), gamma.data(), c.data(), R, M, ds.data(), dgamma.data());
  const auto f = [&] {
    rmsNorm(s.data(), gamma.data(), R, M, out.data());
    return dot(out.data(), c.data(), R * M);
  };
  ck.block("rmsnorm.ds", s.data(), R * M, slice(ds, 0, R * M), f, 1e-2, 2e-3);
  ck.block("rmsnorm.dgamma", gamma.data(), M, slice(dgamma, 0, M, kAccumulated), f, 1e-2, 2e-3);
}

/**
 * The vocabulary-parallel cross-entropy over P = 2 shards of V = 5 logits, N = 4 tokens (targets
 * on both shards): lossMax, lossSumExp and lossValue with the gathers done here, f = Σ loss;
 * lossBackward of each shard against it.
 */
void checkLoss(Checker& ck) {
  const int64_t P = 2, N = 4, V = 5;
  const double scale = 0.25;
  std::vector<float> logits = uniform("loss.logits", P * N * V, 3);  // shard p's [N, V] at p·N·V
  const int32_t targets[N] = {1, 7, 4, 9};
  std::vector<float> maxima(P * N), stats(P * 2 * N), loss(N);
  const auto forward = [&] {
    for (int64_t p = 0; p < P; p++) lossMax(logits.data() + p * N * V, N, V, maxima.data() + p * N);
    for (int64_t p = 0; p < P; p++) lossSumExp(logits.data() + p * N * V, maxima.data(), P, targets, N, V, p * V, stats.data() + p * 2 * N);
    lossValue(maxima.data(), stats.data(), P, N, scale, loss.data());
  };
  forward();
  std::vector<float> grad(P * N * V, kGarbage);
  for (int64_t p = 0; p < P; p++) lossBackward(logits.data() + p * N * V, maxima.data(), stats.data(), P, targets, N, V, p * V, scale, grad.data() + p * N * V);
  const auto f = [&] {
    forward();
    double s = 0;
    for (float l : loss) s += l;
    return s;
  };
  ck.block("loss.dlogits", logits.data(), P * N * V, slice(grad, 0, P * N * V), f, 1e-2, 2e-3);
}

/** One router configuration of the gate check. */
struct RouterCase {
  const char* name;
  Router router;
  int topK;
  bool normalize;
  double routeScale;
  int groups, topkGroups;
};

/**
 * The gate: logits = x · W (T = 5 tokens, M = 6, E = 6 experts), route, f = Σ combine weight ⊙ g;
 * routeBackward then gateBackward against it: dx and dW. The choices are discrete: a step that
 * changed any of them makes f NaN, and the check fails.
 */
void checkRouter(Checker& ck, const RouterCase& rc) {
  const std::string name = std::string("router.") + rc.name;
  Job j;
  j.tokens = 5;
  j.hidden = 6;
  j.experts = 6;
  j.topK = rc.topK;
  j.router = rc.router;
  j.ro.normalize = rc.normalize;
  j.ro.routeScale = rc.routeScale;
  j.ro.groups = rc.groups;
  j.ro.topkGroups = rc.topkGroups;
  j.seed = 7;
  const int64_t T = j.tokens, M = j.hidden, E = j.experts, k = j.topK, C = T * k;
  std::vector<float> x = uniform(name + ".x", T * M, 1), W = uniform(name + ".W", M * E, 1), bias = uniform(name + ".bias", E, kBiasScale);
  const std::vector<float> g = uniform(name + ".g", T * k, 1);
  std::vector<float> logits(T * E);
  Routing base, r;
  base.resize(T * k);
  r.resize(T * k);
  routerLogits(x.data(), W.data(), T, M, E, logits.data());
  route(j, 0, 0, 0, C, logits.data(), bias.data(), base.view());
  std::vector<float> dlogits(T * E), dx(T * M, kAccumulated), dW(M * E, kAccumulated);
  routeBackward(j, logits.data(), bias.data(), base.view(), g.data(), dlogits.data());
  gateBackward(j, x.data(), W.data(), dlogits.data(), dx.data(), dW.data());
  const auto f = [&] {
    routerLogits(x.data(), W.data(), T, M, E, logits.data());
    route(j, 0, 0, 0, C, logits.data(), bias.data(), r.view());
    if (r.choice != base.choice) return double(NAN);
    return dot(r.weight.data(), g.data(), T * k);
  };
  ck.block(name + ".dx", x.data(), T * M, slice(dx, 0, T * M, kAccumulated), f, 1e-2, 2e-3);
  ck.block(name + ".dW", W.data(), M * E, slice(dW, 0, M * E, kAccumulated), f, 1e-2, 2e-3);
}

}  // namespace

int main(int argc, char** argv) {
  bool corrupt = false;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--corrupt") == 0) corrupt = true;
    else {
      std::fprintf(stderr, "usage: gradcheck [--corrupt]\n");
      return 2;
    }
  }
  Checker ck(corrupt);
  checkMla(ck);
  checkAttention(ck, "attention.mha", AttentionLayout{8, 2, 2, 4}, true);
  checkAttention(ck, "attention.gqa", AttentionLayout{8, 4, 2, 3}, false);
  checkAttention(ck, "attention.mla.f32", mlaLayout(), false);
  for (Activation act : {Activation::Relu, Activation::Gelu, Activation::Swiglu, Activation::Geglu}) checkFfn(ck, act);
  for (Activation act : {Activation::Gelu, Activation::Swiglu}) checkExpert(ck, act);
  checkRmsNorm(ck);
  checkLoss(ck);
  const RouterCase routers[] = {{"softmax_topk", Router::SoftmaxTopk, 2, true, 2.5, 1, 1},
                                {"softmax_topk.raw", Router::SoftmaxTopk, 2, false, 1.0, 1, 1},
                                {"softmax_topk.grouped", Router::SoftmaxTopk, 2, true, 1.0, 3, 2},
                                {"gshard", Router::Gshard, 2, true, 1.0, 1, 1},
                                {"switch", Router::Switch, 1, true, 1.0, 1, 1},
                                {"sigmoid.grouped", Router::Sigmoid, 2, true, 2.5, 2, 1}};
  for (const RouterCase& rc : routers) checkRouter(ck, rc);
  std::printf("gradcheck: %d checks, %d failed%s\n", ck.checks(), ck.failed(), corrupt ? " (--corrupt: every check must fail)" : "");
  return ck.failed() ? 1 : 0;
}

// The plan as the runtime sees it (spec/compiler.md §8, compiler/plan/schema.ts), loaded from
// plan.json and validated completely before anything runs: every field, index, size, offset,
// wait and group, and for every op the exact memory its kernel or collective will touch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fsmoe {

/** Op kinds, in the schema's order. */
enum class OpKind : int {
  Embed, LmHead, Loss, Attention, DenseFfn, SharedExpert, Norm,
  Gate, Order, DispatchGemm, Expert, CombineGemm, Iorder,
  AllToAll, AllGather, ReduceScatter, AllReduce, Count
};
const char* kindName(OpKind k);
bool isCollective(OpKind k);

/** Streams: compute, intra-node communication, inter-node communication. */
constexpr int kStreams = 3;
const char* streamName(int s);

enum class Router { SoftmaxTopk, Gshard, Switch, Sigmoid };
enum class Activation { Relu, Gelu, Swiglu, Geglu };

/** The router's own fields (plan.json job.model: normalize, groups, topkGroups, routeScale). */
struct RouterOptions {
  bool normalize = true;
  int groups = 1;
  int topkGroups = 1;
  double routeScale = 1.0;
};

/** A byte range of a buffer; `abs` is its offset in the rank's arena. */
struct Access {
  int buffer = 0;
  int64_t offset = 0;
  int64_t bytes = 0;
  bool write = false;
  int64_t abs = 0;
};

/** One op of the SPMD op list. */
struct Op {
  int id = 0;
  OpKind kind = OpKind::Gate;
  int stream = 0;
  int layer = -1;
  bool bwd = false;
  int mb = 0;
  int chunk = -1;
  std::string role;
  bool recompute = false;
  std::vector<int> waits;
  std::vector<Access> accesses;
  double predictedUs = 0;
  int group = -1;
  /** Expert ops of DeepSpeed's serial style run one local expert each (plan field `expert`); -1: all local experts. */
  int localExpert = -1;
  /** An all-reduce that takes the maximum instead of the sum (plan field `reduce`; this compiler emits none). */
  bool reduceMax = false;
  /** Taps the runtime records for verification. */
  bool outputTap = false;
  bool dxTap = false;
};

struct Group {
  std::string name;
  int size = 1;
  int stride = 1;
};

/** The iteration's inputs: the layer input and the loss cotangent of a job without a vocabulary, token ids and targets of one with. */
enum class Given { None, Input, Cotangent, Tokens, Targets };

struct Buffer {
  std::string name;
  int64_t bytes = 0;
  int64_t offset = 0;
  bool persistent = false;
  /**
   * An input of the iteration: a persistent buffer no op writes, which the runtime fills from the
   * generator before every iteration, by its name `mbK.<what>` (native/README.md, "The model").
   */
  Given given = Given::None;
  int givenMb = 0;
};

/** Capacity and degrees of one MoE layer. */
struct MoeLayer {
  bool present = false;
  int capacity = 0;
  int fwdDegree = 1;
  int bwdDegree = 1;
  /** Arena offsets of the gradients the runtime reports (bytes), -1 when no op writes them. */
  int64_t routerGradAbs = -1;
  int64_t expertGradAbs = -1;
  /** Model jobs: the layer's dense gradients, as the backward ops declare them. */
  int64_t attentionNormAbs = -1, ffnNormAbs = -1, attentionAbs = -1, ffnAbs = -1, sharedAbs = -1;
};

/** Model jobs: where the head's gradients lie in the arena (bytes), as the backward ops declare them. */
struct HeadGrads {
  int64_t embeddingAbs = -1, lmHeadAbs = -1, finalNormAbs = -1;
};

/** The checked job the plan was compiled for, with the sizes every kernel derives from it. */
struct Job {
  std::string name;
  std::string kind;
  int layers = 1, hidden = 1, experts = 1, topK = 1, expertHidden = 1;
  Activation activation = Activation::Gelu;
  Router router = Router::SoftmaxTopk;
  RouterOptions ro;
  int nodes = 1, gpusPerNode = 1, world = 1;
  int microBatch = 1, seqLen = 1, microBatches = 1;
  int tp = 1, esp = 1, ep = 1, edp = 1;
  uint64_t seed = 0;
  std::vector<int> moeLayers;
  // Model jobs (kind = model): a pre-norm transformer (native/README.md, "The model").
  bool model = false;
  int vocab = 0;                            // 0: no vocabulary (not run on the host)
  int heads = 0, kvHeads = 0, headDim = 0;  // attention (mha, gqa)
  bool mla = false;                         // multi-head latent attention: the fields below instead of kvHeads, headDim
  int qLoraRank = 0, kvLoraRank = 0, qkNopeDim = 0, ropeDim = 0, vHeadDim = 0;
  int ffnHidden = 0;                        // the dense FFN of non-MoE layers (0: none)
  Activation ffnActivation = Activation::Gelu;
  int sharedExperts = 0, sharedHidden = 0;  // shared experts of MoE layers
  // Derived.
  int tokens = 1;        // T = B·L / tp
  int groupTokens = 1;   // N = B·L, the tokens of a tensor-parallel group
  int dp = 1;            // world / tp
  int localExperts = 1;  // E / ep
  int shardHidden = 1;   // H / esp
  int gemms = 2;         // 2 or 3
  int localHeads = 0, localKvHeads = 0, localVocab = 0, localFfn = 0, localShared = 0;  // per tp rank
  int ffnGemms = 2;
  bool isMoe(int layer) const;
  int64_t routerParams() const { return int64_t(hidden) * experts + (router == Router::Sigmoid ? experts : 0); }
  int64_t expertShardParams() const { return int64_t(localExperts) * hidden * shardHidden * gemms; }
  /**
   * Per tp rank: attention (Wq, Wk, Wv, Wo shards; for mla the replicated down-projections and
   * lora norms, then the head shards of the up-projections and Wo — AttentionLayout), a dense FFN
   * or the shared experts (W1, W3, W2 shards), the vocabulary shard.
   */
  int64_t attentionParams() const;
  /** MLA: the attention parameters every tp rank holds whole (Wdq, Wdkv, the two lora norms); 0 otherwise. */
  int64_t attentionReplicatedParams() const;
  int64_t ffnParams() const { return int64_t(hidden) * localFfn * ffnGemms; }
  int64_t sharedParams() const { return int64_t(hidden) * localShared * gemms; }
  int64_t vocabParams() const { return int64_t(localVocab) * hidden; }
};

/** The rank's place in its tensor-parallel group and among the data-parallel groups (rank = dp_i · tp + tp_i). */
inline int tpIndex(const Job& j, int rank) { return rank % j.tp; }
inline int dpIndex(const Job& j, int rank) { return rank / j.tp; }

/** Resource limits a plan must respect to run on the host. */
struct Limits {
  int maxWorld = 8;
  int64_t maxArenaBytes = int64_t(1) << 30;   // per rank
  int64_t maxTotalBytes = int64_t(6) << 30;   // all ranks: arenas, weights and saved state
  int64_t maxOps = 1 << 20;
  int64_t maxPlanBytes = int64_t(256) << 20;
};

struct Plan {
  std::string strategy;
  Job job;
  std::vector<Group> groups;
  std::vector<Buffer> buffers;
  int64_t arenaBytes = 0;
  std::vector<MoeLayer> layers;  // indexed by layer
  HeadGrads head;
  std::vector<Op> ops;
  int firstMoe = 0, lastMoe = 0;
  /** Ops per stream, in issue order. */
  std::vector<int> streamOps[kStreams];
};

/** Parse and validate plan.json. On failure returns false and sets `error` to a message naming the field or op. */
bool loadPlan(const char* text, std::size_t size, const Limits& limits, Plan& plan, std::string& error);

/** Rank coordinates (LANGUAGE.md, "Training semantics": rank = (edp_i·ep + ep_i)·esp + esp_i). */
inline int espIndex(const Job& j, int rank) { return rank % j.esp; }
inline int epIndex(const Job& j, int rank) { return (rank / j.esp) % j.ep; }

/** Members of `rank`'s group: base + i·stride; its own index is (rank / stride) % size. */
inline int groupIndex(const Group& g, int rank) { return (rank / g.stride) % g.size; }
inline int groupBase(const Group& g, int rank) { return rank - groupIndex(g, rank) * g.stride; }

}  // namespace fsmoe

// Loading and validating plan.json (plan.h). Nothing here trusts the file: every number is
// range-checked before it is used as an index, size or offset, every op's memory footprint is
// recomputed from the job's shapes and checked against its buffers and the arena, and the first
// problem found is returned as a message that names the field or the op.
#include "plan.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "json.h"

namespace fsmoe {

namespace {

const char* const kKindNames[] = {
    "embed", "lm_head", "loss", "attention", "dense_ffn", "shared_expert", "norm",
    "gate", "order", "dispatch_gemm", "expert", "combine_gemm", "iorder",
    "all_to_all", "all_gather", "reduce_scatter", "all_reduce"};
const char* const kStreamNames[] = {"compute", "intra", "inter"};

constexpr int64_t kMaxInt = int64_t(1) << 53;

/** Reads typed fields of one JSON object, recording the first error with its path. */
class Fields {
 public:
  Fields(const Json* obj, std::string path, std::string& error) : obj_(obj), path_(std::move(path)), error_(error) {
    if (ok() && (!obj_ || !obj_->isObject())) fail(path_ + ": expected an object");
  }
  bool ok() const { return error_.empty(); }
  const Json* get(const char* key, bool required = true) {
    if (!ok()) return nullptr;
    const Json* v = obj_->get(key);
    if (!v && required) fail(path_ + "." + key + ": missing");
    return v;
  }
  int64_t integer(const char* key, int64_t lo, int64_t hi) {
    const Json* v = get(key);
    if (!v) return lo;
    if (!v->isNumber() || !std::isfinite(v->number) || std::floor(v->number) != v->number) {
      fail(path_ + "." + key + ": expected an integer");
      return lo;
    }
    if (v->number < double(lo) || v->number > double(hi)) {
      fail(path_ + "." + key + ": " + num(v->number) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      return lo;
    }
    return int64_t(v->number);
  }
  double number(const char* key, double lo, double hi) {
    const Json* v = get(key);
    if (!v) return lo;
    if (!v->isNumber() || !std::isfinite(v->number) || v->number < lo || v->number > hi) {
      fail(path_ + "." + key + ": expected a number in [" + num(lo) + ", " + num(hi) + "]");
      return lo;
    }
    return v->number;
  }
  std::string string(const char* key, bool required = true) {
    const Json* v = get(key, required);
    if (!v) return {};
    if (!v->isString()) {
      fail(path_ + "." + key + ": expected a string");
      return {};
    }
    return v->string;
  }
  bool boolean(const char* key) {
    const Json* v = get(key);
    if (!v) return false;
    if (!v->isBool()) fail(path_ + "." + key + ": expected true or false");
    return v->boolean;
  }
  const Json* array(const char* key) {
    const Json* v = get(key);
    if (v && !v->isArray()) {
      fail(path_ + "." + key + ": expected an array");
      return nullptr;
    }
    return v;
  }
  void fail(const std::string& m) {
    if (error_.empty()) error_ = m;
  }
  static std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
  }
  const std::string& path() const { return path_; }

 private:
  const Json* obj_;
  std::string path_;
  std::string& error_;
};

int indexOf(const char* const* names, int n, const std::string& s) {
  for (int i = 0; i < n; i++)
    if (s == names[i]) return i;
  return -1;
}

std::string opName(const Op& op) {
  std::string s = "op " + std::to_string(op.id) + " (" + kindName(op.kind) + " '" + op.role + "'";
  if (op.layer >= 0) s += ", layer " + std::to_string(op.layer);
  s += std::string(op.bwd ? " bwd" : " fwd") + ", micro-batch " + std::to_string(op.mb);
  if (op.chunk >= 0) s += ", chunk " + std::to_string(op.chunk);
  return s + ", stream " + streamName(op.stream) + ")";
}

bool parseJob(const Json& root, const Limits& limits, Job& job, std::string& error) {
  Fields j(root.get("job"), "job", error);
  job.name = j.string("name");
  Fields m(j.get("model"), "job.model", error);
  Fields c(j.get("cluster"), "job.cluster", error);
  Fields p(j.get("parallel"), "job.parallel", error);
  if (!j.ok()) return false;
  job.kind = m.string("kind");
  job.layers = int(m.integer("layers", 1, 4096));
  job.hidden = int(m.integer("hidden", 1, 1 << 16));
  job.experts = int(m.integer("experts", 1, 1 << 12));
  job.topK = int(m.integer("topK", 1, 1 << 12));
  job.expertHidden = int(m.integer("expertHidden", 1, 1 << 20));
  std::string act = m.string("activation");
  std::string router = m.string("router");
  job.ro.normalize = m.boolean("normalize");
  job.ro.groups = int(m.integer("groups", 1, 1 << 12));
  job.ro.topkGroups = int(m.integer("topkGroups", 1, 1 << 12));
  job.ro.routeScale = m.number("routeScale", 1e-9, 1e6);
  std::string dtype = m.string("dtype");
  m.number("capacityFactor", 0, 1e9);
  job.nodes = int(c.integer("nodes", 1, 1 << 20));
  job.gpusPerNode = int(c.integer("gpusPerNode", 1, 1 << 20));
  job.microBatch = int(j.integer("microBatch", 1, 1 << 20));
  job.seqLen = int(j.integer("seqLen", 1, 1 << 24));
  job.microBatches = int(j.integer("microBatches", 1, 1 << 12));
  job.tp = int(p.integer("tp", 1, 1 << 20));
  job.esp = int(p.integer("esp", 1, 1 << 20));
  job.ep = int(p.integer("ep", 1, 1 << 20));
  job.edp = int(p.integer("edp", 1, 1 << 20));
  job.seed = uint64_t(j.integer("seed", 0, kMaxInt));
  const Json* moe = m.array("moeLayers");
  job.sharedExperts = int(m.integer("sharedExperts", 0, 1 << 12));
  job.sharedHidden = int(m.integer("sharedHidden", 1, 1 << 20));
  const Json* vocab = m.get("vocab");
  const Json* attention = m.get("attention");
  const Json* ffn = m.get("ffn");
  if (!j.ok() || !m.ok() || !c.ok() || !p.ok()) return false;
  auto activation = [&](const std::string& name, const char* field, Activation& out) {
    if (name == "relu") out = Activation::Relu;
    else if (name == "gelu") out = Activation::Gelu;
    else if (name == "swiglu") out = Activation::Swiglu;
    else if (name == "geglu") out = Activation::Geglu;
    else return error = std::string(field) + ": '" + name + "' is not supported by the host backend", false;
    return true;
  };
  if (vocab->type != Json::Type::Null) job.vocab = int(m.integer("vocab", 1, 1 << 24));
  std::string attentionKind;
  if (attention->type != Json::Type::Null) {
    Fields a(attention, "job.model.attention", error);
    attentionKind = a.string("kind");
    job.heads = int(a.integer("heads", 1, 1 << 12));
    if (attentionKind != "mla") {
      job.kvHeads = int(a.integer("kvHeads", 1, 1 << 12));
      job.headDim = int(a.integer("headDim", 1, 1 << 12));
    } else {
      job.mla = true;
      job.qLoraRank = int(a.integer("qLoraRank", 1, 1 << 16));
      job.kvLoraRank = int(a.integer("kvLoraRank", 1, 1 << 16));
      job.qkNopeDim = int(a.integer("qkNopeDim", 1, 1 << 12));
      job.ropeDim = int(a.integer("ropeDim", 1, 1 << 12));
      job.vHeadDim = int(a.integer("vHeadDim", 1, 1 << 12));
    }
    if (!a.ok()) return false;
  }
  if (ffn->type != Json::Type::Null) {
    Fields f(ffn, "job.model.ffn", error);
    job.ffnHidden = int(f.integer("hidden", 1, 1 << 20));
    std::string fa = f.string("activation");
    if (!f.ok() || !activation(fa, "job.model.ffn.activation", job.ffnActivation)) return false;
  }
  if (!m.ok()) return false;

  if (dtype != "fp32") {
    error = "job.model.dtype: the host backend runs fp32 plans; this plan is " + dtype + " (compile the job with dtype = fp32, or use fsmoec run --shrink)";
    return false;
  }
  if (job.kind != "layer" && job.kind != "model") return error = "job.model.kind: expected 'layer' or 'model'", false;
  if (!activation(act, "job.model.activation", job.activation)) return false;
  if (router == "softmax_topk") job.router = Router::SoftmaxTopk;
  else if (router == "gshard") job.router = Router::Gshard;
  else if (router == "switch") job.router = Router::Switch;
  else if (router == "sigmoid") job.router = Router::Sigmoid;
  else return error = "job.model.router: router " + router + " not supported by the host backend yet (softmax_topk, gshard, switch and sigmoid are)", false;

  int64_t world = int64_t(job.nodes) * job.gpusPerNode;
  if (world > limits.maxWorld)
    return error = "job.cluster: " + std::to_string(world) + " ranks; the host backend runs at most " + std::to_string(limits.maxWorld) + " (use fsmoec run --shrink)", false;
  job.world = int(world);
  if (int64_t(job.esp) * job.ep * job.edp != world) return error = "job.parallel: esp · ep · edp must equal the world size " + std::to_string(world), false;
  if (world % job.tp != 0) return error = "job.parallel.tp must divide the world size", false;
  if (job.experts % job.ep != 0) return error = "job.parallel.ep must divide the experts", false;
  if (job.expertHidden % job.esp != 0) return error = "job.parallel.esp must divide the expert hidden size", false;
  if ((int64_t(job.microBatch) * job.seqLen) % job.tp != 0) return error = "job: micro_batch · seq_len must divide by tp", false;
  int64_t tokens = int64_t(job.microBatch) * job.seqLen / job.tp;
  if (tokens > (1 << 20)) return error = "job: more than 2^20 tokens per rank", false;
  if (job.topK > job.experts) return error = "job.model.topK exceeds the experts", false;
  job.tokens = int(tokens);
  job.localExperts = job.experts / job.ep;
  job.shardHidden = job.expertHidden / job.esp;
  job.gemms = (job.activation == Activation::Swiglu || job.activation == Activation::Geglu) ? 3 : 2;
  if (job.router == Router::Gshard && job.topK != 2) return error = "job.model: the gshard router routes top-2 (topK = " + std::to_string(job.topK) + ")", false;
  job.groupTokens = job.microBatch * job.seqLen;
  job.dp = job.world / job.tp;
  job.ffnGemms = (job.ffnActivation == Activation::Swiglu || job.ffnActivation == Activation::Geglu) ? 3 : 2;
  job.model = job.kind == "model";
  if (job.model) {
    // The dense blocks of a model, split over tp the way the compiler lowers them (spec/compiler.md §2).
    if (job.vocab == 0) return error = "job.model.vocab: the host backend runs models with a vocabulary (embedding, LM head and cross-entropy loss); this one has none", false;
    if (job.vocab % job.tp != 0) return error = "job.model.vocab: " + std::to_string(job.vocab) + " does not split over tp = " + std::to_string(job.tp) + " (the host backend does not pad the vocabulary)", false;
    if (attentionKind.empty()) return error = "job.model.attention: a model job needs attention", false;
    if (job.heads % job.tp != 0) return error = "job.model.attention.heads: " + std::to_string(job.heads) + " heads do not split over tp = " + std::to_string(job.tp), false;
    if (job.mla) {
      if (job.ropeDim % 2 != 0) return error = "job.model.attention.ropeDim: rotary embedding rotates pairs of dimensions; " + std::to_string(job.ropeDim) + " is odd", false;
    } else {
      if (job.heads % job.kvHeads != 0) return error = "job.model.attention.kvHeads must divide the heads", false;
      if (job.kvHeads % job.tp != 0)
        return error = "job.model.attention.kvHeads: " + std::to_string(job.kvHeads) + " key/value heads do not split over tp = " + std::to_string(job.tp) + " (the host backend does not replicate them)", false;
    }
    if (job.ffnHidden % job.tp != 0) return error = "job.model.ffn.hidden must divide by tp", false;
    if ((int64_t(job.sharedExperts) * job.sharedHidden) % job.tp != 0) return error = "job.model: the shared experts' hidden units (sharedExperts · sharedHidden) must divide by tp", false;
    if (job.seqLen > 4096) return error = "job.seqLen: the host backend's attention runs sequences of at most 4096", false;
    job.localHeads = job.heads / job.tp;
    job.localKvHeads = job.kvHeads / job.tp;
    job.localVocab = job.vocab / job.tp;
    job.localFfn = job.ffnHidden / job.tp;
    job.localShared = job.sharedExperts * job.sharedHidden / job.tp;
  }
  std::set<int> seen;
  for (std::size_t i = 0; i < moe->array.size(); i++) {
    const Json& v = moe->array[i];
    if (!v.isNumber() || std::floor(v.number) != v.number || v.number < 0 || v.number >= job.layers)
      return error = "job.model.moeLayers[" + std::to_string(i) + "]: expected a layer index below " + std::to_string(job.layers), false;
    if (!seen.insert(int(v.number)).second) return error = "job.model.moeLayers: duplicate layer", false;
    job.moeLayers.push_back(int(v.number));
  }
  if (job.moeLayers.empty()) return error = "job.model.moeLayers: the host backend needs at least one MoE layer", false;
  if (int64_t(job.moeLayers.size()) * job.microBatches > 65536) return error = "job: more than 65536 MoE blocks (MoE layers × micro-batches)", false;
  return true;
}

bool checkRouter(const Job& job, std::string& error) {
  const RouterOptions& r = job.ro;
  if (r.groups > job.experts || job.experts % r.groups != 0) return error = "job.model.groups: must divide the experts", false;
  if (r.topkGroups > r.groups) return error = "job.model.topkGroups: must be in [1, groups]", false;
  if (int64_t(r.topkGroups) * (job.experts / r.groups) < job.topK) return error = "job.model.topkGroups: the groups a token may use hold fewer than topK experts", false;
  return true;
}

bool expectGroup(const Plan& plan, const char* name, int size, int stride, std::string& error) {
  for (const Group& g : plan.groups)
    if (g.name == name) {
      if (g.size != size || g.stride != stride)
        return error = std::string("groups: '") + name + "' is size " + std::to_string(g.size) + " stride " + std::to_string(g.stride) + "; the job's layout gives size " + std::to_string(size) + " stride " + std::to_string(stride), false;
      return true;
    }
  return true;
}

/** The memory one op's kernel or collective touches, per access: [abs, abs + bytes). */
struct Footprint {
  int access;
  int64_t abs, bytes;
  bool write;
};

class OpChecker {
 public:
  OpChecker(Plan& plan, std::string& error) : p_(plan), j_(plan.job), error_(error) {}

  bool check(Op& op) {
    op_ = &op;
    fp_.clear();
    const bool collective = isCollective(op.kind);
    if (collective) return checkCollective(op) && overlaps();
    switch (op.kind) {
      case OpKind::Gate: return moe(op, -1) && (op.bwd ? gateBwd(op) : gateFwd(op)) && overlaps();
      case OpKind::Order:
      case OpKind::DispatchGemm: return moe(op, -1) && (op.bwd ? orderBwd(op) : orderFwd(op)) && overlaps();
      case OpKind::Iorder:
      case OpKind::CombineGemm: return moe(op, -1) && (op.bwd ? iorderBwd(op) : iorderFwd(op)) && overlaps();
      case OpKind::Expert: return moe(op, 0) && expert(op) && overlaps();
      case OpKind::Attention:
      case OpKind::DenseFfn:
      case OpKind::SharedExpert: return modelOp(op) && dense(op) && overlaps();
      case OpKind::Embed: return modelOp(op) && embed(op) && overlaps();
      case OpKind::LmHead: return modelOp(op) && lmHead(op) && overlaps();
      case OpKind::Loss: return modelOp(op) && loss(op) && overlaps();
      default: return fail(std::string("op kind ") + kindName(op.kind) + " not supported by the host backend yet");
    }
  }

 private:
  Plan& p_;
  const Job& j_;
  std::string& error_;
  Op* op_ = nullptr;
  std::vector<Footprint> fp_;
  int64_t C_ = 0, r_ = 1, rf_ = 1;

  bool fail(const std::string& m) {
    if (error_.empty()) error_ = opName(*op_) + ": " + m;
    return false;
  }
  bool count(std::size_t n) {
    if (op_->accesses.size() != n) return fail("expected " + std::to_string(n) + " buffer accesses, found " + std::to_string(op_->accesses.size()));
    return true;
  }
  /** The op's MoE layer, capacity and degree; chunked ops need chunk in [0, degree). */
  bool moe(const Op& op, int chunked) {
    if (op.layer < 0 || op.layer >= int(p_.layers.size()) || !p_.layers[op.layer].present) return fail("layer " + std::to_string(op.layer) + " is not an MoE layer of the plan");
    const MoeLayer& l = p_.layers[op.layer];
    C_ = l.capacity;
    rf_ = l.fwdDegree;
    r_ = op.bwd ? l.bwdDegree : l.fwdDegree;
    if (chunked < 0 && op.chunk != -1) return fail("chunk must be -1");
    if (chunked >= 0 && (op.chunk < 0 || op.chunk >= r_)) return fail("chunk " + std::to_string(op.chunk) + " outside the degree " + std::to_string(r_));
    if (op.group >= 0) return fail("a kernel has no group");
    return true;
  }
  /** A dense op of a model: unchunked, no group; layer ≥ 0 for the blocks of a layer, -1 for the embedding, LM head and loss. */
  bool modelOp(const Op& op) {
    if (!j_.model) return fail(std::string("op kind ") + kindName(op.kind) + " in a job of kind " + j_.kind + " (only a model has dense blocks)");
    if (op.chunk != -1) return fail("chunk must be -1");
    if (op.group >= 0) return fail("a kernel has no group");
    const bool head = op.kind == OpKind::Embed || op.kind == OpKind::LmHead || op.kind == OpKind::Loss;
    if (head != (op.layer < 0)) return fail(head ? "layer must be -1" : "needs a layer");
    if (op.kind == OpKind::DenseFfn && (j_.isMoe(op.layer) || j_.ffnHidden == 0)) return fail("layer " + std::to_string(op.layer) + " has no dense FFN");
    if (op.kind == OpKind::SharedExpert && (!j_.isMoe(op.layer) || j_.sharedExperts == 0)) return fail("layer " + std::to_string(op.layer) + " has no shared experts");
    return true;
  }
  /** Record where a gradient lies (one place for every op that writes it). */
  bool grad(int64_t& slot, int i, const char* what) {
    const int64_t abs = op_->accesses[i].abs;
    if (slot >= 0 && slot != abs) return fail(std::string("the ") + what + " gradient moved between ops");
    slot = abs;
    return true;
  }
  /** Attention, dense FFN, shared experts: forward reads the gathered stream, writes the partial output (and attention's probabilities). */
  bool dense(Op& op) {
    const int64_t full = int64_t(j_.groupTokens) * M() * 4;
    const int64_t params = op.kind == OpKind::Attention ? j_.attentionParams() : op.kind == OpKind::DenseFfn ? j_.ffnParams() : j_.sharedParams();
    const bool attention = op.kind == OpKind::Attention;
    if (!op.bwd) {
      const bool scores = attention && op.accesses.size() == 3;
      return count(scores ? 3 : 2) && use(0, false, full, true) && use(1, true, full, true) && (!scores || use(2, true, scoresBytes(), true));
    }
    const bool scores = attention && op.accesses.size() == 6;
    const int s = scores ? 1 : 0;
    if (!count(5 + s) || !use(0, false, full, true) || !use(1, false, full, true) || (scores && !use(2, false, scoresBytes(), true)) || !use(2 + s, true, full, true) ||
        !use(3 + s, true, params * 4, true) || !use(4 + s, true, M() * 4, true))
      return false;
    MoeLayer& l = p_.layers[op.layer];
    if (attention) return grad(l.attentionAbs, 3 + s, "attention") && grad(l.attentionNormAbs, 4 + s, "attention norm");
    return grad(op.kind == OpKind::DenseFfn ? l.ffnAbs : l.sharedAbs, 3, kindName(op.kind)) && grad(l.ffnNormAbs, 4, "FFN norm");
  }
  int64_t scoresBytes() const { return int64_t(j_.microBatch) * j_.localHeads * j_.seqLen * j_.seqLen * 4; }
  int64_t logits() const { return int64_t(j_.groupTokens) * j_.localVocab * 4; }
  int64_t stat() const { return int64_t(j_.groupTokens) * 4; }
  bool embed(Op& op) {
    const int64_t full = int64_t(j_.groupTokens) * M() * 4;
    if (!op.bwd) return count(2) && use(0, false, stat(), true) && use(1, true, full, true);
    return count(3) && use(0, false, full, true) && use(1, false, stat(), true) && use(2, true, j_.vocabParams() * 4, true) && grad(p_.head.embeddingAbs, 2, "embedding");
  }
  bool lmHead(Op& op) {
    const int64_t full = int64_t(j_.groupTokens) * M() * 4;
    if (!op.bwd) return count(2) && use(0, false, full, true) && use(1, true, logits(), true);
    return count(5) && use(0, false, logits(), true) && use(1, false, full, true) && use(2, true, full, true) && use(3, true, j_.vocabParams() * 4, true) && use(4, true, M() * 4, true) &&
           grad(p_.head.lmHeadAbs, 3, "LM head") && grad(p_.head.finalNormAbs, 4, "final norm");
  }
  /**
   * The vocabulary-parallel cross-entropy, by role: loss_max, loss_sumexp, loss (forward), loss
   * (backward). The maxima and the statistics are read as gathered over tp (tp blocks).
   */
  bool loss(Op& op) {
    const int64_t P = j_.tp;
    if (op.bwd) {
      if (op.role != "loss") return fail("a loss backward has role 'loss'");
      return count(5) && use(0, false, logits(), true) && use(1, false, P * stat(), true) && use(2, false, 2 * P * stat(), true) && use(3, false, stat(), true) && use(4, true, logits(), true);
    }
    if (op.role == "loss_max") return count(2) && use(0, false, logits(), true) && use(1, true, stat(), true);
    if (op.role == "loss_sumexp") return count(4) && use(0, false, logits(), true) && use(1, false, P * stat(), true) && use(2, false, stat(), true) && use(3, true, 2 * stat(), true);
    if (op.role == "loss") return count(3) && use(0, false, P * stat(), true) && use(1, false, 2 * P * stat(), true) && use(2, true, stat(), true);
    return fail("unknown loss role '" + op.role + "' (loss_max, loss_sumexp, loss)");
  }
  /** Access `i` is read (or written) and the kernel touches `bytes` from its offset. */
  bool use(int i, bool write, int64_t bytes, bool exact = false) {
    const Access& a = op_->accesses[i];
    const Buffer& b = p_.buffers[a.buffer];
    if (a.write != write) return fail("access " + std::to_string(i) + " must be a " + (write ? "write" : "read"));
    if (a.abs % 4 != 0) return fail("access " + std::to_string(i) + " is not 4-byte aligned");
    if (bytes > b.bytes - a.offset)
      return fail("access " + std::to_string(i) + " needs " + std::to_string(bytes) + " bytes of buffer '" + b.name + "' from offset " + std::to_string(a.offset) + ", which holds " + std::to_string(b.bytes));
    if (exact && a.bytes != bytes) return fail("access " + std::to_string(i) + " is " + std::to_string(a.bytes) + " bytes; the shapes give " + std::to_string(bytes));
    fp_.push_back({i, a.abs, bytes, write});
    return true;
  }
  /** A whole buffer of exactly `bytes`, used from its start (chunked buffers). */
  bool whole(int i, bool write, int64_t bytes) {
    const Access& a = op_->accesses[i];
    const Buffer& b = p_.buffers[a.buffer];
    if (a.write != write) return fail("access " + std::to_string(i) + " must be a " + (write ? "write" : "read"));
    if (b.bytes != bytes) return fail("buffer '" + b.name + "' is " + std::to_string(b.bytes) + " bytes; the shapes give " + std::to_string(bytes));
    if ((b.offset) % 4 != 0) return fail("buffer '" + b.name + "' is not 4-byte aligned");
    fp_.push_back({i, b.offset, bytes, write});
    return true;
  }
  bool overlaps() {
    for (std::size_t a = 0; a < fp_.size(); a++)
      for (std::size_t b = a + 1; b < fp_.size(); b++) {
        const Footprint &x = fp_[a], &y = fp_[b];
        if (!x.write && !y.write) continue;
        if (x.abs < y.abs + y.bytes && y.abs < x.abs + x.bytes && x.bytes > 0 && y.bytes > 0)
          return fail("accesses " + std::to_string(x.access) + " and " + std::to_string(y.access) + " overlap in the arena and one is written");
      }
    return true;
  }

  int64_t T() const { return j_.tokens; }
  int64_t M() const { return j_.hidden; }
  int64_t E() const { return j_.experts; }
  int64_t a2a() const { return E() * C_ * M() * 4; }
  int64_t espBuf() const { return a2a() * j_.esp; }
  int64_t hiddenBuf() const { return E() * C_ * int64_t(j_.expertHidden) * (j_.gemms - 1) * 4; }

  int64_t routing() const { return T() * j_.topK * 12; }
  int64_t weights() const { return T() * j_.topK * 4; }

  // Access signatures (native/README.md): reads first, then writes, in this order. In a model the
  // gate also writes the normalized input, I-Order reads the residual it adds to, and the gate
  // backward reads the stream and its gradient and writes the norm's gradient.
  bool gateFwd(Op& op) {
    const bool m = j_.model;
    return count(m ? 4 : 3) && use(0, false, T() * M() * 4, true) && use(1, true, T() * E() * 4, true) && use(2, true, routing(), true) && (!m || use(3, true, T() * M() * 4, true));
  }
  bool orderFwd(Op& op) { return count(3) && use(0, false, T() * M() * 4, true) && use(1, false, routing(), true) && whole(2, true, a2a()); }
  bool iorderFwd(Op& op) {
    const int m = j_.model ? 1 : 0;
    return count(3 + m) && whole(0, false, a2a()) && use(1, false, routing(), true) && (!m || use(2, false, T() * M() * 4, true)) && use(2 + m, true, T() * M() * 4, true);
  }
  bool iorderBwd(Op& op) {
    return count(5) && use(0, false, T() * M() * 4, true) && use(1, false, routing(), true) && whole(2, false, a2a()) && whole(3, true, a2a()) && use(4, true, weights(), true);
  }
  bool orderBwd(Op& op) { return count(3) && whole(0, false, a2a()) && use(1, false, routing(), true) && use(2, true, T() * M() * 4, true); }
  bool gateBwd(Op& op) {
    MoeLayer& l = p_.layers[op.layer];
    const int64_t x = T() * M() * 4;
    if (j_.model)
      return count(9) && use(0, false, T() * E() * 4, true) && use(1, false, routing(), true) && use(2, false, x, true) && use(3, false, x, true) && use(4, false, weights(), true) && use(5, false, x, true) &&
             use(6, true, x, true) && use(7, true, j_.routerParams() * 4, true) && use(8, true, M() * 4, true) && grad(l.routerGradAbs, 7, "router") && grad(l.ffnNormAbs, 8, "FFN norm");
    return count(6) && use(0, false, T() * E() * 4, true) && use(1, false, routing(), true) && use(2, false, x, true) && use(3, false, weights(), true) && use(4, true, x, true) &&
           use(5, true, j_.routerParams() * 4, true) && grad(l.routerGradAbs, 5, "router");
  }
  bool expert(Op& op) {
    const bool esp = j_.esp > 1;
    const int64_t in = esp ? espBuf() : a2a();
    if (!count(op.bwd ? 5 : 3)) return false;
    // Chunked accesses declare exactly their chunk (of this op's degree, or of the forward's for saved buffers).
    auto range = [&](int i, int64_t total, int64_t degree, int64_t first, int64_t last) -> bool {
      const Access& a = op.accesses[i];
      if (total % degree != 0) return fail("buffer of access " + std::to_string(i) + " does not split into " + std::to_string(degree) + " chunks");
      const int64_t cb = total / degree;
      if (a.offset != first * cb || a.bytes != (last - first + 1) * cb)
        return fail("access " + std::to_string(i) + " [" + std::to_string(a.offset) + ", +" + std::to_string(a.bytes) + ") is not chunks " + std::to_string(first) + "…" + std::to_string(last) + " of " + std::to_string(degree));
      return true;
    };
    auto chunk = [&](int i, int64_t total) { return range(i, total, r_, op.chunk, op.chunk); };
    if (!whole(0, false, in) || !chunk(0, in)) return false;
    if (!op.bwd) return whole(1, true, hiddenBuf()) && chunk(1, hiddenBuf()) && whole(2, true, in) && chunk(2, in);
    // Backward: saved forward buffers are read in the forward's chunks that hold this chunk's slots.
    const int64_t perB = C_ / r_, perF = C_ / rf_;
    const int64_t f0 = op.chunk * perB / perF, f1 = ((op.chunk + 1) * perB - 1) / perF;
    if (!whole(1, false, in) || !range(1, in, rf_, f0, f1) || !whole(2, false, hiddenBuf()) || !range(2, hiddenBuf(), rf_, f0, f1) || !whole(3, true, in) || !chunk(3, in)) return false;
    // The expert gradient: the whole shard, or (one local expert) that expert's part of it.
    const Access& g = op.accesses[4];
    const Buffer& gb = p_.buffers[g.buffer];
    const int64_t part = j_.expertShardParams() * 4 / j_.localExperts;
    const int64_t start = g.offset - (op.localExpert >= 0 ? op.localExpert * part : 0);
    if (!g.write) return fail("access 4 must be a write");
    if (g.abs % 4 != 0) return fail("access 4 is not 4-byte aligned");
    if (g.bytes != (op.localExpert >= 0 ? part : j_.expertShardParams() * 4))
      return fail("access 4 is " + std::to_string(g.bytes) + " bytes; " + (op.localExpert >= 0 ? "one local expert's gradient is " + std::to_string(part) : "the expert gradient is " + std::to_string(j_.expertShardParams() * 4)));
    if (start < 0 || start + j_.expertShardParams() * 4 > gb.bytes)
      return fail("the expert gradient (" + std::to_string(j_.expertShardParams() * 4) + " bytes from offset " + std::to_string(start) + ") does not fit buffer '" + gb.name + "' of " + std::to_string(gb.bytes) + " bytes");
    const int64_t abs = gb.offset + start;
    fp_.push_back({4, g.abs, g.bytes, true});
    MoeLayer& l = p_.layers[op.layer];
    if (l.expertGradAbs >= 0 && l.expertGradAbs != abs) return fail("the expert gradient moved between expert backward ops");
    l.expertGradAbs = abs;
    return true;
  }

  bool checkCollective(Op& op) {
    if (op.group < 0) return fail("a collective needs a group");
    const Group& g = p_.groups[op.group];
    const int64_t P = g.size;
    if (op.kind == OpKind::AllReduce) {
      if (op.accesses.empty()) return fail("an all-reduce needs at least one range");
      for (std::size_t i = 0; i < op.accesses.size(); i++) {
        const Access& a = op.accesses[i];
        if (a.bytes % 4 != 0) return fail("access " + std::to_string(i) + " is not a whole number of fp32 elements");
        if (!use(int(i), true, a.bytes, true)) return false;
      }
      return true;
    }
    if (!count(2)) return false;
    const Access &in = op.accesses[0], &out = op.accesses[1];
    if (in.bytes % 4 != 0 || out.bytes % 4 != 0) return fail("ranges are not whole fp32 elements");
    switch (op.kind) {
      case OpKind::AllToAll:
        if (in.bytes != out.bytes || in.bytes % (4 * P) != 0) return fail("an all-to-all over " + std::to_string(P) + " ranks needs equal send and receive sizes that split into " + std::to_string(P) + " blocks");
        break;
      case OpKind::AllGather:
        if (out.bytes != in.bytes * P) return fail("an all-gather over " + std::to_string(P) + " ranks writes " + std::to_string(P) + " times what it reads");
        break;
      case OpKind::ReduceScatter:
        if (in.bytes != out.bytes * P) return fail("a reduce-scatter over " + std::to_string(P) + " ranks reads " + std::to_string(P) + " times what it writes");
        break;
      default: break;
    }
    return use(0, false, in.bytes, true) && use(1, true, out.bytes, true);
  }
};

}  // namespace

bool Job::isMoe(int layer) const { return std::find(moeLayers.begin(), moeLayers.end(), layer) != moeLayers.end(); }

int64_t Job::attentionParams() const {
  const int64_t M = hidden, h = localHeads;
  if (!mla) return M * (h + 2 * localKvHeads) * headDim + h * headDim * M;
  return attentionReplicatedParams() + int64_t(qLoraRank) * h * (qkNopeDim + ropeDim) + int64_t(kvLoraRank) * h * (qkNopeDim + vHeadDim) + h * vHeadDim * M;
}

int64_t Job::attentionReplicatedParams() const {
  if (!mla) return 0;
  return int64_t(hidden) * qLoraRank + int64_t(hidden) * (kvLoraRank + ropeDim) + qLoraRank + kvLoraRank;
}

const char* kindName(OpKind k) {
  int i = int(k);
  return i >= 0 && i < int(OpKind::Count) ? kKindNames[i] : "?";
}
bool isCollective(OpKind k) { return k == OpKind::AllToAll || k == OpKind::AllGather || k == OpKind::ReduceScatter || k == OpKind::AllReduce; }
const char* streamName(int s) { return s >= 0 && s < kStreams ? kStreamNames[s] : "?"; }

bool loadPlan(const char* text, std::size_t size, const Limits& limits, Plan& plan, std::string& error) {
  error.clear();
  plan = Plan{};
  if (size > std::size_t(limits.maxPlanBytes)) return error = "plan: larger than " + std::to_string(limits.maxPlanBytes) + " bytes", false;
  Json root;
  std::string jerr;
  if (!parseJson(text, size, root, jerr)) return error = "plan: malformed JSON: " + jerr, false;
  Fields top(&root, "plan", error);
  std::string format = top.string("format");
  if (!top.ok()) return false;
  if (format != "fsmoe-plan/1") return error = "plan.format: expected 'fsmoe-plan/1', found '" + format + "'", false;
  plan.strategy = top.string("strategy");
  if (!top.ok()) return false;
  if (!parseJob(root, limits, plan.job, error) || !checkRouter(plan.job, error)) return false;
  Job& job = plan.job;

  // Groups.
  const Json* groups = top.array("groups");
  if (!groups) return false;
  for (std::size_t i = 0; i < groups->array.size(); i++) {
    Fields g(&groups->array[i], "groups[" + std::to_string(i) + "]", error);
    Group grp;
    grp.name = g.string("name");
    grp.size = int(g.integer("size", 1, limits.maxWorld));
    grp.stride = int(g.integer("stride", 1, 1 << 20));
    if (!g.ok()) return false;
    if (int64_t(grp.size) * grp.stride > job.world || job.world % (grp.size * grp.stride) != 0)
      return error = g.path() + ": size · stride must divide the world size " + std::to_string(job.world), false;
    for (const Group& o : plan.groups)
      if (o.name == grp.name) return error = g.path() + ": duplicate group '" + grp.name + "'", false;
    plan.groups.push_back(grp);
  }
  if (!expectGroup(plan, "tp", job.tp, 1, error) || !expectGroup(plan, "esp", job.esp, 1, error) || !expectGroup(plan, "ep", job.ep, job.esp, error) ||
      !expectGroup(plan, "edp", job.edp, job.esp * job.ep, error) || !expectGroup(plan, "dp", job.world / job.tp, job.tp, error))
    return false;

  // Memory and buffers.
  Fields mem(root.get("memory"), "memory", error);
  plan.arenaBytes = mem.integer("arenaBytes", 0, kMaxInt);
  if (!mem.ok()) return false;
  if (plan.arenaBytes > limits.maxArenaBytes)
    return error = "memory.arenaBytes: " + std::to_string(plan.arenaBytes) + " bytes per rank exceeds the host limit of " + std::to_string(limits.maxArenaBytes), false;
  const Json* buffers = top.array("buffers");
  if (!buffers) return false;
  for (std::size_t i = 0; i < buffers->array.size(); i++) {
    Fields b(&buffers->array[i], "buffers[" + std::to_string(i) + "]", error);
    Buffer buf;
    int64_t id = b.integer("id", 0, kMaxInt);
    buf.name = b.string("name");
    buf.bytes = b.integer("bytes", 0, kMaxInt);
    buf.offset = b.integer("offset", 0, kMaxInt);
    buf.persistent = b.boolean("persistent");
    if (!b.ok()) return false;
    if (id != int64_t(i)) return error = b.path() + ".id: expected " + std::to_string(i), false;
    if (buf.offset + buf.bytes > plan.arenaBytes)
      return error = b.path() + ": buffer '" + buf.name + "' [" + std::to_string(buf.offset) + ", +" + std::to_string(buf.bytes) + ") lies outside the arena of " + std::to_string(plan.arenaBytes) + " bytes", false;
    plan.buffers.push_back(buf);
  }

  // MoE layers.
  plan.layers.assign(job.layers, MoeLayer{});
  const Json* layers = top.array("layers");
  if (!layers) return false;
  for (std::size_t i = 0; i < layers->array.size(); i++) {
    Fields l(&layers->array[i], "layers[" + std::to_string(i) + "]", error);
    int64_t idx = l.integer("layer", 0, job.layers - 1);
    int64_t cap = l.integer("capacity", 1, 1 << 20);
    Fields f(l.get("forward"), l.path() + ".forward", error);
    Fields bw(l.get("backward"), l.path() + ".backward", error);
    int64_t rf = f.integer("degree", 1, 1 << 10);
    int64_t rb = bw.integer("degree", 1, 1 << 10);
    if (!l.ok() || !f.ok() || !bw.ok()) return false;
    MoeLayer& m = plan.layers[idx];
    if (m.present) return error = l.path() + ": layer " + std::to_string(idx) + " listed twice", false;
    if (std::find(job.moeLayers.begin(), job.moeLayers.end(), int(idx)) == job.moeLayers.end()) return error = l.path() + ": layer " + std::to_string(idx) + " is not an MoE layer", false;
    if (cap % rf != 0 || cap % rb != 0) return error = l.path() + ": capacity " + std::to_string(cap) + " must divide by both degrees (chunk-major buffers)", false;
    m.present = true;
    m.capacity = int(cap);
    m.fwdDegree = int(rf);
    m.bwdDegree = int(rb);
  }
  for (int l : job.moeLayers)
    if (!plan.layers[l].present) return error = "layers: MoE layer " + std::to_string(l) + " has no capacity and degrees", false;
  plan.firstMoe = *std::min_element(job.moeLayers.begin(), job.moeLayers.end());
  plan.lastMoe = *std::max_element(job.moeLayers.begin(), job.moeLayers.end());

  // Memory the run will hold: arenas and weights (every rank's), and the reference's whole model.
  {
    long double total = (long double)plan.arenaBytes * job.world;
    total += (long double)job.world * 4 * job.moeLayers.size() * (job.routerParams() + job.expertShardParams());
    total += (long double)4 * job.moeLayers.size() * job.microBatches * job.world * job.tokens * (long double)job.topK * (job.expertHidden * 2 + job.hidden * 2);
    if (job.model) {
      total += (long double)job.world * 4 * job.layers * (job.attentionParams() + std::max(job.ffnParams(), job.sharedParams()) + 2 * job.hidden);
      total += (long double)job.world * 4 * 2 * job.vocabParams() * 2;
      total += (long double)8 * job.microBatches * job.dp * job.layers * job.groupTokens * (10.0L * job.hidden + 4.0L * job.heads * job.seqLen + job.vocab);
    }
    if (total > (long double)limits.maxTotalBytes)
      return error = "plan: needs about " + std::to_string((long long)(total / (1 << 20))) + " MiB on the host, more than the limit of " + std::to_string(limits.maxTotalBytes >> 20) + " MiB (use fsmoec run --shrink)", false;
  }

  // Ops.
  const Json* ops = top.array("ops");
  if (!ops) return false;
  if (int64_t(ops->array.size()) > limits.maxOps) return error = "ops: more than " + std::to_string(limits.maxOps) + " ops", false;
  for (std::size_t i = 0; i < ops->array.size(); i++) {
    Fields o(&ops->array[i], "ops[" + std::to_string(i) + "]", error);
    Op op;
    int64_t id = o.integer("id", 0, kMaxInt);
    std::string kind = o.string("kind");
    std::string stream = o.string("stream");
    op.layer = int(o.integer("layer", -1, job.layers - 1));
    std::string dir = o.string("dir");
    op.mb = int(o.integer("microBatch", 0, job.microBatches - 1));
    op.chunk = int(o.integer("chunk", -1, 1 << 10));
    op.role = o.string("role");
    op.predictedUs = o.number("predictedUs", 0, 1e15);
    o.number("elements", 0, 1e300);
    o.number("macs", 0, 1e300);
    o.number("bytes", 0, 1e300);
    std::string group = o.string("group", false);
    std::string reduce = o.string("reduce", false);
    const bool hasExpert = o.get("expert", false) != nullptr;
    const int64_t expertIndex = hasExpert ? o.integer("expert", 0, 1 << 12) : -1;
    const Json* waits = o.array("waits");
    const Json* accesses = o.array("accesses");
    if (!o.ok()) return false;
    const std::string& at = o.path();
    if (id != int64_t(i)) return error = at + ".id: expected " + std::to_string(i) + " (ops are listed in issue order)", false;
    op.id = int(id);
    int k = indexOf(kKindNames, int(OpKind::Count), kind);
    if (k < 0) return error = at + ".kind: unknown op kind '" + kind + "'", false;
    op.kind = OpKind(k);
    op.stream = indexOf(kStreamNames, kStreams, stream);
    if (op.stream < 0) return error = at + ".stream: unknown stream '" + stream + "'", false;
    if (dir != "fwd" && dir != "bwd") return error = at + ".dir: expected 'fwd' or 'bwd'", false;
    op.bwd = dir == "bwd";
    op.recompute = op.role.rfind("recompute.", 0) == 0;
    if (!group.empty() || o.get("group", false)) {
      op.group = -1;
      for (std::size_t g = 0; g < plan.groups.size(); g++)
        if (plan.groups[g].name == group) op.group = int(g);
      if (op.group < 0) return error = at + ".group: unknown group '" + group + "'", false;
      if (!isCollective(op.kind)) return error = at + ".group: a " + kind + " kernel has no group", false;
    }
    if (o.get("reduce", false)) {
      if (op.kind != OpKind::AllReduce) return error = at + ".reduce: only an all-reduce has a reduction", false;
      if (reduce != "sum" && reduce != "max") return error = at + ".reduce: expected 'sum' or 'max'", false;
      op.reduceMax = reduce == "max";
    }
    if (hasExpert) {
      if (op.kind != OpKind::Expert) return error = at + ".expert: only an expert op names a local expert", false;
      if (expertIndex >= job.localExperts) return error = at + ".expert: local expert " + std::to_string(expertIndex) + " of " + std::to_string(job.localExperts), false;
      op.localExpert = int(expertIndex);
    }
    std::set<int> seenWaits;
    for (std::size_t w = 0; w < waits->array.size(); w++) {
      const Json& v = waits->array[w];
      if (!v.isNumber() || std::floor(v.number) != v.number || v.number < 0)
        return error = at + ".waits[" + std::to_string(w) + "]: expected an op id", false;
      if (v.number >= double(i))
        return error = at + ".waits[" + std::to_string(w) + "]: waits on op " + Fields::num(v.number) + ", which is not an earlier op (a wait must name an op issued before it)", false;
      if (!seenWaits.insert(int(v.number)).second) return error = at + ".waits: op " + Fields::num(v.number) + " listed twice", false;
      op.waits.push_back(int(v.number));
    }
    for (std::size_t a = 0; a < accesses->array.size(); a++) {
      Fields f(&accesses->array[a], at + ".accesses[" + std::to_string(a) + "]", error);
      Access acc;
      acc.buffer = int(f.integer("buffer", 0, std::max<int64_t>(0, int64_t(plan.buffers.size()) - 1)));
      acc.offset = f.integer("offset", 0, kMaxInt);
      acc.bytes = f.integer("bytes", 0, kMaxInt);
      acc.write = f.boolean("write");
      if (!f.ok()) return false;
      if (plan.buffers.empty()) return error = f.path() + ".buffer: the plan has no buffers", false;
      const Buffer& b = plan.buffers[acc.buffer];
      if (acc.offset + acc.bytes > b.bytes)
        return error = f.path() + ": [" + std::to_string(acc.offset) + ", +" + std::to_string(acc.bytes) + ") lies outside buffer '" + b.name + "' of " + std::to_string(b.bytes) + " bytes", false;
      acc.abs = b.offset + acc.offset;
      op.accesses.push_back(acc);
    }
    plan.ops.push_back(std::move(op));
  }
  if (plan.ops.empty()) return error = "ops: the plan has no ops", false;

  // Every op's footprint from the job's shapes.
  OpChecker checker(plan, error);
  for (Op& op : plan.ops)
    if (!checker.check(op)) return false;

  // Inputs: persistent buffers read and never written, filled by the runtime by their names.
  std::vector<char> written(plan.buffers.size(), 0);
  std::vector<int> firstReader(plan.buffers.size(), -1);
  for (const Op& op : plan.ops)
    for (const Access& a : op.accesses) {
      if (a.write) written[a.buffer] = 1;
      else if (!written[a.buffer] && firstReader[a.buffer] < 0) firstReader[a.buffer] = op.id;
    }
  for (std::size_t b = 0; b < plan.buffers.size(); b++) {
    if (firstReader[b] < 0) continue;
    Buffer& buf = plan.buffers[b];
    const Op& op = plan.ops[firstReader[b]];
    int mb = -1;
    char what[32] = {0};
    if (!written[b] && buf.persistent && std::sscanf(buf.name.c_str(), "mb%d.%31s", &mb, what) == 2 && mb >= 0 && mb < job.microBatches && buf.name == "mb" + std::to_string(mb) + "." + what) {
      const std::string w = what;
      const int64_t n = w == "tokens" || w == "targets" ? int64_t(job.groupTokens) * 4 : int64_t(job.tokens) * job.hidden * 4;
      if (w == "input") buf.given = Given::Input;
      else if (w == "grad_out") buf.given = Given::Cotangent;
      else if (w == "tokens") buf.given = Given::Tokens;
      else if (w == "targets") buf.given = Given::Targets;
      if (buf.given != Given::None) {
        if (buf.bytes != n) return error = "buffer '" + buf.name + "' is " + std::to_string(buf.bytes) + " bytes; the shapes give " + std::to_string(n), false;
        buf.givenMb = mb;
        continue;
      }
    }
    error = opName(op) + ": reads buffer '" + buf.name + "' before any op writes it";
    return false;
  }
  for (Op& op : plan.ops) {
    op.outputTap = (op.kind == OpKind::Iorder || op.kind == OpKind::CombineGemm) && !op.bwd && !op.recompute && op.layer == plan.lastMoe && job.kind == "layer";
    op.dxTap = op.kind == OpKind::Gate && op.bwd && op.layer == plan.firstMoe && job.kind == "layer";
    plan.streamOps[op.stream].push_back(op.id);
  }
  return true;
}

}  // namespace fsmoe

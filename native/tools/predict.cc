// The profile fit and the iteration prediction (predict.h).
#include "predict.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "../src/json.h"

namespace fsmoe {
namespace predict {

bool opSizes(const std::string& planText, std::vector<OpSize>& out, std::string& error) {
  Json root;
  if (!parseJson(planText.data(), planText.size(), root, error)) return false;
  const Json* ops = root.get("ops");
  if (!ops || !ops->isArray()) return error = "plan: no ops", false;
  out.clear();
  for (const Json& o : ops->array) {
    OpSize s;
    if (const Json* v = o.get("elements"); v && v->isNumber()) s.elements = v->number;
    if (const Json* v = o.get("macs"); v && v->isNumber()) s.macs = v->number;
    if (const Json* v = o.get("bytes"); v && v->isNumber()) s.bytes = v->number;
    if (const Json* v = o.get("group"); v && v->isString()) s.group = v->string;
    out.push_back(s);
  }
  return true;
}

std::string classOf(const Plan& p, const Op& op) {
  std::string c = std::string(kindName(op.kind)) + (op.bwd ? ".bwd" : ".fwd");
  if (op.kind == OpKind::Expert) c += ".g" + std::to_string(p.job.gemms);
  if (isCollective(op.kind) && op.group >= 0) c += "@" + p.groups[op.group].name;
  return c;
}

double sizeOf(const Op& op, const OpSize& s) {
  switch (op.kind) {
    case OpKind::Gate:
    case OpKind::Expert:
    case OpKind::DispatchGemm:
    case OpKind::CombineGemm:
      if (s.macs > 0) return s.macs;
      break;
    default: break;
  }
  return s.elements > 0 ? s.elements : s.bytes;
}

Fit fitLine(const std::vector<std::pair<double, double>>& pts) {
  Fit f;
  const double k = double(pts.size());
  f.samples = int(pts.size());
  if (pts.empty()) return f;
  double mn = 0, mt = 0;
  for (auto& p : pts) mn += p.first, mt += p.second;
  mn /= k, mt /= k;
  double sxx = 0, sxy = 0;
  for (auto& p : pts) sxx += (p.first - mn) * (p.first - mn), sxy += (p.first - mn) * (p.second - mt);
  double beta = sxx > 0 ? sxy / sxx : 0, alpha = mt - beta * mn;
  if (beta < 0) {
    beta = 0;
    alpha = mt;
  } else if (alpha < 0) {
    alpha = 0;
    double snn = 0, snt = 0;
    for (auto& p : pts) snn += p.first * p.first, snt += p.first * p.second;
    beta = snn > 0 ? snt / snn : 0;
  }
  double ssTot = 0, ssRes = 0;
  for (auto& p : pts) ssTot += (p.second - mt) * (p.second - mt), ssRes += (p.second - alpha - beta * p.first) * (p.second - alpha - beta * p.first);
  f.alphaUs = alpha;
  f.betaUs = beta;
  f.r2 = ssTot > 0 ? 1 - ssRes / ssTot : 1;
  return f;
}

std::vector<Sample> samplesOf(const Plan& p, const std::vector<OpSize>& sizes, const std::vector<double>& opUs) {
  std::vector<Sample> out;
  for (const Op& op : p.ops)
    if (std::size_t(op.id) < opUs.size() && std::size_t(op.id) < sizes.size()) out.push_back({classOf(p, op), sizeOf(op, sizes[op.id]), opUs[op.id]});
  return out;
}

std::map<std::string, Fit> fit(const std::vector<Sample>& samples) {
  std::map<std::string, std::vector<std::pair<double, double>>> by;
  for (const Sample& s : samples) by[s.cls].push_back({s.n, s.us});
  std::map<std::string, Fit> out;
  for (auto& [cls, pts] : by) out[cls] = fitLine(pts);
  return out;
}

double simulate(const Plan& p, const std::vector<OpSize>& sizes, const std::map<std::string, Fit>& fits, const std::vector<double>& fallbackUs) {
  std::vector<double> end(p.ops.size(), 0);
  double free[kStreams] = {0, 0, 0}, makespan = 0;
  for (const Op& op : p.ops) {
    double start = free[op.stream];
    for (int w : op.waits) start = std::max(start, end[w]);
    double us = std::size_t(op.id) < fallbackUs.size() ? fallbackUs[op.id] : 0;
    auto it = fits.find(classOf(p, op));
    if (it != fits.end() && std::size_t(op.id) < sizes.size()) us = it->second.alphaUs + it->second.betaUs * sizeOf(op, sizes[op.id]);
    end[op.id] = start + us;
    free[op.stream] = end[op.id];
    makespan = std::max(makespan, end[op.id]);
  }
  return makespan;
}

namespace {
std::string num(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.6g", std::isfinite(v) ? v : 0.0);
  return b;
}
}  // namespace

std::vector<Sample> profileSamples(const Plan& p, const std::vector<OpSize>& sizes, const std::vector<double>& opUs) {
  std::vector<Sample> out;
  for (const Op& op : p.ops) {
    if (std::size_t(op.id) >= opUs.size() || std::size_t(op.id) >= sizes.size()) continue;
    const OpSize& s = sizes[op.id];
    const double us = opUs[op.id];
    const std::string dir = op.bwd ? "bwd" : "fwd";
    switch (op.kind) {
      case OpKind::Expert: out.push_back({"\"op\": \"expert_gemm\", \"dir\": \"" + dir + "\", \"gemms\": " + std::to_string(p.job.gemms), s.macs, us}); break;
      case OpKind::Gate:
        if (!op.bwd) out.push_back({"\"op\": \"dense_gemm\"", s.macs, us});
        break;
      case OpKind::Order:
      case OpKind::Iorder: out.push_back({"\"op\": \"memory\"", s.elements, us}); break;
      case OpKind::AllToAll:
      case OpKind::AllGather:
      case OpKind::ReduceScatter:
      case OpKind::AllReduce:
        if (op.group >= 0 && p.groups[op.group].size > 1)
          out.push_back({std::string("\"op\": \"") + kindName(op.kind) + "\", \"group\": \"" + p.groups[op.group].name + "\"", s.elements, us});
        break;
      default: break;
    }
  }
  return out;
}

std::string profileJson(const std::string& name, const std::string& description, const std::vector<Sample>& samples) {
  std::string entries;
  for (const auto& [cls, f] : fit(samples))
    entries += std::string(entries.empty() ? "" : ",\n") + "    {" + cls + ", \"alphaUs\": " + num(std::round(f.alphaUs * 1000) / 1000) + ", \"betaUs\": " + num(f.betaUs) + "}";
  std::string esc;
  for (char c : description) esc += c == '"' ? std::string("\\\"") : std::string(1, c);
  return "{\n  \"format\": \"fsmoe-profile/1\",\n  \"name\": \"" + name + "\",\n  \"description\": \"" + esc + "\",\n  \"entries\": [\n" + entries + "\n  ]\n}\n";
}

}  // namespace predict
}  // namespace fsmoe

// fsmoe-tensors/1 files and the comparison (tensors.h).
#include "tensors.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "../src/json.h"

namespace fsmoe {
namespace tensors {

namespace {

const char kMagic[8] = {'F', 'S', 'M', 'O', 'E', 'T', 'N', 'S'};

std::string jsonString(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += char(c);
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else o += char(c);
  }
  return o + "\"";
}

std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

bool isLittleEndian() {
  const uint32_t one = 1;
  unsigned char c;
  std::memcpy(&c, &one, 1);
  return c == 1;
}

}  // namespace

bool write(const std::string& path, const std::vector<RankResult>& ranks, const std::vector<int>& rankIds, std::string& error) {
  if (!isLittleEndian()) return error = "fsmoe-tensors/1 is little-endian; this machine is not", false;
  std::string header = "{\"format\":\"fsmoe-tensors/1\",\"ranks\":[";
  std::vector<char> data;
  for (std::size_t i = 0; i < ranks.size(); i++) {
    const RankResult& r = ranks[i];
    header += std::string(i ? "," : "") + "{\"rank\":" + std::to_string(rankIds[i]) + ",\"loss\":" + number(r.loss) + ",\"lossScale\":" + number(r.lossScale) + ",\"tensors\":[";
    for (std::size_t t = 0; t < r.tensors.size(); t++) {
      const auto& x = r.tensors[t];
      header += std::string(t ? "," : "") + "{\"name\":" + jsonString(x.name) + ",\"offset\":" + std::to_string(data.size()) + ",\"length\":" + std::to_string(x.data.size()) + "}";
      const char* p = reinterpret_cast<const char*>(x.data.data());
      data.insert(data.end(), p, p + 4 * x.data.size());
    }
    header += "],\"ints\":[";
    for (std::size_t t = 0; t < r.ints.size(); t++) {
      const auto& x = r.ints[t];
      header += std::string(t ? "," : "") + "{\"name\":" + jsonString(x.name) + ",\"offset\":" + std::to_string(data.size()) + ",\"length\":" + std::to_string(x.data.size()) + "}";
      const char* p = reinterpret_cast<const char*>(x.data.data());
      data.insert(data.end(), p, p + 4 * x.data.size());
    }
    header += "]}";
  }
  header += "]}";
  while ((12 + header.size()) % 4 != 0) header += ' ';
  std::ofstream f(path, std::ios::binary);
  if (!f) return error = "cannot write " + path, false;
  const uint32_t h = uint32_t(header.size());
  const unsigned char len[4] = {uint8_t(h), uint8_t(h >> 8), uint8_t(h >> 16), uint8_t(h >> 24)};
  f.write(kMagic, 8);
  f.write(reinterpret_cast<const char*>(len), 4);
  f.write(header.data(), std::streamsize(header.size()));
  f.write(data.data(), std::streamsize(data.size()));
  if (!f) return error = "writing " + path + " failed", false;
  return true;
}

bool read(const std::string& path, std::vector<RankResult>& ranks, std::vector<int>& rankIds, std::string& error) {
  ranks.clear();
  rankIds.clear();
  std::ifstream f(path, std::ios::binary);
  if (!f) return error = "cannot read " + path, false;
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  if (bytes.size() < 12 || std::memcmp(bytes.data(), kMagic, 8) != 0) return error = path + ": not an fsmoe-tensors/1 file (no FSMOETNS magic)", false;
  const unsigned char* u = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t h = std::size_t(u[8]) | std::size_t(u[9]) << 8 | std::size_t(u[10]) << 16 | std::size_t(u[11]) << 24;
  if (12 + h > bytes.size()) return error = path + ": the header runs past the end of the file", false;
  Json root;
  std::string err;
  if (!parseJson(bytes.data() + 12, h, root, err)) return error = path + ": malformed header: " + err, false;
  const Json* fmt = root.get("format");
  if (!fmt || !fmt->isString() || fmt->string != "fsmoe-tensors/1") return error = path + ": header.format is not fsmoe-tensors/1", false;
  const Json* rs = root.get("ranks");
  if (!rs || !rs->isArray()) return error = path + ": header.ranks is missing", false;
  const std::size_t dataStart = 12 + h, dataBytes = bytes.size() - dataStart;
  auto blob = [&](const Json& e, std::size_t elem, std::string& name, const char*& p, std::size_t& n) {
    const Json *nm = e.get("name"), *off = e.get("offset"), *len = e.get("length");
    if (!nm || !nm->isString() || !off || !off->isNumber() || !len || !len->isNumber() || off->number < 0 || len->number < 0) return error = path + ": a malformed tensor entry", false;
    const std::size_t o = std::size_t(off->number);
    n = std::size_t(len->number);
    if (o % 4 != 0 || o > dataBytes || n * elem > dataBytes - o) return error = path + ": tensor '" + nm->string + "' lies outside the data", false;
    name = nm->string;
    p = bytes.data() + dataStart + o;
    return true;
  };
  for (const Json& r : rs->array) {
    RankResult rr;
    const Json *id = r.get("rank"), *loss = r.get("loss"), *scale = r.get("lossScale"), *ts = r.get("tensors"), *is = r.get("ints");
    if (!id || !id->isNumber() || !ts || !ts->isArray() || !is || !is->isArray()) return error = path + ": a malformed rank entry", false;
    rr.loss = loss && loss->isNumber() ? loss->number : std::numeric_limits<double>::quiet_NaN();
    rr.lossScale = scale && scale->isNumber() ? scale->number : 0;
    for (const Json& t : ts->array) {
      std::string name;
      const char* p;
      std::size_t n;
      if (!blob(t, 4, name, p, n)) return false;
      NamedFloats x{name, std::vector<float>(n)};
      std::memcpy(x.data.data(), p, 4 * n);
      rr.tensors.push_back(std::move(x));
    }
    for (const Json& t : is->array) {
      std::string name;
      const char* p;
      std::size_t n;
      if (!blob(t, 4, name, p, n)) return false;
      NamedInts x{name, std::vector<int32_t>(n)};
      std::memcpy(x.data.data(), p, 4 * n);
      rr.ints.push_back(std::move(x));
    }
    rankIds.push_back(int(id->number));
    ranks.push_back(std::move(rr));
  }
  return true;
}

double relativeError(const std::vector<float>& x, const std::vector<float>& ref) {
  if (x.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double d = 0, r = 0, n = 0;
  for (std::size_t i = 0; i < ref.size(); i++) {
    const double a = x[i], b = ref[i];
    if (!std::isfinite(a)) return std::numeric_limits<double>::infinity();
    d += (a - b) * (a - b);
    r += b * b;
    n += a * a;
  }
  return r > 0 ? std::sqrt(d / r) : std::sqrt(n);
}

Comparison compare(const std::vector<RankResult>& got, const std::vector<int>& ids, const std::vector<RankResult>& ref, const std::vector<int>& refIds, double tolerance) {
  Comparison c;
  c.tolerance = tolerance;
  double scale = 0;
  for (std::size_t i = 0; i < ids.size(); i++) {
    const RankResult& g = got[i];
    const RankResult* want = nullptr;
    for (std::size_t k = 0; k < refIds.size(); k++)
      if (refIds[k] == ids[i]) want = &ref[k];
    if (!want) {
      c.missing.push_back("rank " + std::to_string(ids[i]) + " (not in the reference)");
      continue;
    }
    c.loss += g.loss;
    c.refLoss += want->loss;
    scale += want->lossScale;
    for (const NamedFloats& w : want->tensors) {
      const NamedFloats* x = nullptr;
      for (const NamedFloats& t : g.tensors)
        if (t.name == w.name) x = &t;
      if (!x) {
        c.missing.push_back("rank " + std::to_string(ids[i]) + " " + w.name);
        continue;
      }
      const double e = relativeError(x->data, w.data);
      c.tensors.push_back({ids[i], w.name, w.data.size(), e, e <= tolerance});
      c.maxRelError = std::max(c.maxRelError, e);
    }
    for (const NamedInts& w : want->ints) {
      const NamedInts* x = nullptr;
      for (const NamedInts& t : g.ints)
        if (t.name == w.name) x = &t;
      if (!x) {
        c.missing.push_back("rank " + std::to_string(ids[i]) + " " + w.name);
        continue;
      }
      std::size_t mism = x->data.size() == w.data.size() ? 0 : std::max(x->data.size(), w.data.size()) / 2;
      for (std::size_t k = 0; k + 1 < std::min(x->data.size(), w.data.size()); k += 2)
        if (x->data[k] != w.data[k] || x->data[k + 1] != w.data[k + 1]) mism++;
      c.routing.push_back({ids[i], w.name, w.data.size() / 2, mism});
      c.routingMismatches += mism;
      c.decisions += w.data.size() / 2;
    }
  }
  c.lossRelError = std::fabs(c.loss - c.refLoss) / std::max(scale, std::numeric_limits<double>::min());
  if (!std::isfinite(c.lossRelError)) c.lossRelError = std::numeric_limits<double>::infinity();
  bool all = !c.tensors.empty() && c.missing.empty() && c.lossRelError <= tolerance && c.routingMismatches == 0;
  for (const TensorCheck& t : c.tensors) all &= t.ok;
  c.ok = all;
  return c;
}

}  // namespace tensors
}  // namespace fsmoe

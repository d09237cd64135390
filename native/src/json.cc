// The JSON reader (json.h): recursive descent over the bytes with an explicit depth limit, so a
// deeply nested or truncated document is an error message and never a stack overflow.
#include "json.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace fsmoe {

const Json* Json::get(const char* key) const {
  if (type != Type::Object) return nullptr;
  for (const auto& m : object)
    if (m.first == key) return &m.second;
  return nullptr;
}

namespace {

constexpr int kMaxDepth = 64;

class Reader {
 public:
  Reader(const char* s, std::size_t n) : s_(s), n_(n) {}

  bool document(Json& out, std::string& error) {
    skip();
    if (!value(out, 0)) {
      error = error_;
      return false;
    }
    skip();
    if (i_ != n_) {
      fail("unexpected characters after the document");
      error = error_;
      return false;
    }
    return true;
  }

 private:
  const char* s_;
  std::size_t n_;
  std::size_t i_ = 0;
  std::string error_;

  bool fail(const char* what) {
    if (error_.empty()) error_ = "byte " + std::to_string(i_) + ": " + what;
    return false;
  }
  void skip() {
    while (i_ < n_ && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) i_++;
  }
  bool literal(const char* word) {
    std::size_t len = std::strlen(word);
    if (n_ - i_ < len || std::memcmp(s_ + i_, word, len) != 0) return fail("invalid literal");
    i_ += len;
    return true;
  }

  bool value(Json& out, int depth) {
    if (depth > kMaxDepth) return fail("nesting deeper than 64 levels");
    if (i_ >= n_) return fail("unexpected end of input");
    char c = s_[i_];
    switch (c) {
      case '{': return object(out, depth);
      case '[': return array(out, depth);
      case '"': out.type = Json::Type::String; return string(out.string);
      case 't': out.type = Json::Type::Bool; out.boolean = true; return literal("true");
      case 'f': out.type = Json::Type::Bool; out.boolean = false; return literal("false");
      case 'n': out.type = Json::Type::Null; return literal("null");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return number(out);
        return fail("unexpected character");
    }
  }

  bool object(Json& out, int depth) {
    out.type = Json::Type::Object;
    i_++;
    skip();
    if (i_ < n_ && s_[i_] == '}') {
      i_++;
      return true;
    }
    for (;;) {
      skip();
      if (i_ >= n_ || s_[i_] != '"') return fail("expected a member name");
      std::string key;
      if (!string(key)) return false;
      skip();
      if (i_ >= n_ || s_[i_] != ':') return fail("expected ':'");
      i_++;
      skip();
      out.object.emplace_back(std::move(key), Json{});
      if (!value(out.object.back().second, depth + 1)) return false;
      skip();
      if (i_ >= n_) return fail("unexpected end of input in an object");
      if (s_[i_] == ',') {
        i_++;
        continue;
      }
      if (s_[i_] == '}') {
        i_++;
        return true;
      }
      return fail("expected ',' or '}'");
    }
  }

  bool array(Json& out, int depth) {
    out.type = Json::Type::Array;
    i_++;
    skip();
    if (i_ < n_ && s_[i_] == ']') {
      i_++;
      return true;
    }
    for (;;) {
      skip();
      out.array.emplace_back();
      if (!value(out.array.back(), depth + 1)) return false;
      skip();
      if (i_ >= n_) return fail("unexpected end of input in an array");
      if (s_[i_] == ',') {
        i_++;
        continue;
      }
      if (s_[i_] == ']') {
        i_++;
        return true;
      }
      return fail("expected ',' or ']'");
    }
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  void utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool hex4(std::uint32_t& cp) {
    if (n_ - i_ < 4) return fail("truncated \\u escape");
    cp = 0;
    for (int k = 0; k < 4; k++) {
      int h = hex(s_[i_ + k]);
      if (h < 0) return fail("invalid \\u escape");
      cp = cp * 16 + static_cast<std::uint32_t>(h);
    }
    i_ += 4;
    return true;
  }

  bool string(std::string& out) {
    i_++;  // opening quote
    for (;;) {
      if (i_ >= n_) return fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        i_++;
        return true;
      }
      if (c < 0x20) return fail("control character in a string");
      if (c != '\\') {
        out += static_cast<char>(c);
        i_++;
        continue;
      }
      i_++;
      if (i_ >= n_) return fail("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            std::uint32_t lo = 0;
            if (n_ - i_ < 2 || s_[i_] != '\\' || s_[i_ + 1] != 'u') return fail("unpaired surrogate");
            i_ += 2;
            if (!hex4(lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail("invalid surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail("unpaired surrogate");
          }
          utf8(out, cp);
          break;
        }
        default: return fail("invalid escape");
      }
    }
  }

  bool number(Json& out) {
    std::size_t start = i_;
    if (s_[i_] == '-') i_++;
    if (i_ >= n_) return fail("truncated number");
    if (s_[i_] == '0') {
      i_++;
    } else if (s_[i_] >= '1' && s_[i_] <= '9') {
      while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') i_++;
    } else {
      return fail("invalid number");
    }
    if (i_ < n_ && s_[i_] == '.') {
      i_++;
      if (i_ >= n_ || s_[i_] < '0' || s_[i_] > '9') return fail("invalid fraction");
      while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') i_++;
    }
    if (i_ < n_ && (s_[i_] == 'e' || s_[i_] == 'E')) {
      i_++;
      if (i_ < n_ && (s_[i_] == '+' || s_[i_] == '-')) i_++;
      if (i_ >= n_ || s_[i_] < '0' || s_[i_] > '9') return fail("invalid exponent");
      while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') i_++;
    }
    std::size_t len = i_ - start;
    if (len > 64) return fail("number too long");
    char buf[72];
    std::memcpy(buf, s_ + start, len);
    buf[len] = 0;
    errno = 0;
    char* end = nullptr;
    double v = std::strtod(buf, &end);
    if (end != buf + len) return fail("invalid number");
    out.type = Json::Type::Number;
    out.number = v;  // out-of-range values become ±inf and are rejected by the plan checks
    return true;
  }
};

}  // namespace

bool parseJson(const char* text, std::size_t size, Json& out, std::string& error) {
  out = Json{};
  Reader r(text, size);
  return r.document(out, error);
}

}  // namespace fsmoe

// A small strict JSON reader (RFC 8259) for plan files: a DOM of values, a depth limit, and
// errors that name the byte offset. It never throws; hostile input gives an error message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fsmoe {

/** One JSON value. Objects keep their members in source order. */
struct Json {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;

  /** The member named `key`, or nullptr (also when this is not an object). */
  const Json* get(const char* key) const;
  bool isNumber() const { return type == Type::Number; }
  bool isString() const { return type == Type::String; }
  bool isArray() const { return type == Type::Array; }
  bool isObject() const { return type == Type::Object; }
  bool isBool() const { return type == Type::Bool; }
};

/** Parse `text`; on failure returns false and sets `error` ("byte N: what"). */
bool parseJson(const char* text, std::size_t size, Json& out, std::string& error);

}  // namespace fsmoe

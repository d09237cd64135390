// A shared library opened with dlopen, closed when it goes out of scope (RAII). The CUDA backend
// loads cuBLAS and NCCL this way (TOOLCHAIN.md §3.3): the addon and the tools build everywhere,
// and a machine without the libraries gets a clear message at run time instead of a link error.
#pragma once
#include <dlfcn.h>

#include <cstdlib>

#include <string>
#include <utility>
#include <vector>

namespace fsmoe {
namespace dl {

class Library {
 public:
  Library() = default;
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  Library(Library&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)), path_(std::move(o.path_)) {}
  Library& operator=(Library&& o) noexcept {
    if (this != &o) {
      close();
      handle_ = std::exchange(o.handle_, nullptr);
      path_ = std::move(o.path_);
    }
    return *this;
  }
  ~Library() { close(); }

  /**
   * Open the first of `candidates` that loads (RTLD_NOW | RTLD_LOCAL). On failure returns false
   * and sets `why` to every candidate's dlerror, one per line.
   */
  bool open(const std::vector<std::string>& candidates, std::string& why) {
    close();
    why.clear();
    for (const std::string& c : candidates) {
      dlerror();
      void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h != nullptr) {
        handle_ = h;
        path_ = c;
        return true;
      }
      const char* e = dlerror();
      why += (why.empty() ? "" : "; ") + (e ? std::string(e) : c + ": cannot be loaded");
    }
    return false;
  }

  /** The address of `name`, or nullptr (and `why` names the symbol). */
  void* symbol(const char* name, std::string& why) const {
    if (handle_ == nullptr) {
      why = std::string("symbol ") + name + ": the library is not open";
      return nullptr;
    }
    dlerror();
    void* p = dlsym(handle_, name);
    if (p == nullptr) {
      const char* e = dlerror();
      why = std::string("symbol ") + name + " not found in " + path_ + (e ? std::string(" (") + e + ")" : "");
    }
    return p;
  }

  bool isOpen() const { return handle_ != nullptr; }
  const std::string& path() const { return path_; }

  void close() {
    if (handle_ != nullptr) dlclose(handle_);
    handle_ = nullptr;
    path_.clear();
  }

 private:
  void* handle_ = nullptr;
  std::string path_;
};

/** Candidates: the path in environment variable `envVar` alone when it is set, else `defaults`. */
inline std::vector<std::string> candidates(const char* envVar, std::vector<std::string> defaults) {
  if (const char* p = std::getenv(envVar); p != nullptr && *p != '\0') return {std::string(p)};
  return defaults;
}

}  // namespace dl
}  // namespace fsmoe

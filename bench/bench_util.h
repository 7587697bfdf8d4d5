// Helpers shared by the benchmark programs in bench/: a scratch directory
// that is removed afterwards. Single-threaded use.
#pragma once

#include <string>

namespace shim::bench {

// A fresh directory under $TMPDIR (default /tmp), removed with its contents
// when the object dies. path() is empty if it could not be created.
class ScratchDir {
 public:
  explicit ScratchDir(const char* prefix = "shim-bench");
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace shim::bench

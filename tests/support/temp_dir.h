// TempDir: a fresh directory under $TMPDIR (default /tmp), removed with
// everything in it when the object dies. Paths stay short enough for Unix
// socket names (108 bytes).
#pragma once

#include <string>

namespace shim::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace shim::testing

#include "cli/paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"

namespace shim::cli {

Result<std::string> ResolveShimHome() {
  const char* home = std::getenv("SHIM_HOME");
  if (!home || !*home) {
    const char* user_home = std::getenv("HOME");
    return std::string(user_home && *user_home ? user_home : ".") + "/.shim";
  }
  const std::filesystem::path path(home);
  for (const auto& part : path) {
    if (part.string().starts_with("~")) {
      return Status::InvalidParams(
          "SHIM_HOME", "SHIM_HOME is '" + std::string(home) +
                           "', with a literal '~' that no shell expanded (~ is expanded only "
                           "unquoted, at the start of a word); write $HOME instead, e.g. "
                           "SHIM_HOME=\"$HOME/.shim\"");
    }
  }
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec)
    return Status::InvalidParams("SHIM_HOME", "SHIM_HOME " + path.string() + ": " + ec.message());
  return absolute.lexically_normal().string();
}

std::string ShimHome() {
  Result<std::string> home = ResolveShimHome();
  if (!home.ok()) {
    std::fprintf(stderr, "shim: %s\n", home.status().message().c_str());
    std::exit(kExitUsage);
  }
  return std::move(home).value();
}

std::string DefaultSocketPath() {
  if (const char* sock = std::getenv("SHIM_SOCKET"); sock && *sock) return sock;
  return ShimHome() + "/shim.sock";
}

std::string DefaultDataDir() { return ShimHome() + "/data"; }

std::string DefaultLogFile() { return ShimHome() + "/shim.log"; }

void TightenShimHome() {
  const std::string home = ShimHome();
  std::error_code ec;
  std::filesystem::create_directories(home, ec);
  struct stat st;
  if (::stat(home.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() &&
      (st.st_mode & S_ISVTX) == 0 && (st.st_mode & 077) != 0) {
    ::chmod(home.c_str(), 0700);
  }
}

}  // namespace shim::cli

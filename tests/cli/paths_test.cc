// SHIM_HOME resolution (cli/paths.h): absolute, relative made absolute, a
// literal `~` refused with a hint.
#include "cli/paths.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "tests/support/test_util.h"

namespace shim::cli {
namespace {

// Sets an environment variable for one test and puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(ShimHomePathTest, AbsoluteHomeIsUsedAsGiven) {
  ScopedEnv home("SHIM_HOME", "/srv/shim/home");
  ASSERT_OK_AND_ASSIGN(std::string resolved, ResolveShimHome());
  EXPECT_EQ(resolved, "/srv/shim/home");
  ScopedEnv socket("SHIM_SOCKET", nullptr);
  EXPECT_EQ(DefaultSocketPath(), "/srv/shim/home/shim.sock");
  EXPECT_EQ(DefaultDataDir(), "/srv/shim/home/data");
  EXPECT_EQ(DefaultLogFile(), "/srv/shim/home/shim.log");
}

TEST(ShimHomePathTest, RelativeHomeIsTakenFromTheCurrentDirectory) {
  ScopedEnv home("SHIM_HOME", "rel/./home");
  ASSERT_OK_AND_ASSIGN(std::string resolved, ResolveShimHome());
  EXPECT_EQ(resolved, (std::filesystem::current_path() / "rel/home").string());
}

TEST(ShimHomePathTest, UnsetHomeIsDotShimInTheUsersHome) {
  ScopedEnv home("SHIM_HOME", nullptr);
  ScopedEnv user("HOME", "/home/someone");
  ASSERT_OK_AND_ASSIGN(std::string resolved, ResolveShimHome());
  EXPECT_EQ(resolved, "/home/someone/.shim");
}

TEST(ShimHomePathTest, LiteralTildeIsRefusedWithAHint) {
  for (const char* value : {"~", "~/.shim", "~other/x", "/tmp/~/x"}) {
    ScopedEnv home("SHIM_HOME", value);
    auto resolved = ResolveShimHome();
    ASSERT_FALSE(resolved.ok()) << value;
    EXPECT_EQ(resolved.status().code(), StatusCode::kInvalidParams);
    EXPECT_NE(resolved.status().message().find("literal '~'"), std::string::npos)
        << resolved.status().message();
    EXPECT_NE(resolved.status().message().find("$HOME"), std::string::npos)
        << resolved.status().message();
  }
  // A '~' inside a name is an ordinary character.
  ScopedEnv home("SHIM_HOME", "/tmp/a~b");
  ASSERT_OK_AND_ASSIGN(std::string resolved, ResolveShimHome());
  EXPECT_EQ(resolved, "/tmp/a~b");
}

}  // namespace
}  // namespace shim::cli

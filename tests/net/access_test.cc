// Unit tests for net/access.h: the listen rule, the socket-directory check,
// token comparison and HTTP detection. No server.
#include "net/access.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim::net {
namespace {

using testing::TempDir;

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST(ListenRuleTest, ParsesHostsAndPorts) {
  ASSERT_OK_AND_ASSIGN(auto v4, ParseListenEndpoint("127.0.0.1:7420"));
  EXPECT_EQ(v4.address().to_string(), "127.0.0.1");
  EXPECT_EQ(v4.port(), 7420);
  ASSERT_OK_AND_ASSIGN(auto local, ParseListenEndpoint("localhost:1"));
  EXPECT_TRUE(local.address().is_loopback());
  ASSERT_OK_AND_ASSIGN(auto v6, ParseListenEndpoint("[::1]:0"));
  EXPECT_TRUE(v6.address().is_v6());
  EXPECT_TRUE(v6.address().is_loopback());
  ASSERT_OK_AND_ASSIGN(auto any, ParseListenEndpoint("0.0.0.0:7420"));
  EXPECT_FALSE(any.address().is_loopback());
  for (const char* bad :
       {"7420", ":7420", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:70000", "example.com:1"}) {
    auto r = ParseListenEndpoint(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidParams) << bad;
    }
  }
}

TEST(ListenRuleTest, OnlyLoopbackWithoutAToken) {
  for (const char* ok : {"127.0.0.1:1", "127.1.2.3:1", "[::1]:1", "localhost:1"}) {
    ASSERT_OK_AND_ASSIGN(auto e, ParseListenEndpoint(ok));
    EXPECT_OK(ValidateListen(e, ok, false));
    EXPECT_OK(ValidateListen(e, ok, true));
  }
  for (const char* wide : {"0.0.0.0:1", "[::]:1", "192.168.1.10:1", "10.0.0.1:1"}) {
    ASSERT_OK_AND_ASSIGN(auto e, ParseListenEndpoint(wide));
    Status refused = ValidateListen(e, wide, false);
    EXPECT_EQ(refused.code(), StatusCode::kInvalidParams) << wide;
    EXPECT_NE(refused.message().find("auth token"), std::string::npos) << refused.message();
    EXPECT_OK(ValidateListen(e, wide, true));
  }
}

TEST(SocketDirectoryTest, CreatesAMissingDirectoryPrivate) {
  TempDir dir;
  const std::string nested = dir.Sub("a/b");
  ASSERT_OK(PrepareSocketDirectory(nested + "/s.sock"));
  EXPECT_EQ(ModeOf(nested), 0700u);
  // Idempotent.
  ASSERT_OK(PrepareSocketDirectory(nested + "/s.sock"));
  EXPECT_EQ(ModeOf(nested), 0700u);
}

TEST(SocketDirectoryTest, RefusesADirectoryOpenToOthersWithoutChangingIt) {
  TempDir dir;
  const std::string open = dir.Sub("open");
  ASSERT_EQ(::mkdir(open.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(open.c_str(), 0711), 0);
  Status s = PrepareSocketDirectory(open + "/s.sock");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("mode 0711"), std::string::npos) << s.message();
  EXPECT_EQ(ModeOf(open), 0711u);
  ASSERT_EQ(::chmod(open.c_str(), 0700), 0);
  EXPECT_OK(PrepareSocketDirectory(open + "/s.sock"));
}

TEST(SocketDirectoryTest, RefusesAFileWhereTheDirectoryShouldBe) {
  TempDir dir;
  const std::string file = dir.Sub("f");
  ASSERT_EQ(::close(::creat(file.c_str(), 0600)), 0);
  EXPECT_FALSE(PrepareSocketDirectory(file + "/s.sock").ok());
}

TEST(TokenTest, ConstantTimeEqualsIsEquality) {
  EXPECT_TRUE(ConstantTimeEquals("secret-token", "secret-token"));
  EXPECT_FALSE(ConstantTimeEquals("secret-tokeN", "secret-token"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token-", "secret-token"));
  EXPECT_FALSE(ConstantTimeEquals("secret-toke", "secret-token"));
  EXPECT_FALSE(ConstantTimeEquals("", "secret-token"));
  EXPECT_FALSE(ConstantTimeEquals("", ""));  // no token configured: nothing matches
  // A prefix repeated to the expected length must not match by wrapping.
  EXPECT_FALSE(ConstantTimeEquals("abab", "ab"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), "a"));
}

TEST(HttpDetectionTest, RequestLinesAreRecognisedAndJsonIsNot) {
  for (const char* http : {"GET / HTTP/1.1", "POST /rpc HTTP/1.0", "OPTIONS * HTTP/1.1",
                           "PRI * HTTP/2.0", "M-SEARCH * HTTP/1.1", "GET /a%20b?x=1 HTTP/1.1"}) {
    EXPECT_TRUE(LooksLikeHttpRequest(http)) << http;
  }
  for (const char* other :
       {R"({"jsonrpc":"2.0","id":1,"method":"sys.ping"})", "[]", "GET", "GET /", "get / HTTP/1.1",
        "HTTP/1.1 200 OK", " GET / HTTP/1.1", "hello world", ""}) {
    EXPECT_FALSE(LooksLikeHttpRequest(other)) << other;
  }
  const std::string refusal = HttpRefusal();
  EXPECT_EQ(refusal.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u);
  const size_t body_at = refusal.find("\r\n\r\n") + 4;
  EXPECT_NE(refusal.find("Content-Length: " + std::to_string(refusal.size() - body_at) + "\r\n"),
            std::string::npos);
}

}  // namespace
}  // namespace shim::net

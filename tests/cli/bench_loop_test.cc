// ConnectionLoop (cli/bench_loop.h): one thread drives many connections.
// The "server" here is a thread per socketpair that answers each request
// line with "ok:<line>", possibly in pieces.
#include "cli/bench_loop.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_util.h"

namespace shim::cli {
namespace {

struct Pair {
  int client = -1;
  int server = -1;
  Pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    client = fds[0];
    server = fds[1];
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  ~Pair() {
    if (client >= 0) ::close(client);
    if (server >= 0) ::close(server);
  }
};

// Answers every line read on `fd` with "ok:<line>\n", split into two writes
// 2 ms apart when `split` (so the loop sees partial lines), until EOF or
// `stop_after` lines.
void Answer(int fd, bool split, int stop_after = -1) {
  std::string in;
  char buf[4096];
  int answered = 0;
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    in.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = in.find('\n')) != std::string::npos;) {
      if (answered == stop_after) return;
      const std::string reply = "ok:" + in.substr(0, nl) + "\n";
      in.erase(0, nl + 1);
      if (split) {
        (void)::send(fd, reply.data(), 3, MSG_NOSIGNAL);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        (void)::send(fd, reply.data() + 3, reply.size() - 3, MSG_NOSIGNAL);
      } else {
        (void)::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      }
      ++answered;
    }
  }
}

TEST(ConnectionLoopTest, DrivesEveryConnectionThroughItsPipelinedBatchesInOrder) {
  constexpr int kConns = 5;
  constexpr int kBatches = 20;
  constexpr int kDepth = 4;
  std::vector<Pair> pairs(kConns);
  std::vector<std::thread> servers;
  std::vector<int> fds;
  for (int i = 0; i < kConns; ++i) {
    fds.push_back(pairs[i].client);
    servers.emplace_back(Answer, pairs[i].server, /*split=*/i % 2 == 1, -1);
  }
  // Connection i sends batches of kDepth lines "i.b.k"; the next batch goes
  // out only when every reply of the one before has come.
  auto batch = [](int conn, int b) {
    std::string out;
    for (int k = 0; k < kDepth; ++k)
      out += std::to_string(conn) + "." + std::to_string(b) + "." + std::to_string(k) + "\n";
    return out;
  };
  std::vector<std::string> first;
  for (int i = 0; i < kConns; ++i) first.push_back(batch(i, 0));
  std::vector<std::vector<std::string>> seen(kConns);
  std::vector<int> batch_no(kConns, 0);
  ConnectionLoop loop(fds);
  Status s = loop.Run(first, [&](size_t i, std::string_view line) {
    seen[i].emplace_back(line);
    if (seen[i].size() % kDepth != 0) return ConnectionLoop::Next{};
    if (++batch_no[i] == kBatches) return ConnectionLoop::Next{{}, true};
    return ConnectionLoop::Next{batch(static_cast<int>(i), batch_no[i])};
  });
  ASSERT_OK(s);
  for (auto& p : pairs) ::shutdown(p.client, SHUT_WR);
  for (auto& t : servers) t.join();
  for (int i = 0; i < kConns; ++i) {
    ASSERT_EQ(seen[i].size(), static_cast<size_t>(kBatches * kDepth)) << "connection " << i;
    for (int b = 0; b < kBatches; ++b) {
      for (int k = 0; k < kDepth; ++k) {
        EXPECT_EQ(seen[i][b * kDepth + k],
                  "ok:" + std::to_string(i) + "." + std::to_string(b) + "." + std::to_string(k));
      }
    }
  }
}

TEST(ConnectionLoopTest, AConnectionWithNothingToSendIsLeftAlone) {
  Pair busy, idle;
  std::thread server(Answer, busy.server, false, -1);
  int calls_for_idle = 0;
  int replies = 0;
  ConnectionLoop loop({busy.client, idle.client});
  // Something unasked-for waits on the idle connection: it must not be read.
  ASSERT_EQ(::send(idle.server, "stray\n", 6, 0), 6);
  Status s = loop.Run({"a\n", ""}, [&](size_t i, std::string_view) {
    if (i == 1) ++calls_for_idle;
    return ConnectionLoop::Next{{}, ++replies == 1};
  });
  ASSERT_OK(s);
  EXPECT_EQ(replies, 1);
  EXPECT_EQ(calls_for_idle, 0);
  ::shutdown(busy.client, SHUT_WR);
  server.join();
}

// end_run stops the whole run after its own send, though another
// connection still waits for a reply that never comes (an idle worker's
// waiting claim): Run returns at once, not at the reply timeout.
TEST(ConnectionLoopTest, EndRunReturnsAtOnceWhateverOthersStillAwait) {
  Pair answered, silent;
  std::thread server(Answer, answered.server, false, -1);
  int replies = 0;
  ConnectionLoop loop({answered.client, silent.client});
  const auto t0 = std::chrono::steady_clock::now();
  Status s = loop.Run(
      {"a\n", "waits\n"},
      [&](size_t i, std::string_view line) {
        EXPECT_EQ(i, 0u);
        ++replies;
        if (line == "ok:a") return ConnectionLoop::Next{"b\n"};
        return ConnectionLoop::Next{.send = {}, .done = true, .end_run = true};
      },
      /*reply_timeout_ms=*/5000);
  ASSERT_OK(s);
  EXPECT_EQ(replies, 2);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2000));
  ::shutdown(answered.client, SHUT_WR);
  server.join();
}

TEST(ConnectionLoopTest, APeerThatClosesEndsTheRunWithAnError) {
  Pair p;
  std::thread server([&] {
    Answer(p.server, false, /*stop_after=*/2);
    ::close(p.server);
    p.server = -1;
  });
  int replies = 0;
  ConnectionLoop loop({p.client});
  Status s = loop.Run({"1\n"}, [&](size_t, std::string_view) {
    ++replies;
    return ConnectionLoop::Next{"again\n"};
  });
  server.join();
  EXPECT_EQ(s.code(), StatusCode::kInternal) << s.ToString();
  EXPECT_NE(s.message().find("closed the connection"), std::string::npos) << s.ToString();
  EXPECT_EQ(replies, 2);
}

TEST(ConnectionLoopTest, NoReplyInTimeEndsTheRunWithTimeout) {
  Pair p;  // nobody answers
  ConnectionLoop loop({p.client});
  const auto t0 = std::chrono::steady_clock::now();
  Status s = loop.Run(
      {"hello\n"}, [&](size_t, std::string_view) { return ConnectionLoop::Next{}; },
      /*reply_timeout_ms=*/100);
  EXPECT_EQ(s.code(), StatusCode::kTimeout) << s.ToString();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));
}

}  // namespace
}  // namespace shim::cli

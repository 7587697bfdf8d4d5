// Two client processes contend for one lock on a real `shim serve`: the
// waiter gets the lock when the holder releases it, and when the holder stops
// keeping it alive (its TTL runs out), never while the holder still keeps it
// alive. Each contender is a fork()ed child with its own LineClient; the test
// process coordinates them over pipes and watches the lock with its own
// connection. Every wait is bounded.
//
// The TTLs the holders renew, and the windows checked around them, follow
// the load measured at the start of each test (tests/support/load_baseline.h):
// a renewal must reach the server before the TTL runs out, which on a
// loaded machine takes more than on a quiet one.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "net/line_client.h"
#include "tests/support/load_baseline.h"
#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim::testing {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr int kLeaseTtlFloorMs =
    400;                          // the holder's lease in the keepalive test, on a quiet machine
constexpr int kTtlFloorMs = 300;  // the holder's lock TTL in the extend test, on a quiet machine

int64_t MonoNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

// Reads one '\n'-terminated line from `fd` within `timeout_ms`; nullopt on
// timeout or EOF. Byte at a time: these are a handful of short messages.
std::optional<std::string> ReadLineFrom(int fd, int timeout_ms) {
  std::string line;
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now())
            .count();
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 0))) <= 0) return std::nullopt;
    char c;
    if (::read(fd, &c, 1) != 1) return std::nullopt;
    if (c == '\n') return line;
    line.push_back(c);
  }
}

void WriteLineTo(int fd, const std::string& line) {
  std::string s = line + "\n";
  const char* p = s.data();
  size_t left = s.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// A forked contender. `body(in, out)` runs in the child with the read end of
// the parent->child pipe and the write end of the child->parent pipe; its
// return value is the exit code. The child leaves with _exit, so nothing of
// the parent (gtest, the ServerProcess object) is torn down twice.
class Contender {
 public:
  explicit Contender(std::function<int(int in, int out)> body) {
    int down[2], up[2];
    if (::pipe(down) != 0 || ::pipe(up) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(down[1]);
      ::close(up[0]);
      int code = 99;
      try {
        code = body(down[0], up[1]);
      } catch (...) {
      }
      ::_exit(code);
    }
    ::close(down[0]);
    ::close(up[1]);
    to_child_ = down[1];
    from_child_ = up[0];
  }
  ~Contender() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (to_child_ >= 0) ::close(to_child_);
    if (from_child_ >= 0) ::close(from_child_);
  }
  bool started() const { return pid_ > 0; }
  void Send(const std::string& line) { WriteLineTo(to_child_, line); }
  std::optional<std::string> Read(int timeout_ms) { return ReadLineFrom(from_child_, timeout_ms); }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // The child's exit code, or -1 if it does not exit within `timeout_ms`.
  int Join(int timeout_ms) {
    const auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
    while (pid_ > 0 && SteadyClock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
};

// Child side: connect or give up.
std::unique_ptr<net::LineClient> ChildConnect(const std::string& socket) {
  auto c = net::LineClient::ConnectUnix(socket);
  return c.ok() ? std::move(c).value() : nullptr;
}

// A waiter: one acquire with a long wait; reports "granted TOKEN MONO_US" or
// "error REASON".
std::function<int(int, int)> Waiter(const std::string& socket, const std::string& lock,
                                    const std::string& owner) {
  return [socket, lock, owner](int, int out) {
    auto c = ChildConnect(socket);
    if (!c) return 2;
    auto r = c->Call("lock.acquire",
                     {{"name", lock}, {"owner", owner}, {"ttl_ms", 30'000}, {"wait_ms", 15'000}},
                     20'000);
    if (!r.ok()) {
      WriteLineTo(out, "error " + std::string(StatusCodeReason(r.status().code())));
      return 3;
    }
    WriteLineTo(out, "granted " + std::to_string(r.value()["token"].get<uint64_t>()) + " " +
                         std::to_string(MonoNowUs()));
    return 0;
  };
}

class LockContentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(server_.Start());
    ASSERT_OK_AND_ASSIGN(observer_, server_.Connect());
  }

  json LockStatus(const std::string& name) {
    auto r = observer_->Call("lock.status", {{"name", name}}, 5000);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r.value() : json::object();
  }
  // Polls until `name` has `n` waiters (bounded).
  bool WaitForWaiters(const std::string& name, int n, int timeout_ms = 5000) {
    const auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
    while (SteadyClock::now() < deadline) {
      if (LockStatus(name).value("waiters", -1) == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  // Reads the "token T" line `holder` writes once it holds lock L; T.
  void ReadHolderToken(Contender& holder, uint64_t* token) {
    ASSERT_TRUE(holder.started());
    auto first = holder.Read(5000);
    ASSERT_TRUE(first.has_value()) << "holder did not get the lock";
    *token = std::stoull(first->substr(6));
  }
  // `waiter`, a Waiter for L, started and queued behind the holder.
  void ExpectQueued(Contender& waiter) {
    ASSERT_TRUE(waiter.started());
    ASSERT_TRUE(WaitForWaiters("L", 1)) << "the waiter never queued";
  }

  ServerProcess server_;
  std::unique_ptr<net::LineClient> observer_;
};

// "granted T US" -> {T, US}
std::pair<uint64_t, int64_t> ParseGrant(const std::string& line) {
  std::istringstream in(line);
  std::string word;
  uint64_t token = 0;
  int64_t us = 0;
  in >> word >> token >> us;
  EXPECT_EQ(word, "granted") << line;
  return {token, us};
}

// The lock a holder stopped keeping alive at `last_alive_us` is granted to
// `waiter`: a newer token than `holder_token`, not before `ttl_ms` after
// that (1 ms for the server's millisecond clock), and at most `late_ms`
// later. Sets *after_ms to how long after `last_alive_us` it came.
void ExpectGrantedOnceTheTtlRanOut(Contender& waiter, uint64_t holder_token, int64_t last_alive_us,
                                   int64_t ttl_ms, int64_t late_ms, int64_t* after_ms) {
  auto granted = waiter.Read(5000);
  ASSERT_TRUE(granted.has_value()) << "the lapsed holder did not hand the lock over";
  auto [token, granted_us] = ParseGrant(*granted);
  EXPECT_GT(token, holder_token);
  *after_ms = (granted_us - last_alive_us) / 1000;
  EXPECT_GE(*after_ms, ttl_ms - 1);
  EXPECT_LE(*after_ms, ttl_ms + late_ms);
}

TEST_F(LockContentionTest, WaiterInAnotherProcessGetsTheLockWhenTheHolderReleases) {
  const std::string socket = server_.socket_path();
  Contender holder([socket](int in, int out) {
    auto c = ChildConnect(socket);
    if (!c) return 2;
    auto r = c->Call("lock.acquire", {{"name", "L"}, {"owner", "holder"}, {"ttl_ms", 30'000}});
    if (!r.ok()) return 3;
    const uint64_t token = r.value()["token"].get<uint64_t>();
    WriteLineTo(out, "token " + std::to_string(token));
    if (ReadLineFrom(in, 15'000) != "release") return 4;
    if (!c->Call("lock.release", {{"name", "L"}, {"token", token}}).ok()) return 5;
    WriteLineTo(out, "released");
    return 0;
  });
  uint64_t holder_token = 0;
  ASSERT_NO_FATAL_FAILURE(ReadHolderToken(holder, &holder_token));

  Contender waiter(Waiter(socket, "L", "waiter"));
  ASSERT_NO_FATAL_FAILURE(ExpectQueued(waiter));
  // Queued, not granted: the holder still has it.
  EXPECT_FALSE(waiter.Read(200).has_value()) << "granted while the holder held the lock";
  json st = LockStatus("L");
  EXPECT_EQ(st["owner"], "holder");
  EXPECT_EQ(st["token"], holder_token);

  holder.Send("release");
  EXPECT_EQ(holder.Read(5000), "released");
  auto granted = waiter.Read(5000);
  ASSERT_TRUE(granted.has_value()) << "the waiter did not get the released lock";
  auto [token, us] = ParseGrant(*granted);
  EXPECT_GT(token, holder_token);
  st = LockStatus("L");
  EXPECT_EQ(st["owner"], "waiter");
  EXPECT_EQ(st["token"], token);
  EXPECT_EQ(st["waiters"], 0);
  EXPECT_EQ(holder.Join(5000), 0);
  EXPECT_EQ(waiter.Join(5000), 0);
}

TEST_F(LockContentionTest, WaiterGetsTheLockWhenTheHolderStopsKeepingItsLeaseAlive) {
  const std::string socket = server_.socket_path();
  // The lease absorbs 20 slow steps; the holder renews it 4 times per TTL,
  // so each renewal has 15 of them to arrive.
  const LoadBaseline load = MeasureLoad(*observer_);
  const int64_t lease_ttl_ms = load.Window(kLeaseTtlFloorMs, 20);
  const int64_t late_ms =
      load.Window(2000, 20);  // the hand-over after the lapse: a timer, a write, a wakeup
  // The holder takes the lock under a lease and keeps the lease alive every
  // quarter TTL until told to stop; then it stays connected but silent.
  Contender holder([socket, lease_ttl_ms](int in, int out) {
    auto c = ChildConnect(socket);
    if (!c) return 2;
    auto lease = c->Call("lease.grant", {{"ttl_ms", lease_ttl_ms}, {"owner", "holder"}});
    if (!lease.ok()) return 3;
    const uint64_t lease_id = lease.value()["lease_id"].get<uint64_t>();
    auto r =
        c->Call("lock.acquire",
                {{"name", "L"}, {"owner", "holder"}, {"ttl_ms", 60'000}, {"lease_id", lease_id}});
    if (!r.ok()) return 4;
    WriteLineTo(out, "token " + std::to_string(r.value()["token"].get<uint64_t>()));
    int64_t last_keepalive_sent_us = 0;
    while (true) {
      auto cmd = ReadLineFrom(in, static_cast<int>(lease_ttl_ms / 4));
      if (cmd == "stop") break;
      last_keepalive_sent_us = MonoNowUs();
      if (!c->Call("lease.keepalive", {{"lease_id", lease_id}}, 5000).ok()) return 5;
    }
    WriteLineTo(out, "stopped " + std::to_string(last_keepalive_sent_us));
    ReadLineFrom(in, 20'000);  // silent until the parent is done
    return 0;
  });
  uint64_t holder_token = 0;
  ASSERT_NO_FATAL_FAILURE(ReadHolderToken(holder, &holder_token));

  Contender waiter(Waiter(socket, "L", "waiter"));
  ASSERT_NO_FATAL_FAILURE(ExpectQueued(waiter));
  // Kept alive for 2.5 lease TTLs: the waiter keeps waiting.
  EXPECT_FALSE(waiter.Read(static_cast<int>(lease_ttl_ms * 5 / 2)).has_value())
      << "granted while the holder kept its lease alive";
  EXPECT_EQ(LockStatus("L")["owner"], "holder");

  holder.Send("stop");
  auto stopped = holder.Read(5000);
  ASSERT_TRUE(stopped.has_value());
  const int64_t last_keepalive_us = std::stoll(stopped->substr(8));
  // Not before the lease's TTL ran out from its last keepalive, and not
  // much after it.
  int64_t after_ms = 0;
  ASSERT_NO_FATAL_FAILURE(ExpectGrantedOnceTheTtlRanOut(waiter, holder_token, last_keepalive_us,
                                                        lease_ttl_ms, late_ms, &after_ms));
  std::cout << "[ lease ] lock handed over " << after_ms
            << " ms after the last keepalive (lease TTL " << lease_ttl_ms << " ms)\n";
  EXPECT_EQ(LockStatus("L")["owner"], "waiter");
  // The silent holder's token no longer fences anything.
  auto fenced = observer_->Call(
      "state.set",
      {{"key", "k"}, {"value", 1}, {"fence", {{"lock", "L"}, {"token", holder_token}}}});
  EXPECT_EQ(fenced.status().code(), StatusCode::kFenced);
  holder.Send("bye");
  EXPECT_EQ(holder.Join(5000), 0);
  EXPECT_EQ(waiter.Join(5000), 0);
}

TEST_F(LockContentionTest, WaiterGetsTheLockWhenAKilledHolderStopsExtendingIt) {
  const std::string socket = server_.socket_path();
  // The TTL absorbs 15 slow steps; extended 3 times per TTL, each
  // extension has 10 of them to arrive.
  const LoadBaseline load = MeasureLoad(*observer_);
  const int64_t ttl_ms = load.Window(kTtlFloorMs, 15);
  const int64_t late_ms = load.Window(2000, 20);
  // The holder extends its lock every third of its TTL until it is SIGKILLed.
  Contender holder([socket, ttl_ms](int, int out) {
    auto c = ChildConnect(socket);
    if (!c) return 2;
    auto r = c->Call("lock.acquire", {{"name", "L"}, {"owner", "holder"}, {"ttl_ms", ttl_ms}});
    if (!r.ok()) return 3;
    const uint64_t token = r.value()["token"].get<uint64_t>();
    WriteLineTo(out, "token " + std::to_string(token));
    while (true) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ttl_ms / 3));
      const int64_t sent_us = MonoNowUs();
      if (!c->Call("lock.extend", {{"name", "L"}, {"token", token}, {"ttl_ms", ttl_ms}}, 5000).ok())
        return 4;
      // Reported once answered: the server applied it no earlier than sent_us.
      WriteLineTo(out, "extended " + std::to_string(sent_us));
    }
  });
  uint64_t holder_token = 0;
  ASSERT_NO_FATAL_FAILURE(ReadHolderToken(holder, &holder_token));

  Contender waiter(Waiter(socket, "L", "waiter"));
  ASSERT_NO_FATAL_FAILURE(ExpectQueued(waiter));
  EXPECT_FALSE(waiter.Read(static_cast<int>(ttl_ms * 8 / 3)).has_value())
      << "granted while the holder kept extending";
  holder.Kill();
  // The send time of the last extend known to be applied (lines arrive in
  // order); one in flight at the kill can only make the expiry later.
  int64_t last_extend_us = 0;
  while (auto line = holder.Read(0)) {
    if (line->rfind("extended ", 0) == 0) last_extend_us = std::stoll(line->substr(9));
  }
  ASSERT_GT(last_extend_us, 0);
  int64_t after_ms = 0;
  ASSERT_NO_FATAL_FAILURE(ExpectGrantedOnceTheTtlRanOut(waiter, holder_token, last_extend_us,
                                                        ttl_ms, late_ms, &after_ms));
  EXPECT_EQ(LockStatus("L")["owner"], "waiter");
  EXPECT_EQ(waiter.Join(5000), 0);
}

// Two processes pass one lock back and forth for about a second: each, once
// granted, waits until the other is queued (lock.status, a read), then
// releases, so every release hands the lock to the waiting other process in
// the same write, and that process's acquire returns. Asserts that the
// grants strictly alternate between the processes (each one a hand-off, in
// FIFO order) with increasing tokens; prints the hand-off rate.
TEST_F(LockContentionTest, MeasuresHandOffRateBetweenTwoProcesses) {
  const std::string socket = server_.socket_path();
  const int64_t start_us = MonoNowUs() + 200'000;  // both start together
  const int64_t end_us = start_us + 1'000'000;
  auto passer = [socket, start_us, end_us](const std::string& owner) {
    return [socket, start_us, end_us, owner](int, int out) {
      auto c = ChildConnect(socket);
      if (!c) return 2;
      while (MonoNowUs() < start_us) std::this_thread::sleep_for(std::chrono::microseconds(200));
      std::string tokens;
      while (MonoNowUs() < end_us) {
        auto r =
            c->Call("lock.acquire",
                    {{"name", "P"}, {"owner", owner}, {"ttl_ms", 5000}, {"wait_ms", 5000}}, 10'000);
        if (!r.ok()) return 3;
        const uint64_t token = r.value()["token"].get<uint64_t>();
        tokens += " " + std::to_string(token);
        // Hand over only to a queued waiter (unless the run is over).
        while (MonoNowUs() < end_us) {
          auto st = c->Call("lock.status", {{"name", "P"}}, 10'000);
          if (!st.ok()) return 4;
          if (st.value()["waiters"].get<int>() > 0) break;
        }
        if (!c->Call("lock.release", {{"name", "P"}, {"token", token}}, 10'000).ok()) return 5;
      }
      WriteLineTo(out, std::to_string(MonoNowUs()) + tokens);
      return 0;
    };
  };
  Contender a(passer("a"));
  Contender b(passer("b"));
  ASSERT_TRUE(a.started() && b.started());
  auto ra = a.Read(10'000);
  auto rb = b.Read(10'000);
  ASSERT_TRUE(ra && rb);
  EXPECT_EQ(a.Join(5000), 0);
  EXPECT_EQ(b.Join(5000), 0);
  // token -> process, in token order.
  std::map<uint64_t, char> grants;
  int64_t ea = 0, eb = 0;
  {
    std::istringstream in(*ra);
    in >> ea;
    for (uint64_t t; in >> t;) grants[t] = 'a';
  }
  {
    std::istringstream in(*rb);
    in >> eb;
    for (uint64_t t; in >> t;)
      EXPECT_TRUE(grants.emplace(t, 'b').second) << "token " << t << " granted twice";
  }
  ASSERT_GE(grants.size(), 4u) << "too few grants to measure";
  char previous = 0;
  int alternations = 0;
  for (const auto& [token, who] : grants) {
    EXPECT_NE(who, previous) << "token " << token << ": " << who << " got the lock twice in a row";
    alternations += previous != 0 && who != previous;
    previous = who;
  }
  const double seconds = double(std::max(ea, eb) - start_us) / 1e6;
  const double rate = alternations / seconds;
  std::cout << "[ handoff ] two processes, durability sync: " << alternations << " hand-offs in "
            << seconds << " s = " << static_cast<int64_t>(rate)
            << " hand-offs/s (release -> waiting other's grant)\n";
  RecordProperty("handoffs_per_second", static_cast<int>(rate));
  EXPECT_EQ(LockStatus("P")["held"], false);
}

}  // namespace
}  // namespace shim::testing

// Linearizability of state operations against a real `shim serve
// --durability sync`: 8 clients run get / set / CAS (expected_version) /
// incr / txn on a few shared keys, every request timed (invoke, response)
// and recorded with its reply; halfway through, the server is SIGKILLed
// and restarted, and requests in flight become "lost" (may have happened
// before the kill, or not at all). The whole history is then checked by
// tests/fault/linearizability_checker.h against a sequential key/value model.
// In the power-cut mode the data directory also loses, between the kill and
// the restart, everything the server had not synced (storage/power_cut.h):
// an acknowledged write that was not durable shows up as a read that no
// sequential order explains (SHIM_FAULT_DURABILITY=async shows it).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/fault/fault_util.h"
#include "tests/fault/linearizability_checker.h"
#include "tests/support/server_process.h"
#include "tests/support/test_seed.h"
#include "tests/support/test_util.h"

namespace shim::fault {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr int kHistoryClients = 8;
constexpr int kOpsPerClient = 450;
constexpr int kRegisters = 3;
constexpr int kCounters = 2;

std::string Register(int i) { return "lin/r" + std::to_string(i); }
std::string Counter(int i) { return "lin/n" + std::to_string(i); }

class Recorder {
 public:
  explicit Recorder(testing::ServerProcess& server) : server_(server), epoch_(SteadyClock::now()) {}

  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - epoch_)
        .count();
  }

  // Client thread body: kOpsPerClient requests, reconnecting after a kill.
  void RunClient(int c, uint32_t seed, std::vector<lin::Op>* out) {
    std::mt19937 rng(seed);
    std::map<std::string, uint64_t> seen_version;  // last version this client saw per key
    std::unique_ptr<net::LineClient> conn;
    uint64_t generation = 0;
    for (int i = 0; i < kOpsPerClient; ++i) {
      if (!conn) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return server_up_; });
        generation = generation_;
        lock.unlock();
        auto connected = server_.Connect();
        if (!connected.ok()) {
          WaitForNextGeneration(generation);
          --i;
          continue;
        }
        conn = std::move(connected).value();
      }
      lin::Op op;
      op.client = c;
      const int pick = std::uniform_int_distribution<int>(0, 99)(rng);
      const std::string r = Register(std::uniform_int_distribution<int>(0, kRegisters - 1)(rng));
      const std::string n = Counter(std::uniform_int_distribution<int>(0, kCounters - 1)(rng));
      const std::string value = "c" + std::to_string(c) + "-" + std::to_string(i);
      if (pick < 30) {
        op.method = "state.get";
        op.params = {{"key", pick < 20 ? r : n}};
      } else if (pick < 45) {
        op.method = "state.set";
        op.params = {{"key", r}, {"value", value}};
      } else if (pick < 65) {
        op.method = "state.set";
        op.params = {{"key", r}, {"value", value}, {"expected_version", seen_version[r]}};
      } else if (pick < 80) {
        op.method = "state.incr";
        op.params = {{"key", n}, {"by", std::uniform_int_distribution<int>(1, 3)(rng)}};
      } else if (pick < 93) {
        op.method = "state.txn";
        op.params = {
            {"compare", {{{"key", r}, {"version", seen_version[r]}}}},
            {"success", {{{"set", {{"key", r}, {"value", value}}}}, {{"incr", {{"key", n}}}}}},
            {"failure", {{{"incr", {{"key", n}, {"by", 100}}}}}}};
      } else {
        const std::string r2 = Register((std::stoi(r.substr(5)) + 1) % kRegisters);
        op.method = "state.txn";
        op.params = {{"compare", {{{"key", r}, {"version", seen_version[r]}}}},
                     {"success",
                      {{{"set", {{"key", r}, {"value", value}}}},
                       {{"set", {{"key", r2}, {"value", value}}}}}}};
      }
      op.invoke_ns = Now();
      Outcome o = Invoke(*conn, op.method, op.params, 15'000);
      op.response_ns = Now();
      if (o.lost()) {
        EXPECT_NE(o.status.code(), StatusCode::kTimeout)
            << "no reply in 15 s while the server was up";
        op.lost = true;
        op.response_ns = lin::kNever;  // set to the kill time once known
        conn.reset();
      } else if (o.ok()) {
        op.result = o.result;
      } else {
        op.error = o.status.code();
        op.error_details = o.status.details();
        EXPECT_TRUE(o.is(StatusCode::kVersionConflict)) << lin::Describe(op);
      }
      // Remember versions for the next CAS / compare.
      if (o.ok() && op.method == "state.get" && !o.result.is_null())
        seen_version[op.params["key"]] = U64(o.result, "version");
      if (o.ok() && op.method != "state.get" && op.method != "state.txn")
        seen_version[op.params["key"]] = U64(o.result, "version");
      if (o.is(StatusCode::kVersionConflict))
        seen_version[op.params["key"]] = U64(o.status.details(), "current_version");
      out->push_back(std::move(op));
      done_.fetch_add(1);
      if (!conn) WaitForNextGeneration(generation);
    }
  }

  void WaitForNextGeneration(uint64_t generation) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return generation_ != generation && server_up_; });
  }

  void SetServerDown() {
    std::lock_guard<std::mutex> lock(mu_);
    server_up_ = false;
  }
  void SetServerUp() {
    std::lock_guard<std::mutex> lock(mu_);
    server_up_ = true;
    ++generation_;
    cv_.notify_all();
  }

  std::atomic<int> done_{0};

 private:
  testing::ServerProcess& server_;
  const SteadyClock::time_point epoch_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool server_up_ = true;
  uint64_t generation_ = 1;
};

enum class Cut { kKillOnly, kPowerCut };

void RunHistory(Cut cut) {
  // SHIM_FAULT_DURABILITY (default sync) tests the harness, as in the crash
  // loop: with `async` and a power cut the history must not be linearizable.
  const char* durability = std::getenv("SHIM_FAULT_DURABILITY");
  testing::ServerProcess server({.durability = durability && *durability ? durability : "sync",
                                 .power_cut_journal = cut == Cut::kPowerCut});
  ASSERT_OK(server.Start());
  Recorder recorder(server);
  SHIM_TEST_SEED_TRACE(seed, std::nullopt);
  std::vector<std::vector<lin::Op>> per_client(kHistoryClients);
  std::vector<std::thread> threads;
  const auto started = SteadyClock::now();
  for (int c = 0; c < kHistoryClients; ++c) {
    threads.emplace_back(
        [&, c] { recorder.RunClient(c, seed + static_cast<uint32_t>(c), &per_client[c]); });
  }
  // Kill once, about halfway through.
  while (recorder.done_.load() < kHistoryClients * kOpsPerClient * 45 / 100) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  recorder.SetServerDown();
  server.Kill();
  const int64_t dead_ns = recorder.Now();  // after waitpid: nothing can happen past this
  std::string cut_report = "SIGKILL only";
  if (cut == Cut::kPowerCut) {
    auto report = server.CutPower();
    ASSERT_OK(report);
    cut_report = "power cut: " + report->ToString();
  }
  ASSERT_OK(server.Start());
  recorder.SetServerUp();
  for (auto& t : threads) t.join();
  const double run_s = std::chrono::duration<double>(SteadyClock::now() - started).count();

  std::vector<lin::Op> history;
  int lost = 0, errors = 0;
  for (auto& ops : per_client) {
    for (lin::Op& op : ops) {
      if (op.lost) {
        op.response_ns = dead_ns;
        ++lost;
      }
      errors += op.error.has_value();
      history.push_back(std::move(op));
    }
  }
  EXPECT_GT(lost, 0) << "the kill caught no request in flight";
  const auto check_start = SteadyClock::now();
  lin::CheckResult r = lin::Check(history);
  const double check_s = std::chrono::duration<double>(SteadyClock::now() - check_start).count();
  EXPECT_TRUE(r.ok) << r.message;
  std::cout << "[ fault ] linearizability: " << history.size() << " ops from " << kHistoryClients
            << " clients in " << run_s << " s (seed " << seed << "), " << errors << " conflicts, "
            << lost << " lost to the SIGKILL (" << cut_report << "); " << r.keys << " keys, "
            << r.ops << " per-key ops checked in " << check_s << " s (" << r.steps
            << " search steps): " << (r.ok ? "linearizable" : "NOT linearizable") << std::endl;
}

TEST(LinearizabilityTest, StateOperationsAcrossASigkillAreLinearizable) {
  RunHistory(Cut::kKillOnly);
}

TEST(LinearizabilityTest, StateOperationsAcrossAPowerCutAreLinearizable) {
  RunHistory(Cut::kPowerCut);
}

}  // namespace
}  // namespace shim::fault

// Crash test: `shim serve --durability sync` is SIGKILLed while clients
// write and publish. Every acknowledged write and publish must survive the
// restart, channel logs must have no gap, and the revision must not go back.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::ServerProcess;

constexpr int kThreads = 8;
constexpr int kKeysPerThread = 4;
using testing::kCallTimeoutMs;
const std::string kShared = "crash.shared";

std::string KeyName(int thread, int k) {
  return "crash/t" + std::to_string(thread) + "/k" + std::to_string(k);
}
std::string OwnChannel(int thread) { return "crash.t" + std::to_string(thread); }

// What the clients saw acknowledged, across rounds.
struct Acks {
  std::mutex mu;
  std::map<std::string, uint64_t> key_version;                       // highest acked version
  std::map<std::string, std::map<uint64_t, json>> channel_messages;  // channel -> seq -> data
  uint64_t max_revision = 0;
  std::map<int, int> writes_per_thread;  // acknowledged writes this round
};

// One writer: alternates state.set on its own keys (value {"t", "v"} where
// v is the version the write creates: one writer per key makes that
// deterministic) and publishes to its own channel and a shared one. Records
// each acknowledgement; stops at the first error (the server was killed).
void Writer(const ServerProcess& server, int round, int t,
            std::map<std::string, uint64_t> start_versions, Acks* acks, std::atomic<bool>* stop) {
  auto connected = server.Connect();
  if (!connected.ok()) return;
  auto& client = *connected;
  std::map<std::string, uint64_t> version = std::move(start_versions);
  int published = 0;
  for (int i = 0; !stop->load(); ++i) {
    if (i % 2 == 0) {
      const std::string key = KeyName(t, (i / 2) % kKeysPerThread);
      const uint64_t v = version[key] + 1;
      auto r = client->Call("state.set", {{"key", key}, {"value", {{"t", t}, {"v", v}}}},
                            kCallTimeoutMs);
      if (!r.ok()) return;
      // Fail loudly but keep going: the assertion is in the verifier.
      EXPECT_EQ((*r)["version"], v) << key;
      version[key] = v;
      std::lock_guard<std::mutex> lock(acks->mu);
      acks->key_version[key] = std::max(acks->key_version[key], v);
      acks->max_revision = std::max(acks->max_revision, (*r)["revision"].get<uint64_t>());
      ++acks->writes_per_thread[t];
    } else {
      const std::string channel = (i % 4 == 1) ? OwnChannel(t) : kShared;
      json data = {{"r", round}, {"t", t}, {"p", ++published}, {"channel", channel}};
      auto r =
          client->Call("pubsub.publish", {{"channel", channel}, {"data", data}}, kCallTimeoutMs);
      if (!r.ok()) return;
      const uint64_t seq = (*r)["seq"].get<uint64_t>();
      std::lock_guard<std::mutex> lock(acks->mu);
      auto [it, fresh] = acks->channel_messages[channel].emplace(seq, data);
      EXPECT_TRUE(fresh) << channel << " seq " << seq << " acknowledged twice";
      ++acks->writes_per_thread[t];
    }
  }
}

// Reads a channel's whole log with pubsub.history.
void ReadHistory(net::LineClient& client, const std::string& channel, std::vector<json>* out) {
  uint64_t from = 1;
  for (int page = 0; page < 10'000; ++page) {
    ASSERT_OK_AND_ASSIGN(
        json h,
        client.Call("pubsub.history", {{"channel", channel}, {"from_seq", from}, {"limit", 1000}},
                    kCallTimeoutMs));
    const json& messages = h["messages"];
    if (messages.empty()) return;
    for (const json& m : messages) out->push_back(m);
    from = h["next_seq"].get<uint64_t>();
  }
  FAIL() << "history of " << channel << " did not end";
}

// Checks the restarted server against everything acknowledged so far;
// returns the versions found, to continue from.
void Verify(const ServerProcess& server, Acks& acks, std::map<std::string, uint64_t>* found) {
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  ASSERT_OK_AND_ASSIGN(json ping, client->Call("sys.ping", json::object(), kCallTimeoutMs));
  EXPECT_GE(ping["revision"].get<uint64_t>(), acks.max_revision)
      << "the revision went back across the crash";

  int landed_unacked = 0;  // writes cut off before their reply, yet durable
  for (int t = 0; t < kThreads; ++t) {
    for (int k = 0; k < kKeysPerThread; ++k) {
      const std::string key = KeyName(t, k);
      ASSERT_OK_AND_ASSIGN(json got, client->Call("state.get", {{"key", key}}, kCallTimeoutMs));
      const uint64_t acked = acks.key_version.count(key) ? acks.key_version[key] : 0;
      if (got.is_null()) {
        EXPECT_EQ(acked, 0u) << key << ": acknowledged at version " << acked << " but gone";
        (*found)[key] = 0;
        continue;
      }
      const uint64_t version = got["version"].get<uint64_t>();
      EXPECT_GE(version, acked) << key << ": acknowledged version lost";
      // One writer per key with one request in flight: at most one
      // unacknowledged write can have landed.
      EXPECT_LE(version, acked + 1) << key << ": a write nobody sent";
      EXPECT_EQ(got["value"], json({{"t", t}, {"v", version}}))
          << key << ": value does not match its version";
      EXPECT_LE(got["revision"].get<uint64_t>(), ping["revision"].get<uint64_t>()) << key;
      if (version > acked) ++landed_unacked;
      (*found)[key] = version;
    }
  }

  for (auto& [channel, acked] : acks.channel_messages) {
    std::vector<json> log;
    ASSERT_NO_FATAL_FAILURE(ReadHistory(*client, channel, &log));
    for (size_t i = 0; i < log.size(); ++i) {
      ASSERT_EQ(log[i]["seq"], i + 1) << channel << ": gap in the log at position " << i;
    }
    for (const auto& [seq, data] : acked) {
      ASSERT_LE(seq, log.size()) << channel << ": acknowledged seq " << seq << " lost";
      EXPECT_EQ(log[seq - 1]["data"], data) << channel << " seq " << seq;
    }
    // Unacknowledged publishes that landed: at most one per writer in flight.
    const size_t max_extra = channel == kShared ? kThreads : 1;
    EXPECT_LE(log.size(), acked.rbegin()->first + max_extra) << channel;
    landed_unacked += static_cast<int>(log.size() - acked.size());
    // A publish is never stored twice: every (round, writer, count) appears once.
    std::map<std::tuple<int, int, int>, int> seen;
    for (const json& m : log) {
      const json& d = m["data"];
      const std::tuple<int, int, int> id(d["r"].get<int>(), d["t"].get<int>(), d["p"].get<int>());
      EXPECT_EQ(++seen[id], 1) << channel << " " << m.dump();
    }
  }
  std::cout << "[ info ] " << landed_unacked
            << " unacknowledged writes/publishes turned out durable (keys: this kill; channels: "
               "all kills so far)"
            << std::endl;
}

TEST(KillTest, AcknowledgedWritesAndPublishesSurviveSigkill) {
  ServerProcess server({.durability = "sync", .extra_args = {}});
  ASSERT_OK(server.Start());
  Acks acks;
  std::map<std::string, uint64_t> versions;

  // Two rounds: write, SIGKILL mid-stream, restart, verify; the second round
  // continues on the recovered store and is checked against both.
  for (int round = 0; round < 2; ++round) {
    acks.writes_per_thread.clear();
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
      std::map<std::string, uint64_t> start;
      for (int k = 0; k < kKeysPerThread; ++k) start[KeyName(t, k)] = versions[KeyName(t, k)];
      writers.emplace_back(Writer, std::cref(server), round, t, std::move(start), &acks, &stop);
    }
    // Let the writers get going, then kill while requests are in flight.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::lock_guard<std::mutex> lock(acks.mu);
      bool all_busy = acks.writes_per_thread.size() == kThreads &&
                      std::all_of(acks.writes_per_thread.begin(), acks.writes_per_thread.end(),
                                  [](auto& p) { return p.second >= 20; });
      if (all_busy || std::chrono::steady_clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    server.Kill();
    stop = true;
    for (auto& w : writers) w.join();

    int total = 0;
    for (int t = 0; t < kThreads; ++t) {
      EXPECT_GT(acks.writes_per_thread[t], 0)
          << "writer " << t << " got nothing acknowledged in round " << round;
      total += acks.writes_per_thread[t];
    }
    std::cout << "[ info ] round " << round << ": " << total
              << " acknowledged writes and publishes before SIGKILL" << std::endl;

    ASSERT_OK(server.Start());
    versions.clear();
    ASSERT_NO_FATAL_FAILURE(Verify(server, acks, &versions));
  }

  // The recovered server takes new writes at the next versions and seqs.
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  const std::string key = KeyName(0, 0);
  ASSERT_OK_AND_ASSIGN(
      json set, client->Call("state.set", {{"key", key}, {"value", "after"}}, kCallTimeoutMs));
  EXPECT_EQ(set["version"], versions[key] + 1);
  EXPECT_GT(set["revision"].get<uint64_t>(), acks.max_revision);
  std::vector<json> log;
  ASSERT_NO_FATAL_FAILURE(ReadHistory(*client, kShared, &log));
  ASSERT_OK_AND_ASSIGN(
      json pub,
      client->Call("pubsub.publish", {{"channel", kShared}, {"data", "after"}}, kCallTimeoutMs));
  EXPECT_EQ(pub["seq"], log.size() + 1);
}

}  // namespace
}  // namespace shim

// The crash loop's driver (tests/fault/crash_loop.h): set-up, the kills, the
// faults during recovery, the restarts, and the report.
#include "tests/fault/crash_loop.h"

#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "storage/failpoint.h"
#include "tests/support/test_util.h"

namespace shim::fault {

using nlohmann::json;

namespace {

std::string Tail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
}

int64_t MsSince(SteadyTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t).count();
}

// The recovery failpoints (storage/failpoint.h), each hit once per record its
// module reads at open, and how many records of that module the loop keeps
// at least (after the first round), so that a hit number up to it fires.
struct RecoveryFailpoint {
  const char* name;
  int records;
};
constexpr RecoveryFailpoint kRecoveryFailpoints[] = {
    {"recovery.mid_scan", 60},  // state keys
    {"recovery.leases", 1},    {"recovery.locks", 1},  {"recovery.pubsub", 12},
    {"recovery.workers", 4},   {"recovery.tasks", 40}, {"recovery.sessions", 16},
};

}  // namespace

CrashLoop::CrashLoop(CrashLoopOptions options)
    : options_(std::move(options)),
      server_({.durability = options_.durability, .extra_args = {}, .env = {}}),
      tally_(options_.expect_violations),
      rng_(options_.seed) {
  server_.options().power_cut_journal = options_.power_cut;
}

void CrashLoop::StartServer() {
  Status s = server_.Start();
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << Tail(server_.log_path());
}

void CrashLoop::KillServer() { server_.Kill(); }

void CrashLoop::AfterDeath() {
  if (options_.power_cut) {
    auto cut = server_.CutPower();
    ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  }
  if (options_.between_kill_and_restart) options_.between_kill_and_restart(server_.data_dir());
}

void CrashLoop::Setup() {
  ASSERT_OK_AND_ASSIGN(auto c, server_.Connect());
  auto must = [&](const std::string& method, const json& params) {
    Outcome o = Invoke(*c, method, params, kCallTimeoutMs);
    EXPECT_TRUE(o.ok()) << method << ": " << o.status.ToString();
  };
  for (const char* q : {kQueue, kDagQueue}) {
    must("queue.configure",
         {{"queue", q}, {"keep_completed", 10'000'000}, {"keep_failed", 10'000'000}});
  }
  std::vector<std::string> channels = {kSharedChannel, EventsChannel(kQueue),
                                       EventsChannel(kDagQueue)};
  for (int i = 0; i < kCrashLoopClients; ++i) channels.push_back(OwnChannel(i));
  for (const std::string& ch : channels) {
    must("pubsub.configure",
         {{"channel", ch}, {"max_messages", 100'000'000}, {"max_age_ms", 86'400'000LL * 365}});
  }
  std::lock_guard<std::mutex> lock(ledger_.mu);
  for (int i = 0; i < kCrashLoopClients; ++i) {
    must("session.open", {{"session_id", SessionId(i)},
                          {"heartbeat_ttl_ms", 7LL * 86'400'000},
                          {"keep_checkpoints", 10'000}});
    must("session.open", {{"session_id", AutoSessionId(i)},
                          {"heartbeat_ttl_ms", 7LL * 86'400'000},
                          {"keep_checkpoints", kAutoKeep}});
    // Every key a client owns, absent at first: the verifier reads them all.
    OwnKeys& own = ledger_.own[i];
    for (int k = 0; k < kOwnKeys; ++k) own.acked[OwnKey(i, k)];
    for (const std::string& k : {CounterKey(i), PairKey(i, 'x'), PairKey(i, 'y'), PairFailsKey(i)})
      own.acked[k];
    for (int k = 0; k < kTtlKeys; ++k) ledger_.ttl[TtlKeyName(i, k)];
    ledger_.leases[i];
    ledger_.workers[i];
    ledger_.autos[i];
    ledger_.channels[OwnChannel(i)];
  }
  ledger_.channels[kSharedChannel];
  Outcome info = Invoke(*c, "sys.info", json::object());
  restart_revision_ = U64(info.result, "revision");
}

void CrashLoop::WaitParked() {
  std::unique_lock<std::mutex> lock(gate_.mu);
  const bool all = gate_.cv.wait_for(lock, std::chrono::seconds(60),
                                     [&] { return gate_.parked == kCrashLoopClients; });
  ASSERT_TRUE(all) << "clients did not notice the kill within 60 s";
}

void CrashLoop::Resume() {
  std::lock_guard<std::mutex> lock(gate_.mu);
  gate_.parked = 0;
  ++gate_.generation;
  gate_.cv.notify_all();
}

void CrashLoop::Restart(SteadyTime killed) {
  RestartInfo info;
  {
    std::lock_guard<std::mutex> lock(ledger_.mu);
    info = ledger_.restart;
  }
  if (info.killed != killed) {  // a new round; a double kill keeps the round's kill
    info.killed = killed;
    info.killed_wall_ms = WallMs();
    info.longest_between_ms = 0;
  }
  AfterDeath();
  const int fault = std::uniform_int_distribution<int>(0, 7)(rng_);
  if (fault == 0) {
    // Killed while recovering: before it answers, RocksDB may be replaying
    // its WAL, writing a new MANIFEST, flushing; the engine loading.
    const SteadyTime spawned = SteadyClock::now();
    ASSERT_OK(server_.Spawn());
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, ready_ms_)(rng_)));
    KillServer();
    ++recovery_kills_;
    info.longest_between_ms = std::max(info.longest_between_ms, MsSince(spawned));
    AfterDeath();
  } else if (fault == 1) {
    // Dies at a recovery failpoint: in the middle of one module's scan.
    const RecoveryFailpoint& fp = kRecoveryFailpoints[std::uniform_int_distribution<size_t>(
        0, std::size(kRecoveryFailpoints) - 1)(rng_)];
    const int at = std::uniform_int_distribution<int>(1, fp.records)(rng_);
    server_.options().env = {std::string("SHIM_FAILPOINTS=") + fp.name + ":crash@" +
                             std::to_string(at)};
    const SteadyTime spawned = SteadyClock::now();
    const Status s = server_.Start();
    server_.options().env.clear();
    if (!s.ok()) {
      ASSERT_EQ(server_.last_exit_status(), failpoint::kFailpointExitCode)
          << fp.name << "@" << at << ": " << s.ToString() << "\n"
          << Tail(server_.log_path());
      ++failpoint_deaths_;
      tally_.Note(std::string("deaths at ") + fp.name);
      info.longest_between_ms = std::max(info.longest_between_ms, MsSince(spawned));
      AfterDeath();
    } else {
      // Fewer records than `at`: it recovered, armed, and serves (recovery
      // failpoints are not reached again).
      ++failpoints_unfired_;
      ready_ms_ = MsSince(spawned);
      info.started = spawned;
      std::lock_guard<std::mutex> lock(ledger_.mu);
      ledger_.restart = info;
      return;
    }
  }
  const SteadyTime spawned = SteadyClock::now();
  StartServer();
  ready_ms_ = MsSince(spawned);
  info.started = spawned;
  std::lock_guard<std::mutex> lock(ledger_.mu);
  ledger_.restart = info;
}

void CrashLoop::Run() {
  const auto started = SteadyClock::now();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  {
    std::lock_guard<std::mutex> lock(ledger_.mu);
    ledger_.restart.started = SteadyClock::now();
  }
  ASSERT_NO_FATAL_FAILURE(Setup());
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kCrashLoopClients; ++i) {
    clients.push_back(
        std::make_unique<Client>(*this, i, options_.seed * 7919u + static_cast<uint32_t>(i)));
    threads.emplace_back([c = clients.back().get()] { c->Run(); });
  }
  // Stops and joins the clients however Run ends (a fatal assertion, an
  // exception the test framework catches).
  struct Finish {
    Finish(CrashLoop& l, std::vector<std::thread>& t) : loop(l), threads(t) {}
    Finish(const Finish&) = delete;
    CrashLoop& loop;
    std::vector<std::thread>& threads;
    ~Finish() {
      {
        std::lock_guard<std::mutex> lock(loop.gate_.mu);
        loop.gate_.stop = true;
        loop.gate_.cv.notify_all();
      }
      loop.server_.Kill();  // unblocks any client still talking
      for (auto& t : threads) t.join();
      threads.clear();
    }
  };
  std::optional<Finish> finish;
  finish.emplace(*this, threads);

  int next_report = 50;
  int kill = 1;
  uint64_t acked_before = 0;
  // Where the time goes: load, noticing the kill, restarts (faults
  // included), verification.
  double load_s = 0, park_s = 0, restart_s = 0, verify_s = 0;
  auto since = [](SteadyTime t) {
    return std::chrono::duration<double>(SteadyClock::now() - t).count();
  };
  for (; kill <= options_.kills && !::testing::Test::HasFatalFailure(); ++kill) {
    const SteadyTime resumed = SteadyClock::now();
    Resume();
    const uint64_t acked_at_start = acked_ops_.load();
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 700)(rng_)));
    // A slow server (a sanitized build, a loaded machine) gets more time, so
    // that every round carries some load and each kind its share of it.
    while (acked_ops_.load() - acked_at_start < kMinAckedPerRound && since(resumed) < 10) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const SteadyTime killed = SteadyClock::now();
    load_s += since(resumed);
    KillServer();
    WaitParked();
    park_s += since(killed);
    const SteadyTime restarting = SteadyClock::now();
    if (::testing::Test::HasFatalFailure()) break;
    {
      std::lock_guard<std::mutex> lock(ledger_.mu);
      for (auto& [name, grants] : ledger_.lock_grants) {
        if (!grants.empty()) ledger_.tokens_before_restart[name] = grants.rbegin()->first;
      }
    }
    Restart(killed);
    if (::testing::Test::HasFatalFailure()) break;
    if (std::uniform_int_distribution<int>(0, 9)(rng_) == 0 && kill < options_.kills) {
      // Kill the freshly recovered server again before anyone is back.
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 30)(rng_)));
      SteadyTime spawned;
      {
        std::lock_guard<std::mutex> lock(ledger_.mu);
        spawned = ledger_.restart.started;
        ledger_.restart.longest_between_ms =
            std::max(ledger_.restart.longest_between_ms, MsSince(spawned));
      }
      KillServer();
      Restart(killed);
      ++kill;
      ++double_kills_;
      if (::testing::Test::HasFatalFailure()) break;
    }
    const uint64_t failed_before = tally_.failed();
    const SteadyTime verifying = SteadyClock::now();
    restart_s += since(restarting);
    Verify(false);
    verify_s += since(verifying);
    if (options_.expect_violations && tally_.failed() > failed_before) break;
    if (options_.kills >= 100 && kill >= next_report) {
      next_report += 50;
      std::cout << "[ fault ] " << kill << "/" << options_.kills << " kills, "
                << std::chrono::duration<double>(SteadyClock::now() - started).count() << " s, "
                << tally_.passed() << " checks passed, " << tally_.failed() << " failed"
                << std::endl;
    }
    const uint64_t acked_now = acked_ops_.load();
    if (acked_now == acked_before) tally_.Note("rounds in which no request was acknowledged");
    acked_before = acked_now;
  }
  tally_.Expect(acked_ops_.load() > 0, "the server serves after restarts",
                "nothing was ever acknowledged");
  if (!::testing::Test::HasFatalFailure() && !(options_.expect_violations && tally_.failed() > 0)) {
    ASSERT_OK_AND_ASSIGN(auto c, server_.Connect());
    Settle(*c);
    final_pass_ = true;
    Verify(true);
  }
  finish.reset();
  const double secs = std::chrono::duration<double>(SteadyClock::now() - started).count();
  std::cout << "[ fault ] crash loop: " << std::min(kill, options_.kills) << " kills ("
            << double_kills_ << " of them right after a recovery), " << recovery_kills_
            << " kills during recovery, " << failpoint_deaths_ << " deaths at recovery failpoints ("
            << failpoints_unfired_ << " armed but not reached), durability " << options_.durability
            << ", seed " << options_.seed << ", " << secs << " s (load " << load_s
            << " s, noticing kills " << park_s << " s, restarts " << restart_s
            << " s, checks after restarts " << verify_s << " s)\n"
            << "[ fault ] requests: " << acked_ops_.load() << " acknowledged, "
            << refused_ops_.load() << " refused (errors), " << lost_ops_.load()
            << " lost to a kill\n"
            << "[ fault ] checks passed: " << tally_.passed() << ", failed: " << tally_.failed()
            << "\n"
            << "  acknowledged by kind:" << tally_.LoadSummary() << "\n"
            << "  checks by kind:" << tally_.Summary() << std::endl;
}

void CrashLoop::ExpectMinimumLoad() {
  for (size_t i = 0; i < kLoadInfo.size(); ++i) {
    const Load load = static_cast<Load>(i);
    const uint64_t min = std::max<uint64_t>(
        1, static_cast<uint64_t>(std::floor(kLoadInfo[i].min_per_kill * options_.kills)));
    EXPECT_GE(tally_.acked(load), min)
        << "too few acknowledged: " << kLoadInfo[i].name << " (at least "
        << kLoadInfo[i].min_per_kill << " per kill): the load stopped running it, or "
        << "the server refused it";
  }
}

}  // namespace shim::fault

// The crash loop (tests/fault/crash_loop.h, docs/fault-testing.md): a real
// `shim serve --durability sync` under a mixed load from 8 clients, SIGKILLed
// at random moments (and during recovery, and at recovery failpoints),
// restarted, and checked after every restart against everything that was
// acknowledged; and two runs that must fail, to show the checks have teeth.
//
// Knobs: SHIM_FAULT_KILLS (default 20, 8 under a sanitizer; `make fault-soak` 500), SHIM_FAULT_SEED
// (or SHIM_TEST_SEED; default random, printed), SHIM_FAULT_DURABILITY (sync).
#include "tests/fault/crash_loop.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "tests/support/test_seed.h"
#include "tests/support/test_util.h"

namespace shim::fault {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// SHIM_FAULT_SEED (what `make fault-soak FAULT_SEED=` sets) wins over
// SHIM_TEST_SEED; either replays a run as far as timing allows.
uint32_t CrashLoopSeed() {
  const char* v = std::getenv("SHIM_FAULT_SEED");
  if (v && *v) {
    const auto seed = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    std::cout << "[ seed ] SHIM_FAULT_SEED=" << seed << std::endl;
    return seed;
  }
  return testing::TestSeed(std::nullopt);
}

TEST(CrashLoopTest, MixedLoadSurvivesRepeatedSigkill) {
  const uint32_t seed = CrashLoopSeed();
  SCOPED_TRACE(testing::SeedMessage(seed));
  const char* durability = std::getenv("SHIM_FAULT_DURABILITY");
  CrashLoopOptions options;
  options.kills = EnvInt("SHIM_FAULT_KILLS", testing::SanitizedLoad(20, 8));
  options.seed = seed;
  options.durability = durability && *durability ? durability : "sync";
  options.power_cut = EnvInt("SHIM_FAULT_POWER_CUT", 0) != 0;
  std::cout << "[ fault ] SHIM_FAULT_KILLS=" << options.kills << " SHIM_FAULT_SEED=" << seed
            << " SHIM_FAULT_DURABILITY=" << options.durability
            << " SHIM_FAULT_POWER_CUT=" << options.power_cut << std::endl;
  CrashLoop loop(options);
  loop.Run();
  EXPECT_EQ(loop.tally().failed(), 0u);
  EXPECT_GT(loop.tally().passed(), 0u);
  loop.ExpectMinimumLoad();
}

// The same loop where every kill is a power cut: SIGKILL keeps the page
// cache, so only this shows that `sync` really syncs before it answers.
TEST(CrashLoopTest, MixedLoadSurvivesPowerCuts) {
  const uint32_t seed = CrashLoopSeed();
  SCOPED_TRACE(testing::SeedMessage(seed));
  CrashLoopOptions options;
  options.kills = EnvInt("SHIM_FAULT_POWER_CUTS", testing::SanitizedLoad(8, 4));
  options.seed = seed;
  options.power_cut = true;
  std::cout << "[ fault ] power cuts: SHIM_FAULT_POWER_CUTS=" << options.kills << " seed " << seed
            << std::endl;
  CrashLoop loop(options);
  loop.Run();
  EXPECT_EQ(loop.tally().failed(), 0u);
  EXPECT_GT(loop.tally().passed(), 0u);
}

// The checks that see acknowledged data lost. A run that must fail must fail
// on these, not on anything else (a harness error would also "fail").
const char* const kDataLossChecks[] = {
    "own keys: the acked state, or it plus the lost request, exactly",
    "acked publishes present with their data",
    "acked submits present",
    "acked completes present with their result",
    "acked fails present with their error",
    "acked final fails stay failed",
    "acked recoveries are not offered again",
    "acked session closes stay closed",
    "acked checkpoints present with their data",
    "acked shared CAS present",
    "acked txn transfers present",
    "acked fenced writes present",
    "revision never goes down",
    "acked claims present in the task's attempts",
    "acked checkpoint.auto saves present, and no others",
    "acked worker registrations and deregistrations present",
    "TTL keys live until their TTL, across restarts",
    "keys set with a live lease stay",
    "live leases survive restarts with a full TTL",
    "messages pushed to subscribers are in the log",
    "reads of acknowledged objects succeed",
    "acked lock releases stay released",
    "a held lock's token is its newest grant",
};

// Runs the loop where it must fail, with a random seed (named in every
// failure) and expect_violations set (violations are counted, not
// reported), and expects at least `min_kinds` kinds of data-loss check to
// have caught it.
void RunExpectingDataLoss(CrashLoopOptions options, int min_kinds) {
  SHIM_TEST_SEED_TRACE(seed, std::nullopt);
  options.seed = seed;
  options.expect_violations = true;
  CrashLoop loop(options);
  loop.Run();
  const auto failed = loop.tally().failed_by_category();
  int kinds = 0;
  std::string which;
  for (const char* check : kDataLossChecks) {
    if (auto it = failed.find(check); it != failed.end()) {
      ++kinds;
      which += std::string("\n  ") + check + ": " + std::to_string(it->second);
    }
  }
  std::cout << "[ fault ] data-loss checks that failed, as they must:" << which << std::endl;
  EXPECT_GE(kinds, min_kinds)
      << "the loop ran with acknowledged writes lost and its checks did not see it";
}

// --durability none acknowledges a write once it is in the memtable, with no
// WAL at all: a SIGKILL loses every write since the last flush, which is what
// a power cut does to a `sync` that stopped syncing. The loop must fail, in
// its data-loss checks, within a few kills.
TEST(CrashLoopTeethTest, DurabilityNoneLosesAcknowledgedWritesAndTheChecksSeeIt) {
  CrashLoopOptions options;
  options.kills = 5;
  options.durability = "none";
  RunExpectingDataLoss(options, 2);
}

// `async` acknowledges before the WAL is synced: under SIGKILL alone the
// page cache keeps every write and the loop passes, but a power cut loses
// what was not synced yet, and the loop must see it. A cut that falls just
// after a background sync loses nothing acknowledged (about one in four
// do), so the loop may take several cuts; it stops at the first violation,
// and 40 leave a miss once in ~10^5 runs.
TEST(CrashLoopTeethTest, AsyncUnderPowerCutsLosesAcknowledgedWritesAndTheChecksSeeIt) {
  CrashLoopOptions options;
  options.kills = 40;
  options.durability = "async";
  options.power_cut = true;
  RunExpectingDataLoss(options, 1);
}

// Empties the newest WAL file of a RocksDB directory: the acknowledged,
// fsynced groups written since it was opened are gone, as a power cut would
// leave them if fsync had lied. The newest WAL holds only writes still in
// the active memtables (a memtable switch opens a new WAL, and only switched
// memtables are flushed), so the store left behind is a consistent prefix
// that RocksDB opens. How much it holds varies: the store switches memtables
// often (an 8 MiB budget shared by twelve families), so a round may lose
// only a little, or nothing acknowledged.
void EmptyNewestWal(const std::string& data_dir) {
  std::filesystem::path newest;
  for (const auto& e : std::filesystem::directory_iterator(data_dir)) {
    if (e.path().extension() == ".log" &&
        (newest.empty() || e.path().filename() > newest.filename()))
      newest = e.path();
  }
  if (!newest.empty()) std::filesystem::resize_file(newest, 0);
}

// The hook between kill and restart (where the power-cut mode goes) with a
// damage that loses acknowledged writes under `sync`: the loop must fail.
TEST(CrashLoopTeethTest, LostWalTailBetweenKillAndRestartIsSeen) {
  RunExpectingDataLoss(
      {.kills = 10, .durability = "sync", .between_kill_and_restart = EmptyNewestWal}, 1);
}

}  // namespace
}  // namespace shim::fault

// Store: column families, commits, scans, reopen, durability modes, atomic
// batches; and the store-wide revision kept by the engine across reopen.
#include "storage/store.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/clock.h"
#include "engine/engine.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim::storage {
namespace {

using KV = std::vector<std::pair<std::string, std::string>>;

std::vector<Family> AllFamilies() {
  std::vector<Family> out;
  for (size_t i = 0; i < static_cast<size_t>(Family::kCount); ++i)
    out.push_back(static_cast<Family>(i));
  return out;
}

std::optional<std::string> ReadKv(const Store& store, const std::string& key) {
  auto r = store.Get(Family::kKv, key);
  EXPECT_OK(r);
  return r.ok() ? r.value() : std::nullopt;
}

class StoreTest : public ::testing::Test {
 protected:
  void Open(Durability d = Durability::kSync) {
    StoreOptions o;
    o.path = dir_.Sub("db");
    o.durability = d;
    ASSERT_OK_AND_ASSIGN(store_, Store::Open(o));
  }
  void Reopen(Durability d = Durability::kSync) {
    ASSERT_OK(store_->Close());
    store_.reset();
    ASSERT_NO_FATAL_FAILURE(Open(d));
  }
  std::optional<std::string> Get(Family f, const std::string& key) {
    auto r = store_->Get(f, key);
    EXPECT_OK(r);
    return r.ok() ? r.value() : std::nullopt;
  }
  KV ScanAll(Family f, std::string_view begin = "", std::string_view end = "") {
    KV out;
    EXPECT_OK(store_->Scan(f, begin, end, [&](std::string_view k, std::string_view v) {
      out.emplace_back(std::string(k), std::string(v));
      return true;
    }));
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, CommitThenGetAndScanEachFamilySeparately) {
  ASSERT_NO_FATAL_FAILURE(Open());
  WriteBatch b(*store_);
  EXPECT_TRUE(b.empty());
  for (Family f : AllFamilies()) {
    b.Put(f, "shared", FamilyName(f));
    b.Put(f, std::string("only_") + FamilyName(f), "x");
  }
  EXPECT_EQ(b.count(), 2 * static_cast<uint32_t>(Family::kCount));
  EXPECT_GT(b.bytes(), 0u);
  // Nothing is visible before Commit.
  EXPECT_FALSE(Get(Family::kKv, "shared").has_value());
  ASSERT_OK(store_->Commit(b));

  for (Family f : AllFamilies()) {
    EXPECT_EQ(Get(f, "shared"), std::string(FamilyName(f))) << FamilyName(f);
    KV all = ScanAll(f);
    ASSERT_EQ(all.size(), 2u) << FamilyName(f) << ": a family sees only its own keys";
    EXPECT_EQ(all[0].first, std::string("only_") + FamilyName(f));
    EXPECT_EQ(all[1].first, "shared");
  }
  EXPECT_FALSE(Get(Family::kKv, "only_channel_log").has_value());
  EXPECT_FALSE(Get(Family::kKv, "absent").has_value());
}

TEST_F(StoreTest, ScanHonoursBoundsOrderAndEarlyStop) {
  ASSERT_NO_FATAL_FAILURE(Open());
  WriteBatch b(*store_);
  for (const char* k : {"d", "a", "c", "e", "b"}) b.Put(Family::kKv, k, k);
  b.Put(Family::kKv, std::string("b\0x", 3), "binary");
  ASSERT_OK(store_->Commit(b));

  KV all = ScanAll(Family::kKv);
  std::vector<std::string> keys;
  for (auto& [k, v] : all) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", std::string("b\0x", 3), "c", "d", "e"}));
  EXPECT_EQ(all[2].second, "binary");

  KV range = ScanAll(Family::kKv, "b", "d");  // [b, d)
  ASSERT_EQ(range.size(), 3u);
  EXPECT_EQ(range.front().first, "b");
  EXPECT_EQ(range.back().first, "c");
  EXPECT_EQ(ScanAll(Family::kKv, "bb").front().first, "c") << "begin need not exist";
  EXPECT_TRUE(ScanAll(Family::kKv, "f").empty());

  int seen = 0;
  ASSERT_OK(store_->Scan(Family::kKv, "", "",
                         [&](std::string_view, std::string_view) { return ++seen < 2; }));
  EXPECT_EQ(seen, 2) << "Scan stops when fn returns false";
}

TEST_F(StoreTest, ReopenKeepsEverything) {
  ASSERT_NO_FATAL_FAILURE(Open());
  for (int round = 0; round < 3; ++round) {  // several commits, several memtables' worth of work
    WriteBatch b(*store_);
    for (Family f : AllFamilies()) {
      for (int i = 0; i < 50; ++i) {
        b.Put(f, "k" + std::to_string(round) + "_" + std::to_string(i),
              std::string(100, char('a' + i % 26)));
      }
    }
    ASSERT_OK(store_->Commit(b));
  }
  WriteBatch del(*store_);
  del.Delete(Family::kKv, "k0_0");
  ASSERT_OK(store_->Commit(del));

  ASSERT_NO_FATAL_FAILURE(Reopen());
  for (Family f : AllFamilies()) {
    const size_t want = f == Family::kKv ? 149 : 150;
    EXPECT_EQ(ScanAll(f).size(), want) << FamilyName(f);
    EXPECT_EQ(Get(f, "k2_49"), std::string(100, char('a' + 49 % 26))) << FamilyName(f);
  }
  EXPECT_FALSE(Get(Family::kKv, "k0_0").has_value()) << "a delete survives reopen too";
  EXPECT_TRUE(Get(Family::kMeta, "k0_0").has_value());
}

TEST_F(StoreTest, EachDurabilityModeOpensCommitsAndKeepsDataAcrossCleanReopen) {
  for (Durability d : {Durability::kSync, Durability::kAsync, Durability::kNone}) {
    SCOPED_TRACE(DurabilityName(d));
    testing::TempDir dir;
    StoreOptions o;
    o.path = dir.Sub("db");
    o.durability = d;
    {
      ASSERT_OK_AND_ASSIGN(auto store, Store::Open(o));
      EXPECT_EQ(store->durability(), d);
      for (int i = 0; i < 10; ++i) {
        WriteBatch b(*store);
        b.Put(Family::kKv, "k" + std::to_string(i), DurabilityName(d));
        ASSERT_OK(store->Commit(b));
      }
      EXPECT_EQ(ReadKv(*store, "k9"), std::string(DurabilityName(d)));
      StoreStats st = store->stats();
      EXPECT_EQ(st.commits, 10u);
      EXPECT_EQ(st.committed_ops, 10u);
      if (d == Durability::kSync) {
        EXPECT_EQ(st.fsyncs, 10u) << "sync: every commit fsyncs";
      }
      if (d == Durability::kNone) {
        EXPECT_EQ(st.fsyncs, 0u) << "none: no fsync per commit";
      }

      // force_sync fsyncs whatever the mode (checkpoints).
      const uint64_t fsyncs = store->stats().fsyncs;
      WriteBatch forced(*store);
      forced.Put(Family::kCheckpoints, "cp", "data");
      ASSERT_OK(store->Commit(forced, /*force_sync=*/true));
      EXPECT_GE(store->stats().fsyncs, fsyncs + 1);
      WriteBatch late(*store);  // built while open: a batch must not outlive its store's handles
      late.Put(Family::kKv, "late", "x");
      ASSERT_OK(store->Close());
      ASSERT_OK(store->Close());  // Close is idempotent
      EXPECT_FALSE(store->Get(Family::kKv, "k0").ok()) << "a closed store refuses reads";
      EXPECT_FALSE(store->Commit(late).ok()) << "a closed store refuses commits";
    }
    o.durability = Durability::kSync;
    ASSERT_OK_AND_ASSIGN(auto reopened, Store::Open(o));
    for (int i = 0; i < 10; ++i)
      EXPECT_EQ(ReadKv(*reopened, "k" + std::to_string(i)), std::string(DurabilityName(d)));
    auto cp = reopened->Get(Family::kCheckpoints, "cp");
    ASSERT_OK(cp);
    EXPECT_EQ(cp.value(), std::string("data"));
    EXPECT_FALSE(ReadKv(*reopened, "late").has_value());
  }
}

TEST_F(StoreTest, ParseDurabilityNamesRoundTrip) {
  for (Durability d : {Durability::kSync, Durability::kAsync, Durability::kNone}) {
    EXPECT_EQ(ParseDurability(DurabilityName(d)), d);
  }
  EXPECT_FALSE(ParseDurability("fsync").has_value());
  EXPECT_FALSE(ParseDurability("").has_value());
}

TEST_F(StoreTest, BatchWithDeleteRangeAndPutsInSeveralFamiliesAppliesAtomically) {
  ASSERT_NO_FATAL_FAILURE(Open());
  {
    WriteBatch seed(*store_);
    for (const char* k : {"a", "b", "c", "d", "e"}) seed.Put(Family::kKv, k, "old");
    seed.Put(Family::kChannelLog, "log1", "old");
    ASSERT_OK(store_->Commit(seed));
  }

  WriteBatch b(*store_);
  b.DeleteRange(Family::kKv, "b", "e");  // removes b, c, d
  b.Put(Family::kKv, "c", "new");        // later in the batch: survives the range delete
  b.Put(Family::kMeta, "revision", "7");
  b.Put(Family::kChannelLog, "log2", "new");
  b.Delete(Family::kChannelLog, "log1");
  b.Put(Family::kChannelMeta, "cfg", "new");

  // Before Commit nothing of it is visible.
  EXPECT_EQ(ScanAll(Family::kKv).size(), 5u);
  EXPECT_FALSE(Get(Family::kMeta, "revision").has_value());
  EXPECT_TRUE(Get(Family::kChannelLog, "log1").has_value());

  ASSERT_OK(store_->Commit(b));
  auto check = [&] {
    EXPECT_EQ(ScanAll(Family::kKv), (KV{{"a", "old"}, {"c", "new"}, {"e", "old"}}));
    EXPECT_EQ(Get(Family::kMeta, "revision"), std::string("7"));
    EXPECT_EQ(ScanAll(Family::kChannelLog), (KV{{"log2", "new"}}));
    EXPECT_EQ(Get(Family::kChannelMeta, "cfg"), std::string("new"));
  };
  check();
  ASSERT_NO_FATAL_FAILURE(Reopen());
  check();
}

TEST_F(StoreTest, BatchClearEmptiesIt) {
  ASSERT_NO_FATAL_FAILURE(Open());
  WriteBatch b(*store_);
  b.Put(Family::kKv, "k", "v");
  b.Clear();
  EXPECT_TRUE(b.empty());
  ASSERT_OK(store_->Commit(b));
  EXPECT_FALSE(Get(Family::kKv, "k").has_value());
}

TEST_F(StoreTest, ErrorIfExistsRefusesAnExistingStore) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_OK(store_->Close());
  StoreOptions o;
  o.path = dir_.Sub("db");
  o.error_if_exists = true;
  auto again = Store::Open(o);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kInternal);
}

// RocksDB's info log goes to shim's log and no LOG file is written into the
// data directory: on a full disk RocksDB's own file logger aborts the
// process (storage/rocks_logger.h).
TEST_F(StoreTest, RocksDbLogsThroughShimLogAndKeepsNoLogFileOnTheDataDisk) {
  auto lines = std::make_shared<std::ostringstream>();
  auto previous = spdlog::default_logger();
  auto capture = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(*lines));
  capture->set_level(spdlog::level::debug);
  spdlog::set_default_logger(capture);
  Open();
  Reopen();
  spdlog::set_default_logger(previous);
  ASSERT_FALSE(HasFatalFailure());

  EXPECT_NE(lines->str().find("rocksdb: "), std::string::npos)
      << "RocksDB logged nothing through spdlog";
  for (const auto& entry : std::filesystem::directory_iterator(dir_.Sub("db"))) {
    EXPECT_NE(entry.path().filename().string().rfind("LOG", 0), 0u)
        << "RocksDB wrote " << entry.path();
  }
}

// ------------------------------------------------- revision via the engine

class RevisionTest : public ::testing::Test {
 protected:
  void Open() {
    StoreOptions so;
    so.path = dir_.Sub("db");
    ASSERT_OK_AND_ASSIGN(store_, Store::Open(so));
    engine::EngineOptions eo;
    eo.clock = &clock_;
    eo.store = store_.get();
    ASSERT_OK_AND_ASSIGN(engine_, engine::Engine::Open(eo));
  }
  void Close() {
    engine_.reset();
    if (store_) ASSERT_OK(store_->Close());
    store_.reset();
  }
  void TearDown() override { Close(); }

  // Executes one write and commits its group; returns the reply.
  nlohmann::json Write(const std::string& method, nlohmann::json params) {
    std::optional<Result<nlohmann::json>> reply;
    engine_->Execute(method, std::move(params), nullptr,
                     [&](Result<nlohmann::json> r) { reply = std::move(r); });
    EXPECT_TRUE(engine_->ReadyToSeal());
    auto group = engine_->Seal();
    Status s = group->Write();
    EXPECT_OK(s);
    engine_->Land(*group, s);
    EXPECT_TRUE(reply.has_value());
    if (!reply || !reply->ok()) {
      ADD_FAILURE() << method << ": " << (reply ? reply->status().ToString() : "no reply");
      return nullptr;
    }
    return reply->value();
  }

  testing::TempDir dir_;
  engine::FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<engine::Engine> engine_;
};

TEST_F(RevisionTest, RevisionNeverGoesDownAcrossReopenAndKeepsGrowing) {
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(engine_->revision(), 0u);
  uint64_t last = 0;
  for (int cycle = 0; cycle < 3; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    for (int i = 0; i < 4; ++i) {
      nlohmann::json r = i % 2
                             ? Write("state.set", {{"key", "k" + std::to_string(i)}, {"value", i}})
                             : Write("pubsub.publish", {{"channel", "c"}, {"data", i}});
      const uint64_t rev = engine_->revision();
      EXPECT_GT(rev, last);
      if (r.contains("revision")) {
        EXPECT_EQ(r["revision"], rev);
      }
      last = rev;
    }
    const uint64_t before = engine_->revision();
    ASSERT_NO_FATAL_FAILURE(Close());
    ASSERT_NO_FATAL_FAILURE(Open());
    EXPECT_GE(engine_->revision(), before);
    nlohmann::json r = Write("state.incr", {{"key", "n"}});
    EXPECT_GT(r["revision"].get<uint64_t>(), before);
    EXPECT_EQ(engine_->revision(), r["revision"].get<uint64_t>());
    last = engine_->revision();
  }
}

TEST_F(RevisionTest, SeveralCommandsInOneGroupPersistTheirLastRevision) {
  ASSERT_NO_FATAL_FAILURE(Open());
  int replies = 0;
  for (int i = 0; i < 5; ++i) {
    engine_->Execute("state.set", {{"key", "k" + std::to_string(i)}, {"value", i}}, nullptr,
                     [&](Result<nlohmann::json> r) { replies += r.ok(); });
  }
  const uint64_t rev = engine_->revision();
  EXPECT_EQ(rev, 5u);
  auto group = engine_->Seal();
  ASSERT_OK(group->Write());
  engine_->Land(*group, Status::Ok());
  EXPECT_EQ(replies, 5);
  ASSERT_NO_FATAL_FAILURE(Close());
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(engine_->revision(), rev);
}

}  // namespace
}  // namespace shim::storage

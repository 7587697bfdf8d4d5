// The power-cut journal (storage/power_cut_fs.h) and the cut it drives
// (storage/power_cut.h): only what was synced survives — bytes past a
// file's last sync, entries created or renamed since their directory's last
// sync — and a store opened after the cut holds exactly its synced commits.
#include "storage/power_cut.h"

#include <gtest/gtest.h>
#include <rocksdb/file_system.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "storage/power_cut_fs.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim::storage {
namespace {

namespace fs = std::filesystem;
using rocksdb::FileOptions;
using rocksdb::FSDirectory;
using rocksdb::FSWritableFile;
using rocksdb::IOOptions;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Spit(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

class PowerCutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.Sub("data");
    journal_ = dir_.Sub("journal");
    fs::create_directories(data_);
  }
  // Files written before the journaling file system exists are durable.
  void StartJournal() {
    ASSERT_OK_AND_ASSIGN(fs_,
                         NewPowerCutJournalFileSystem(rocksdb::FileSystem::Default(), journal_));
    ASSERT_TRUE(fs_->NewDirectory(data_, IOOptions(), &dir_handle_, nullptr).ok());
  }
  std::unique_ptr<FSWritableFile> Create(const std::string& name) {
    std::unique_ptr<FSWritableFile> f;
    EXPECT_TRUE(fs_->NewWritableFile(Path(name), FileOptions(), &f, nullptr).ok());
    return f;
  }
  // Starts the journal, creates `name` and syncs the directory: the entry
  // is durable, the contents only up to the file's last sync.
  std::unique_ptr<FSWritableFile> CreateWithDurableEntry(const std::string& name) {
    StartJournal();
    auto f = Create(name);
    SyncDir();
    return f;
  }
  void Append(FSWritableFile& f, const std::string& text) {
    ASSERT_TRUE(f.Append(text, IOOptions(), nullptr).ok());
  }
  void Sync(FSWritableFile& f) { ASSERT_TRUE(f.Sync(IOOptions(), nullptr).ok()); }
  void SyncDir() { ASSERT_TRUE(dir_handle_->Fsync(IOOptions(), nullptr).ok()); }
  void Rename(const std::string& from, const std::string& to) {
    ASSERT_TRUE(fs_->RenameFile(Path(from), Path(to), IOOptions(), nullptr).ok());
  }
  // What RocksDB does to point CURRENT at a new MANIFEST: write a temp
  // file, sync it, rename it over CURRENT (whose old version was durable).
  void ReplaceCurrent() {
    Spit(Path("CURRENT"), "MANIFEST-000001\n");
    StartJournal();
    auto f = Create("000002.dbtmp");
    Append(*f, "MANIFEST-000002\n");
    Sync(*f);
    f.reset();
    Rename("000002.dbtmp", "CURRENT");
    ASSERT_EQ(Slurp(Path("CURRENT")), "MANIFEST-000002\n");
  }
  // The process "dies": files are closed without a sync, then the cut.
  PowerCutReport Cut() {
    dir_handle_.reset();
    fs_.reset();
    auto r = ApplyPowerCut(journal_);
    EXPECT_OK(r);
    return r.ok() ? r.value() : PowerCutReport{};
  }
  std::string Path(const std::string& name) const { return data_ + "/" + name; }
  bool Exists(const std::string& name) const { return fs::exists(Path(name)); }

  testing::TempDir dir_;
  std::string data_, journal_;
  std::shared_ptr<rocksdb::FileSystem> fs_;
  std::unique_ptr<FSDirectory> dir_handle_;
};

TEST_F(PowerCutTest, OnlySyncedBytesSurvive) {
  auto f = CreateWithDurableEntry("000004.log");
  Append(*f, "synced ");
  Sync(*f);
  Append(*f, "unsynced");
  ASSERT_TRUE(f->Close(IOOptions(), nullptr).ok());  // a close is no sync
  f.reset();
  ASSERT_EQ(Slurp(Path("000004.log")), "synced unsynced")
      << "before the cut the page cache has it all";
  const PowerCutReport r = Cut();
  EXPECT_EQ(Slurp(Path("000004.log")), "synced ");
  EXPECT_EQ(r.files_truncated, 1u);
  EXPECT_EQ(r.bytes_dropped, 8u);
  EXPECT_EQ(r.wal_syncs, 1u) << "a *.log file is a WAL";
  EXPECT_GE(r.newest_wal_synced_ns, 0);
}

TEST_F(PowerCutTest, AFileNeverSyncedKeepsNothing) {
  auto f = CreateWithDurableEntry("000009.sst");
  Append(*f, "never synced");
  f.reset();
  Cut();
  ASSERT_TRUE(Exists("000009.sst")) << "its directory entry was synced";
  EXPECT_EQ(Slurp(Path("000009.sst")), "");
}

TEST_F(PowerCutTest, ACreatedFileWithoutADirectorySyncIsGone) {
  StartJournal();
  auto f = Create("MANIFEST-000002");
  Append(*f, "synced contents");
  Sync(*f);  // the bytes are durable, the name is not
  f.reset();
  const PowerCutReport r = Cut();
  EXPECT_FALSE(Exists("MANIFEST-000002"));
  EXPECT_EQ(r.files_removed, 1u);
}

TEST_F(PowerCutTest, ARenameWithoutADirectorySyncIsUndone) {
  ReplaceCurrent();
  const PowerCutReport r = Cut();
  EXPECT_EQ(Slurp(Path("CURRENT")), "MANIFEST-000001\n") << "the file the rename replaced is back";
  EXPECT_FALSE(Exists("000002.dbtmp")) << "the temp file's own entry was never synced";
  EXPECT_EQ(r.files_restored, 1u);
}

TEST_F(PowerCutTest, ARenameFollowedByADirectorySyncStays) {
  ReplaceCurrent();
  SyncDir();
  Cut();
  EXPECT_EQ(Slurp(Path("CURRENT")), "MANIFEST-000002\n");
  EXPECT_FALSE(Exists("000002.dbtmp"));
}

TEST_F(PowerCutTest, ARenamedDurableFileGoesBackToItsOldName) {
  Spit(Path("a"), "contents");
  StartJournal();
  Rename("a", "b");
  Cut();
  EXPECT_EQ(Slurp(Path("a")), "contents");
  EXPECT_FALSE(Exists("b"));
}

TEST_F(PowerCutTest, ALineTheKillCutShortNeverHappened) {
  auto f = CreateWithDurableEntry("000004.log");
  Append(*f, "abc");
  f.reset();
  fs_.reset();
  std::ofstream(journal_ + "/" + power_cut::kJournalFile, std::ios::app)
      << "S 1 3 " << Path("000004.log");
  PowerCutReport r = Cut();
  EXPECT_EQ(Slurp(Path("000004.log")), "") << "the torn sync record must not count";
  EXPECT_EQ(r.wal_syncs, 0u);
}

TEST_F(PowerCutTest, NoJournalIsACutWithNothingToDrop) {
  ASSERT_OK_AND_ASSIGN(PowerCutReport r, ApplyPowerCut(journal_));
  EXPECT_EQ(r.records, 0u);
}

// The journal behind a real store. A child process opens it, commits, and
// ends with _exit (no Close, no destructor: a SIGKILL); the parent cuts and
// reopens. Returns the child's exit status.
int RunChild(const StoreOptions& options, int commits, bool sync_first_only) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    auto store = Store::Open(options);
    if (!store.ok()) ::_exit(10);
    for (int i = 0; i < commits; ++i) {
      WriteBatch batch(**store);
      batch.Put(Family::kKv, "k" + std::to_string(i), "v");
      if (!(*store)->Commit(batch, /*force_sync=*/sync_first_only && i == 0).ok()) ::_exit(11);
    }
    if ((*store)->stats().fsyncs != static_cast<uint64_t>(sync_first_only ? 1 : commits))
      ::_exit(12);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int CountKeys(const StoreOptions& options) {
  StoreOptions plain = options;
  plain.power_cut_journal.clear();
  auto store = Store::Open(plain);
  EXPECT_OK(store);
  if (!store.ok()) return -1;
  int n = 0;
  EXPECT_OK((*store)->Scan(Family::kKv, "", "",
                           [&](std::string_view, std::string_view) { return ++n, true; }));
  return n;
}

// A store in `dir` whose file system journals what it syncs, for a cut.
StoreOptions JournaledStore(const testing::TempDir& dir, Durability durability) {
  StoreOptions options;
  options.path = dir.Sub("db");
  options.power_cut_journal = dir.Sub("journal");
  options.durability = durability;
  return options;
}

TEST(PowerCutStoreTest, AfterACutAStoreHoldsItsSyncedCommitsAndNoMore) {
  testing::TempDir dir;
  StoreOptions options = JournaledStore(dir, Durability::kAsync);
  options.wal_sync_interval_ms = 3'600'000;  // no background sync during the test

  // One synced commit, then 9 that only reached the page cache.
  ASSERT_EQ(RunChild(options, 10, /*sync_first_only=*/true), 0);
  ASSERT_OK_AND_ASSIGN(PowerCutReport cut, ApplyPowerCut(options.power_cut_journal));
  std::printf("[ info ] %s\n", cut.ToString().c_str());
  EXPECT_GT(cut.bytes_dropped, 0u);
  EXPECT_EQ(CountKeys(options), 1) << "only the synced commit survives the cut";

  // The same without a cut: SIGKILL alone keeps the unsynced commits, which
  // is why kill tests cannot see a missing fsync.
  testing::TempDir dir2;
  options.path = dir2.Sub("db");
  options.power_cut_journal = dir2.Sub("journal");
  ASSERT_EQ(RunChild(options, 10, /*sync_first_only=*/true), 0);
  EXPECT_EQ(CountKeys(options), 10);
}

TEST(PowerCutStoreTest, SyncDurabilityLosesNothingToACutAndCountsTheSyncsTheFileSystemSaw) {
  testing::TempDir dir;
  const StoreOptions options = JournaledStore(dir, Durability::kSync);
  ASSERT_EQ(RunChild(options, 10, false), 0)
      << "exit 12: RocksDB's fsync count is not one per sync commit";
  ASSERT_OK_AND_ASSIGN(PowerCutReport cut, ApplyPowerCut(options.power_cut_journal));
  EXPECT_GE(cut.wal_syncs, 10u) << "the file system saw fewer WAL syncs than commits";
  EXPECT_EQ(CountKeys(options), 10);
}

}  // namespace
}  // namespace shim::storage

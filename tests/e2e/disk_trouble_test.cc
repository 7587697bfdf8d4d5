// Disk trouble (issue 7 item 7, issue 18 point 8): the data directory on a
// small tmpfs the test mounts. When it fills up clients get a clear error,
// nothing acknowledged is lost, and once a little space returns the server
// serves again without a restart. On a read-only filesystem the server refuses to start,
// saying why. Needs root (mount): fails otherwise, saying why, unless
// SHIM_ALLOW_SKIP=1 lets it skip (tests/support/test_util.h).
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>

#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::ServerProcess;

using testing::kLoadedCallTimeoutMs;

// A tmpfs of `mib` MiB mounted on `dir` for the test's lifetime.
class SmallFilesystem {
 public:
  explicit SmallFilesystem(std::string dir) : dir_(std::move(dir)) {}
  ~SmallFilesystem() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  // Empty on success, else why it cannot be done here.
  std::string Mount(int mib) {
    std::filesystem::create_directories(dir_);
    const std::string opts = "size=" + std::to_string(mib) + "m,mode=0700";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, opts.c_str()) != 0) return std::strerror(errno);
    mounted_ = true;
    return {};
  }
  std::string Resize(int mib) {
    return Remount(MS_REMOUNT, "size=" + std::to_string(mib) + "m,mode=0700");
  }
  std::string MakeReadOnly() { return Remount(MS_REMOUNT | MS_RDONLY, "mode=0700"); }
  std::string MakeWritable() { return Remount(MS_REMOUNT, "mode=0700"); }

 private:
  std::string Remount(unsigned long flags, const std::string& opts) {
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", flags, opts.c_str()) != 0)
      return std::strerror(errno);
    return {};
  }
  std::string dir_;
  bool mounted_ = false;
};

// Fills the store with 64 KiB values under fresh keys until it refuses one;
// records what was acknowledged. The values are random letters: the store
// flushes its memtables often and compresses what it flushes, so a
// repeated byte would never fill it. Returns the refusal.
Status FillUntilRefused(net::LineClient& client, const std::string& prefix,
                        const std::string& value, std::map<std::string, uint64_t>* acked) {
  for (int i = 0; i < 2000; ++i) {
    const std::string key = prefix + std::to_string(i);
    auto r = client.Call("state.set", {{"key", key}, {"value", value}}, kLoadedCallTimeoutMs);
    if (!r.ok()) return r.status();
    (*acked)[key] = (*r)["version"];
  }
  return Status::Ok();
}

// Retries a write until the server takes it (bounded): RocksDB looks at the
// free space every 5 s and resumes once its reserve is free.
Status WriteOnceSpaceReturns(net::LineClient& client, const std::string& key) {
  Status last = Status::Ok();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(testing::LatencyBoundMs(10'000));
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = client.Call("state.set", {{"key", key}, {"value", 1}}, kLoadedCallTimeoutMs);
    if (r.ok()) return Status::Ok();
    last = r.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return last;
}

// The server must not die when the disk fills: RocksDB's own LOG file
// writer used to abort it here ("sync_without_flush_called_" assertion in
// Debian's librocksdb, 2 of 4 CI runs); its log now goes to shim's log
// (storage/rocks_logger.h) and this test guards that.
//
// Space comes back a little at a time: 8 MiB, twice. RocksDB's recovery
// waited for 64 MiB free (its reserve: the largest write buffer), so with
// less the store stayed stopped until a restart (issue 18, point 8); the
// reserve is now the 8 MiB memtable budget (FamilyOptions, store.cc).
TEST(DiskTroubleTest, FullDiskGivesAClearErrorLosesNothingAndServesAgainWhenALittleSpaceReturns) {
  if (::geteuid() != 0) SHIM_SKIP_OR_FAIL("needs root to mount a small tmpfs");
  ServerProcess server;
  SmallFilesystem fs(server.data_dir());
  int size_mib = 24;
  if (std::string why = fs.Mount(size_mib); !why.empty())
    SHIM_SKIP_OR_FAIL("cannot mount a tmpfs here: " << why);
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());

  std::string value(64 << 10, ' ');
  std::mt19937 random(7);
  for (char& c : value) c = static_cast<char>('a' + random() % 26);
  std::map<std::string, uint64_t> acked;  // key -> acknowledged version
  for (int round = 0; round < 2; ++round) {
    const Status refusal =
        FillUntilRefused(*client, "fill" + std::to_string(round) + "/", value, &acked);
    ASSERT_FALSE(refusal.ok()) << size_mib << " MiB never filled up";
    std::printf("[ info ] round %d: %zu writes of 64 KiB acknowledged so far, then: %s\n", round,
                acked.size(), refusal.ToString().c_str());
    EXPECT_NE(refusal.message().find("disk is full"), std::string::npos)
        << "the error should say the disk is full and what to do: " << refusal.ToString();
    // Reads go on while writes cannot.
    ASSERT_OK_AND_ASSIGN(json ping, client->Call("sys.ping", json::object(), kLoadedCallTimeoutMs));
    EXPECT_EQ(ping["pong"], true);
    ASSERT_OK_AND_ASSIGN(json first,
                         client->Call("state.get", {{"key", "fill0/0"}}, kLoadedCallTimeoutMs));
    EXPECT_EQ(first["version"], 1);

    // 8 MiB comes back: the server takes writes again, without a restart.
    size_mib += 8;
    ASSERT_EQ(fs.Resize(size_mib), "");
    const Status write = WriteOnceSpaceReturns(*client, "after/space" + std::to_string(round));
    ASSERT_TRUE(write.ok())
        << "the server did not take writes again after 8 MiB returned; last error: "
        << write.ToString() << "; server log:\n"
        << testing::ReadFile(server.log_path());
    acked["after/space" + std::to_string(round)] = 1;
  }
  ASSERT_OK_AND_ASSIGN(json stats, client->Call("sys.stats", json::object(), kLoadedCallTimeoutMs));
  EXPECT_GE(stats["engine"]["store_resumes"].get<uint64_t>(), 2u) << stats.dump();
  EXPECT_GE(stats["engine"]["store_no_space_errors"].get<uint64_t>(), 2u) << stats.dump();

  // Nothing acknowledged was lost, before or after a crash.
  auto check_all = [&](net::LineClient& c) {
    for (const auto& [key, version] : acked) {
      ASSERT_OK_AND_ASSIGN(json got, c.Call("state.get", {{"key", key}}, kLoadedCallTimeoutMs));
      ASSERT_FALSE(got.is_null()) << key << " was acknowledged and is gone";
      EXPECT_EQ(got["version"], version) << key;
      if (key.rfind("fill", 0) == 0) {
        EXPECT_EQ(got["value"].get_ref<const std::string&>().size(), value.size()) << key;
      } else {
        EXPECT_EQ(got["value"], 1) << key;
      }
    }
  };
  check_all(*client);
  server.Kill();
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto again, server.Connect());
  check_all(*again);
}

// A data directory that is read-only when the server starts (Linux refuses
// to remount it under a running server, EBUSY): the server refuses to start
// with a message naming the cause instead of serving without durability,
// and once the filesystem is writable again it starts with everything the
// earlier run acknowledged.
TEST(DiskTroubleTest, ReadOnlyDataDirectoryRefusesToStartWithAClearErrorAndLosesNothing) {
  if (::geteuid() != 0) SHIM_SKIP_OR_FAIL("needs root to mount a small tmpfs");
  ServerProcess server;
  SmallFilesystem fs(server.data_dir());
  if (std::string why = fs.Mount(16); !why.empty())
    SHIM_SKIP_OR_FAIL("cannot mount a tmpfs here: " << why);
  ASSERT_OK(server.Start());
  {
    ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
    for (int i = 0; i < 50; ++i) {
      ASSERT_OK(client->Call("state.set", {{"key", "ro/" + std::to_string(i)}, {"value", i}},
                             kLoadedCallTimeoutMs));
    }
  }
  server.Kill();

  ASSERT_EQ(fs.MakeReadOnly(), "");
  EXPECT_FALSE(server.Start().ok()) << "the server started on a read-only data directory";
  EXPECT_EQ(server.last_exit_status(), 1);
  const std::string log = testing::ReadFile(server.log_path());
  EXPECT_NE(log.find("cannot open the store"), std::string::npos) << log;
  EXPECT_NE(log.find("Read-only file system"), std::string::npos) << log;

  ASSERT_EQ(fs.MakeWritable(), "");
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto client, server.Connect());
  for (int i = 0; i < 50; ++i) {
    ASSERT_OK_AND_ASSIGN(json got, client->Call("state.get", {{"key", "ro/" + std::to_string(i)}},
                                                kLoadedCallTimeoutMs));
    EXPECT_EQ(got["value"], i);
  }
}

}  // namespace
}  // namespace shim

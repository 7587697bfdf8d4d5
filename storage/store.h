// Store: the RocksDB-backed durable store under the engine.
//
// One column family per record kind (Family), all opened at Open(). Changes
// reach disk only through Commit() of a WriteBatch, which is atomic across
// families. Durability (per store, chosen at Open):
//   kSync  - every Commit fsyncs the WAL before returning (default).
//   kAsync - Commit writes the WAL; a background thread begins a WAL fsync
//            every `wal_sync_interval_ms` (100 ms by default) while there
//            are unsynced commits.
//   kNone  - no WAL; data reaches disk at memtable flush and at Close().
// Commit(batch, /*force_sync=*/true) fsyncs whatever the mode (checkpoints).
//
// Threads: Commit must be called by one thread at a time (the engine's single
// writer); Get/Scan may run concurrently with a Commit from any thread.
// This is the only file set that includes RocksDB headers.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace shim::storage {

enum class Family : uint8_t {
  kMeta = 0,     // store-wide counters (revision, ...)
  kKv,           // state keys (TTL'd keys are indexed in memory, rebuilt at open)
  kChannelLog,   // pub/sub messages by (channel, seq)
  kChannelMeta,  // per-channel retention settings
  kLeases,
  kLocks,
  kTasks,
  kQueues,  // per-queue settings
  kWorkers,
  kSessions,
  kCheckpoints,
  kSignals,
  kCount,
};

const char* FamilyName(Family f);

enum class Durability : uint8_t { kSync, kAsync, kNone };
const char* DurabilityName(Durability d);
// Parses "sync" | "async" | "none".
std::optional<Durability> ParseDurability(std::string_view s);

struct StoreOptions {
  std::string path;  // data directory; created if missing
  Durability durability = Durability::kSync;
  uint32_t wal_sync_interval_ms = 100;  // kAsync: upper bound between WAL fsyncs
  bool error_if_exists = false;
  // Test only: when set, RocksDB's file system is wrapped by one that
  // journals what is synced into this directory, for a simulated power cut
  // after a kill (storage/power_cut.h). Empty (the default) in production.
  std::string power_cut_journal;
};

class Store;

// A set of changes committed atomically to the store it was made for (it
// holds that store's column family handles, so it must not outlive it).
// Not thread-safe; move it between threads freely.
class WriteBatch {
 public:
  explicit WriteBatch(const Store& store);
  ~WriteBatch();
  WriteBatch(WriteBatch&&) noexcept;
  WriteBatch& operator=(WriteBatch&&) noexcept;

  void Put(Family f, std::string_view key, std::string_view value);
  void Delete(Family f, std::string_view key);
  // Deletes every key in [begin, end) of family f.
  void DeleteRange(Family f, std::string_view begin, std::string_view end);
  uint32_t count() const;
  size_t bytes() const;
  bool empty() const { return count() == 0; }
  void Clear();

 private:
  friend class Store;
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

struct StoreStats {
  uint64_t commits = 0;
  uint64_t committed_ops = 0;
  // WAL syncs RocksDB performed (its WAL_FILE_SYNCED statistic, counted
  // where the sync happens, not by shim's commit path).
  uint64_t fsyncs = 0;
  uint64_t bytes_written = 0;
  // Commits refused because the disk was full, and recoveries from a full
  // disk (writes resumed without a restart).
  uint64_t no_space_errors = 0;
  uint64_t resumes = 0;
};

class Store {
 public:
  // Opens (creating if needed) the store at options.path with every family.
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();  // Close()s if still open.

  // Writes the batch atomically under the store's durability; with
  // force_sync the WAL is fsynced before returning in every mode (kNone
  // writes the WAL for such batches too). On error nothing of the batch is
  // applied; the caller must then treat the store as failed.
  // A full disk stops writes (INTERNAL; the message says the disk is full);
  // RocksDB resumes them by itself within about 5 s of 8 MiB being free
  // again (FamilyOptions in store.cc sizes that reserve), without a restart.
  Status Commit(WriteBatch& batch, bool force_sync = false);

  // Point read; nullopt when absent.
  Result<std::optional<std::string>> Get(Family f, std::string_view key) const;

  // Calls fn(key, value) for keys in [begin, end) in order (end empty = no
  // bound) until fn returns false.
  using ScanFn = std::function<bool(std::string_view key, std::string_view value)>;
  Status Scan(Family f, std::string_view begin, std::string_view end, const ScanFn& fn) const;

  // Flushes memtables and the WAL and closes the database. Idempotent.
  Status Close();

  Durability durability() const { return options_.durability; }
  const std::string& path() const { return options_.path; }
  StoreStats stats() const;
  uint64_t ApproximateSizeBytes() const;

 private:
  friend class WriteBatch;
  struct Impl;
  explicit Store(StoreOptions options);
  StoreOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shim::storage

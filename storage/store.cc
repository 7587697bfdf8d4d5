#include "storage/store.h"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "base/enum_names.h"
#include "storage/failpoint.h"
#include "storage/power_cut_fs.h"
#include "storage/rocks_logger.h"

namespace shim::storage {
namespace {

constexpr const char* kFamilyNames[] = {
    "default",  // kMeta lives in RocksDB's default family
    "kv",      "channel_log", "channel_meta", "leases",      "locks",   "tasks",
    "queues",  "workers",     "sessions",     "checkpoints", "signals",
};
static_assert(std::size(kFamilyNames) == static_cast<size_t>(Family::kCount));

// The single translation of rocksdb::Status into shim's codes.
Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(std::move(msg));
  if (s.IsNoSpace()) {
    msg +=
        " (the data directory's disk is full: free space there and retry; writes resume without a "
        "restart)";
  }
  return Status::Internal(std::move(msg));
}

// Counts the store's recoveries from a full disk (RocksDB's own recovery:
// see FamilyOptions) for sys.stats.
class NoSpaceRecoveryCounter final : public rocksdb::EventListener {
 public:
  explicit NoSpaceRecoveryCounter(std::atomic<uint64_t>* recovered) : recovered_(recovered) {}
  const char* Name() const override { return "ShimNoSpaceRecoveryCounter"; }
  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override {
    if (info.old_bg_error.IsNoSpace() && info.new_bg_error.ok())
      recovered_->fetch_add(1, std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t>* recovered_;
};

// All families share one memtable budget (Store::Open).
constexpr size_t kWriteBufferBudget = 8ull << 20;

rocksdb::ColumnFamilyOptions FamilyOptions(Family f) {
  rocksdb::ColumnFamilyOptions cf;
  // A full disk (issue 18): RocksDB's recovery (its SstFileManager, polling
  // every 5 s) resumes writes only once the free space reaches a reserve
  // equal to the largest write buffer at DB::Open — the most its recovery
  // flush may write. RocksDB's default is 64 MiB per family, so with 42 MiB
  // free the store stayed stopped until a restart, though the shared budget
  // means no family's memtables ever hold more than 8 MiB. Sized to the
  // budget, the reserve is what the flush really needs; nothing else
  // changes (the budget switches memtables at 7 MiB, before this limit; the
  // WAL preallocation was already capped at 8 MiB).
  cf.write_buffer_size = kWriteBufferBudget;
  rocksdb::BlockBasedTableOptions table;
  table.cache_index_and_filter_blocks = true;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Checkpoints are large, compressible and rarely read: zstd everywhere.
  // Everything else is small and hot: lz4, zstd only at the bottom level.
  if (f == Family::kCheckpoints) {
    cf.compression = rocksdb::kZSTD;
  } else {
    cf.compression = rocksdb::kLZ4Compression;
    cf.bottommost_compression = rocksdb::kZSTD;
  }
  return cf;
}

}  // namespace

const char* FamilyName(Family f) { return kFamilyNames[static_cast<size_t>(f)]; }

constexpr EnumNames<Durability, 3> kDurabilityNames{
    {{Durability::kSync, "sync"}, {Durability::kAsync, "async"}, {Durability::kNone, "none"}}};

const char* DurabilityName(Durability d) { return kDurabilityNames.Name(d); }
std::optional<Durability> ParseDurability(std::string_view s) { return kDurabilityNames.Parse(s); }

// ---------------------------------------------------------------- WriteBatch

struct WriteBatch::Rep {
  rocksdb::WriteBatch batch;
  const std::vector<rocksdb::ColumnFamilyHandle*>* handles;
  rocksdb::ColumnFamilyHandle* cf(Family f) const { return (*handles)[static_cast<size_t>(f)]; }
};
WriteBatch::~WriteBatch() = default;
WriteBatch::WriteBatch(WriteBatch&&) noexcept = default;
WriteBatch& WriteBatch::operator=(WriteBatch&&) noexcept = default;

void WriteBatch::Put(Family f, std::string_view key, std::string_view value) {
  rep_->batch.Put(rep_->cf(f), rocksdb::Slice(key.data(), key.size()),
                  rocksdb::Slice(value.data(), value.size()));
}

void WriteBatch::Delete(Family f, std::string_view key) {
  rep_->batch.Delete(rep_->cf(f), rocksdb::Slice(key.data(), key.size()));
}

void WriteBatch::DeleteRange(Family f, std::string_view begin, std::string_view end) {
  rep_->batch.DeleteRange(rep_->cf(f), rocksdb::Slice(begin.data(), begin.size()),
                          rocksdb::Slice(end.data(), end.size()));
}

uint32_t WriteBatch::count() const { return rep_->batch.Count(); }
size_t WriteBatch::bytes() const { return rep_->batch.GetDataSize(); }
void WriteBatch::Clear() { rep_->batch.Clear(); }

// --------------------------------------------------------------------- Store

struct Store::Impl {
  // Declared before db: RocksDB uses them until the DB is gone.
  std::unique_ptr<rocksdb::Env> power_cut_env;  // test only (StoreOptions::power_cut_journal)
  std::shared_ptr<rocksdb::Statistics> statistics;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;

  std::atomic<uint64_t> commits{0}, committed_ops{0}, bytes_written{0}, no_space_errors{0},
      resumes{0};

  // kAsync WAL syncer.
  std::thread syncer;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::atomic<bool> unsynced{false};

  rocksdb::ColumnFamilyHandle* cf(Family f) const { return handles[static_cast<size_t>(f)]; }
};

WriteBatch::WriteBatch(const Store& store) : rep_(std::make_unique<Rep>()) {
  rep_->handles = &store.impl_->handles;
}

Store::Store(StoreOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

Store::~Store() { (void)Close(); }

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec)
    return Status::Internal("cannot create data directory " + options.path + ": " + ec.message());

  std::unique_ptr<Store> store(new Store(options));
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.error_if_exists = options.error_if_exists;
  db_options.IncreaseParallelism(2);
  // Memory and restart time (issue 6). Measured with bench/compare/run.sh
  // --with-recovery (1M ready tasks, then 1M keys, async, then kill -9):
  // with the defaults (64 MiB write buffer per family, 12 families, no
  // shared budget) and a 256 MiB WAL cap, 150 MB of the 327 MB RSS after
  // 1M tasks was memtables, and kill -9 left 192 MB of live WAL that
  // DB::Open replayed for ~5.5 s. One budget of 8 MiB for the memtables of
  // all families (RocksDB's own WriteBufferManager: when the active
  // memtables pass 7/8 of it, the oldest one is switched and flushed) and
  // a 16 MiB WAL cap (past it, the families still holding the oldest WAL
  // are flushed, so a rarely written family cannot pin old WAL files) gave
  // 192 MB RSS (memtables 7 MB), 1.4 MB of live WAL after the kill and a
  // 0.17 s store open. 16 MiB / 32 MiB gave 205 MB, 32 MiB / 32 MiB 221 MB.
  // The cost is more, smaller flushes: on a quiet machine state set P16
  // rose and async get P16 fell about 15% in one run, likely flushes and
  // compactions competing for the cores (results-2026-11-26-recovery.txt).
  // The WAL and its fsync are untouched:
  // a flush only moves data already acknowledged into SST files, and a WAL
  // file is deleted only once every family it holds writes for is flushed.
  db_options.db_write_buffer_size = kWriteBufferBudget;
  db_options.max_total_wal_size = 16ull << 20;
  // Restart time (issue 6). After a crash RocksDB replays the WAL into
  // memtables and, by default, writes every replayed memtable out as an L0
  // file before Open returns: half of a 1M-key restart. With this the
  // replayed memtables stay in memory and the WAL files behind them are kept
  // until the ordinary background flush, so durability does not depend on
  // that flush.
  db_options.avoid_flush_during_recovery = true;
  // Open need not read every SST's properties (compaction statistics) nor
  // stat every SST for its size; both only cost time at startup.
  db_options.skip_stats_update_on_db_open = true;
  db_options.skip_checking_sst_file_sizes_on_db_open = true;
  // RocksDB's info log goes to shim's log, not to a LOG file on the data
  // disk, whose writer aborts the process once that disk is full
  // (storage/rocks_logger.h).
  db_options.info_log = NewSpdlogRocksLogger();
  db_options.listeners.push_back(std::make_shared<NoSpaceRecoveryCounter>(&store->impl_->resumes));
  // fsyncs are counted where RocksDB performs them (WAL_FILE_SYNCED), not
  // by shim's commit path. Tickers only: no histograms, no timers.
  store->impl_->statistics = rocksdb::CreateDBStatistics();
  store->impl_->statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  db_options.statistics = store->impl_->statistics;
  if (!options.power_cut_journal.empty()) {
    auto fs =
        NewPowerCutJournalFileSystem(rocksdb::FileSystem::Default(), options.power_cut_journal);
    if (!fs.ok()) return fs.status();
    store->impl_->power_cut_env = rocksdb::NewCompositeEnv(std::move(fs).value());
    db_options.env = store->impl_->power_cut_env.get();
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (size_t i = 0; i < size_t(Family::kCount); ++i) {
    descriptors.emplace_back(kFamilyNames[i], FamilyOptions(static_cast<Family>(i)));
  }

  // A store created by this version has exactly these families, created in
  // this order. Open the ones on disk first (RocksDB requires all of them),
  // then create what is missing, in order, so handles[i] is Family i.
  std::vector<std::string> existing;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing);
  std::vector<rocksdb::ColumnFamilyDescriptor> to_open;
  if (ls.ok()) {
    for (size_t i = 0; i < existing.size() && i < descriptors.size(); ++i) {
      if (existing[i] != kFamilyNames[i]) {
        return Status::Internal("data directory has unexpected column family '" + existing[i] +
                                "'");
      }
      to_open.push_back(descriptors[i]);
    }
  } else {
    to_open.push_back(descriptors[0]);
  }
  db_options.create_missing_column_families = false;

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, options.path, to_open, &store->impl_->handles, &raw);
  if (!s.ok()) return FromRocks(s, "open " + options.path);
  store->impl_->db.reset(raw);
  for (size_t i = to_open.size(); i < descriptors.size(); ++i) {
    rocksdb::ColumnFamilyHandle* h = nullptr;
    s = raw->CreateColumnFamily(descriptors[i].options, descriptors[i].name, &h);
    if (!s.ok()) return FromRocks(s, "create column family");
    store->impl_->handles.push_back(h);
  }

  if (options.durability == Durability::kAsync) {
    Impl* impl = store->impl_.get();
    uint32_t interval = options.wal_sync_interval_ms ? options.wal_sync_interval_ms : 100;
    // A sync begins every `interval` (not `interval` after the previous
    // one ended): what a power cut can lose is what was written since the
    // last sync began (tests/fault/power_cut_test.cc measures it). An fsync
    // slower than the interval is followed by the next at once.
    impl->syncer = std::thread([impl, interval] {
      using Clock = std::chrono::steady_clock;
      const auto period = std::chrono::milliseconds(interval);
      std::unique_lock lock(impl->mu);
      auto next = Clock::now() + period;
      while (!impl->stopping) {
        impl->cv.wait_until(lock, next);
        if (impl->stopping || Clock::now() < next) continue;
        next += period;
        if (impl->unsynced.exchange(false)) {
          lock.unlock();
          (void)impl->db->SyncWAL();
          lock.lock();
        }
        next = std::max(next, Clock::now());
      }
    });
  }
  return store;
}

Status Store::Commit(WriteBatch& batch, bool force_sync) {
  if (!impl_->db) return Status::Internal("store is closed");
  rocksdb::WriteOptions wo;
  const bool sync = force_sync || options_.durability == Durability::kSync;
  wo.sync = sync;
  wo.disableWAL = options_.durability == Durability::kNone && !force_sync;
  // `error` here is a failed group write with nothing written (tests of
  // what the engine does about one: docs/failpoints.md).
  SHIM_RETURN_IF_ERROR(SHIM_FAILPOINT_STATUS("store.before_write"));
  // The armed-only path splits the synced write in two to reach a point
  // between the WAL write and its fsync; unarmed, this is one branch.
  const bool split = sync && SHIM_FAILPOINT_ARMED("store.after_write_before_sync");
  if (split) wo.sync = false;
  rocksdb::Status s = impl_->db->Write(wo, &batch.rep_->batch);
  if (split && s.ok()) {
    SHIM_FAILPOINT("store.after_write_before_sync");
    s = impl_->db->SyncWAL();
  }
  if (!s.ok()) {
    if (s.IsNoSpace()) impl_->no_space_errors.fetch_add(1, std::memory_order_relaxed);
    return FromRocks(s, "commit");
  }
  SHIM_FAILPOINT("store.after_sync");
  impl_->commits.fetch_add(1, std::memory_order_relaxed);
  impl_->committed_ops.fetch_add(batch.count(), std::memory_order_relaxed);
  impl_->bytes_written.fetch_add(batch.bytes(), std::memory_order_relaxed);
  if (!sync && options_.durability == Durability::kAsync)
    impl_->unsynced.store(true, std::memory_order_relaxed);
  return Status::Ok();
}

Result<std::optional<std::string>> Store::Get(Family f, std::string_view key) const {
  if (!impl_->db) return Status::Internal("store is closed");
  std::string value;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(f),
                                     rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "get");
  return std::optional<std::string>(std::move(value));
}

Status Store::Scan(Family f, std::string_view begin, std::string_view end, const ScanFn& fn) const {
  if (!impl_->db) return Status::Internal("store is closed");
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(end.data(), end.size());
  if (!end.empty()) ro.iterate_upper_bound = &upper;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf(f)));
  for (it->Seek(rocksdb::Slice(begin.data(), begin.size())); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key(), v = it->value();
    if (!fn(std::string_view(k.data(), k.size()), std::string_view(v.data(), v.size()))) break;
  }
  return FromRocks(it->status(), "scan");
}

Status Store::Close() {
  if (!impl_ || !impl_->db) return Status::Ok();
  if (impl_->syncer.joinable()) {
    {
      std::lock_guard lock(impl_->mu);
      impl_->stopping = true;
    }
    impl_->cv.notify_all();
    impl_->syncer.join();
  }
  Status result;
  // kNone never wrote a WAL: flush memtables so a clean shutdown keeps data.
  rocksdb::FlushOptions fo;
  rocksdb::Status s = impl_->db->Flush(fo, impl_->handles);
  if (!s.ok()) result = FromRocks(s, "flush at close");
  s = impl_->db->SyncWAL();
  if (!s.ok() && !s.IsNotSupported() && result.ok()) result = FromRocks(s, "sync wal at close");
  for (auto* h : impl_->handles) (void)impl_->db->DestroyColumnFamilyHandle(h);
  impl_->handles.clear();
  s = impl_->db->Close();
  if (!s.ok() && result.ok()) result = FromRocks(s, "close");
  impl_->db.reset();
  return result;
}

StoreStats Store::stats() const {
  StoreStats out;
  out.commits = impl_->commits.load();
  out.committed_ops = impl_->committed_ops.load();
  out.fsyncs = impl_->statistics ? impl_->statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED) : 0;
  out.bytes_written = impl_->bytes_written.load();
  out.no_space_errors = impl_->no_space_errors.load();
  out.resumes = impl_->resumes.load();
  return out;
}

uint64_t Store::ApproximateSizeBytes() const {
  if (!impl_->db) return 0;
  uint64_t total = 0;
  for (auto* h : impl_->handles) {
    uint64_t v = 0;
    if (impl_->db->GetIntProperty(h, "rocksdb.total-sst-files-size", &v)) total += v;
    if (impl_->db->GetIntProperty(h, "rocksdb.cur-size-all-mem-tables", &v)) total += v;
  }
  return total;
}

}  // namespace shim::storage

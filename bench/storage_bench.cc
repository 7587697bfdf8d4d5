// Store::Commit: one WriteBatch of N puts (~100-byte values) per commit, by
// batch size and durability. sync=1 is Durability::kSync (fsync before
// Commit returns); sync=0 is kAsync (WAL written, fsynced by a background
// thread every 100 ms). items_per_second counts puts; commits_per_s counts
// Commit() calls. This is the cost group commit amortizes: one fsync for a
// whole group of requests.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>

#include "bench/bench_util.h"
#include "storage/key_codec.h"
#include "storage/store.h"

namespace shim::storage {
namespace {

constexpr size_t kValueBytes = 100;

void BM_Commit(benchmark::State& state) {
  const int64_t batch_size = state.range(0);
  const bool sync = state.range(1) != 0;
  bench::ScratchDir dir("shim-storage-bench");
  if (dir.path().empty()) {
    state.SkipWithError("cannot create a scratch directory under /tmp");
    return;
  }
  StoreOptions options;
  options.path = dir.path() + "/db";
  options.durability = sync ? Durability::kSync : Durability::kAsync;
  auto opened = Store::Open(options);
  if (!opened.ok()) {
    state.SkipWithError(opened.status().ToString().c_str());
    return;
  }
  std::unique_ptr<Store> store = std::move(opened).value();

  const std::string value(kValueBytes, 'v');
  uint64_t next_key = 0;
  for (auto _ : state) {
    // Building the batch is part of the measured cost, as it is in the
    // engine; it is small next to the write itself.
    WriteBatch batch(*store);
    for (int64_t i = 0; i < batch_size; ++i) {
      batch.Put(Family::kKv, KeyEncoder(KeyTag::kKv).Str("bench/key").U64(next_key++).key(), value);
    }
    Status s = store->Commit(batch);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * batch_size);
  state.SetBytesProcessed(state.iterations() * batch_size * static_cast<int64_t>(kValueBytes));
  state.counters["commits_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  if (Status s = store->Close(); !s.ok()) state.SkipWithError(s.ToString().c_str());
}
BENCHMARK(BM_Commit)
    ->ArgNames({"batch", "sync"})
    ->ArgsProduct({{1, 4, 16, 64, 256, 1024}, {1, 0}})
    ->MinTime(0.3)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace shim::storage

BENCHMARK_MAIN();

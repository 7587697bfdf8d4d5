// Key codec: encoding and decoding of a typical key, a string field followed
// by a u64 (the channel-log key shape: tag, channel, seq), by string length.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "storage/key_codec.h"

namespace shim::storage {
namespace {

std::string MakeString(size_t n) {
  std::string s;
  s.reserve(n);
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>('a' + i % 26));
  return s;
}

void BM_EncodeKey(benchmark::State& state) {
  const std::string name = MakeString(static_cast<size_t>(state.range(0)));
  uint64_t seq = 1;
  for (auto _ : state) {
    std::string key = KeyEncoder(KeyTag::kChannelMessage).Str(name).U64(seq++).key();
    benchmark::DoNotOptimize(key);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(name.size() + 8));
}
BENCHMARK(BM_EncodeKey)->ArgName("strlen")->Arg(8)->Arg(32)->Arg(128)->Arg(1024);

void BM_DecodeKey(benchmark::State& state) {
  const std::string name = MakeString(static_cast<size_t>(state.range(0)));
  const std::string key = KeyEncoder(KeyTag::kChannelMessage).Str(name).U64(42).key();
  std::string decoded;
  for (auto _ : state) {
    KeyDecoder d(key);
    KeyTag tag;
    uint64_t seq;
    if (!d.Tag(&tag) || !d.Str(&decoded) || !d.U64(&seq) || !d.done()) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(decoded);
    benchmark::DoNotOptimize(seq);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(key.size()));
}
BENCHMARK(BM_DecodeKey)->ArgName("strlen")->Arg(8)->Arg(32)->Arg(128)->Arg(1024);

}  // namespace
}  // namespace shim::storage

BENCHMARK_MAIN();

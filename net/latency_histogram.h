// LatencyHistogram: fixed-memory log-linear histogram of microsecond
// latencies with percentile queries (HdrHistogram-style, ~3% precision).
// Used for sys.stats per-method figures and by `shim bench`.
// Not thread-safe; merge per-thread copies with Merge().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace shim::net {

class LatencyHistogram {
 public:
  void Record(uint64_t micros);
  void Merge(const LatencyHistogram& other);
  // q in [0, 1]; 0 when empty.
  uint64_t Percentile(double q) const;
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? double(sum_) / double(count_) : 0.0; }

 private:
  // 64 magnitudes x 32 linear sub-buckets.
  static constexpr int kSubBits = 5;
  static constexpr int kSub = 1 << kSubBits;
  static size_t BucketOf(uint64_t v);
  static uint64_t UpperBoundOf(size_t bucket);
  std::array<uint64_t, 64 * kSub> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace shim::net

#include "net/latency_histogram.h"

#include <algorithm>
#include <bit>

namespace shim::net {

size_t LatencyHistogram::BucketOf(uint64_t v) {
  if (v < kSub) return v;                    // exact below 32 us
  int magnitude = 63 - std::countl_zero(v);  // >= kSubBits
  int shift = magnitude - kSubBits;
  uint64_t sub = (v >> shift) & (kSub - 1);
  return size_t(shift + 1) * kSub + sub;
}

uint64_t LatencyHistogram::UpperBoundOf(size_t bucket) {
  if (bucket < kSub) return bucket;
  int shift = int(bucket / kSub) - 1;
  uint64_t sub = bucket % kSub;
  return ((uint64_t(kSub) + sub + 1) << shift) - 1;
}

void LatencyHistogram::Record(uint64_t micros) {
  size_t b = std::min(BucketOf(micros), buckets_.size() - 1);
  ++buckets_[b];
  ++count_;
  sum_ += micros;
  max_ = std::max(max_, micros);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = uint64_t(q * double(count_ - 1)) + 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(UpperBoundOf(i), max_);
  }
  return max_;
}

}  // namespace shim::net

// ServerStats: per-method call counts, error counts and latency
// histograms, plus byte counters, for sys.stats. io thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "net/latency_histogram.h"

namespace shim::net {

class ServerStats {
 public:
  void RecordCall(const std::string& method, uint64_t micros, bool error);
  void AddBytesIn(uint64_t n) { bytes_in_ += n; }
  void AddBytesOut(uint64_t n) { bytes_out_ += n; }
  // {"methods": {name: {calls, errors, p50_us, p99_us}}, "bytes_in", "bytes_out"}
  nlohmann::json ToJson() const;

 private:
  struct PerMethod {
    uint64_t calls = 0;
    uint64_t errors = 0;
    LatencyHistogram latency;
  };
  std::map<std::string, PerMethod, std::less<>> methods_;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
};

}  // namespace shim::net

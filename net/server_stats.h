// ServerStats: per-method call counts, error counts and latency
// histograms, plus byte counters, for sys.stats. io thread only.
//
// The per-method table holds only names registered up front (the engine's
// methods, the server's own, the MCP methods): a method name is chosen by
// the client, and a histogram costs ~16 KiB, so a client sending a million
// distinct names must not get a million entries. Calls to any other name
// (unknown methods, unknown MCP notifications) are counted under one bucket,
// kOtherMethods.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "net/latency_histogram.h"

namespace shim::net {

class ServerStats {
 public:
  // The bucket of every call to a name that was not registered.
  static constexpr std::string_view kOtherMethods = "(other)";

  // Lets `method` have its own entry. Registering twice is harmless.
  void Register(std::string_view method);
  // Counts one call: under `method` if registered, else under kOtherMethods.
  void RecordCall(std::string_view method, uint64_t micros, bool error);
  void AddBytesIn(uint64_t n) { bytes_in_ += n; }
  void AddBytesOut(uint64_t n) { bytes_out_ += n; }
  // {"methods": {name: {calls, errors, p50_us, p99_us}}, "bytes_in", "bytes_out"};
  // only methods called at least once are listed.
  nlohmann::json ToJson() const;

 private:
  struct PerMethod {
    uint64_t calls = 0;
    uint64_t errors = 0;
    LatencyHistogram latency;
  };
  // Every registered name, its figures allocated at its first call.
  std::map<std::string, std::unique_ptr<PerMethod>, std::less<>> methods_;
  PerMethod other_;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
};

}  // namespace shim::net

#include "net/server_stats.h"

namespace shim::net {

void ServerStats::RecordCall(const std::string& method, uint64_t micros, bool error) {
  auto it = methods_.find(method);
  if (it == methods_.end()) it = methods_.emplace(method, PerMethod{}).first;
  ++it->second.calls;
  if (error) ++it->second.errors;
  it->second.latency.Record(micros);
}

nlohmann::json ServerStats::ToJson() const {
  nlohmann::json methods = nlohmann::json::object();
  for (const auto& [name, m] : methods_) {
    methods[name] = {{"calls", m.calls},
                     {"errors", m.errors},
                     {"p50_us", m.latency.Percentile(0.50)},
                     {"p99_us", m.latency.Percentile(0.99)}};
  }
  return {{"methods", std::move(methods)}, {"bytes_in", bytes_in_}, {"bytes_out", bytes_out_}};
}

}  // namespace shim::net

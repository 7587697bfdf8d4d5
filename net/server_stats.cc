#include "net/server_stats.h"

namespace shim::net {

namespace {

nlohmann::json Figures(uint64_t calls, uint64_t errors, const LatencyHistogram& latency) {
  return {{"calls", calls},
          {"errors", errors},
          {"p50_us", latency.Percentile(0.50)},
          {"p99_us", latency.Percentile(0.99)}};
}

}  // namespace

void ServerStats::Register(std::string_view method) {
  if (methods_.find(method) == methods_.end()) methods_.emplace(std::string(method), nullptr);
}

void ServerStats::RecordCall(std::string_view method, uint64_t micros, bool error) {
  PerMethod* m = &other_;
  if (auto it = methods_.find(method); it != methods_.end()) {
    if (!it->second) it->second = std::make_unique<PerMethod>();
    m = it->second.get();
  }
  ++m->calls;
  if (error) ++m->errors;
  m->latency.Record(micros);
}

nlohmann::json ServerStats::ToJson() const {
  nlohmann::json methods = nlohmann::json::object();
  for (const auto& [name, m] : methods_) {
    if (m) methods[name] = Figures(m->calls, m->errors, m->latency);
  }
  if (other_.calls > 0)
    methods[std::string(kOtherMethods)] = Figures(other_.calls, other_.errors, other_.latency);
  return {{"methods", std::move(methods)}, {"bytes_in", bytes_in_}, {"bytes_out", bytes_out_}};
}

}  // namespace shim::net

#include "tests/support/fake_client.h"

namespace shim::testing {

bool FakeClient::Notify(std::string_view method, const nlohmann::json& params, bool force) {
  if (!force && (refuse_ || (budget_ && *budget_ == 0))) {
    ++refused_;
    return false;
  }
  if (!force && budget_) --*budget_;
  ++notifications_;
  if (keep_notes_) notes_.push_back({std::string(method), params, force});
  return true;
}

bool FakeClient::NotifyEncoded(std::string_view method, std::string_view params_json, bool force) {
  if (keep_notes_) encoded_.emplace_back(params_json);
  return Client::NotifyEncoded(method, params_json, force);
}

std::vector<nlohmann::json> FakeClient::Of(std::string_view method) const {
  std::vector<nlohmann::json> out;
  for (const Note& n : notes_) {
    if (n.method == method) out.push_back(n.params);
  }
  return out;
}

std::vector<uint64_t> FakeClient::Seqs(std::string_view channel) const {
  std::vector<uint64_t> out;
  for (const nlohmann::json& m : Of("pubsub.message")) {
    if (channel.empty() || m["channel"] == channel) out.push_back(m["seq"].get<uint64_t>());
  }
  return out;
}

}  // namespace shim::testing

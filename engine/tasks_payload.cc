// TaskModule: payloads. They are written once at submit (kTaskPayload) and
// never held in memory for long: a deep queue's payloads would otherwise
// dominate the server's memory and its recovery time. task.claim and
// task.get read them back with a point read.
#include "engine/tasks.h"
#include "storage/key_codec.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;
using storage::KeyEncoder;
using storage::KeyTag;

void TaskModule::HoldPayloadsUntilCommitted(std::vector<std::pair<uint64_t, std::string>> payloads) {
  if (payloads.empty()) return;
  std::vector<uint64_t> seqs;
  seqs.reserve(payloads.size());
  for (auto& [seq, text] : payloads) {
    seqs.push_back(seq);
    uncommitted_payloads_.emplace(seq, std::move(text));
  }
  // AfterCommit runs once the open group (which holds these payloads' Puts)
  // has landed. If that group fails, Reset clears the whole map.
  core_.AfterCommit([this, seqs = std::move(seqs)] {
    for (uint64_t seq : seqs) uncommitted_payloads_.erase(seq);
  });
}

json TaskModule::LoadPayload(uint64_t seq) const {
  std::string_view text;
  std::optional<std::string> stored;
  if (auto it = uncommitted_payloads_.find(seq); it != uncommitted_payloads_.end()) {
    text = it->second;
  } else {
    auto r = core_.store().Get(Family::kTasks, KeyEncoder(KeyTag::kTaskPayload).U64(seq).key());
    if (!r.ok() || !r.value()) return nullptr;
    stored = std::move(r).value();
    text = *stored;
  }
  json payload = json::parse(text, nullptr, false);
  return payload.is_discarded() ? json(nullptr) : payload;
}

}  // namespace shim::engine

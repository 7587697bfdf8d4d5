// TaskModule: payloads. They are written once at submit (kTaskPayload). A
// deep queue's payloads would dominate the server's memory and its recovery
// time, so memory holds only a bounded share of them (PayloadCache: those
// of the oldest unclaimed tasks, up to TaskLimits::payload_cache_bytes);
// task.claim and task.get read the rest back with a point read.
#include "engine/json_parse.h"
#include "engine/tasks/tasks.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

void TaskModule::HoldPayloads(std::vector<std::pair<uint64_t, std::string>> payloads) {
  if (payloads.empty()) return;
  std::vector<uint64_t> seqs;
  seqs.reserve(payloads.size());
  for (auto& [seq, text] : payloads) {
    seqs.push_back(seq);
    payloads_.HoldUncommitted(seq, std::move(text));
  }
  // AfterCommit runs once the open group (which holds these payloads' Puts)
  // has landed. If that group fails, Reset clears the whole cache.
  core_.AfterCommit([this, seqs = std::move(seqs)] {
    for (uint64_t seq : seqs) payloads_.Committed(seq);
  });
}

std::string TaskModule::LoadPayloadText(uint64_t seq) const {
  // Cached text is what submit wrote with DumpCompact. Text read back from
  // the store goes into replies as it is, so it is checked to be JSON
  // (a damaged value must not break the reply's line).
  if (const std::string* held = payloads_.Find(seq)) return *held;
  auto r = core_.store().Get(Family::kTasks, TaskPayloadKey(seq));
  if (!r.ok() || !r.value() || !json::accept(*r.value())) return "null";
  return std::move(*r.value());
}

json TaskModule::LoadPayload(uint64_t seq) const {
  json payload = ParseStoredJson(LoadPayloadText(seq));
  return payload.is_discarded() ? json(nullptr) : payload;
}

}  // namespace shim::engine

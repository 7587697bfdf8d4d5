#include "engine/core.h"

#include "base/json_text.h"
#include "storage/key_codec.h"

namespace shim::engine {

using nlohmann::json;
using storage::KeyEncoder;
using storage::KeyTag;

std::string RevisionKey() { return KeyEncoder(KeyTag::kMeta).Str("revision").key(); }

Core::Core(Clock& clock, storage::Store& store, EngineLimits limits)
    : clock_(clock), store_(store), limits_(limits), group_(std::make_unique<Group>(store)) {}

void Core::Reply(const ReplyFn& reply, Result<json> result) {
  if (quiescent()) {
    reply(std::move(result));
    return;
  }
  group_->HoldReplyBytes(result.ok() ? EstimateEncodedSize(result.value())
                                     : result.status().message().size());
  group_->effects().push_back(
      Effect{reply, [r = std::move(result)]() mutable { return std::move(r); }, nullptr});
}

void Core::ReplyLater(const ReplyFn& reply, std::function<Result<json>()> produce,
                      std::function<void()> then) {
  if (quiescent()) {
    Result<json> r = produce();
    const bool ok = r.ok();
    reply(std::move(r));
    if (ok && then) then();
    return;
  }
  group_->effects().push_back(Effect{reply, std::move(produce), std::move(then)});
}

void Core::ReplyEncoded(const EncodedReplyFn& reply, std::string result_json) {
  if (quiescent()) {
    reply(std::move(result_json));
    return;
  }
  group_->HoldReplyBytes(result_json.size());
  AfterCommit([reply, text = std::move(result_json)]() mutable { reply(std::move(text)); });
}

void Core::AfterCommit(std::function<void()> action) {
  if (quiescent()) {
    action();
    return;
  }
  group_->effects().push_back(Effect{nullptr,
                                     [a = std::move(action)]() -> Result<json> {
                                       a();
                                       return json(nullptr);
                                     },
                                     nullptr});
}

std::string Core::EncodedRevision() const {
  std::string v;
  storage::AppendU64(&v, revision_);
  return v;
}

std::unique_ptr<Group> Core::Seal() {
  for (const auto& hook : seal_hooks_) hook();
  if (group_->has_writes())
    group_->batch().Put(storage::Family::kMeta, RevisionKey(), EncodedRevision());
  auto sealed = std::move(group_);
  group_ = std::make_unique<Group>(store_);
  in_flight_ = true;
  in_flight_held_bytes_ = sealed->held_reply_bytes();
  return sealed;
}

std::unique_ptr<Group> Core::TakeOpenGroup() {
  auto open = std::move(group_);
  group_ = std::make_unique<Group>(store_);
  return open;
}

}  // namespace shim::engine

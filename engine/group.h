// Group: the unit of group commit.
//
// Every command applied since the previous group was sealed writes into one
// storage::WriteBatch and queues its externally visible effects (replies,
// pub/sub deliveries, events) here. The host commits the batch with Write()
// (any thread; it touches only the store), then hands the group back to the
// engine, which releases the effects in order if the write succeeded and
// fails every reply if it did not. Nothing a group did is visible outside
// the engine before its batch is durable.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/call.h"
#include "storage/store.h"

namespace shim::engine {

struct Effect {
  ReplyFn reply;  // may be empty for pure post-commit actions
  // Produces the reply (or performs the action) at release time, after the
  // batch is durable; for reads that must see this group's own writes.
  std::function<Result<nlohmann::json>()> produce;
  // Runs after `reply` on success only (e.g. a subscription's replay, which
  // must follow the subscribe reply on the wire).
  std::function<void()> then;
};

class Group {
 public:
  explicit Group(storage::Store& store) : store_(&store), batch_(store) {}

  storage::WriteBatch& batch() { return batch_; }
  bool has_writes() const { return !batch_.empty(); }
  bool empty() const { return batch_.empty() && effects_.empty(); }
  size_t commands() const { return commands_; }
  void CountCommand() { ++commands_; }
  // Forces an fsync of this group whatever the durability mode.
  void RequireSync() { force_sync_ = true; }
  std::vector<Effect>& effects() { return effects_; }
  // Bytes of the answers held here until the batch is durable (their encoded
  // size, estimated for documents): memory a flood of reads can pin while
  // a commit is slow, which the host bounds (Engine::held_reply_bytes).
  size_t held_reply_bytes() const { return held_reply_bytes_; }
  void HoldReplyBytes(size_t n) { held_reply_bytes_ += n; }

  // Makes Write() fail with `why` and write nothing (a read-only engine's
  // group that holds writes: Engine::Seal).
  void Refuse(Status why) { refused_ = std::move(why); }

  // Commits the batch. Thread-safe with respect to the engine (touches only
  // the store); call it for at most one group at a time, in seal order.
  Status Write() {
    if (!refused_.ok()) return refused_;
    return has_writes() ? store_->Commit(batch_, force_sync_) : Status::Ok();
  }

 private:
  storage::Store* store_;
  storage::WriteBatch batch_;
  std::vector<Effect> effects_;
  size_t commands_ = 0;
  size_t held_reply_bytes_ = 0;
  bool force_sync_ = false;
  Status refused_;
};

}  // namespace shim::engine

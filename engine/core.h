// Core: what every engine module shares — the clock, the store, the group
// being built, the store-wide revision, the timer queues, and the rule for
// when an answer may leave the engine.
//
// The rule: an answer (reply, delivery, event) may leave only when nothing it
// could have observed is still undurable. So while any write is pending (in
// the open group or in the group being committed), answers are queued on the
// open group and released, in order, after it commits; otherwise they go out
// at once. Reads thus never expose data a crash could take back.
// Engine thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/call.h"
#include "engine/clock.h"
#include "engine/group.h"
#include "engine/timer_queue.h"
#include "storage/store.h"

namespace shim::engine {

// Bounds on everything a client controls. Defaults are the documented limits
// (docs/protocol.md, "Limits").
struct EngineLimits {
  size_t max_key_bytes = 1024;
  size_t max_value_bytes = 1 << 20;  // encoded JSON
  // state.patch ops: what they may walk, copy or shift in all, in bytes of
  // JSON (JsonBuildLimits::max_work), 16 values' worth.
  size_t max_patch_work = 16 << 20;
  size_t max_channel_bytes = 256;
  size_t max_message_data_bytes = 1 << 20;  // encoded JSON of a publish
  size_t max_subscriptions_per_client = 10'000;
  int64_t max_list_limit = 1000;  // state.list, pubsub.history
  // Encoded size one paged reply stops growing at (it always holds at least
  // one item, so a reply is at most this plus one item): pubsub.history,
  // state.list. The reply says where to continue.
  size_t max_reply_bytes = 4 << 20;
  size_t max_txn_ops = 1000;                           // compare + success + failure
  int64_t max_ttl_ms = 10LL * 365 * 24 * 3600 * 1000;  // ten years
  size_t max_name_bytes = 256;                         // lock names, owners, worker ids
  size_t max_waiters_per_lock = 1000;                  // lock.acquire with wait_ms
  int64_t max_wait_ms = 3'600'000;                     // longest server-side wait
};

class Core {
 public:
  Core(Clock& clock, storage::Store& store, EngineLimits limits);

  // The clock and store are shared services, not part of the core's state.
  Clock& clock() const { return clock_; }
  storage::Store& store() const { return store_; }
  const EngineLimits& limits() const { return limits_; }

  // --- writing -----------------------------------------------------------
  // The batch of the open group; every mutation goes here.
  storage::WriteBatch& batch() { return group_->batch(); }
  Group& group() { return *group_; }
  const Group& group() const { return *group_; }
  // Counts one committed write: returns the new store-wide revision, which
  // is persisted in the same batch.
  uint64_t NextRevision() { return ++revision_; }
  uint64_t revision() const { return revision_; }
  void set_revision(uint64_t r) { revision_ = r; }

  // --- answering ---------------------------------------------------------
  // True when no write is pending or in flight: answers may leave now.
  bool quiescent() const { return !group_->has_writes() && !in_flight_; }
  // Bytes of replies held until a commit lands: in the open group and the
  // one in flight (Group::held_reply_bytes).
  size_t held_reply_bytes() const { return group_->held_reply_bytes() + in_flight_held_bytes_; }
  // Replies now if quiescent, else after the open group commits.
  void Reply(const ReplyFn& reply, Result<nlohmann::json> result);
  // Like Reply, but the result is computed at release time (reads of the
  // store that must include the open group's writes). `then`, if given, runs
  // right after the reply is sent, only if the group committed.
  void ReplyLater(const ReplyFn& reply, std::function<Result<nlohmann::json>()> produce,
                  std::function<void()> then = nullptr);
  // Reply for an answer already encoded as JSON text (Call::reply_encoded),
  // under the same rule.
  void ReplyEncoded(const EncodedReplyFn& reply, std::string result_json);
  // Runs `action` now if quiescent, else after the open group commits, in
  // order with the replies queued before and after it.
  void AfterCommit(std::function<void()> action);

  // --- time --------------------------------------------------------------
  TimerQueue& wall_timers() { return wall_timers_; }
  TimerQueue& mono_timers() { return mono_timers_; }
  const TimerQueue& wall_timers() const { return wall_timers_; }
  const TimerQueue& mono_timers() const { return mono_timers_; }
  // On monotonic time, for timers that only pace output to a connection
  // (pub/sub replay slices) and never write: the only ones a read-only
  // engine still runs (Engine::RunTimers).
  TimerQueue& pacing_timers() { return pacing_timers_; }
  const TimerQueue& pacing_timers() const { return pacing_timers_; }

  // Runs `hook` at every Seal, before the group closes, for modules that
  // write one record per group instead of one per change (pub/sub channel
  // heads). The hook may add to batch(); it runs even for an empty group.
  void AddSealHook(std::function<void()> hook) { seal_hooks_.push_back(std::move(hook)); }

  // --- group lifecycle (Engine only) -------------------------------------
  // Closes the open group (adding the revision record if it wrote) and opens
  // a new one. At most one sealed group may be in flight.
  std::unique_ptr<Group> Seal();
  bool in_flight() const { return in_flight_; }
  // Marks the in-flight group done.
  void Landed() {
    in_flight_ = false;
    in_flight_held_bytes_ = 0;
  }
  std::unique_ptr<Group> TakeOpenGroup();

 private:
  std::string EncodedRevision() const;
  Clock& clock_;
  storage::Store& store_;
  EngineLimits limits_;
  std::unique_ptr<Group> group_;
  bool in_flight_ = false;
  size_t in_flight_held_bytes_ = 0;  // held_reply_bytes of the group in flight
  uint64_t revision_ = 0;
  TimerQueue wall_timers_;
  TimerQueue mono_timers_;
  TimerQueue pacing_timers_;
  std::vector<std::function<void()>> seal_hooks_;
};

// Meta keys (Family::kMeta).
std::string RevisionKey();

}  // namespace shim::engine

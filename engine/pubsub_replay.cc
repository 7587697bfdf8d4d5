// Paced replay of pub/sub subscriptions (subscribe with from_seq): see
// PubSubModule in engine/pubsub.h.
#include <algorithm>

#include "base/json_text.h"
#include "engine/channel_log.h"
#include "engine/pubsub.h"

namespace shim::engine {

namespace {

// One turn of a replay sends at most this much before it lets other work
// run (docs/design.md, style rule 11: no turn of the engine takes more than a few ms).
constexpr size_t kReplaySliceBytes = 1 << 20;
constexpr size_t kReplaySliceMessages = 1000;
// The next slice runs on the next millisecond's timers: one due "now" would
// run within the same RunTimers call, which would make the slices one turn.
constexpr int64_t kReplaySliceDelayMs = 1;

}  // namespace

void PubSubModule::StartReplay(uint64_t sub_id, uint64_t from_seq) {
  auto it = subs_.find(sub_id);
  if (it == subs_.end()) return;
  Subscription& sub = it->second;
  auto replay = std::make_unique<Replay>();
  auto add = [&](const std::string& name, const Channel& ch) {
    const uint64_t start = std::max(from_seq, ch.first_seq);
    if (start <= ch.durable_seq) replay->cursors.emplace(name, Replay::Cursor{start});
  };
  if (sub.is_pattern) {
    for (const auto& [name, ch] : channels_) {
      if (GlobMatch(sub.target, name)) add(name, ch);
    }
  } else if (auto ch = channels_.find(sub.target); ch != channels_.end()) {
    add(ch->first, ch->second);
  }
  if (replay->cursors.empty()) return;  // nothing stored to send: live at once
  sub.replay = std::move(replay);
  ContinueReplay(sub_id);
}

void PubSubModule::ContinueReplay(uint64_t sub_id) {
  auto it = subs_.find(sub_id);
  if (it == subs_.end() || !it->second.replay) return;
  Subscription& sub = it->second;
  std::shared_ptr<Client> client = sub.client.lock();
  if (!client || client->closed()) return RemoveSubscription(sub_id);
  Replay& replay = *sub.replay;
  replay.wait = Replay::Wait::kNone;
  size_t slice_bytes = 0, slice_messages = 0;
  while (!replay.cursors.empty() && replay.wait == Replay::Wait::kNone) {
    auto cursor = replay.cursors.begin();
    const std::string name = cursor->first;  // outlives the cursor (Drop)
    Replay::Cursor& at = cursor->second;
    auto ch = channels_.find(name);
    if (ch == channels_.end()) {  // gone with a failed write's reload
      replay.cursors.erase(cursor);
      continue;
    }
    if (at.next < ch->second.first_seq) {
      // Retention trimmed messages this subscriber was owed before the
      // replay reached them: say so, as for any subscriber left behind.
      return Drop(sub_id, name, at.next - 1);
    }
    const uint64_t end = ch->second.durable_seq;
    const std::string channel_json = DumpCompact(name);
    Status s = core_.store().Scan(
        storage::Family::kChannelLog, ChannelLogKey(name, at.next), ChannelLogKey(name, end + 1),
        [&](std::string_view k, std::string_view v) {
          uint64_t seq;
          int64_t published_at_ms;
          std::string_view data_json;
          if (!DecodeChannelLogRecord(k, v, &seq, &published_at_ms, &data_json)) return true;
          if (slice_bytes >= kReplaySliceBytes || slice_messages >= kReplaySliceMessages) {
            replay.wait = Replay::Wait::kSlice;
            return false;
          }
          const size_t bytes = MessageLineBytes(channel_json, data_json);
          if (!client->NotifyEncoded(
                  "pubsub.message",
                  EncodeMessageParams(channel_json, data_json, published_at_ms, seq, sub_id))) {
            replay.wait = Replay::Wait::kWritable;  // the connection calls back when drained
            return false;
          }
          at.next = seq + 1;
          if (seq >= at.held_from) replay.held_bytes -= std::min(replay.held_bytes, bytes);
          slice_bytes += bytes;
          ++slice_messages;
          return true;
        });
    if (!s.ok()) {
      // The log cannot be read: the subscriber is told where it stands and
      // may resubscribe, as after any drop.
      return Drop(sub_id, name, at.next - 1);
    }
    if (replay.wait != Replay::Wait::kNone) break;
    replay.cursors.erase(cursor);  // caught up with this channel
  }
  if (replay.wait == Replay::Wait::kSlice) {
    core_.pacing_timers().Schedule(core_.clock().MonoMs() + kReplaySliceDelayMs, [this, sub_id] {
      auto again = subs_.find(sub_id);
      if (again != subs_.end() && again->second.replay &&
          again->second.replay->wait == Replay::Wait::kSlice) {
        ContinueReplay(sub_id);
      }
    });
    return;
  }
  if (replay.cursors.empty()) sub.replay.reset();  // caught up: live from here
}

bool PubSubModule::HoldForReplay(Subscription& sub, const std::string& channel, uint64_t seq,
                                 size_t bytes) {
  std::shared_ptr<Client> client = sub.client.lock();
  if (!client || client->closed()) {
    RemoveSubscription(sub.id);
    return false;
  }
  Replay& replay = *sub.replay;
  Replay::Cursor& at = replay.cursors.try_emplace(channel, Replay::Cursor{seq}).first->second;
  at.held_from = std::min(at.held_from, seq);
  replay.held_bytes += bytes;
  // Live traffic the subscriber has not taken counts as if it were queued:
  // past the connection's limit it is dropped as a live one would be.
  if (replay.held_bytes > client->outbound_limit()) {
    Drop(sub.id, channel, at.next - 1);
    return false;
  }
  return true;
}

void PubSubModule::OnClientWritable(uint64_t client_id) {
  auto it = subs_by_client_.find(client_id);
  if (it == subs_by_client_.end()) return;
  const std::vector<uint64_t> ids = it->second;  // a replay may end a subscription
  for (uint64_t id : ids) {
    auto sub = subs_.find(id);
    if (sub != subs_.end() && sub->second.replay &&
        sub->second.replay->wait == Replay::Wait::kWritable) {
      ContinueReplay(id);
    }
  }
}

}  // namespace shim::engine

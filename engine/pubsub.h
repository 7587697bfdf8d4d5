// PubSubModule: durable channels with replay (pubsub.* methods).
//
// Each channel is a log in Family::kChannelLog keyed (channel, seq), seq
// counting from 1, plus a record in Family::kChannelMeta holding its last
// seq, oldest retained seq and retention settings. Retention trims by count
// at publish and by age in a once-a-second sweep.
//
// Delivery order: a publish's live delivery is an after-commit effect, and
// subscribing (with the start of its replay of the stored log up to the last
// durable seq) is an effect too, queued in request order. So a subscriber
// sees the stored messages, then every later one, with no gap and no
// duplicate.
//
// A replay (subscribe with from_seq; engine/pubsub_replay.cc) is paced by
// the connection: it sends until Client::Notify refuses, then waits for
// Engine::OnClientWritable, and yields to other work every 1 MiB or 1000
// messages. While it runs, live messages for that subscription are left in
// the log for the replay to send in turn; their bytes count against the
// connection's outbound limit, so a replaying client that stops reading is
// dropped like any other once live traffic passes that limit. The backlog
// itself never drops it; retention trimming messages it still owes does.
//
// A live subscriber whose connection cannot take more (Client::Notify
// refuses) is unsubscribed and told `pubsub.dropped` with the last seq it was
// given; it resumes with from_seq = last_seq + 1. Engine thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/call.h"
#include "engine/channel_meta_record.h"
#include "engine/core.h"
#include "engine/glob.h"
#include "engine/pattern_index.h"

namespace shim::engine {

class PubSubModule {
 public:
  explicit PubSubModule(Core& core);

  Status Recover();
  void Reset();

  void Publish(Call& call);
  void Subscribe(Call& call);
  void Unsubscribe(Call& call);
  void History(Call& call);
  void Configure(Call& call);

  // Publishes from inside the engine (task and worker events). Must be
  // called while applying a command; delivery follows its commit.
  uint64_t PublishInternal(const std::string& channel, nlohmann::json data);

  void OnClientClosed(uint64_t client_id);
  // Continues the paced replays of this connection (Engine::OnClientWritable).
  void OnClientWritable(uint64_t client_id);
  size_t channel_count() const { return channels_.size(); }
  size_t subscription_count() const { return subs_.size(); }

 private:
  // The stored head (engine/channel_meta_record.h: last_seq, first_seq,
  // retention) and what lives only in memory.
  struct Channel : ChannelMetaRecord {
    // Oldest seq whose key may still be in the store: trimmed keys are
    // deleted in batches (TrimTo). 1 after a restart, which did not keep it.
    uint64_t stored_from = 1;
    uint64_t durable_seq = 0;  // highest seq whose commit has been released
    bool head_dirty = false;   // its meta record is due at the next seal
  };
  using ChannelEntry = std::pair<const std::string, Channel>;  // a node of channels_
  // A subscription catching up from the log. Each cursor is the next seq
  // of one channel to send, taken in channel name order; a channel is done
  // once its cursor passes the channel's durable seq, and the subscription is
  // live once all are. A live message for a replaying subscription adds its
  // channel (if not there) and counts in held_bytes until its cursor sends it.
  struct Replay {
    struct Cursor {
      uint64_t next;
      uint64_t held_from = UINT64_MAX;  // first seq held back from live delivery
    };
    enum class Wait : uint8_t { kNone, kWritable, kSlice };
    std::map<std::string, Cursor> cursors;
    size_t held_bytes = 0;
    Wait wait = Wait::kNone;
  };
  struct Subscription {
    uint64_t id;
    uint64_t client_id;
    std::weak_ptr<Client> client;
    std::string target;  // channel name or glob pattern
    bool is_pattern;
    std::unique_ptr<Replay> replay;  // set while catching up
  };

  ChannelEntry& GetOrCreate(const std::string& name);
  // The channel's meta record (seqs, retention) changed: it is written once
  // at the next seal (WriteDirtyMeta), not once per publish.
  void MarkMetaDirty(ChannelEntry& entry);
  void WriteDirtyMeta();
  // Appends one message to the log (in the open batch); returns its seq.
  // `data_json` is the message data as compact JSON text (DumpCompact).
  uint64_t Append(const std::string& channel, std::string_view data_json, int64_t published_at_ms);
  // Drops log entries below `new_first` for readers at once; their keys
  // are deleted in the open batch now if `delete_now`, else once enough of
  // them are dead (see the .cc).
  void TrimTo(const std::string& name, Channel& ch, uint64_t new_first, bool delete_now = false);

  // After-commit: sends one message to every matching subscriber. The data
  // arrives as the JSON text the log holds, and is encoded into each
  // subscriber's notification without being parsed or dumped again.
  size_t Deliver(const std::string& channel, uint64_t seq, std::string_view data_json,
                 int64_t published_at_ms);
  // Sends one message to one live subscriber; on refusal drops the
  // subscription. `channel_json` is the channel name as a JSON string
  // (quoted, escaped).
  bool SendTo(const Subscription& sub, const std::string& channel, std::string_view channel_json,
              uint64_t seq, std::string_view data_json, int64_t published_at_ms);
  // A live message for a replaying subscription: left to its cursor.
  // Returns false if that dropped the subscription (held bytes past the
  // connection's limit).
  bool HoldForReplay(Subscription& sub, const std::string& channel, uint64_t seq, size_t bytes);
  void Drop(uint64_t sub_id, const std::string& channel, uint64_t last_seq);
  // Sets up the replay of a new subscription from `from_seq` and starts it.
  void StartReplay(uint64_t sub_id, uint64_t from_seq);
  // Sends the next slice of a replay (see Replay); ends it when caught up.
  void ContinueReplay(uint64_t sub_id);
  void RemoveSubscription(uint64_t sub_id);

  Status ValidateChannel(const std::string& field, const std::string& name) const;
  void SweepByAge();
  void ScheduleSweep();

  Core& core_;
  std::unordered_map<std::string, Channel> channels_;
  // Channels whose meta record the open group must write (nodes of
  // channels_, which stay put until Reset / Recover clear both).
  std::vector<ChannelEntry*> meta_dirty_;
  std::unordered_map<uint64_t, Subscription> subs_;
  std::unordered_map<std::string, std::vector<uint64_t>> subs_by_channel_;
  PatternIndex patterns_;  // pattern subscriptions
  std::unordered_map<uint64_t, std::vector<uint64_t>> subs_by_client_;
  uint64_t next_sub_id_ = 1;
  bool sweep_scheduled_ = false;
};

}  // namespace shim::engine

#include "engine/pubsub.h"

#include <algorithm>

#include "base/json_text.h"
#include "engine/channel_log.h"
#include "engine/json_parse.h"
#include "engine/params.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

namespace {

constexpr int64_t kSweepIntervalMs = 1000;

}  // namespace

PubSubModule::PubSubModule(Core& core) : core_(core) {
  core_.AddSealHook([this] { WriteDirtyMeta(); });
}

void PubSubModule::Reset() {
  // Subscriptions belong to live connections, not to stored state: keep them.
  meta_dirty_.clear();
  channels_.clear();
}

Status PubSubModule::Recover() {
  meta_dirty_.clear();
  channels_.clear();
  const Status scanned = ScanDecodedRecords<std::string, Channel>(
      core_.store(), kChannelMetaRecords, DecodeChannelMetaKey, DecodeChannelMetaRecord,
      [&](std::string name, Channel ch) {
        ch.durable_seq = ch.last_seq;
        channels_.emplace(std::move(name), std::move(ch));
      });
  if (!scanned.ok()) return scanned;
  if (!sweep_scheduled_) {
    sweep_scheduled_ = true;
    ScheduleSweep();
  }
  return Status::Ok();
}

PubSubModule::ChannelEntry& PubSubModule::GetOrCreate(const std::string& name) {
  return *channels_.try_emplace(name).first;
}

void PubSubModule::MarkMetaDirty(ChannelEntry& entry) {
  if (entry.second.head_dirty) return;
  entry.second.head_dirty = true;
  meta_dirty_.push_back(&entry);
}

void PubSubModule::WriteDirtyMeta() {
  // A busy channel (events.<queue> gets three events per task) changes its
  // head with every publish; writing it once per group instead of once per
  // publish took a third of the memtable inserts of a task cycle. The log
  // entries and the head land in the same batch, so a crash sees both or
  // neither.
  for (auto* entry : meta_dirty_) {
    Channel& ch = entry->second;
    ch.head_dirty = false;
    core_.batch().Put(Family::kChannelMeta, ChannelMetaKey(entry->first),
                      EncodeChannelMetaRecord(ch));
  }
  meta_dirty_.clear();
}

void PubSubModule::TrimTo(const std::string& name, Channel& ch, uint64_t new_first,
                          bool delete_now) {
  // Readers start at first_seq, so a message is gone once first_seq passes
  // it; its key is deleted later, with the ones trimmed after it. A full
  // channel drops one message per publish: a point delete each was a
  // quarter of the memtable inserts of a task cycle (events.<queue> gets
  // two events per claim and complete). One range tombstone per publish is
  // worse (RocksDB re-fragments every range tombstone of a memtable at each
  // flush and iterator: millions of them cost 7 s of a 1M-task restart). So
  // keys trimmed by publishing wait until there are an eighth of the
  // channel's capacity (at most kTrimBatchMax), then go in one range
  // delete, or in point deletes when that is few. The rare trims
  // (pubsub.configure, the age sweep, at most once a second) delete at once,
  // so a channel that goes quiet keeps no dead messages beyond one batch.
  ch.first_seq = std::max(ch.first_seq, new_first);
  constexpr uint64_t kTrimBatchMax = 1024;
  constexpr uint64_t kPointDeleteTrimMax = 64;
  const uint64_t batch =
      std::clamp<uint64_t>(static_cast<uint64_t>(ch.retention.max_messages) / 8, 1, kTrimBatchMax);
  const uint64_t dead = ch.first_seq - ch.stored_from;
  if (dead == 0 || (!delete_now && dead < batch)) return;
  if (dead <= kPointDeleteTrimMax) {
    for (uint64_t seq = ch.stored_from; seq < ch.first_seq; ++seq) {
      core_.batch().Delete(Family::kChannelLog, ChannelLogKey(name, seq));
    }
  } else {
    core_.batch().DeleteRange(Family::kChannelLog, ChannelLogKey(name, ch.stored_from),
                              ChannelLogKey(name, ch.first_seq));
  }
  ch.stored_from = ch.first_seq;
}

uint64_t PubSubModule::Append(const std::string& name, std::string_view data_json,
                              int64_t published_at_ms) {
  core_.NextRevision();
  ChannelEntry& entry = GetOrCreate(name);
  Channel& ch = entry.second;
  const uint64_t seq = ++ch.last_seq;
  core_.batch().Put(Family::kChannelLog, ChannelLogKey(name, seq),
                    EncodeChannelLogValue(data_json, published_at_ms));
  const uint64_t retained = seq - ch.first_seq + 1;
  if (static_cast<int64_t>(retained) > ch.retention.max_messages) {
    TrimTo(name, ch, seq - ch.retention.max_messages + 1);
  }
  MarkMetaDirty(entry);
  return seq;
}

Status PubSubModule::ValidateChannel(const std::string& field, const std::string& name) const {
  if (name.empty()) return Status::InvalidParams(field, field + ": must not be empty");
  if (name.size() > core_.limits().max_channel_bytes) {
    return Status(
        StatusCode::kTooLarge,
        field + ": longer than " + std::to_string(core_.limits().max_channel_bytes) + " bytes",
        {{"limit", core_.limits().max_channel_bytes}, {"field", field}});
  }
  return Status::Ok();
}

void PubSubModule::Publish(Call& call) {
  static constexpr std::string_view kFields[] = {"channel", "data"};
  Params p(call.params, kFields);
  std::string channel = p.Str("channel");
  const json& data = p.Any("data");
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (Status s = ValidateChannel("channel", channel); !s.ok()) return core_.Reply(call.reply, s);
  const size_t limit = core_.limits().max_message_data_bytes;
  std::string data_json = DumpCompact(data);
  if (data_json.size() > limit) {
    return core_.Reply(
        call.reply,
        Status::TooLarge("data: encoded size over " + std::to_string(limit) + " bytes", limit));
  }
  const int64_t now = core_.clock().NowMs();
  const uint64_t seq = Append(channel, data_json, now);
  core_.ReplyLater(call.reply,
                   [this, channel, seq, data_json = std::move(data_json), now]() -> Result<json> {
                     size_t delivered = Deliver(channel, seq, data_json, now);
                     return json{{"seq", seq}, {"delivered", delivered}};
                   });
}

uint64_t PubSubModule::PublishInternal(const std::string& channel, json data) {
  const int64_t now = core_.clock().NowMs();
  std::string data_json = DumpCompact(data);
  const uint64_t seq = Append(channel, data_json, now);
  core_.AfterCommit([this, channel, seq, data_json = std::move(data_json), now] {
    Deliver(channel, seq, data_json, now);
  });
  return seq;
}

size_t PubSubModule::Deliver(const std::string& channel, uint64_t seq, std::string_view data_json,
                             int64_t published_at_ms) {
  auto ch = channels_.find(channel);
  if (ch != channels_.end()) ch->second.durable_seq = std::max(ch->second.durable_seq, seq);

  std::vector<uint64_t> targets;
  if (auto it = subs_by_channel_.find(channel); it != subs_by_channel_.end()) targets = it->second;
  patterns_.Match(channel, &targets);
  if (targets.empty()) return 0;
  const std::string channel_json = DumpCompact(channel);
  size_t delivered = 0;
  for (uint64_t id : targets) {
    auto it = subs_.find(id);
    if (it == subs_.end()) continue;
    // A replaying subscription gets this message from its replay, in turn.
    const bool sent =
        it->second.replay
            ? HoldForReplay(it->second, channel, seq, MessageLineBytes(channel_json, data_json))
            : SendTo(it->second, channel, channel_json, seq, data_json, published_at_ms);
    if (sent) ++delivered;
  }
  return delivered;
}

bool PubSubModule::SendTo(const Subscription& sub, const std::string& channel,
                          std::string_view channel_json, uint64_t seq, std::string_view data_json,
                          int64_t published_at_ms) {
  std::shared_ptr<Client> client = sub.client.lock();
  if (!client || client->closed()) {
    RemoveSubscription(sub.id);
    return false;
  }
  if (!client->NotifyEncoded("pubsub.message", EncodeMessageParams(channel_json, data_json,
                                                                   published_at_ms, seq, sub.id))) {
    Drop(sub.id, channel, seq - 1);
    return false;
  }
  return true;
}

void PubSubModule::Drop(uint64_t sub_id, const std::string& channel, uint64_t last_seq) {
  auto it = subs_.find(sub_id);
  if (it == subs_.end()) return;
  if (auto client = it->second.client.lock()) {
    client->Notify("pubsub.dropped",
                   {{"subscription", sub_id},
                    {"channel", channel},
                    {"last_seq", last_seq},
                    {"reason", "slow_consumer"}},
                   /*force=*/true);
  }
  RemoveSubscription(sub_id);
}

void PubSubModule::RemoveSubscription(uint64_t sub_id) {
  auto it = subs_.find(sub_id);
  if (it == subs_.end()) return;
  const Subscription& sub = it->second;
  auto erase_id = [sub_id](std::vector<uint64_t>& v) {
    v.erase(std::remove(v.begin(), v.end(), sub_id), v.end());
  };
  if (sub.is_pattern) {
    patterns_.Remove(sub_id);
  } else if (auto c = subs_by_channel_.find(sub.target); c != subs_by_channel_.end()) {
    erase_id(c->second);
    if (c->second.empty()) subs_by_channel_.erase(c);
  }
  if (auto c = subs_by_client_.find(sub.client_id); c != subs_by_client_.end()) {
    erase_id(c->second);
    if (c->second.empty()) subs_by_client_.erase(c);
  }
  subs_.erase(it);
}

void PubSubModule::Subscribe(Call& call) {
  static constexpr std::string_view kFields[] = {"channel", "pattern", "from_seq"};
  Params p(call.params, kFields);
  auto channel = p.OptStr("channel");
  auto pattern = p.OptStr("pattern");
  auto from_seq = p.OptInt("from_seq", {.min = 0});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (channel.has_value() == pattern.has_value()) {
    return core_.Reply(call.reply, Status::InvalidParams(
                                       "channel", "exactly one of channel or pattern is required"));
  }
  const std::string field = channel ? "channel" : "pattern";
  std::string target = channel ? *channel : *pattern;
  if (Status s = ValidateChannel(field, target); !s.ok()) return core_.Reply(call.reply, s);
  if (!call.client) {
    return core_.Reply(call.reply,
                       Status(StatusCode::kInvalidState, "subscriptions need a connection"));
  }
  const uint64_t id = next_sub_id_++;
  std::weak_ptr<Client> weak = call.client;
  const uint64_t client_id = call.client->id();
  const bool is_pattern = pattern.has_value();
  core_.ReplyLater(
      call.reply,
      [this, id, weak, client_id, target, is_pattern]() -> Result<json> {
        auto client = weak.lock();
        if (!client || client->closed())
          return Status(StatusCode::kInvalidState, "connection closed");
        auto& mine = subs_by_client_[client_id];
        if (mine.size() >= core_.limits().max_subscriptions_per_client) {
          return Status(StatusCode::kOverloaded,
                        "connection already has " + std::to_string(mine.size()) + " subscriptions",
                        {{"limit", core_.limits().max_subscriptions_per_client}});
        }
        mine.push_back(id);
        subs_.emplace(id, Subscription{id, client_id, weak, target, is_pattern, nullptr});
        if (is_pattern) {
          patterns_.Add(id, target);
        } else {
          subs_by_channel_[target].push_back(id);
        }
        return json{{"subscription", id}};
      },
      [this, id, from_seq] {
        if (from_seq) StartReplay(id, std::max<int64_t>(*from_seq, 1));
      });
}

void PubSubModule::Unsubscribe(Call& call) {
  static constexpr std::string_view kFields[] = {"subscription"};
  Params p(call.params, kFields);
  const uint64_t id = static_cast<uint64_t>(p.Int("subscription", {.min = 1}));
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  const uint64_t client_id = call.client ? call.client->id() : 0;
  core_.ReplyLater(call.reply, [this, id, client_id]() -> Result<json> {
    auto it = subs_.find(id);
    if (it == subs_.end() || it->second.client_id != client_id) {
      return Status::NotFound("no subscription " + std::to_string(id) + " on this connection");
    }
    RemoveSubscription(id);
    return json{{"ok", true}};
  });
}

void PubSubModule::History(Call& call) {
  static constexpr std::string_view kFields[] = {"channel", "from_seq", "limit"};
  Params p(call.params, kFields);
  std::string channel = p.Str("channel");
  auto from_seq = p.OptInt("from_seq", {.min = 0});
  const int64_t limit = p.Limit(core_.limits().max_list_limit, 100);
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (Status s = ValidateChannel("channel", channel); !s.ok()) return core_.Reply(call.reply, s);
  core_.ReplyLater(call.reply, [this, channel, from_seq, limit]() -> Result<json> {
    json messages = json::array();
    auto ch = channels_.find(channel);
    if (ch == channels_.end()) {
      return json{{"messages", messages}, {"next_seq", from_seq.value_or(1)}, {"more", false}};
    }
    // A page ends at `limit` messages or before the message that would take
    // its encoded size past max_reply_bytes (but holds at least one): a
    // client asking for 1000 messages of 1 MiB gets them 4 MiB at a time.
    // `more` says whether the log holds a message past the page.
    const size_t budget = core_.limits().max_reply_bytes;
    constexpr size_t kMessageOverhead = 96;  // keys, seq, time, separators
    size_t bytes = 0;
    bool more = false;
    uint64_t next = std::max<uint64_t>(from_seq.value_or(0), ch->second.first_seq);
    Status s = core_.store().Scan(
        Family::kChannelLog, ChannelLogKey(channel, next),
        ChannelLogKey(channel, ch->second.last_seq + 1),
        [&](std::string_view k, std::string_view v) {
          uint64_t seq;
          int64_t published_at_ms;
          std::string_view data_json;
          if (!DecodeChannelLogRecord(k, v, &seq, &published_at_ms, &data_json)) return true;
          const size_t size = data_json.size() + channel.size() + kMessageOverhead;
          if (static_cast<int64_t>(messages.size()) == limit ||
              (!messages.empty() && bytes + size > budget)) {
            more = true;
            return false;
          }
          json data = ParseStoredJson(data_json);
          if (data.is_discarded()) return true;
          bytes += size;
          messages.push_back({{"channel", channel},
                              {"seq", seq},
                              {"data", std::move(data)},
                              {"published_at_ms", published_at_ms}});
          next = seq + 1;
          return true;
        });
    if (!s.ok()) return s;
    return json{{"messages", std::move(messages)}, {"next_seq", next}, {"more", more}};
  });
}

void PubSubModule::Configure(Call& call) {
  static constexpr std::string_view kFields[] = {"channel", "max_messages", "max_age_ms"};
  Params p(call.params, kFields);
  std::string channel = p.Str("channel");
  auto max_messages = p.OptInt("max_messages", {.min = 1, .max = 100'000'000});
  auto max_age_ms = p.OptInt("max_age_ms", {.min = 1, .max = core_.limits().max_ttl_ms});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (Status s = ValidateChannel("channel", channel); !s.ok()) return core_.Reply(call.reply, s);
  core_.NextRevision();
  ChannelEntry& entry = GetOrCreate(channel);
  Channel& ch = entry.second;
  if (max_messages) ch.retention.max_messages = *max_messages;
  if (max_age_ms) ch.retention.max_age_ms = *max_age_ms;
  const uint64_t retained = ch.last_seq + 1 - ch.first_seq;
  const bool over = static_cast<int64_t>(retained) > ch.retention.max_messages;
  TrimTo(channel, ch, over ? ch.last_seq - ch.retention.max_messages + 1 : ch.first_seq,
         /*delete_now=*/true);
  // The new retention is in the channel's head, which the seal hook writes
  // only once something else made the group worth sealing. Written now, the
  // reply waits for its commit; left to the hook, a configure that trimmed
  // nothing was answered at once and stayed in memory until the next write.
  MarkMetaDirty(entry);
  WriteDirtyMeta();
  core_.Reply(call.reply, json{{"channel", channel},
                               {"max_messages", ch.retention.max_messages},
                               {"max_age_ms", ch.retention.max_age_ms},
                               {"revision", core_.revision()}});
}

void PubSubModule::OnClientClosed(uint64_t client_id) {
  auto it = subs_by_client_.find(client_id);
  if (it == subs_by_client_.end()) return;
  std::vector<uint64_t> ids = it->second;
  for (uint64_t id : ids) RemoveSubscription(id);
}

void PubSubModule::ScheduleSweep() {
  core_.wall_timers().Schedule(core_.clock().NowMs() + kSweepIntervalMs, [this] {
    SweepByAge();
    ScheduleSweep();
  });
}

void PubSubModule::SweepByAge() {
  const int64_t now = core_.clock().NowMs();
  for (ChannelEntry& entry : channels_) {
    const std::string& name = entry.first;
    Channel& ch = entry.second;
    if (ch.first_seq > ch.durable_seq) continue;  // nothing durable retained
    const int64_t cutoff = now - ch.retention.max_age_ms;
    uint64_t new_first = ch.first_seq;
    (void)core_.store().Scan(
        Family::kChannelLog, ChannelLogKey(name, ch.first_seq),
        ChannelLogKey(name, ch.durable_seq + 1), [&](std::string_view k, std::string_view v) {
          uint64_t seq;
          int64_t published_at_ms;
          std::string_view data_json;
          if (!DecodeChannelLogRecord(k, v, &seq, &published_at_ms, &data_json)) return false;
          if (published_at_ms >= cutoff) return false;
          new_first = seq + 1;
          return true;
        });
    if (new_first > ch.first_seq) {
      core_.NextRevision();
      TrimTo(name, ch, new_first, /*delete_now=*/true);
      MarkMetaDirty(entry);
    }
  }
}

}  // namespace shim::engine

// SessionModule: session lifecycle and recovery.
#include "engine/sessions/sessions.h"

#include "base/json_text.h"
#include "engine/params.h"
#include "engine/pubsub.h"
#include "engine/record_scan.h"
#include "engine/reply_budget.h"
#include "engine/sessions/signal_record.h"
#include "engine/state.h"
#include "storage/key_codec.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

namespace {
const char kEventsChannel[] = "events.sessions";
constexpr int64_t kMinTtlMs = 100;
constexpr int64_t kMaxTtlMs = 7LL * 24 * 3600 * 1000;
}  // namespace

uint64_t Fnv1a64(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

json SessionModule::CheckpointMeta::ToJson() const {
  return json{{"checkpoint_id", id},
              {"created_at_ms", created_at_ms},
              {"bytes", bytes},
              {"reason", reason},
              {"label", label.empty() ? json(nullptr) : json(label)},
              {"signals", signals}};
}

SessionModule::SessionModule(Core& core, PubSubModule& pubsub, StateModule& state, RiskConfig risk)
    : core_(core), pubsub_(pubsub), state_(state), risk_(std::move(risk)) {}

Status SessionModule::Recover() {
  Reset();
  // A record without keep_checkpoints keeps the default a new session gets.
  auto decode_session = [this](std::string_view v, Session* s) {
    s->keep_checkpoints = limits_.default_keep_checkpoints;
    return DecodeSessionRecord(v, s);
  };
  const Status sessions = ScanDecodedRecords<std::string, Session>(
      core_.store(), kSessionRecords, DecodeSessionKey, decode_session,
      [&](std::string id, Session s) {
        // Full heartbeat TTL again after a restart: nothing expires early.
        s.expires_mono_ms = core_.clock().MonoMs() + s.heartbeat_ttl_ms;
        if (s.state == State::kOpen) Arm(id, s);
        Index(id, s);
        sessions_.emplace(std::move(id), std::move(s));
      });
  if (!sessions.ok()) return sessions;
  using MetaKey = std::pair<std::string, uint64_t>;  // session id, checkpoint id
  auto decode_meta_key = [](std::string_view k, MetaKey* key) {
    return DecodeCheckpointMetaKey(k, &key->first, &key->second);
  };
  return ScanDecodedRecords<MetaKey, CheckpointMeta>(
      core_.store(), kCheckpointMetaRecords, decode_meta_key, DecodeCheckpointMetaRecord,
      [&](MetaKey key, CheckpointMeta m) {
        m.id = key.second;
        // A meta whose session is missing decodes, so it is not corrupt; as
        // shim never deletes a session record, only a damaged store holds one.
        // Nothing can read it without its session: it is left out, as before
        // the scans were one.
        Session* s = Find(key.first);
        if (s) s->checkpoints.push_back(std::move(m));  // keys sort by id: oldest first
      });
}

void SessionModule::Index(const std::string& id, const Session& s) {
  by_name_[s.name].emplace(s.opened_at_ms, id);
  if (RecoveryAvailable(s)) recoverable_by_name_[s.name].emplace(s.opened_at_ms, id);
}

void SessionModule::Unindex(const std::string& id, const Session& s) {
  for (auto* index : {&by_name_, &recoverable_by_name_}) {
    auto it = index->find(s.name);
    if (it == index->end()) continue;
    it->second.erase({s.opened_at_ms, id});
    if (it->second.empty()) index->erase(it);
  }
}

std::string SessionModule::Newest(const std::map<std::string, ByOpened, std::less<>>& index,
                                  const std::string& name, std::string_view except) {
  auto named = index.find(name);
  if (named == index.end()) return {};
  const ByOpened& set = named->second;
  // From the newest opened_at_ms down; `except` can only hold up one group.
  for (auto end = set.end(); end != set.begin();) {
    const int64_t opened = std::prev(end)->first;
    if (opened < 0) break;
    const auto group = set.lower_bound({opened, std::string()});
    for (auto it = group; it != end; ++it) {
      if (it->second != except) return it->second;
    }
    end = group;
  }
  return {};
}

std::string SessionModule::SessionIdParam(Params& p) const {
  return p.Str("session_id", {.min = 1, .max = core_.limits().max_name_bytes});
}

SessionModule::Session* SessionModule::Find(const std::string& id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

Result<SessionModule::Session*> SessionModule::FindOrFail(const std::string& id) {
  Session* s = Find(id);
  if (!s) return Status::NotFound("no session '" + id + "' (open it with session.open)");
  return s;
}

SessionModule::Session* SessionModule::SessionOfCall(Call& call, std::string* id) {
  static constexpr std::string_view kFields[] = {"session_id"};
  Params p(call.params, kFields);
  *id = SessionIdParam(p);
  if (!p.ok()) {
    core_.Reply(call.reply, p.status());
    return nullptr;
  }
  auto s = FindOrFail(*id);
  if (!s.ok()) {
    core_.Reply(call.reply, s.status());
    return nullptr;
  }
  return *s;
}

void SessionModule::Persist(const std::string& id, const Session& s) {
  core_.batch().Put(Family::kSessions, SessionKey(id), EncodeSessionRecord(s));
}

void SessionModule::Transition(const std::string& id, Session& s,
                               const std::function<void(Session&)>& change) {
  core_.NextRevision();
  Unindex(id, s);
  change(s);
  Index(id, s);
  Persist(id, s);
}

void SessionModule::TransitionByCall(Call& call, const std::string& event,
                                     const std::function<void(Session&)>& change) {
  std::string id;
  Session* s = SessionOfCall(call, &id);
  if (!s) return;
  Transition(id, *s, change);
  Event(event, id, {{"name", s->name}});
  core_.Reply(call.reply, json{{"ok", true}});
}

void SessionModule::Arm(const std::string& id, const Session& s) {
  core_.mono_timers().Schedule(s.expires_mono_ms, [this, id] {
    Session* s = Find(id);
    if (!s || s->state != State::kOpen || s->expires_mono_ms > core_.clock().MonoMs()) return;
    Transition(id, *s, [](Session& lapsed) {
      lapsed.state = State::kUnclean;
      lapsed.recovery_acked = false;
    });
    Event("session.unclean", id,
          {{"name", s->name}, {"last_heartbeat_at_ms", s->last_heartbeat_at_ms}});
  });
}

void SessionModule::Event(const std::string& type, const std::string& id, json extra) {
  extra["type"] = type;
  extra["session_id"] = id;
  pubsub_.PublishInternal(kEventsChannel, std::move(extra));
}

SessionModule::Session& SessionModule::OpenSession(const std::string& id, const std::string& name,
                                                   int64_t ttl, const json* metadata,
                                                   std::optional<int64_t> keep) {
  Session& s = sessions_[id];
  Unindex(id, s);
  const int64_t now = core_.clock().NowMs();
  if (s.opened_at_ms == 0) s.keep_checkpoints = limits_.default_keep_checkpoints;
  if (!name.empty() || s.name.empty()) s.name = name.empty() ? id : name;
  s.heartbeat_ttl_ms = ttl;
  if (metadata) s.metadata = *metadata;
  if (keep) s.keep_checkpoints = *keep;
  s.state = State::kOpen;
  s.opened_at_ms = now;
  s.closed_at_ms = 0;
  s.last_heartbeat_at_ms = now;
  s.expires_mono_ms = core_.clock().MonoMs() + ttl;
  Index(id, s);
  Persist(id, s);
  Arm(id, s);
  return s;
}

json SessionModule::Describe(const std::string& id, const Session& s) const {
  return json{{"session_id", id},
              {"name", s.name},
              {"state", SessionStateName(s.state)},
              {"heartbeat_ttl_ms", s.heartbeat_ttl_ms},
              {"metadata", s.metadata},
              {"opened_at_ms", s.opened_at_ms},
              {"closed_at_ms", s.closed_at_ms ? json(s.closed_at_ms) : json(nullptr)},
              {"last_heartbeat_at_ms", s.last_heartbeat_at_ms},
              {"keep_checkpoints", s.keep_checkpoints},
              {"checkpoints", s.checkpoints.size()},
              {"recovery_acked", s.recovery_acked}};
}

void SessionModule::Open(Call& call) {
  const auto& lim = core_.limits();
  static constexpr std::string_view kFields[] = {"session_id", "name", "heartbeat_ttl_ms",
                                                 "metadata", "keep_checkpoints"};
  Params p(call.params, kFields);
  auto id = p.OptStr("session_id", {.min = 1, .max = lim.max_name_bytes});
  std::string name = p.OptStr("name", {.max = lim.max_name_bytes}).value_or("");
  const int64_t ttl =
      p.OptInt("heartbeat_ttl_ms", {.min = kMinTtlMs, .max = kMaxTtlMs}).value_or(60'000);
  const json* metadata = p.OptObject("metadata");
  auto keep = p.OptInt("keep_checkpoints", {.min = 1, .max = limits_.max_keep_checkpoints});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (metadata && DumpCompact(*metadata).size() > 64 * 1024) {
    return core_.Reply(call.reply, Status::TooLarge("metadata over 64 KiB", 64 * 1024));
  }
  const uint64_t rev = core_.NextRevision();
  const std::string sid = id.value_or("sess-" + std::to_string(rev));
  // Recovery for this chat: its own session ended unclean, or (by name) an
  // earlier session with the same name did.
  std::string recover_from;
  if (Session* prev = Find(sid); prev && RecoveryAvailable(*prev)) recover_from = sid;
  if (recover_from.empty() && !name.empty()) recover_from = Newest(recoverable_by_name_, name, sid);
  Session& s = OpenSession(sid, name, ttl, metadata, keep);
  Event("session.opened", sid, {{"name", s.name}});
  json out = {{"session_id", sid}, {"recovery_available", !recover_from.empty()}};
  out["recover_from"] = recover_from.empty() ? json(nullptr) : json(recover_from);
  core_.Reply(call.reply, std::move(out));
}

void SessionModule::Heartbeat(Call& call) {
  std::string id;
  Session* s = SessionOfCall(call, &id);
  if (!s) return;
  Session& session = *s;
  if (session.state == State::kClosed) {
    return core_.Reply(call.reply, Status(StatusCode::kInvalidState,
                                          "session '" + id + "' is closed; open it again"));
  }
  session.last_heartbeat_at_ms = core_.clock().NowMs();
  session.expires_mono_ms = core_.clock().MonoMs() + session.heartbeat_ttl_ms;
  if (session.state == State::kUnclean) {
    // The chat came back before anyone recovered it: open again.
    Transition(id, session, [](Session& back) { back.state = State::kOpen; });
    Event("session.resumed", id, {{"name", session.name}});
  }
  Arm(id, session);
  core_.Reply(call.reply,
              json{{"expires_at_ms", session.last_heartbeat_at_ms + session.heartbeat_ttl_ms}});
}

void SessionModule::Close(Call& call) {
  TransitionByCall(call, "session.closed", [this](Session& s) {
    s.state = State::kClosed;
    s.closed_at_ms = core_.clock().NowMs();
  });
}

void SessionModule::List(Call& call) {
  static constexpr std::string_view kFields[] = {"after"};
  Params p(call.params, kFields);
  auto after = p.OptStr("after", {.max = core_.limits().max_name_bytes});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  core_.Reply(call.reply,
              ListPage(
                  sessions_, after ? &*after : nullptr, core_.limits().max_reply_bytes, "sessions",
                  [](const std::string&, const Session&) { return true; },
                  [this](const std::string& id, const Session& s) { return Describe(id, s); }));
}

std::optional<std::pair<SessionModule::CheckpointMeta, json>> SessionModule::NewestVerified(
    const std::string& id, const std::deque<CheckpointMeta>& metas,
    std::vector<uint64_t>* corrupted) {
  for (auto it = metas.rbegin(); it != metas.rend(); ++it) {
    auto data = ReadCheckpoint(id, *it);
    if (data.ok()) return std::pair(*it, std::move(data).value());
    if (corrupted) corrupted->push_back(it->id);
  }
  return std::nullopt;
}

void SessionModule::GetStatus(Call& call) {
  static constexpr std::string_view kFields[] = {"session_id"};
  Params p(call.params, kFields);
  std::string id = SessionIdParam(p);
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  Session* s = Find(id);
  if (!s) return core_.Reply(call.reply, Status::NotFound("no session '" + id + "'"));
  // Everything here is in memory: described as of now (Reply holds it until
  // what it shows is durable), never as of the release, when later
  // commands of a group not yet durable may have changed it.
  json last = s->checkpoints.empty() ? json(nullptr) : s->checkpoints.back().ToJson();
  core_.Reply(call.reply, json{{"session", Describe(id, *s)},
                               {"state", SessionStateName(s->state)},
                               {"checkpoints", s->checkpoints.size()},
                               {"last_checkpoint", std::move(last)},
                               {"risk", s->last_risk},
                               {"recovery_available", RecoveryAvailable(*s)}});
}

void SessionModule::Clear(Call& call) {
  std::string id;
  Session* s = SessionOfCall(call, &id);
  if (!s) return;
  core_.NextRevision();
  auto& batch = core_.batch();
  const size_t checkpoints = s->checkpoints.size();
  for (const std::string& prefix : CheckpointKeyPrefixes(id)) {
    batch.DeleteRange(Family::kCheckpoints, prefix, storage::PrefixSuccessor(prefix));
  }
  std::string sig = SignalKeyPrefix(id);
  batch.DeleteRange(Family::kSignals, sig, storage::PrefixSuccessor(sig));
  s->checkpoints.clear();
  s->last_risk = nullptr;
  Persist(id, *s);
  const size_t keys = state_.DeletePrefix("session/" + id + "/");
  core_.Reply(call.reply,
              json{{"ok", true}, {"deleted", {{"checkpoints", checkpoints}, {"keys", keys}}}});
}

void SessionModule::RecoveryCheck(Call& call) {
  static constexpr std::string_view kFields[] = {"session_id", "name", "ack"};
  Params p(call.params, kFields);
  auto id = p.OptStr("session_id", {.min = 1, .max = core_.limits().max_name_bytes});
  auto name = p.OptStr("name", {.min = 1, .max = core_.limits().max_name_bytes});
  const bool ack = p.OptBool("ack").value_or(false);
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (id.has_value() == name.has_value()) {
    return core_.Reply(
        call.reply, Status::InvalidParams("session_id", "give exactly one of session_id or name"));
  }
  std::string sid;
  if (id) {
    sid = *id;
  } else {
    // The newest session with that name that needs recovery, else the newest.
    sid = Newest(recoverable_by_name_, *name);
    if (sid.empty()) sid = Newest(by_name_, *name);
  }
  // With ack, the check also marks the recovery handled, in the same write;
  // the reply still says what was found.
  Session* found = sid.empty() ? nullptr : Find(sid);
  const bool was_available = found && RecoveryAvailable(*found);
  if (ack && was_available) {
    Transition(sid, *found, [](Session& acked) { acked.recovery_acked = true; });
    Event("session.recovered", sid, {{"name", found->name}});
  }
  if (!found) {
    return core_.Reply(call.reply, json{{"recovery_available", false},
                                        {"reason", "none"},
                                        {"last_checkpoint", nullptr},
                                        {"session", nullptr}});
  }
  // The session as of now; at the release only the checkpoints' data is
  // read, from the store, which then holds exactly what is durable.
  core_.ReplyLater(call.reply,
                   [this, sid, was_available, session = Describe(sid, *found),
                    metas = found->checkpoints]() mutable -> Result<json> {
                     std::vector<uint64_t> corrupted;
                     auto newest = NewestVerified(sid, metas, &corrupted);
                     json last = nullptr;
                     if (newest) {
                       last = newest->first.ToJson();
                       last["data"] = std::move(newest->second);
                       last["verified"] = true;
                     }
                     const bool available = was_available;
                     return json{{"recovery_available", available},
                                 {"reason", available ? "unclean_close" : "none"},
                                 {"last_checkpoint", std::move(last)},
                                 {"corrupted_checkpoints", corrupted},
                                 {"session", std::move(session)}};
                   });
}

void SessionModule::RecoveryAck(Call& call) {
  TransitionByCall(call, "session.recovered", [](Session& s) { s.recovery_acked = true; });
}

}  // namespace shim::engine

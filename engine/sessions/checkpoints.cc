// SessionModule: checkpoints — save (always fsynced), get (hash-verified),
// list (metadata, newest first), delete, and retention.
#include "base/json_text.h"
#include "engine/json_parse.h"
#include "engine/params.h"
#include "engine/pubsub.h"
#include "engine/reply_budget.h"
#include "engine/sessions/sessions.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

Result<json> SessionModule::SaveCheckpoint(const std::string& id, Session& s, const json& data,
                                           const std::string& reason, const std::string& label,
                                           const json& signals) {
  std::string text = DumpCompact(data);
  if (text.size() > limits_.max_checkpoint_bytes) {
    return Status::TooLarge("data: checkpoint of " + std::to_string(text.size()) +
                                " bytes is over the limit of " +
                                std::to_string(limits_.max_checkpoint_bytes),
                            limits_.max_checkpoint_bytes);
  }
  core_.NextRevision();
  CheckpointMeta m;
  m.id = s.next_checkpoint_id++;
  m.created_at_ms = core_.clock().NowMs();
  m.bytes = text.size();
  m.hash = Fnv1a64(text);
  m.reason = reason;
  m.label = label;
  m.signals = signals;
  auto& batch = core_.batch();
  batch.Put(Family::kCheckpoints, CheckpointDataKey(id, m.id), text);
  batch.Put(Family::kCheckpoints, CheckpointMetaKey(id, m.id), EncodeCheckpointMetaRecord(m));
  s.checkpoints.push_back(m);
  while (static_cast<int64_t>(s.checkpoints.size()) > s.keep_checkpoints) {
    DeleteCheckpoint(id, s.checkpoints.front().id);
  }
  Persist(id, s);
  // A checkpoint is what a crashed chat comes back to: fsync it whatever
  // the server's durability mode.
  core_.group().RequireSync();
  pubsub_.PublishInternal("events.sessions", json{{"type", "checkpoint.saved"},
                                                  {"session_id", id},
                                                  {"checkpoint_id", m.id},
                                                  {"reason", reason},
                                                  {"bytes", m.bytes}});
  return json{{"checkpoint_id", m.id}, {"created_at_ms", m.created_at_ms}, {"bytes", m.bytes}};
}

Result<json> SessionModule::ReadCheckpoint(const std::string& id, const CheckpointMeta& meta) {
  auto raw = core_.store().Get(Family::kCheckpoints, CheckpointDataKey(id, meta.id));
  if (!raw.ok()) return raw.status();
  if (!raw.value())
    return Status::NotFound("checkpoint " + std::to_string(meta.id) + " has no data");
  if (Fnv1a64(*raw.value()) != meta.hash || raw.value()->size() != meta.bytes) {
    return Status(StatusCode::kInternal,
                  "checkpoint " + std::to_string(meta.id) + " of session '" + id +
                      "' is corrupted (hash mismatch)",
                  {{"corrupted", true}, {"checkpoint_id", meta.id}});
  }
  json data = ParseStoredJson(*raw.value());
  if (data.is_discarded()) {
    return Status(StatusCode::kInternal,
                  "checkpoint " + std::to_string(meta.id) + " is not valid JSON",
                  {{"corrupted", true}, {"checkpoint_id", meta.id}});
  }
  return data;
}

void SessionModule::DeleteCheckpoint(const std::string& id, uint64_t checkpoint_id) {
  Session* s = Find(id);
  if (!s) return;
  core_.batch().Delete(Family::kCheckpoints, CheckpointDataKey(id, checkpoint_id));
  core_.batch().Delete(Family::kCheckpoints, CheckpointMetaKey(id, checkpoint_id));
  std::erase_if(s->checkpoints,
                [checkpoint_id](const CheckpointMeta& m) { return m.id == checkpoint_id; });
}

void SessionModule::CheckpointSave(Call& call) {
  static constexpr std::string_view kFields[] = {"session_id", "data", "reason", "label",
                                                 "signals"};
  Params p(call.params, kFields);
  std::string id = SessionIdParam(p);
  const json& data = p.Any("data");
  std::string reason = p.OptStr("reason").value_or("manual");
  std::string label = p.OptStr("label", {.max = 1024}).value_or("");
  const json* signals = p.OptObject("signals");
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (reason != "auto" && reason != "manual" && reason != "forced") {
    return core_.Reply(call.reply,
                       Status::InvalidParams("reason", "reason must be auto, manual or forced"));
  }
  auto s = FindOrFail(id);
  if (!s.ok()) return core_.Reply(call.reply, s.status());
  core_.Reply(call.reply,
              SaveCheckpoint(id, **s, data, reason, label, signals ? *signals : json(nullptr)));
}

void SessionModule::CheckpointGet(Call& call) {
  static constexpr std::string_view kFields[] = {"session_id", "checkpoint_id"};
  Params p(call.params, kFields);
  std::string id = SessionIdParam(p);
  auto cp = p.OptInt("checkpoint_id", {.min = 1});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  Session* s = Find(id);
  if (!s) return core_.Reply(call.reply, Status::NotFound("no session '" + id + "'"));
  // Which checkpoints exist is taken now; their data is read at the
  // release, from the store, which then holds exactly what is durable (a
  // checkpoint saved after this request would not be there yet).
  core_.ReplyLater(call.reply, [this, id, cp, metas = s->checkpoints]() -> Result<json> {
    if (cp) {
      for (const auto& m : metas) {
        if (m.id != static_cast<uint64_t>(*cp)) continue;
        SHIM_ASSIGN_OR_RETURN(json data, ReadCheckpoint(id, m));
        json out = m.ToJson();
        out["data"] = std::move(data);
        out["verified"] = true;
        return out;
      }
      return Status::NotFound("session '" + id + "' has no checkpoint " + std::to_string(*cp));
    }
    std::vector<uint64_t> corrupted;
    auto newest = NewestVerified(id, metas, &corrupted);
    if (!newest) {
      return Status(StatusCode::kNotFound, "session '" + id + "' has no checkpoint that verifies",
                    {{"corrupted_checkpoints", corrupted}});
    }
    json out = newest->first.ToJson();
    out["data"] = std::move(newest->second);
    out["verified"] = true;
    out["corrupted_checkpoints"] = corrupted;
    return out;
  });
}

void SessionModule::CheckpointList(Call& call) {
  static constexpr std::string_view kFields[] = {"session_id", "before", "limit"};
  Params p(call.params, kFields);
  std::string id = SessionIdParam(p);
  auto before = p.OptInt("before", {.min = 1});
  const int64_t limit = p.Limit(core_.limits().max_list_limit, 20);
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  auto s = FindOrFail(id);
  if (!s.ok()) return core_.Reply(call.reply, s.status());
  json items = json::array();
  json next = nullptr;
  ReplyBudget budget(core_.limits().max_reply_bytes);  // each item carries its signals (16 KiB)
  for (auto it = (*s)->checkpoints.rbegin(); it != (*s)->checkpoints.rend(); ++it) {
    if (before && it->id >= static_cast<uint64_t>(*before)) continue;
    if (static_cast<int64_t>(items.size()) == limit || budget.full()) {
      next = items.back()["checkpoint_id"];
      break;
    }
    items.push_back(it->ToJson());
    budget.Add(items.back());
  }
  core_.Reply(call.reply,
              json{{"checkpoints", std::move(items)}, {"next_before", std::move(next)}});
}

void SessionModule::CheckpointDelete(Call& call) {
  static constexpr std::string_view kFields[] = {"session_id", "checkpoint_id"};
  Params p(call.params, kFields);
  std::string id = SessionIdParam(p);
  const int64_t cp = p.Int("checkpoint_id", {.min = 1});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  auto s = FindOrFail(id);
  if (!s.ok()) return core_.Reply(call.reply, s.status());
  const bool exists =
      std::any_of((*s)->checkpoints.begin(), (*s)->checkpoints.end(),
                  [cp](const CheckpointMeta& m) { return m.id == static_cast<uint64_t>(cp); });
  if (!exists)
    return core_.Reply(call.reply, Status::NotFound("session '" + id + "' has no checkpoint " +
                                                    std::to_string(cp)));
  core_.NextRevision();
  DeleteCheckpoint(id, static_cast<uint64_t>(cp));
  core_.Reply(call.reply, json{{"deleted", true}});
}

}  // namespace shim::engine

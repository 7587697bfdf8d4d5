// SessionModule: risk signals (signal.record, signal.history) and the
// auto-checkpoint decision (checkpoint.auto, behind shim_auto_checkpoint).
#include "base/json_text.h"
#include "engine/params.h"
#include "engine/sessions/sessions.h"
#include "engine/sessions/signal_record.h"
#include "storage/key_codec.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

namespace {
constexpr size_t kMaxSignalsBytes = 16 * 1024;
}  // namespace

RiskAssessment SessionModule::Assess(const Session& s, const json& signals) const {
  std::optional<int64_t> since;
  if (!s.checkpoints.empty()) since = core_.clock().NowMs() - s.checkpoints.back().created_at_ms;
  return AssessRisk(risk_, signals, since);
}

void SessionModule::StoreSignals(const std::string& id, Session& s, const json& signals,
                                 const RiskAssessment& a) {
  const uint64_t seq = s.next_signal_seq++;
  const int64_t at_ms = core_.clock().NowMs();
  core_.batch().Put(Family::kSignals, SignalKey(id, seq),
                    EncodeSignalRecord(at_ms, signals, a.risk, a.level));
  if (seq > static_cast<uint64_t>(limits_.keep_signals)) {
    core_.batch().Delete(Family::kSignals, SignalKey(id, seq - limits_.keep_signals));
  }
  s.last_risk = a.ToJson();
  s.last_risk["at_ms"] = at_ms;
  Persist(id, s);
}

void SessionModule::SignalRecord(Call& call) {
  static constexpr std::string_view kFields[] = {"session_id", "signals"};
  Params p(call.params, kFields);
  std::string id = SessionIdParam(p);
  const json* signals = p.OptObject("signals");
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (!signals)
    return core_.Reply(call.reply,
                       Status::InvalidParams("signals", "signals: is required (an object)"));
  if (DumpCompact(*signals).size() > kMaxSignalsBytes) {
    return core_.Reply(call.reply, Status::TooLarge("signals over 16 KiB", kMaxSignalsBytes));
  }
  if (Status bad = CheckSignals(*signals); !bad.ok()) return core_.Reply(call.reply, bad);
  auto s = FindOrFail(id);
  if (!s.ok()) return core_.Reply(call.reply, s.status());
  core_.NextRevision();
  RiskAssessment a = Assess(**s, *signals);
  StoreSignals(id, **s, *signals, a);
  core_.Reply(call.reply, a.ToJson());
}

void SessionModule::SignalHistory(Call& call) {
  static constexpr std::string_view kFields[] = {"session_id", "since_at_ms", "limit"};
  Params p(call.params, kFields);
  std::string id = SessionIdParam(p);
  auto since = p.OptInt("since_at_ms", {.min = 0});
  const int64_t limit = p.Limit(core_.limits().max_list_limit, 100);
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (!Find(id)) return core_.Reply(call.reply, Status::NotFound("no session '" + id + "'"));
  core_.ReplyLater(call.reply, [this, id, since, limit]() -> Result<json> {
    // Oldest first; without since_at_ms, the most recent `limit` samples.
    // Either way no more than the reply budget (engine/reply_budget.h):
    // from since_at_ms the page ends early and says where to go on; the
    // most recent ones drop their oldest.
    const size_t budget = core_.limits().max_reply_bytes;
    std::deque<std::pair<json, size_t>> samples;  // with their stored size
    size_t bytes = 0;
    json next_since = nullptr;
    std::string prefix = SignalKeyPrefix(id);
    SHIM_RETURN_IF_ERROR(core_.store().Scan(
        Family::kSignals, prefix, storage::PrefixSuccessor(prefix),
        [&](std::string_view, std::string_view v) {
          json rec;
          int64_t at_ms;
          // A sample that does not decode is left out: one bad sample does
          // not take the session's history with it.
          if (!DecodeSignalRecord(v, &rec, &at_ms)) return true;
          if (since && at_ms < *since) return true;
          if (since && !samples.empty() &&
              (static_cast<int64_t>(samples.size()) == limit || bytes >= budget)) {
            next_since = at_ms;  // the first sample left out
            return false;
          }
          samples.emplace_back(std::move(rec), v.size());
          bytes += v.size();
          while (!since && samples.size() > 1 &&
                 (static_cast<int64_t>(samples.size()) > limit ||
                  bytes - samples.front().second >= budget)) {
            bytes -= samples.front().second;
            samples.pop_front();
          }
          return true;
        }));
    json out = json::array();
    for (auto& [sample, size] : samples) out.push_back(std::move(sample));
    return json{{"signals", std::move(out)}, {"next_since_at_ms", std::move(next_since)}};
  });
}

void SessionModule::AutoCheckpoint(Call& call) {
  static constexpr std::string_view kFields[] = {"session_id", "signals", "data", "label", "force"};
  Params p(call.params, kFields);
  std::string id = SessionIdParam(p);
  const json* signals = p.OptObject("signals");
  const json* data = p.OptAny("data");
  std::string label = p.OptStr("label", {.max = 1024}).value_or("");
  const bool force = p.OptBool("force").value_or(false);
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (signals && DumpCompact(*signals).size() > kMaxSignalsBytes) {
    return core_.Reply(call.reply, Status::TooLarge("signals over 16 KiB", kMaxSignalsBytes));
  }
  if (signals) {
    if (Status bad = CheckSignals(*signals); !bad.ok()) return core_.Reply(call.reply, bad);
  }
  core_.NextRevision();
  Session* s = Find(id);
  if (!s || s->state == State::kClosed) {
    // The first call opens the session (again, after a clean close).
    s = &OpenSession(id, s ? s->name : id, s ? s->heartbeat_ttl_ms : 60'000, nullptr, std::nullopt);
  } else {
    // Every call is a sign of life and heartbeats the session: an MCP client
    // has no other way to, and its session must not lapse to `unclean` while
    // the chat is still calling. One that had lapsed is open again.
    s->last_heartbeat_at_ms = core_.clock().NowMs();
    s->expires_mono_ms = core_.clock().MonoMs() + s->heartbeat_ttl_ms;
    if (s->state == State::kUnclean) {
      Unindex(id, *s);
      s->state = State::kOpen;
      Index(id, *s);
      Event("session.resumed", id, {{"name", s->name}});
    }
    Persist(id, *s);
    Arm(id, *s);
  }
  const json sig = signals ? *signals : json::object();
  RiskAssessment a = Assess(*s, sig);
  if (signals) StoreSignals(id, *s, sig, a);
  json out = a.ToJson();
  const bool want = force || a.checkpoint_recommended;
  out["saved"] = false;
  out["checkpoint_id"] = nullptr;
  if (want && data && !data->is_null()) {
    auto saved = SaveCheckpoint(id, *s, *data, force ? "forced" : "auto", label, sig);
    if (!saved.ok()) return core_.Reply(call.reply, saved.status());
    out["saved"] = true;
    out["checkpoint_id"] = (*saved)["checkpoint_id"];
    out["bytes"] = (*saved)["bytes"];
  } else if (want) {
    out["note"] = "a checkpoint is recommended: call again with `data` holding your working state";
  }
  out["session_id"] = id;
  core_.Reply(call.reply, std::move(out));
}

}  // namespace shim::engine

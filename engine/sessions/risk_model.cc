#include "engine/sessions/risk_model.h"

#include <algorithm>
#include <cmath>

#include "base/json_text.h"

namespace shim::engine {

using nlohmann::json;

namespace {

double Ramp(const RiskRamp& r, double v) {
  if (v <= r.start) return 0;
  if (v >= r.full) return 1;
  return (v - r.start) / (r.full - r.start);
}

std::optional<double> Number(const json& signals, const char* key) {
  auto it = signals.find(key);
  if (it == signals.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  return std::isfinite(v) && v >= 0 ? std::optional(v) : std::nullopt;
}

struct RampField {
  const char* name;
  RiskRamp RiskConfig::*ramp;
};
constexpr RampField kRamps[] = {
    {"context_usage", &RiskConfig::context_usage},
    {"tokens_used", &RiskConfig::tokens_used},
    {"messages", &RiskConfig::messages},
    {"tool_calls", &RiskConfig::tool_calls},
    {"errors", &RiskConfig::errors},
    {"elapsed_ms", &RiskConfig::elapsed_ms},
    {"since_checkpoint_ms", &RiskConfig::since_checkpoint_ms},
};

// Reads `key` of `j` into *out when present; INVALID_PARAMS (not an
// exception from the JSON library) when it is there but not a number.
Status ReadNumber(const json& j, const char* key, const std::string& field, double* out) {
  auto it = j.find(key);
  if (it == j.end()) return Status::Ok();
  if (!it->is_number()) return Status::InvalidParams(field, field + " must be a number");
  *out = it->get<double>();
  return Status::Ok();
}

}  // namespace

Result<RiskConfig> RiskConfig::FromJson(const json& j) {
  RiskConfig c;
  if (!j.is_object())
    return Status::InvalidParams("risk", "risk configuration must be a JSON object");
  for (const auto& f : kRamps) {
    auto it = j.find(f.name);
    if (it == j.end()) continue;
    RiskRamp& r = c.*(f.ramp);
    if (!it->is_object())
      return Status::InvalidParams(f.name, std::string(f.name) + " must be {start, full, weight}");
    const std::string name(f.name);
    SHIM_RETURN_IF_ERROR(ReadNumber(*it, "start", name + ".start", &r.start));
    SHIM_RETURN_IF_ERROR(ReadNumber(*it, "full", name + ".full", &r.full));
    SHIM_RETURN_IF_ERROR(ReadNumber(*it, "weight", name + ".weight", &r.weight));
    if (!(r.full > r.start) || r.weight < 0 || r.weight > 1) {
      return Status::InvalidParams(
          f.name, std::string(f.name) + ": need full > start and 0 <= weight <= 1");
    }
  }
  SHIM_RETURN_IF_ERROR(ReadNumber(j, "medium_at", "medium_at", &c.medium_at));
  SHIM_RETURN_IF_ERROR(ReadNumber(j, "high_at", "high_at", &c.high_at));
  SHIM_RETURN_IF_ERROR(ReadNumber(j, "critical_at", "critical_at", &c.critical_at));
  double interval = static_cast<double>(c.checkpoint_interval_ms);
  SHIM_RETURN_IF_ERROR(
      ReadNumber(j, "checkpoint_interval_ms", "checkpoint_interval_ms", &interval));
  if (!(interval > 0 && interval <= 1e15 && interval == std::floor(interval))) {
    return Status::InvalidParams("checkpoint_interval_ms",
                                 "checkpoint_interval_ms must be a positive integer");
  }
  c.checkpoint_interval_ms = static_cast<int64_t>(interval);
  if (!(0 < c.medium_at && c.medium_at < c.high_at && c.high_at < c.critical_at &&
        c.critical_at <= 1)) {
    return Status::InvalidParams("medium_at", "need 0 < medium_at < high_at < critical_at <= 1");
  }
  return c;
}

json RiskConfig::ToJson() const {
  json j = {{"medium_at", medium_at},
            {"high_at", high_at},
            {"critical_at", critical_at},
            {"checkpoint_interval_ms", checkpoint_interval_ms}};
  for (const auto& f : kRamps) {
    const RiskRamp& r = this->*(f.ramp);
    j[f.name] = {{"start", r.start}, {"full", r.full}, {"weight", r.weight}};
  }
  return j;
}

json RiskAssessment::ToJson() const {
  json fs = json::array();
  for (const auto& f : factors) {
    fs.push_back(
        {{"signal", f.signal}, {"value", f.value}, {"score", f.score}, {"weight", f.weight}});
  }
  return json{{"risk", risk},
              {"level", level},
              {"factors", std::move(fs)},
              {"checkpoint_recommended", checkpoint_recommended},
              {"recommendation_reason",
               recommendation_reason.empty() ? json(nullptr) : json(recommendation_reason)}};
}

Status CheckSignals(const json& signals) {
  for (const char* name : kScoredSignals) {
    auto it = signals.find(name);
    if (it == signals.end()) continue;
    const bool ok = it->is_number() && std::isfinite(it->get<double>()) && it->get<double>() >= 0;
    if (!ok) {
      const std::string field = std::string("signals.") + name;
      return Status::InvalidParams(
          field, field + " must be a non-negative number; got " + DumpCompact(*it));
    }
  }
  return Status::Ok();
}

RiskAssessment AssessRisk(const RiskConfig& c, const json& signals,
                          std::optional<int64_t> since_checkpoint_ms) {
  RiskAssessment a;
  auto add = [&](const char* name, double value, const RiskRamp& ramp) {
    const double score = Ramp(ramp, value);
    if (score > 0) a.factors.push_back({name, value, score, ramp.weight});
  };
  const auto tokens = Number(signals, "tokens_used");
  const auto window = Number(signals, "context_window");
  if (tokens && window && *window > 0) {
    add("context_usage", *tokens / *window, c.context_usage);
  } else if (tokens) {
    add("tokens_used", *tokens, c.tokens_used);
  }
  if (auto v = Number(signals, "messages")) add("messages", *v, c.messages);
  if (auto v = Number(signals, "tool_calls")) add("tool_calls", *v, c.tool_calls);
  if (auto v = Number(signals, "errors")) add("errors", *v, c.errors);
  const auto elapsed = Number(signals, "elapsed_ms");
  if (elapsed) add("elapsed_ms", *elapsed, c.elapsed_ms);
  // Without a checkpoint yet, everything since the start is unprotected.
  std::optional<double> unprotected =
      since_checkpoint_ms ? std::optional<double>(static_cast<double>(*since_checkpoint_ms))
                          : elapsed;
  if (unprotected) add("since_checkpoint_ms", *unprotected, c.since_checkpoint_ms);

  double survive = 1;
  for (const auto& f : a.factors) survive *= 1 - f.weight * f.score;
  a.risk = std::clamp(1 - survive, 0.0, 1.0);
  std::sort(a.factors.begin(), a.factors.end(), [](const RiskFactor& x, const RiskFactor& y) {
    return x.weight * x.score > y.weight * y.score;
  });
  a.level = a.risk >= c.critical_at ? "critical"
            : a.risk >= c.high_at   ? "high"
            : a.risk >= c.medium_at ? "medium"
                                    : "low";
  if (a.risk >= c.high_at) {
    a.checkpoint_recommended = true;
    a.recommendation_reason = "risk level " + a.level;
  } else if (unprotected && *unprotected >= static_cast<double>(c.checkpoint_interval_ms)) {
    a.checkpoint_recommended = true;
    a.recommendation_reason =
        since_checkpoint_ms ? "checkpoint interval passed" : "no checkpoint yet";
  }
  return a;
}

}  // namespace shim::engine

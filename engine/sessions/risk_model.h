// RiskModel: turns a chat session's signals into a crash risk in [0, 1].
//
// Each signal becomes a score in [0, 1] by a ramp between a "start" value
// (score 0) and a "full" value (score 1); scores are weighted and combined
// as a noisy-or, risk = 1 - prod(1 - weight_i * score_i), so one saturated
// signal alone can make the risk high and several moderate ones add up.
// Levels: low < medium_at <= medium < high_at <= high < critical_at <= critical.
// A checkpoint is recommended at level high or above, or when the time since
// the last checkpoint passes checkpoint_interval_ms.
// The model and its defaults are documented in docs/risk-model.md.
// Pure; any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace shim::engine {

struct RiskRamp {
  double start;   // score 0 at or below
  double full;    // score 1 at or above
  double weight;  // 0..1
};

struct RiskConfig {
  // context_usage = tokens_used / context_window
  RiskRamp context_usage{0.50, 0.95, 1.00};
  RiskRamp tokens_used{100'000, 180'000, 0.80};  // when context_window is unknown
  RiskRamp messages{80, 300, 0.50};
  RiskRamp tool_calls{150, 600, 0.40};
  RiskRamp errors{1, 8, 0.70};
  RiskRamp elapsed_ms{30.0 * 60'000, 4.0 * 3'600'000, 0.40};
  RiskRamp since_checkpoint_ms{10.0 * 60'000, 60.0 * 60'000, 0.50};
  double medium_at = 0.30;
  double high_at = 0.60;
  double critical_at = 0.85;
  int64_t checkpoint_interval_ms = 15 * 60'000;

  // Overrides any field given in `j` (same names; ramps as
  // {start, full, weight}). INVALID_PARAMS on a bad value.
  static Result<RiskConfig> FromJson(const nlohmann::json& j);
  nlohmann::json ToJson() const;
};

struct RiskFactor {
  std::string signal;
  double value;
  double score;  // 0..1 before weighting
  double weight;
};

struct RiskAssessment {
  double risk = 0;
  std::string level;                // low | medium | high | critical
  std::vector<RiskFactor> factors;  // contributing (score > 0), largest first
  bool checkpoint_recommended = false;
  std::string recommendation_reason;  // empty when not recommended
  nlohmann::json ToJson() const;
};

// The signals the model scores, in the order docs/protocol.md lists them.
inline constexpr const char* kScoredSignals[] = {"tokens_used", "context_window", "messages",
                                                 "tool_calls",  "errors",         "elapsed_ms"};

// INVALID_PARAMS (field `signals.<name>`) when a scored signal is present but
// not a finite non-negative number; other keys are the caller's own.
Status CheckSignals(const nlohmann::json& signals);

// `signals` is the object given to signal.record; unknown keys are ignored.
// `since_checkpoint_ms` is null when the session has no checkpoint yet (then
// the session's elapsed time stands in for it).
RiskAssessment AssessRisk(const RiskConfig& config, const nlohmann::json& signals,
                          std::optional<int64_t> since_checkpoint_ms);

}  // namespace shim::engine

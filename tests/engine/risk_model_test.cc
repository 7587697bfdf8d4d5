// The risk model (engine/sessions/risk_model.h), case by case: every ramp's start and
// full boundary, the noisy-or combination, the level thresholds, when a
// checkpoint is recommended, and RiskConfig::FromJson.
// AssessRisk is pure: no engine, no store, no clock.
#include "engine/sessions/risk_model.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tests/support/test_util.h"

namespace shim::engine {
namespace {

using nlohmann::json;

// A checkpoint was just taken: the "since checkpoint" factor is 0, so only
// the signals under test count.
constexpr std::optional<int64_t> kJustCheckpointed = 0;

const RiskFactor* FactorOf(const RiskAssessment& a, const std::string& signal) {
  for (const auto& f : a.factors) {
    if (f.signal == signal) return &f;
  }
  return nullptr;
}

// One ramp under test: the signal object that produces `value`, how to read
// the ramp from a config, and the factor name it reports.
struct RampCase {
  const char* factor;
  RiskRamp RiskConfig::*ramp;
  // Signals making the ramp's input equal to `v`.
  json (*signals)(double v);
};

json Single(const char* key, double v) { return json{{key, v}}; }

const RampCase kRampCases[] = {
    {"context_usage", &RiskConfig::context_usage,
     [](double v) {
       return json{{"tokens_used", v * 200'000}, {"context_window", 200'000}};
     }},
    {"tokens_used", &RiskConfig::tokens_used, [](double v) { return Single("tokens_used", v); }},
    {"messages", &RiskConfig::messages, [](double v) { return Single("messages", v); }},
    {"tool_calls", &RiskConfig::tool_calls, [](double v) { return Single("tool_calls", v); }},
    {"errors", &RiskConfig::errors, [](double v) { return Single("errors", v); }},
    {"elapsed_ms", &RiskConfig::elapsed_ms, [](double v) { return Single("elapsed_ms", v); }},
};

TEST(RiskModelTest, NoSignalsIsLowRiskWithNoFactors) {
  RiskAssessment a = AssessRisk(RiskConfig{}, json::object(), std::nullopt);
  EXPECT_EQ(a.risk, 0.0);
  EXPECT_EQ(a.level, "low");
  EXPECT_TRUE(a.factors.empty());
  EXPECT_FALSE(a.checkpoint_recommended);
  EXPECT_TRUE(a.recommendation_reason.empty());
  json j = a.ToJson();
  EXPECT_EQ(j["risk"], 0.0);
  EXPECT_EQ(j["level"], "low");
  EXPECT_EQ(j["factors"], json::array());
  EXPECT_EQ(j["checkpoint_recommended"], false);
  EXPECT_TRUE(j["recommendation_reason"].is_null());
}

TEST(RiskModelTest, EveryRampIsZeroAtStartAndFullAtFull) {
  const RiskConfig c;
  for (const RampCase& rc : kRampCases) {
    SCOPED_TRACE(rc.factor);
    const RiskRamp& r = c.*(rc.ramp);
    // At start (and below): score 0, no factor, no risk.
    for (double v : {r.start, r.start * 0.5}) {
      RiskAssessment a = AssessRisk(c, rc.signals(v), kJustCheckpointed);
      EXPECT_EQ(FactorOf(a, rc.factor), nullptr) << "value " << v;
      EXPECT_EQ(a.risk, 0.0) << "value " << v;
    }
    // Just above start: a small positive score.
    {
      const double v = r.start + (r.full - r.start) * 0.01;
      RiskAssessment a = AssessRisk(c, rc.signals(v), kJustCheckpointed);
      const RiskFactor* f = FactorOf(a, rc.factor);
      ASSERT_NE(f, nullptr);
      EXPECT_NEAR(f->score, 0.01, 1e-9);
    }
    // Midway: score 0.5, risk = weight * 0.5.
    {
      const double v = (r.start + r.full) / 2;
      RiskAssessment a = AssessRisk(c, rc.signals(v), kJustCheckpointed);
      const RiskFactor* f = FactorOf(a, rc.factor);
      ASSERT_NE(f, nullptr);
      EXPECT_NEAR(f->score, 0.5, 1e-9);
      EXPECT_NEAR(f->value, v, 1e-9 * v);
      EXPECT_EQ(f->weight, r.weight);
      EXPECT_NEAR(a.risk, r.weight * 0.5, 1e-9);
      ASSERT_EQ(a.factors.size(), 1u);
    }
    // At full and above: score 1, risk = weight.
    for (double v : {r.full, r.full * 3}) {
      RiskAssessment a = AssessRisk(c, rc.signals(v), kJustCheckpointed);
      const RiskFactor* f = FactorOf(a, rc.factor);
      ASSERT_NE(f, nullptr) << "value " << v;
      EXPECT_DOUBLE_EQ(f->score, 1.0) << "value " << v;
      EXPECT_NEAR(a.risk, r.weight, 1e-12) << "value " << v;
    }
  }
}

TEST(RiskModelTest, SinceCheckpointRampUsesTheGivenInterval) {
  const RiskConfig c;  // since_checkpoint_ms {10 min, 60 min, 0.5}
  EXPECT_EQ(FactorOf(AssessRisk(c, json::object(), 10 * 60'000), "since_checkpoint_ms"), nullptr);
  RiskAssessment mid = AssessRisk(c, json::object(), 35 * 60'000);
  ASSERT_NE(FactorOf(mid, "since_checkpoint_ms"), nullptr);
  EXPECT_DOUBLE_EQ(FactorOf(mid, "since_checkpoint_ms")->score, 0.5);
  EXPECT_DOUBLE_EQ(mid.risk, 0.25);
  RiskAssessment full = AssessRisk(c, json::object(), 60 * 60'000);
  EXPECT_DOUBLE_EQ(full.risk, 0.5);
  EXPECT_EQ(full.level, "medium");
}

TEST(RiskModelTest, ContextUsageWinsOverRawTokensWhenTheWindowIsKnown) {
  const RiskConfig c;
  // 150k of a 200k window: usage 0.75 -> (0.75 - 0.5) / 0.45.
  RiskAssessment a =
      AssessRisk(c, {{"tokens_used", 150'000}, {"context_window", 200'000}}, kJustCheckpointed);
  ASSERT_EQ(a.factors.size(), 1u);
  EXPECT_EQ(a.factors[0].signal, "context_usage");
  EXPECT_DOUBLE_EQ(a.factors[0].value, 0.75);
  EXPECT_NEAR(a.factors[0].score, 0.25 / 0.45, 1e-12);
  // Without a usable window the raw token count is scored instead.
  for (json window : {json(nullptr), json(0), json("200000"), json(-5)}) {
    json s = {{"tokens_used", 140'000}};
    if (!window.is_null()) s["context_window"] = window;
    RiskAssessment b = AssessRisk(c, s, kJustCheckpointed);
    ASSERT_EQ(b.factors.size(), 1u) << s.dump();
    EXPECT_EQ(b.factors[0].signal, "tokens_used");
    EXPECT_DOUBLE_EQ(b.factors[0].score, 0.5);  // (140k - 100k) / 80k
    EXPECT_DOUBLE_EQ(b.risk, 0.4);              // weight 0.8
  }
}

TEST(RiskModelTest, BadSignalValuesAreIgnored) {
  const RiskConfig c;
  json s = {{"messages", "lots"},
            {"errors", -3},
            {"tool_calls", nullptr},
            {"mood", 99},
            {"elapsed_ms", true}};
  RiskAssessment a = AssessRisk(c, s, std::nullopt);
  EXPECT_TRUE(a.factors.empty());
  EXPECT_EQ(a.risk, 0.0);
  EXPECT_FALSE(a.checkpoint_recommended);
}

TEST(RiskModelTest, TwoSignalsCombineAsNoisyOr) {
  const RiskConfig c;
  // messages 190: (190 - 80) / 220 = 0.5, weighted 0.5 -> 0.25
  // errors 4.5:   (4.5 - 1) / 7    = 0.5, weighted 0.7 -> 0.35
  // risk = 1 - (1 - 0.25)(1 - 0.35) = 1 - 0.4875 = 0.5125
  RiskAssessment a = AssessRisk(c, {{"messages", 190}, {"errors", 4.5}}, kJustCheckpointed);
  EXPECT_DOUBLE_EQ(a.risk, 0.5125);
  EXPECT_EQ(a.level, "medium");
  ASSERT_EQ(a.factors.size(), 2u);
  // Largest weighted contribution first.
  EXPECT_EQ(a.factors[0].signal, "errors");
  EXPECT_DOUBLE_EQ(a.factors[0].score, 0.5);
  EXPECT_DOUBLE_EQ(a.factors[0].weight, 0.7);
  EXPECT_EQ(a.factors[1].signal, "messages");
  EXPECT_DOUBLE_EQ(a.factors[1].score, 0.5);
  EXPECT_DOUBLE_EQ(a.factors[1].weight, 0.5);
  EXPECT_FALSE(a.checkpoint_recommended);

  // Two saturated signals: 1 - (1 - 0.5)(1 - 0.7) = 0.85, more than either alone.
  RiskAssessment b = AssessRisk(c, {{"messages", 300}, {"errors", 8}}, kJustCheckpointed);
  EXPECT_NEAR(b.risk, 0.85, 1e-12);
  EXPECT_GT(b.risk, 0.7);
  // The noisy-or never leaves [0, 1], whatever is saturated.
  RiskAssessment all = AssessRisk(c,
                                  {{"tokens_used", 1e9},
                                   {"context_window", 1e3},
                                   {"messages", 1e6},
                                   {"tool_calls", 1e6},
                                   {"errors", 1e6},
                                   {"elapsed_ms", 1e12}},
                                  int64_t{1'000'000'000});
  EXPECT_LE(all.risk, 1.0);
  EXPECT_DOUBLE_EQ(all.risk, 1.0);  // context_usage has weight 1
  EXPECT_EQ(all.level, "critical");
  EXPECT_EQ(all.factors.size(), 6u);
}

TEST(RiskModelTest, ElapsedStandsInForSinceCheckpointWhenThereIsNone) {
  const RiskConfig c;
  // elapsed 60 min: elapsed_ms ramp (30 min .. 4 h) -> 30/210 = 1/7, weight 0.4;
  // no checkpoint yet, so since_checkpoint_ms = 60 min too -> score 1, weight 0.5.
  const double elapsed = 60.0 * 60'000;
  RiskAssessment a = AssessRisk(c, {{"elapsed_ms", elapsed}}, std::nullopt);
  ASSERT_EQ(a.factors.size(), 2u);
  EXPECT_EQ(a.factors[0].signal, "since_checkpoint_ms");
  EXPECT_DOUBLE_EQ(a.factors[0].value, elapsed);
  EXPECT_DOUBLE_EQ(a.factors[0].score, 1.0);
  EXPECT_EQ(a.factors[1].signal, "elapsed_ms");
  EXPECT_NEAR(a.factors[1].score, 1.0 / 7, 1e-12);
  EXPECT_NEAR(a.risk, 1 - (1 - 0.5) * (1 - 0.4 / 7), 1e-12);
  // With a recent checkpoint only elapsed counts.
  RiskAssessment b = AssessRisk(c, {{"elapsed_ms", elapsed}}, int64_t{60'000});
  ASSERT_EQ(b.factors.size(), 1u);
  EXPECT_NEAR(b.risk, 0.4 / 7, 1e-12);
}

TEST(RiskModelTest, TheDocumentedExample) {
  // docs/risk-model.md: 150,000 of 200,000 tokens, 120 messages, 2 errors,
  // 40 minutes without a checkpoint and 40 minutes elapsed: risk 0.75, high.
  const RiskConfig c;
  RiskAssessment a = AssessRisk(c,
                                {{"tokens_used", 150'000},
                                 {"context_window", 200'000},
                                 {"messages", 120},
                                 {"errors", 2},
                                 {"elapsed_ms", 40 * 60'000}},
                                int64_t{40 * 60'000});
  const double usage = 0.25 / 0.45, messages = 40.0 / 220, errors = 1.0 / 7, since = 0.6,
               elapsed = 10.0 / 210;
  const double want = 1 - (1 - usage) * (1 - 0.5 * messages) * (1 - 0.7 * errors) *
                              (1 - 0.5 * since) * (1 - 0.4 * elapsed);
  EXPECT_NEAR(a.risk, want, 1e-12);
  EXPECT_NEAR(a.risk, 0.75, 0.005);
  EXPECT_EQ(a.level, "high");
  EXPECT_TRUE(a.checkpoint_recommended);
  ASSERT_EQ(a.factors.size(), 5u);
  EXPECT_EQ(a.factors[0].signal, "context_usage");
  EXPECT_EQ(a.factors[1].signal, "since_checkpoint_ms");
  EXPECT_NEAR(FactorOf(a, "messages")->score, 0.18, 0.005);
  EXPECT_NEAR(FactorOf(a, "errors")->score, 0.14, 0.005);
  EXPECT_NEAR(FactorOf(a, "elapsed_ms")->score, 0.05, 0.005);
}

// Levels with dyadic thresholds and a single ramp, so every risk is exact.
RiskConfig DyadicConfig() {
  RiskConfig c;
  c.errors = {0, 4, 1.0};  // errors = n -> risk n / 4
  c.medium_at = 0.25;
  c.high_at = 0.5;
  c.critical_at = 0.75;
  return c;
}

TEST(RiskModelTest, LevelThresholdsAreInclusiveLowerBounds) {
  const RiskConfig c = DyadicConfig();
  struct Case {
    double errors;
    double risk;
    const char* level;
    bool recommended;
  } cases[] = {
      {0, 0, "low", false},
      {0.5, 0.125, "low", false},
      {0.96875, 0.2421875, "low", false},
      {1, 0.25, "medium", false},
      {1.5, 0.375, "medium", false},
      {1.96875, 0.4921875, "medium", false},
      {2, 0.5, "high", true},
      {2.5, 0.625, "high", true},
      {2.96875, 0.7421875, "high", true},
      {3, 0.75, "critical", true},
      {4, 1.0, "critical", true},
      {100, 1.0, "critical", true},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE("errors " + std::to_string(k.errors));
    RiskAssessment a = AssessRisk(c, {{"errors", k.errors}}, kJustCheckpointed);
    EXPECT_EQ(a.risk, k.risk);
    EXPECT_EQ(a.level, k.level);
    EXPECT_EQ(a.checkpoint_recommended, k.recommended);
    if (k.recommended) {
      EXPECT_EQ(a.recommendation_reason, std::string("risk level ") + k.level);
      EXPECT_EQ(a.ToJson()["recommendation_reason"], std::string("risk level ") + k.level);
    } else {
      EXPECT_TRUE(a.recommendation_reason.empty());
    }
  }
}

TEST(RiskModelTest, DefaultLevelThresholds) {
  const RiskConfig c;
  EXPECT_EQ(c.medium_at, 0.30);
  EXPECT_EQ(c.high_at, 0.60);
  EXPECT_EQ(c.critical_at, 0.85);
  // errors ramp 1..8, weight 0.7: risk = 0.7 * (e - 1) / 7 = 0.1 * (e - 1).
  EXPECT_EQ(AssessRisk(c, {{"errors", 3.9}}, kJustCheckpointed).level, "low");     // 0.29
  EXPECT_EQ(AssessRisk(c, {{"errors", 4.1}}, kJustCheckpointed).level, "medium");  // 0.31
  EXPECT_EQ(AssessRisk(c, {{"errors", 6.9}}, kJustCheckpointed).level, "medium");  // 0.59
  EXPECT_EQ(AssessRisk(c, {{"errors", 7.1}}, kJustCheckpointed).level, "high");    // 0.61
  // Above 0.7 needs a second signal: messages saturated (0.5).
  // 1 - 0.5 * (1 - 0.68) = 0.84 (errors 7.8): high.
  EXPECT_EQ(AssessRisk(c, {{"errors", 7.8}, {"messages", 300}}, kJustCheckpointed).level, "high");
  // 1 - 0.3 * 0.5 * 0.6 = 0.91 (errors, messages and tool_calls saturated): critical.
  EXPECT_EQ(
      AssessRisk(c, {{"errors", 8.2}, {"messages", 300}, {"tool_calls", 600}}, kJustCheckpointed)
          .level,
      "critical");
}

TEST(RiskModelTest, CheckpointRecommendedWhenTheIntervalSinceTheLastOnePasses) {
  const RiskConfig c;  // interval 15 min
  const int64_t interval = c.checkpoint_interval_ms;
  RiskAssessment before = AssessRisk(c, json::object(), interval - 1);
  EXPECT_FALSE(before.checkpoint_recommended);
  EXPECT_EQ(before.level, "low");
  RiskAssessment at = AssessRisk(c, json::object(), interval);
  EXPECT_TRUE(at.checkpoint_recommended);
  EXPECT_EQ(at.recommendation_reason, "checkpoint interval passed");
  EXPECT_EQ(at.level, "low");  // the interval alone, not the risk
  EXPECT_TRUE(AssessRisk(c, json::object(), interval * 10).checkpoint_recommended);
  // A custom interval.
  RiskConfig quick;
  quick.checkpoint_interval_ms = 1000;
  EXPECT_FALSE(AssessRisk(quick, json::object(), 999).checkpoint_recommended);
  EXPECT_TRUE(AssessRisk(quick, json::object(), 1000).checkpoint_recommended);
}

TEST(RiskModelTest, CheckpointRecommendedWhenThereIsNoneYetAndTimeHasPassed) {
  const RiskConfig c;
  const double interval = static_cast<double>(c.checkpoint_interval_ms);
  // No checkpoint and no elapsed time: nothing says a checkpoint is due.
  EXPECT_FALSE(AssessRisk(c, {{"messages", 10}}, std::nullopt).checkpoint_recommended);
  EXPECT_FALSE(AssessRisk(c, {{"elapsed_ms", interval - 1}}, std::nullopt).checkpoint_recommended);
  RiskAssessment a = AssessRisk(c, {{"elapsed_ms", interval}}, std::nullopt);
  EXPECT_TRUE(a.checkpoint_recommended);
  EXPECT_EQ(a.recommendation_reason, "no checkpoint yet");
  // A recent checkpoint overrides the elapsed time.
  EXPECT_FALSE(AssessRisk(c, {{"elapsed_ms", interval * 4}}, int64_t{1000}).checkpoint_recommended);
  // The level outranks the interval in the reason.
  RiskAssessment both = AssessRisk(c, {{"errors", 8}}, int64_t{c.checkpoint_interval_ms});
  EXPECT_TRUE(both.checkpoint_recommended);
  EXPECT_EQ(both.recommendation_reason, "risk level high");
}

TEST(RiskModelTest, FromJsonEmptyObjectGivesTheDefaults) {
  ASSERT_OK_AND_ASSIGN(RiskConfig c, RiskConfig::FromJson(json::object()));
  EXPECT_EQ(c.ToJson(), RiskConfig{}.ToJson());
  // ToJson -> FromJson round-trips.
  RiskConfig custom = DyadicConfig();
  custom.checkpoint_interval_ms = 1234;
  ASSERT_OK_AND_ASSIGN(RiskConfig back, RiskConfig::FromJson(custom.ToJson()));
  EXPECT_EQ(back.ToJson(), custom.ToJson());
}

TEST(RiskModelTest, FromJsonOverridesOnlyTheFieldsGiven) {
  json j = {{"messages", {{"weight", 0.9}}},
            {"errors", {{"start", 0}, {"full", 2}, {"weight", 1}}},
            {"medium_at", 0.2},
            {"high_at", 0.4},
            {"critical_at", 0.9},
            {"checkpoint_interval_ms", 60'000}};
  ASSERT_OK_AND_ASSIGN(RiskConfig c, RiskConfig::FromJson(j));
  EXPECT_EQ(c.messages.weight, 0.9);
  EXPECT_EQ(c.messages.start, 80);  // kept
  EXPECT_EQ(c.messages.full, 300);  // kept
  EXPECT_EQ(c.errors.start, 0);
  EXPECT_EQ(c.errors.full, 2);
  EXPECT_EQ(c.errors.weight, 1);
  EXPECT_EQ(c.tool_calls.weight, RiskConfig{}.tool_calls.weight);
  EXPECT_EQ(c.medium_at, 0.2);
  EXPECT_EQ(c.high_at, 0.4);
  EXPECT_EQ(c.critical_at, 0.9);
  EXPECT_EQ(c.checkpoint_interval_ms, 60'000);
  // And the overrides are what the model uses.
  RiskAssessment a = AssessRisk(c, {{"errors", 1}}, kJustCheckpointed);
  EXPECT_DOUBLE_EQ(a.risk, 0.5);
  EXPECT_EQ(a.level, "high");
  EXPECT_TRUE(AssessRisk(c, json::object(), int64_t{60'000}).checkpoint_recommended);
}

TEST(RiskModelTest, FromJsonRejectsBadValues) {
  const json bad[] = {
      json::array(),
      json("x"),
      json(nullptr),
      {{"errors", 5}},                            // ramp not an object
      {{"errors", {{"start", 5}, {"full", 5}}}},  // full must exceed start
      {{"errors", {{"start", 5}, {"full", 1}}}},
      {{"messages", {{"full", 10}}}},  // below the default start 80
      {{"errors", {{"weight", 1.5}}}},
      {{"errors", {{"weight", -0.1}}}},
      {{"errors", {{"weight", "heavy"}}}},  // wrong types
      {{"errors", {{"start", nullptr}}}},
      {{"medium_at", "0.3"}},
      {{"critical_at", nullptr}},
      {{"checkpoint_interval_ms", "15m"}},
      {{"medium_at", 0}},  // thresholds out of order or range
      {{"medium_at", 0.7}},
      {{"high_at", 0.9}},
      {{"critical_at", 1.2}},
      {{"medium_at", 0.5}, {"high_at", 0.5}},
      {{"high_at", 0.85}},
      {{"checkpoint_interval_ms", 0}},
      {{"checkpoint_interval_ms", -1000}},
      {{"checkpoint_interval_ms", 1.5}},
  };
  for (const json& j : bad) {
    Result<RiskConfig> r = RiskConfig::FromJson(j);
    ASSERT_FALSE(r.ok()) << "accepted " << j.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidParams)
        << j.dump() << ": " << r.status().ToString();
    EXPECT_TRUE(r.status().details().contains("field")) << j.dump();
  }
}

}  // namespace
}  // namespace shim::engine

// Retry backoff: how long a task waits after a failed attempt.
//
//   fixed:       delay_ms
//   exponential: delay_ms * 2^(attempt-1), capped by max_delay_ms
//   jitter:      the result is spread uniformly over [50 %, 150 %] of itself
//                (then capped again), from a deterministic generator seeded
//                by the caller, so the engine stays replayable.
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/status.h"

namespace shim::engine {

struct Backoff {
  enum class Type { kFixed, kExponential } type = Type::kFixed;
  int64_t delay_ms = 1000;
  int64_t max_delay_ms = 0;  // 0 = no cap
  bool jitter = false;

  // Parses the `backoff` submit field (null/absent = defaults).
  static Result<Backoff> FromJson(const nlohmann::json* j);
  nlohmann::json ToJson() const;
  // Delay after failed attempt number `attempt` (1-based). `seed` drives
  // the jitter.
  int64_t DelayMs(int64_t attempt, uint64_t seed) const;
};

// splitmix64: a tiny, well-mixed deterministic generator.
uint64_t SplitMix64(uint64_t x);

}  // namespace shim::engine

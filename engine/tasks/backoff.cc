#include "engine/tasks/backoff.h"

#include <algorithm>

#include "engine/params.h"

namespace shim::engine {

using nlohmann::json;

namespace {
constexpr int64_t kMaxDelayMs = 30LL * 24 * 3600 * 1000;  // 30 days
}  // namespace

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

Result<Backoff> Backoff::FromJson(const json* j) {
  Backoff b;
  if (!j || j->is_null()) return b;
  if (!j->is_object()) return Status::InvalidParams("backoff", "backoff must be an object");
  static constexpr std::string_view kFields[] = {"type", "delay_ms", "max_delay_ms", "jitter"};
  SHIM_RETURN_IF_ERROR(CheckKnownFields(*j, kFields, "backoff."));
  if (auto t = j->find("type"); t != j->end()) {
    if (*t == "fixed") {
      b.type = Type::kFixed;
    } else if (*t == "exponential") {
      b.type = Type::kExponential;
    } else {
      return Status::InvalidParams("backoff.type",
                                   "backoff.type must be \"fixed\" or \"exponential\"");
    }
  }
  auto read_ms = [&](const char* field, int64_t* out) -> Status {
    auto it = j->find(field);
    if (it == j->end() || it->is_null()) return Status::Ok();
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > kMaxDelayMs) {
      return Status::InvalidParams(std::string("backoff.") + field,
                                   std::string("backoff.") + field +
                                       " must be an integer from 0 to " +
                                       std::to_string(kMaxDelayMs));
    }
    *out = it->get<int64_t>();
    return Status::Ok();
  };
  SHIM_RETURN_IF_ERROR(read_ms("delay_ms", &b.delay_ms));
  SHIM_RETURN_IF_ERROR(read_ms("max_delay_ms", &b.max_delay_ms));
  if (auto it = j->find("jitter"); it != j->end() && !it->is_null()) {
    if (!it->is_boolean())
      return Status::InvalidParams("backoff.jitter", "backoff.jitter must be true or false");
    b.jitter = it->get<bool>();
  }
  return b;
}

json Backoff::ToJson() const {
  json j = {{"type", type == Type::kFixed ? "fixed" : "exponential"},
            {"delay_ms", delay_ms},
            {"jitter", jitter}};
  if (max_delay_ms) j["max_delay_ms"] = max_delay_ms;
  return j;
}

int64_t Backoff::DelayMs(int64_t attempt, uint64_t seed) const {
  int64_t d = delay_ms;
  if (type == Type::kExponential) {
    const int64_t shift = std::clamp<int64_t>(attempt - 1, 0, 40);
    // Saturate instead of overflowing for large attempts.
    d = delay_ms > (kMaxDelayMs >> shift) ? kMaxDelayMs : delay_ms << shift;
  }
  if (max_delay_ms > 0) d = std::min(d, max_delay_ms);
  if (jitter && d > 0) {
    // Uniform in [d/2, 3d/2].
    const uint64_t r = SplitMix64(seed);
    d = d / 2 + static_cast<int64_t>(r % static_cast<uint64_t>(d + 1));
    if (max_delay_ms > 0) d = std::min(d, max_delay_ms);
  }
  return std::min(d, kMaxDelayMs);
}

}  // namespace shim::engine

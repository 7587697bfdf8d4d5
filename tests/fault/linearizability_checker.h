// Linearizability checker for histories of shim's state operations
// (state.get / set / incr / del / txn, with expected_version CAS), against a
// sequential model of one versioned key: {exists, value, version}.
//
// A history is what clients saw: for every request, when it was sent
// (invoke), when its reply arrived (response), the request and the reply.
// A request whose reply never came (the server was killed) is *lost*: it may
// have taken effect at any moment after its invoke and before the server
// died (`response_ns` is then that deadline), or not at all.
//
// The check is Wing & Gong's search with Lowe's memoisation (WGL: a set of
// (linearised ops, model state) already explored), run per key
// (P-compositionality: a history is linearisable iff each key's
// sub-history is). Versions in replies prune the search hard: a set that
// returned version v can only be placed where the key is at v - 1. A
// state.txn is projected onto each key it touches; that checks each key's
// part of the transaction, not that the parts took effect at one instant
// (per-key projection is sound for rejection: a history it rejects is not
// linearisable).
//
// Not thread-safe; test code only.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace shim::fault::lin {

inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// One client request and what came back.
struct Op {
  int client = 0;
  int64_t invoke_ns = 0;
  int64_t response_ns = kNever;  // reply arrival; for a lost op, the latest it could have happened
  bool lost = false;             // no reply: happened before response_ns, or never
  std::string method;            // state.get | state.set | state.incr | state.del | state.txn
  nlohmann::json params;
  nlohmann::json result;            // the reply's result (ok replies)
  std::optional<StatusCode> error;  // the reply's error code, if it was an error
  nlohmann::json error_details;     // e.g. {"current_version": 3}
};

struct CheckResult {
  bool ok = true;
  std::string key;      // the first key that failed
  std::string message;  // why, with the ops involved
  size_t keys = 0;      // keys checked
  size_t ops = 0;       // per-key operations checked (a txn counts once per key)
  uint64_t steps = 0;   // search steps taken, over all keys
};

struct CheckOptions {
  // Search steps allowed per key before giving up (reported as a failure
  // that says so, never as a pass).
  uint64_t max_steps_per_key = 50'000'000;
};

// Checks a whole history. Ops with invalid params or non-state methods are
// reported as failures (the recorder must only record what it understands).
CheckResult Check(const std::vector<Op>& history, const CheckOptions& options = {});

// A short human-readable line for an op (for messages).
std::string Describe(const Op& op);

}  // namespace shim::fault::lin

// Building JSON values from client input within size and depth limits:
// JSON Patch (RFC 6902) and merge patch (RFC 7396) for state.patch, and the
// deep merge and concatenation of child results for a parent task's
// aggregate.
//
// Each is checked while the value is built, never after (docs/design.md, style rule
// 11): 21 JSON Patch `copy` ops in a 1 KB request once doubled a value to
// 2 GB before its size was looked at. Every insertion is weighed against
// what is left of the budget before it is made, so a request over a limit
// fails TOO_LARGE having built at most about the limit. The walks are
// iterative, so a deep value costs heap, not stack.
//
// Self-contained (nlohmann, base/status.h, engine/json_parse.h). Pure
// functions; any thread.
#pragma once

#include <cstddef>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/status.h"
#include "engine/json_parse.h"

namespace shim {

// What a value may grow to while it is built.
struct JsonBuildLimits {
  // Of the value's weight (JsonWeight::bytes), checked before each insertion.
  size_t max_bytes = std::numeric_limits<size_t>::max();
  size_t max_depth = kMaxJsonDepth;
  // JSON Patch: a bound on the walking, copying and shifting its ops may do
  // in all (JsonWeight::bytes walked plus array elements moved), so that a
  // patch which copies and removes a large part over and over fails instead
  // of holding the engine. It bounds `*work` when that is set, the count a
  // caller shares across the patches of one request and adds its own costs
  // to (ChargeJsonWork); else the patch's own count.
  size_t max_work = std::numeric_limits<size_t>::max();
  size_t* work = nullptr;
};

// Adds `units` to *limits.work (which must be set). Errors: TOO_LARGE
// (data.limit = max_work) once it is over max_work.
Status ChargeJsonWork(const JsonBuildLimits& limits, size_t units);

// A value's weight: `bytes` is a lower bound of its compact JSON text (exact
// but for floats, counted as 3, and string escapes, not counted), which is
// also in proportion to the memory it takes; `depth` its nesting (a scalar
// 0, `[]` 1).
struct JsonWeight {
  size_t bytes = 0;
  size_t depth = 0;
};

// Weighs `value` without recursion. Stops early, with a result over the
// bound, once bytes exceed `stop_bytes` or depth exceeds `stop_depth`: the
// cost is then at most about the bound.
JsonWeight WeighJson(const nlohmann::json& value,
                     size_t stop_bytes = std::numeric_limits<size_t>::max(),
                     size_t stop_depth = std::numeric_limits<size_t>::max());

// Applies a JSON Patch (RFC 6902: add, remove, replace, move, copy, test)
// to `doc` in place; on an error `doc` is left part-way and must be thrown
// away. As nlohmann does (and state.patch always did), `add` under a null
// parent makes it an object. Errors: INVALID_PARAMS (field "ops", the op's
// index and what is wrong) for a malformed op, a missing path or a failed
// test; TOO_LARGE when the value would outgrow max_bytes (data.limit =
// max_bytes) or max_depth (JsonTooDeep), or the ops would do more than
// max_work (ChargeJsonWork).
Status ApplyJsonPatch(nlohmann::json& doc, const nlohmann::json& ops,
                      const JsonBuildLimits& limits);

// Applies a JSON merge patch (RFC 7396) to `doc` in place. Errors as for
// ApplyJsonPatch's limits (a merge patch cannot be malformed).
Status ApplyMergePatch(nlohmann::json& doc, const nlohmann::json& patch,
                       const JsonBuildLimits& limits);

// The parts deep-merged in order, starting from {}: objects merge member by
// member; any other pair is replaced by the later value (nulls included).
// Errors: TOO_LARGE as above.
Result<nlohmann::json> DeepMergeJson(const std::vector<const nlohmann::json*>& parts,
                                     const JsonBuildLimits& limits);

// The parts as one array, in order. Errors: TOO_LARGE as above.
Result<nlohmann::json> ConcatenateJson(const std::vector<const nlohmann::json*>& parts,
                                       const JsonBuildLimits& limits);

}  // namespace shim

// Glob patterns of pattern subscriptions (pubsub.subscribe {pattern}), as
// Redis PSUBSCRIBE: `*` any run of bytes (also empty), `?` one byte,
// `[abc]`, `[a-z]`, `[^a-z]` / `[!a-z]` one byte of (or not of) a set,
// `\x` the byte x. A `[` without a closing `]` is a literal `[`; a `]` right
// after `[` or `[^` is a member of the set.
//
// GlobMatch decides one pattern against one channel. GlobLiterals reads
// what any channel a pattern matches must contain (its literal runs), which
// the pattern index (engine/pattern_index.h) files patterns under. Both read
// brackets with the same scanner, so they cannot disagree on where a set
// ends. Pure functions, any thread.
#pragma once

#include <string>
#include <string_view>

namespace shim::engine {

bool GlobMatch(std::string_view pattern, std::string_view text);

// Literal runs of a pattern: maximal runs of bytes that must appear, in a
// row, in every channel the pattern matches (`\x` counts as the byte x, an
// unterminated `[` as `[`). Every token of a glob matches exactly one byte
// except `*`, so:
//   prefix       the run the pattern starts with: every match starts with it;
//   suffix       the run the pattern ends with: every match ends with it;
//   longest_run  the longest run anywhere (first of equals): every match
//                contains it.
// Each is empty when the pattern has no such run (e.g. prefix of `*.log`).
struct GlobLiterals {
  std::string prefix;
  std::string suffix;
  std::string longest_run;
};
GlobLiterals ReadGlobLiterals(std::string_view pattern);

}  // namespace shim::engine

// The known name closest to a mistyped one, for "did you mean ...?" hints
// (an unknown command, subcommand, option or params field). Closeness is
// the edit distance (insertions, deletions, substitutions, and the swap of
// two neighbouring letters, each counting 1). Pure functions, any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shim {

// Edits that turn `a` into `b` (optimal string alignment distance).
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate nearest to `typed`, if it is near enough to be what was
// meant: at most 2 edits, and at most a third of the longer name's length
// (so "ab" does not suggest "xy"); or a candidate that `typed` is a prefix
// of ("sta" -> "state"), when exactly one is. Ties go to the first listed.
std::optional<std::string> NearestName(std::string_view typed,
                                       const std::vector<std::string>& candidates);

}  // namespace shim

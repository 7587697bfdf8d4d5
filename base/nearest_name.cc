#include "base/nearest_name.h"

#include <algorithm>

namespace shim {

size_t EditDistance(std::string_view a, std::string_view b) {
  // Three rows of the dynamic-programming table: the swap of neighbours
  // looks two rows back. Names are short, so this is cheap.
  std::vector<size_t> two_back(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitute = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, substitute});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        cur[j] = std::min(cur[j], two_back[j - 2] + 1);
    }
    two_back.swap(prev);
    prev.swap(cur);
  }
  return prev[b.size()];
}

std::optional<std::string> NearestName(std::string_view typed,
                                       const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (const std::string& c : candidates) {
    const size_t d = EditDistance(typed, c);
    const size_t longer = std::max(typed.size(), c.size());
    if (d > 2 || d * 3 > longer) continue;
    if (!best || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  if (best || typed.empty()) return best;
  for (const std::string& c : candidates) {
    if (c.rfind(typed, 0) != 0) continue;
    if (best) return std::nullopt;  // ambiguous prefix
    best = c;
  }
  return best;
}

}  // namespace shim

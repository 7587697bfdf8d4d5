#include "cli/human_units.h"

#include <array>
#include <cstdio>

namespace shim::cli {

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static constexpr std::array<const char*, 4> kUnits = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  // Past 1023.95 the one-decimal form would print "1024.0": use the next unit.
  while (value >= 1023.95 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", value, kUnits[unit]);
  return buf;
}

std::string FormatDuration(int64_t ms) {
  if (ms < 1000) return std::to_string(ms < 0 ? 0 : ms) + "ms";
  const int64_t s = ms / 1000;
  struct Unit {
    int64_t seconds;
    const char* name;
  };
  static constexpr std::array<Unit, 4> kUnits = {
      {{86'400, "d"}, {3'600, "h"}, {60, "m"}, {1, "s"}}};
  for (size_t i = 0; i < kUnits.size(); ++i) {
    if (s < kUnits[i].seconds) continue;
    std::string out = std::to_string(s / kUnits[i].seconds) + kUnits[i].name;
    if (i + 1 < kUnits.size()) {
      const int64_t rest = (s % kUnits[i].seconds) / kUnits[i + 1].seconds;
      if (rest > 0) out += " " + std::to_string(rest) + kUnits[i + 1].name;
    }
    return out;
  }
  return std::to_string(s) + "s";  // not reached: s >= 1
}

}  // namespace shim::cli

// Sizes and durations as people read them, for the commands that print to
// a terminal (`shim info`). Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>

namespace shim::cli {

// Bytes in binary units with one decimal past 1 KiB: "512 B", "1.5 KiB",
// "12.0 MiB", "3.2 GiB" (up to TiB).
std::string FormatBytes(uint64_t bytes);
// A duration in its two largest units: "850ms", "42s", "5m 3s", "2h 5m",
// "3d 4h". Negative durations print as 0ms.
std::string FormatDuration(int64_t ms);

}  // namespace shim::cli

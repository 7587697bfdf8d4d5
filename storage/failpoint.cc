#include "storage/failpoint.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace shim::failpoint {

bool g_any_armed = false;

namespace {

constexpr size_t kCount = std::size(kFailpointNames);

enum class Action : uint8_t { kOff, kCrash, kAbort, kError };

struct Point {
  Action action = Action::kOff;
  uint64_t fire_at = 1;  // fire on this hit (1-based)
  std::atomic<uint64_t> hits{0};
};

// Constant-initialised (no constructor runs), so it is ready before the
// environment is read below, whatever the static initialisation order.
std::array<Point, kCount> g_points;

int IndexOf(std::string_view name) {
  for (size_t i = 0; i < kCount; ++i) {
    if (kFailpointNames[i] == name) return static_cast<int>(i);
  }
  return -1;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Status Bad(std::string_view entry, const std::string& why) {
  return Status::InvalidParams("SHIM_FAILPOINTS",
                               "SHIM_FAILPOINTS entry '" + std::string(entry) + "': " + why);
}

[[noreturn]] void Fire(std::string_view name, Action action, uint64_t hit) {
  // Only async-signal-safe calls from here: the process may be mid-anything.
  char line[160];
  int n = std::snprintf(line, sizeof(line), "shim: failpoint %.*s fired (hit %llu): %s\n",
                        static_cast<int>(name.size()), name.data(),
                        static_cast<unsigned long long>(hit),
                        action == Action::kAbort ? "abort" : "crash");
  if (n > 0) (void)!::write(2, line, static_cast<size_t>(std::min<int>(n, sizeof(line) - 1)));
  if (action == Action::kAbort) std::abort();
  ::_exit(kFailpointExitCode);
}

// Reads SHIM_FAILPOINTS once, before main().
struct FromEnvironment {
  FromEnvironment() {
    const char* spec = std::getenv("SHIM_FAILPOINTS");
    if (spec == nullptr || *spec == '\0') return;
    Status s = Configure(spec);
    if (!s.ok()) {
      std::fprintf(stderr, "shim: %s\n", s.message().c_str());
      ::_exit(2);
    }
  }
};
FromEnvironment g_from_environment;

bool CanFail(std::string_view name) {
  return std::find(std::begin(kFailpointsThatCanFail), std::end(kFailpointsThatCanFail), name) !=
         std::end(kFailpointsThatCanFail);
}

}  // namespace

Status HitStatus(std::string_view name) {
  const int i = IndexOf(name);
  if (i < 0) return Status::Ok();
  Point& p = g_points[static_cast<size_t>(i)];
  if (p.action == Action::kOff) return Status::Ok();
  const uint64_t hit = p.hits.fetch_add(1, std::memory_order_relaxed) + 1;
  if (hit != p.fire_at) return Status::Ok();
  if (p.action != Action::kError) Fire(name, p.action, hit);
  // Said on stderr like a crash, so that a test reading the log sees it fired.
  std::fprintf(stderr, "shim: failpoint %.*s fired (hit %llu): error\n",
               static_cast<int>(name.size()), name.data(), static_cast<unsigned long long>(hit));
  return Status::Internal("failpoint " + std::string(name) + " fired (hit " + std::to_string(hit) +
                          "): injected error");
}

void Hit(std::string_view name) { (void)HitStatus(name); }

bool Armed(std::string_view name) {
  const int i = IndexOf(name);
  if (i < 0) return false;
  const Point& p = g_points[static_cast<size_t>(i)];
  return p.action != Action::kOff && p.hits.load(std::memory_order_relaxed) < p.fire_at;
}

Status Configure(std::string_view spec) {
  std::array<Action, kCount> actions{};
  std::array<uint64_t, kCount> fire_at;
  fire_at.fill(1);
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    std::string_view entry = Trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (entry.empty()) continue;
    const size_t colon = entry.find(':');
    if (colon == std::string_view::npos) return Bad(entry, "want NAME:ACTION[@N]");
    const std::string_view name = Trim(entry.substr(0, colon));
    std::string_view action = Trim(entry.substr(colon + 1));
    const int i = IndexOf(name);
    if (i < 0) {
      std::string known;
      for (std::string_view k : kFailpointNames)
        known += (known.empty() ? "" : ", ") + std::string(k);
      return Bad(entry, "unknown failpoint '" + std::string(name) + "' (known: " + known + ")");
    }
    uint64_t n = 1;
    if (const size_t at = action.find('@'); at != std::string_view::npos) {
      std::string_view count = action.substr(at + 1);
      auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
      if (ec != std::errc() || end != count.data() + count.size() || n == 0) {
        return Bad(entry, "@N wants a positive integer");
      }
      action = Trim(action.substr(0, at));
    }
    Action a;
    if (action == "crash") {
      a = Action::kCrash;
    } else if (action == "abort") {
      a = Action::kAbort;
    } else if (action == "off") {
      a = Action::kOff;
    } else if (action == "error") {
      if (!CanFail(name)) {
        std::string can;
        for (std::string_view k : kFailpointsThatCanFail)
          can += (can.empty() ? "" : ", ") + std::string(k);
        return Bad(entry, "failpoint '" + std::string(name) +
                              "' cannot fail with `error`, only crash or abort (" +
                              "`error` works at: " + can + ")");
      }
      a = Action::kError;
    } else {
      return Bad(entry,
                 "unknown action '" + std::string(action) + "' (crash, abort, error or off)");
    }
    actions[static_cast<size_t>(i)] = a;
    fire_at[static_cast<size_t>(i)] = n;
  }
  bool any = false;
  for (size_t i = 0; i < kCount; ++i) {
    g_points[i].action = actions[i];
    g_points[i].fire_at = fire_at[i];
    g_points[i].hits.store(0, std::memory_order_relaxed);
    any = any || actions[i] != Action::kOff;
  }
  g_any_armed = any;
  return Status::Ok();
}

void Reset() { (void)Configure(""); }

}  // namespace shim::failpoint

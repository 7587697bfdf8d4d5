// Test helpers: status assertions that print the failing status.
// ASSERT_OK/EXPECT_OK copy the Status: `expr` is usually a temporary, and a
// reference into it would dangle past the declaration.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

#include "base/status.h"

#define ASSERT_OK(expr)                                               \
  do {                                                                \
    const ::shim::Status shim_s_ = ::shim::testing::AsStatus(expr);   \
    ASSERT_TRUE(shim_s_.ok()) << #expr << ": " << shim_s_.ToString(); \
  } while (0)

#define EXPECT_OK(expr)                                               \
  do {                                                                \
    const ::shim::Status shim_s_ = ::shim::testing::AsStatus(expr);   \
    EXPECT_TRUE(shim_s_.ok()) << #expr << ": " << shim_s_.ToString(); \
  } while (0)

// Unwraps a Result<T> into `lhs`, failing the test with the status if not OK.
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                       \
  auto SHIM_CONCAT(shim_r_, __LINE__) = (expr);                               \
  ASSERT_TRUE(SHIM_CONCAT(shim_r_, __LINE__).ok())                            \
      << #expr << ": " << SHIM_CONCAT(shim_r_, __LINE__).status().ToString(); \
  lhs = std::move(SHIM_CONCAT(shim_r_, __LINE__)).value()

// For a test that cannot run on this machine (not root, no mount, a low
// open-file limit): it FAILS with `why`, so that CI cannot lose it as a
// silent skip, unless the environment says SHIM_ALLOW_SKIP=1 (a developer
// machine without root), which turns it into a skip. `why` may be a
// stream expression: SHIM_SKIP_OR_FAIL("limit below " << n).
#define SHIM_SKIP_OR_FAIL(why)                                                                  \
  do {                                                                                          \
    if (::shim::testing::SkipAllowed()) GTEST_SKIP() << why << " (skipped: SHIM_ALLOW_SKIP=1)"; \
    FAIL() << why << ": this test cannot run here; set SHIM_ALLOW_SKIP=1 to skip it instead";   \
  } while (0)

namespace shim::testing {

// True when SHIM_ALLOW_SKIP=1 (SHIM_SKIP_OR_FAIL).
inline bool SkipAllowed() {
  const char* v = std::getenv("SHIM_ALLOW_SKIP");
  return v != nullptr && std::string_view(v) == "1";
}

// True in a sanitizer build (`make test-sanitize`, `make test-tsan`), where
// RSS bounds and tight latency bounds do not hold: tests that assert on them
// keep their functional checks and relax or skip only those bounds.
#ifdef SHIM_SANITIZED
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// A memory bound in KiB for an RSS assertion. Under ASan, shadow memory
// costs about 1/8 more per byte touched, every allocation carries redzones
// (about 2-4x for small objects) and freed blocks wait in a quarantine of
// up to 256 MiB before reuse.
inline constexpr long MemoryBoundKiB(long normal_kib) {
  return kSanitized ? normal_kib * 4 + 256 * 1024 : normal_kib;
}
// A latency bound in ms: sanitized code runs 2-15x slower.
inline constexpr long LatencyBoundMs(long normal_ms) {
  return kSanitized ? normal_ms * 10 : normal_ms;
}

// The load of a stress test: `normal` in the optimized build, `sanitized`
// under a sanitizer. Sanitized code runs 5-20x slower (ASan+UBSan at -O0),
// and that run is there to catch memory and UB errors on the same code
// paths, which a smaller load still takes; the full load, and the bounds
// that need it, run in the optimized build of the same `make test`. This
// keeps the sanitized stage, and with it CI, within its time.
inline constexpr long SanitizedLoad(long normal, long sanitized) {
  return kSanitized ? sanitized : normal;
}

// How long a test waits for one reply from a test server before it fails.
inline constexpr int kCallTimeoutMs = 10'000;
// The same for a server under heavy load or out of disk, where replies come slower.
inline constexpr int kLoadedCallTimeoutMs = 20'000;

inline const Status& AsStatus(const Status& s) { return s; }
template <typename T>
const Status& AsStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace shim::testing

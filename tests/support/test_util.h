// Test helpers: status assertions that print the failing status.
// ASSERT_OK/EXPECT_OK copy the Status: `expr` is usually a temporary, and a
// reference into it would dangle past the declaration.
#pragma once

#include <gtest/gtest.h>

#include "storage/status.h"

#define ASSERT_OK(expr)                                      \
  do {                                                       \
    const ::shim::Status shim_s_ = ::shim::testing::AsStatus(expr); \
    ASSERT_TRUE(shim_s_.ok()) << #expr << ": " << shim_s_.ToString(); \
  } while (0)

#define EXPECT_OK(expr)                                      \
  do {                                                       \
    const ::shim::Status shim_s_ = ::shim::testing::AsStatus(expr); \
    EXPECT_TRUE(shim_s_.ok()) << #expr << ": " << shim_s_.ToString(); \
  } while (0)

// Unwraps a Result<T> into `lhs`, failing the test with the status if not OK.
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                   \
  auto SHIM_CONCAT(shim_r_, __LINE__) = (expr);                            \
  ASSERT_TRUE(SHIM_CONCAT(shim_r_, __LINE__).ok())                         \
      << #expr << ": " << SHIM_CONCAT(shim_r_, __LINE__).status().ToString(); \
  lhs = std::move(SHIM_CONCAT(shim_r_, __LINE__)).value()

namespace shim::testing {
inline const Status& AsStatus(const Status& s) { return s; }
template <typename T>
const Status& AsStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace shim::testing

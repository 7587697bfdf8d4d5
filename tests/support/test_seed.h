// Seeds of randomised tests. Every test that draws random numbers takes its
// seed from here: the seed is printed when the test starts and added to every
// failure message of the test, and SHIM_TEST_SEED=N replays it:
//
//   SHIM_TEST_SEED=1234 ./build/tests/fault_tests --gtest_filter='LinearizabilityTest.*'
//
//   SHIM_TEST_SEED_TRACE(seed, 7);             // fixed by default (deterministic test)
//   SHIM_TEST_SEED_TRACE(seed, std::nullopt);  // random by default
//   std::mt19937 rng(seed);
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <random>
#include <string>

namespace shim::testing {

// SHIM_TEST_SEED if set, else `fallback`, else a random one; printed.
inline uint32_t TestSeed(std::optional<uint32_t> fallback) {
  uint32_t seed;
  const char* env = std::getenv("SHIM_TEST_SEED");
  if (env && *env) {
    seed = static_cast<uint32_t>(std::strtoul(env, nullptr, 10));
  } else if (fallback) {
    seed = *fallback;
  } else {
    seed = std::random_device()();
  }
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::cout << "[ seed ] "
            << (info ? std::string(info->test_suite_name()) + "." + info->name() : std::string("?"))
            << ": SHIM_TEST_SEED=" << seed << std::endl;
  return seed;
}

inline std::string SeedMessage(uint32_t seed) {
  return "seed " + std::to_string(seed) + " (replay: SHIM_TEST_SEED=" + std::to_string(seed) + ")";
}

}  // namespace shim::testing

// Declares `const uint32_t var` (see TestSeed) and names it in every failure
// of the enclosing scope.
#define SHIM_TEST_SEED_TRACE(var, fallback)                 \
  const uint32_t var = ::shim::testing::TestSeed(fallback); \
  SCOPED_TRACE(::shim::testing::SeedMessage(var))

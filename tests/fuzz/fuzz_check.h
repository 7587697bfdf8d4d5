// SHIM_FUZZ_CHECK(cond): a fuzz target's assertion. A failed one prints
// where and what, then aborts, which libFuzzer (and the replay runner)
// report as a crash with the input that caused it. Not gtest: a target
// runs outside any test.
#pragma once

#include <cstdio>
#include <cstdlib>

#define SHIM_FUZZ_CHECK(cond)                                                            \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

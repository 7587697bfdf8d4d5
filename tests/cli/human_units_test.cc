// FormatBytes and FormatDuration (cli/human_units.h), as `shim info` prints them.
#include "cli/human_units.h"

#include <gtest/gtest.h>

namespace shim::cli {
namespace {

TEST(HumanUnitsTest, BytesUseBinaryUnitsWithOneDecimal) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1024), "1.0 KiB");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(10 << 20), "10.0 MiB");
  EXPECT_EQ(FormatBytes(uint64_t{3} << 30), "3.0 GiB");
  EXPECT_EQ(FormatBytes(uint64_t{5} << 40), "5.0 TiB");
  EXPECT_EQ(FormatBytes(uint64_t{2048} << 40), "2048.0 TiB") << "TiB is the largest unit";
}

TEST(HumanUnitsTest, BytesJustBelowAUnitRollOverInsteadOfPrinting1024) {
  EXPECT_EQ(FormatBytes((1 << 20) - 1), "1.0 MiB");
  EXPECT_EQ(FormatBytes(1023 * 1024), "1023.0 KiB");
}

TEST(HumanUnitsTest, DurationsShowTheirTwoLargestUnits) {
  EXPECT_EQ(FormatDuration(-5), "0ms");
  EXPECT_EQ(FormatDuration(0), "0ms");
  EXPECT_EQ(FormatDuration(850), "850ms");
  EXPECT_EQ(FormatDuration(1000), "1s");
  EXPECT_EQ(FormatDuration(42'999), "42s");
  EXPECT_EQ(FormatDuration(60'000), "1m");
  EXPECT_EQ(FormatDuration(303'000), "5m 3s");
  EXPECT_EQ(FormatDuration((2 * 3600 + 5 * 60 + 59) * 1000LL), "2h 5m");
  EXPECT_EQ(FormatDuration((3 * 86400 + 4 * 3600 + 59) * 1000LL), "3d 4h");
  EXPECT_EQ(FormatDuration(400 * 86400 * 1000LL), "400d");
}

}  // namespace
}  // namespace shim::cli

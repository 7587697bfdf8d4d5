// LineFramer: the line splitting every Session runs (net/line_framer.h).
#include "net/line_framer.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace shim::net {
namespace {

using Kind = LineFramer::Piece::Kind;

// What the framer produced: "L:<line>" for a line, "T" for an over-long one.
std::vector<std::string> Drain(LineFramer& framer) {
  std::vector<std::string> out;
  while (auto piece = framer.Next()) {
    out.push_back(piece->kind == Kind::kLine ? "L:" + std::string(piece->bytes) : "T");
  }
  return out;
}

// Feeds `chunk`, which ends no line: the framer has nothing to give yet.
void FeedUnfinished(LineFramer& framer, std::string_view chunk) {
  framer.Feed(chunk);
  EXPECT_TRUE(Drain(framer).empty()) << chunk;
}

// Feeds a line that `first` begins and `second` ends; the first piece after.
std::optional<LineFramer::Piece> FeedLineInTwoChunks(LineFramer& framer, std::string_view first,
                                                     std::string_view second) {
  FeedUnfinished(framer, first);
  framer.Feed(second);
  return framer.Next();
}

// Feeds `input` in chunks cut at `cuts` (ascending offsets).
std::vector<std::string> FrameInChunks(std::string_view input, size_t max,
                                       const std::vector<size_t>& cuts) {
  LineFramer framer(max);
  std::vector<std::string> out;
  size_t at = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  for (size_t end : ends) {
    framer.Feed(input.substr(at, end - at));
    for (auto& s : Drain(framer)) out.push_back(std::move(s));
    at = end;
  }
  return out;
}

TEST(LineFramerTest, SplitsAChunkIntoLinesWithoutTheirNewlines) {
  LineFramer framer(100);
  framer.Feed("a\nbb\n\nccc\n");
  EXPECT_EQ(Drain(framer), (std::vector<std::string>{"L:a", "L:bb", "L:", "L:ccc"}));
  EXPECT_FALSE(framer.line_open());
}

TEST(LineFramerTest, KeepsAnUnfinishedLineAcrossChunks) {
  LineFramer framer(100);
  FeedUnfinished(framer, "{\"id\":");
  EXPECT_TRUE(framer.line_open());
  EXPECT_TRUE(framer.open_line_began_in_chunk());
  EXPECT_EQ(framer.buffered_bytes(), 6u);
  FeedUnfinished(framer, "1");
  EXPECT_FALSE(framer.open_line_began_in_chunk())
      << "more bytes of the same line do not restart its clock";
  framer.Feed("}\nnext");
  EXPECT_EQ(Drain(framer), (std::vector<std::string>{"L:{\"id\":1}"}));
  EXPECT_TRUE(framer.line_open());
  EXPECT_TRUE(framer.open_line_began_in_chunk()) << "'next' began in this chunk";
}

TEST(LineFramerTest, LineOfExactlyTheLimitPassesOneMoreByteIsTooLong) {
  LineFramer framer(4);
  framer.Feed("abcd\nabcde\nok\n");
  EXPECT_EQ(Drain(framer), (std::vector<std::string>{"L:abcd", "T", "L:ok"}));
}

TEST(LineFramerTest, OverLongLineIsReportedOnceAsSoonAsKnownAndSkippedToItsNewline) {
  LineFramer framer(8);
  framer.Feed("{\"id\":7,\"method\"");  // 17 bytes, no newline yet: already too long
  auto piece = framer.Next();
  ASSERT_TRUE(piece.has_value());
  EXPECT_EQ(piece->kind, Kind::kTooLong);
  EXPECT_EQ(piece->bytes, "{\"id\":7,\"method\"") << "the start of the line, to find its id in";
  EXPECT_FALSE(framer.Next().has_value());
  EXPECT_TRUE(framer.line_open());
  EXPECT_EQ(framer.buffered_bytes(), 0u) << "an over-long line is skipped, not buffered";
  const std::string long_tail(100'000, 'x');  // a fed chunk must outlive Next()
  framer.Feed(long_tail);
  EXPECT_TRUE(Drain(framer).empty()) << "reported once";
  EXPECT_EQ(framer.buffered_bytes(), 0u);
  framer.Feed("xx\nok\n");
  EXPECT_EQ(Drain(framer), (std::vector<std::string>{"L:ok"}));
  EXPECT_FALSE(framer.line_open());
}

TEST(LineFramerTest, OverLongLineBuiltOverChunksReportsItsBufferedStart) {
  LineFramer framer(8);
  auto piece = FeedLineInTwoChunks(framer, "{\"id\":", "12,\"x\":1}\n");
  ASSERT_TRUE(piece.has_value());
  EXPECT_EQ(piece->kind, Kind::kTooLong);
  EXPECT_EQ(piece->bytes, "{\"id\":");
  EXPECT_FALSE(framer.Next().has_value());
  EXPECT_FALSE(framer.line_open());
}

TEST(LineFramerTest, RaisingTheLimitAppliesToTheLinesAfter) {
  // A session raises it after sys.auth, between two lines of one chunk.
  LineFramer framer(4);
  framer.Feed("auth\nlonger line\n");
  auto first = framer.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->bytes, "auth");
  framer.set_max_line_bytes(100);
  EXPECT_EQ(Drain(framer), (std::vector<std::string>{"L:longer line"}));
}

TEST(LineFramerTest, APieceStaysValidUntilTheNextCall) {
  LineFramer framer(100);
  auto piece = FeedLineInTwoChunks(framer, "ab", "c\n");
  ASSERT_TRUE(piece.has_value());
  const std::string copy(piece->bytes);
  EXPECT_EQ(piece->bytes, "abc");
  EXPECT_EQ(copy, "abc");
}

// However the stream is cut into chunks, the same lines come out: what a
// client's writes and the kernel's reads do to the boundaries is invisible.
TEST(LineFramerTest, ChunkBoundariesDoNotChangeTheLines) {
  std::mt19937 rng(18);
  const std::string alphabet = "ab\n\n{}\r";
  for (int round = 0; round < 2000; ++round) {
    std::string input(rng() % 64, ' ');
    for (char& c : input) c = alphabet[rng() % alphabet.size()];
    const size_t max = rng() % 10;
    const std::vector<std::string> whole = FrameInChunks(input, max, {});
    std::vector<size_t> cuts;
    for (size_t i = 1; i < input.size(); ++i) {
      if (rng() % 3 == 0) cuts.push_back(i);
    }
    ASSERT_EQ(FrameInChunks(input, max, cuts), whole) << "input '" << input << "', max " << max;
  }
}

}  // namespace
}  // namespace shim::net

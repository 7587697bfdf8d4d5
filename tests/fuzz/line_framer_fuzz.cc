// libFuzzer target: the line framer every Session runs (net/line_framer.h),
// the byte-level half of a connection that jsonrpc_fuzz does not see.
//
// Input: byte 0 picks the line limit (small, so over-long lines are common),
// byte 1 seeds where the rest, the byte stream of one connection, is cut
// into the chunks the framer is fed (as reads from a socket would cut it).
// Oracles, against a plain model that splits the whole stream at '\n':
//   1. The pieces are the model's, in order, whatever the chunking: each
//      complete line up to the limit as itself, each longer line as one
//      kTooLong whose bytes are a non-empty start of that line; a final
//      unfinished line over the limit as one kTooLong too.
//   2. Never more than the limit is buffered; line_open() says whether bytes
//      of an unfinished line were read; open_line_began_in_chunk() whether
//      that line began in the last chunk fed.
//   3. At the end an unfinished line within the limit is buffered whole.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "net/line_framer.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using shim::net::LineFramer;
using Kind = LineFramer::Piece::Kind;

struct Expected {
  Kind kind;
  std::string_view line;  // the whole line (for kTooLong: what its bytes must start)
};

// The model: the pieces the whole stream must give.
std::vector<Expected> Model(std::string_view stream, size_t max) {
  std::vector<Expected> out;
  size_t at = 0;
  for (size_t nl; (nl = stream.find('\n', at)) != std::string_view::npos; at = nl + 1) {
    std::string_view line = stream.substr(at, nl - at);
    out.push_back({line.size() > max ? Kind::kTooLong : Kind::kLine, line});
  }
  if (stream.size() - at > max) out.push_back({Kind::kTooLong, stream.substr(at)});
  return out;
}

// A small deterministic generator for the chunk sizes.
uint32_t NextRandom(uint32_t& state) {
  state = state * 1664525u + 1013904223u;
  return state >> 8;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max = data[0] < 192 ? data[0] % 32 : 1000 + data[0];
  uint32_t seed = data[1];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  const std::vector<Expected> expected = Model(stream, max);

  LineFramer framer(max);
  size_t next = 0;        // index into expected
  size_t line_start = 0;  // where the line being read began
  for (size_t at = 0; at < stream.size();) {
    // Chunks of 1..64 bytes, sometimes the whole rest.
    const uint32_t r = NextRandom(seed);
    const size_t len =
        r % 8 == 0 ? stream.size() - at : std::min<size_t>(1 + r % 64, stream.size() - at);
    const std::string_view chunk = stream.substr(at, len);
    framer.Feed(chunk);
    while (auto piece = framer.Next()) {
      SHIM_FUZZ_CHECK(next < expected.size());
      const Expected& want = expected[next++];
      SHIM_FUZZ_CHECK(piece->kind == want.kind);
      if (want.kind == Kind::kLine) {
        SHIM_FUZZ_CHECK(piece->bytes == want.line);
      } else {
        SHIM_FUZZ_CHECK(!piece->bytes.empty());
        SHIM_FUZZ_CHECK(want.line.substr(0, piece->bytes.size()) == piece->bytes);
      }
    }
    for (size_t nl = chunk.find('\n'); nl != std::string_view::npos;
         nl = chunk.find('\n', nl + 1)) {
      line_start = at + nl + 1;
    }
    at += len;
    SHIM_FUZZ_CHECK(framer.buffered_bytes() <= max);
    SHIM_FUZZ_CHECK(framer.line_open() == (at > line_start));
    SHIM_FUZZ_CHECK(framer.open_line_began_in_chunk() ==
                    (at > line_start && line_start >= at - len));
  }
  SHIM_FUZZ_CHECK(next == expected.size());
  const size_t tail = stream.size() - line_start;
  SHIM_FUZZ_CHECK(framer.buffered_bytes() == (tail <= max ? tail : 0));
  return 0;
}

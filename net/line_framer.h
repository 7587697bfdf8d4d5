// LineFramer: splits a byte stream into lines, with a maximum line length.
//
// Pure and synchronous (no I/O, no clock), so the code a Session runs is
// the code tests/fuzz/line_framer_fuzz.cc fuzzes. The owner feeds each chunk
// read from the socket and takes what it completes, one piece at a time, so
// it may pause between lines (backpressure) without copying the chunk:
//
//   framer.Feed(chunk);                       // chunk stays valid until Next() is empty
//   while (auto piece = framer.Next()) { ... }
//
// A line is the bytes before a '\n' (a '\r' before it is left to the
// caller). A line longer than max_line_bytes is reported once, as kTooLong,
// as soon as it is known to be too long, and then skipped up to and
// including its newline: at most max_line_bytes are ever buffered. The start
// of a line whose newline has not arrived is kept across chunks.
// One owner, one thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace shim::net {

class LineFramer {
 public:
  struct Piece {
    enum class Kind { kLine, kTooLong };
    Kind kind;
    // kLine: the whole line, without its '\n'. kTooLong: the start of the
    // line (at least one byte), e.g. to find the request id in it.
    // Valid until the next call of Next() or Feed().
    std::string_view bytes;
  };

  explicit LineFramer(size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  // The limit for lines completed from now on (a session raises it once the
  // client has authenticated).
  void set_max_line_bytes(size_t n) { max_line_bytes_ = n; }
  size_t max_line_bytes() const { return max_line_bytes_; }

  // Starts on the next chunk. Whatever Next() had not yet returned of the
  // previous chunk is dropped: the owner feeds once Next() is empty.
  void Feed(std::string_view chunk);
  // The next line or over-long report of the fed chunk; nullopt once the
  // chunk is used up (an unfinished line is then kept for the next chunk).
  std::optional<Piece> Next();

  // Bytes of an unfinished line are buffered, or an over-long one is being
  // skipped: the client owes us the rest of a line.
  bool line_open() const { return !partial_.empty() || discarding_; }
  // The line open now began in the chunk last fed (none was open before
  // it, or a newline of that chunk ended the one that was): when the
  // owner's partial-line clock should start.
  bool open_line_began_in_chunk() const {
    return line_open() && (!open_at_feed_ || newline_in_chunk_);
  }
  // Bytes held for the unfinished line (at most max_line_bytes).
  size_t buffered_bytes() const { return partial_.size(); }

 private:
  // Moves the unfinished line into returned_ (which keeps it valid for the
  // Piece handed out) and returns a view of it.
  std::string_view HandOut();
  // Forgets what the last Piece pointed to; a buffer a long line grew is
  // freed, so an idle connection holds no more than a short line's worth.
  void ReleaseReturned();

  size_t max_line_bytes_;
  std::string partial_;        // start of a line whose newline has not arrived
  std::string returned_;       // an assembled line or start handed out by the last Next()
  bool discarding_ = false;    // inside an over-long line, skipping to '\n'
  std::string_view rest_;      // what Next() has not yet looked at
  bool open_at_feed_ = false;  // line_open() when the chunk was fed
  bool newline_in_chunk_ = false;
};

}  // namespace shim::net

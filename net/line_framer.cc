#include "net/line_framer.h"

namespace shim::net {

namespace {
// Capacity an assembled line may leave behind for reuse; a larger buffer (a
// long line grew it) is freed once its line has been handled.
constexpr size_t kKeepCapacity = 64 * 1024;
}  // namespace

void LineFramer::Feed(std::string_view chunk) {
  ReleaseReturned();
  rest_ = chunk;
  open_at_feed_ = line_open();
  newline_in_chunk_ = false;
}

void LineFramer::ReleaseReturned() {
  if (returned_.capacity() > kKeepCapacity) {
    returned_ = std::string();
  } else {
    returned_.clear();
  }
}

std::string_view LineFramer::HandOut() {
  returned_.swap(partial_);
  partial_.clear();
  if (partial_.capacity() > kKeepCapacity) partial_ = std::string();
  return returned_;
}

std::optional<LineFramer::Piece> LineFramer::Next() {
  using Kind = Piece::Kind;
  ReleaseReturned();
  while (!rest_.empty()) {
    const size_t nl = rest_.find('\n');
    if (nl == std::string_view::npos) {
      // The line goes on past this chunk.
      std::string_view tail = rest_;
      rest_ = {};
      if (discarding_) return std::nullopt;
      if (partial_.size() + tail.size() > max_line_bytes_) {
        // Too long already: say so now rather than buffer up to its end.
        discarding_ = true;
        return Piece{Kind::kTooLong, partial_.empty() ? tail : HandOut()};
      }
      partial_.append(tail);
      return std::nullopt;
    }
    newline_in_chunk_ = true;
    std::string_view line = rest_.substr(0, nl);
    rest_.remove_prefix(nl + 1);
    if (discarding_) {
      discarding_ = false;  // the over-long line ends here
      continue;
    }
    if (partial_.size() + line.size() > max_line_bytes_) {
      return Piece{Kind::kTooLong, partial_.empty() ? line : HandOut()};
    }
    if (partial_.empty()) return Piece{Kind::kLine, line};
    partial_.append(line);
    return Piece{Kind::kLine, HandOut()};
  }
  return std::nullopt;
}

}  // namespace shim::net

#include "engine/glob.h"

#include <utility>

namespace shim::engine {

namespace {

constexpr size_t kNone = std::string_view::npos;

// The bracket expression opening at pattern[open] == '['. Returns the index
// of its closing ']', or kNone when there is none (the '[' is then a literal
// byte). Sets *in_set to whether `c` is one of the bytes it accepts.
size_t ScanBracket(std::string_view pattern, size_t open, char c, bool* in_set) {
  size_t q = open + 1;
  const bool negate = q < pattern.size() && (pattern[q] == '^' || pattern[q] == '!');
  if (negate) ++q;
  bool matched = false;
  bool first = true;
  while (q < pattern.size() && (first || pattern[q] != ']')) {
    first = false;
    char lo = pattern[q];
    if (lo == '\\' && q + 1 < pattern.size()) lo = pattern[++q];
    char hi = lo;
    if (q + 2 < pattern.size() && pattern[q + 1] == '-' && pattern[q + 2] != ']') {
      hi = pattern[q + 2];
      if (hi == '\\' && q + 3 < pattern.size()) hi = pattern[++q + 2];
      q += 2;
    }
    if (lo > hi) std::swap(lo, hi);
    if (c >= lo && c <= hi) matched = true;
    ++q;
  }
  *in_set = matched != negate;
  return q < pattern.size() ? q : kNone;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0;
  size_t star_p = kNone, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      char pc = pattern[p];
      if (pc == '*') {
        star_p = p++;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++t;
        continue;
      }
      if (pc == '[') {
        bool in_set = false;
        const size_t close = ScanBracket(pattern, p, text[t], &in_set);
        if (close != kNone && in_set) {
          p = close + 1;
          ++t;
          continue;
        }
        if (close == kNone && text[t] == '[') {  // unterminated: literal '['
          ++p;
          ++t;
          continue;
        }
      } else {
        if (pc == '\\' && p + 1 < pattern.size()) pc = pattern[++p];
        if (pc == text[t]) {
          ++p;
          ++t;
          continue;
        }
      }
    }
    if (star_p == kNone) return false;
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

GlobLiterals ReadGlobLiterals(std::string_view pattern) {
  GlobLiterals out;
  std::string run;            // the literal run being read
  bool run_is_prefix = true;  // no wildcard token before it
  auto end_run = [&] {
    if (run_is_prefix) out.prefix = run;
    if (run.size() > out.longest_run.size()) out.longest_run = run;
    run.clear();
    run_is_prefix = false;
  };
  size_t p = 0;
  while (p < pattern.size()) {
    const char pc = pattern[p];
    if (pc == '*' || pc == '?') {
      end_run();
      ++p;
      continue;
    }
    if (pc == '[') {
      bool unused;
      const size_t close = ScanBracket(pattern, p, '\0', &unused);
      if (close != kNone) {
        end_run();
        p = close + 1;
        continue;
      }
      run += '[';
      ++p;
      continue;
    }
    if (pc == '\\' && p + 1 < pattern.size()) {
      run += pattern[p + 1];
      p += 2;
      continue;
    }
    run += pc;
    ++p;
  }
  // The last run ends the pattern: it is the suffix (and, for a pattern
  // without wildcards, the prefix too).
  out.suffix = run;
  end_run();
  return out;
}

}  // namespace shim::engine

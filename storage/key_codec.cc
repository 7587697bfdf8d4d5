#include "storage/key_codec.h"

namespace shim::storage {
namespace {

constexpr uint64_t kSignBit = 0x8000000000000000ULL;

}  // namespace

void AppendU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xFF));
}

bool ReadU64(std::string_view in, uint64_t* v) {
  if (in.size() < 8) return false;
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i) r = (r << 8) | static_cast<uint8_t>(in[i]);
  *v = r;
  return true;
}

KeyEncoder& KeyEncoder::U64(uint64_t v) {
  AppendU64(&out_, v);
  return *this;
}

KeyEncoder& KeyEncoder::I64(int64_t v) { return U64(static_cast<uint64_t>(v) ^ kSignBit); }

KeyEncoder& KeyEncoder::Str(std::string_view s) {
  out_.reserve(out_.size() + s.size() + 2);
  for (char c : s) {
    out_.push_back(c);
    if (c == '\0') out_.push_back('\xFF');
  }
  out_.push_back('\0');
  out_.push_back('\x01');
  return *this;
}

bool KeyDecoder::Tag(KeyTag* tag) {
  if (in_.empty()) return false;
  *tag = static_cast<KeyTag>(static_cast<uint8_t>(in_[0]));
  in_.remove_prefix(1);
  return true;
}

bool KeyDecoder::ExpectTag(KeyTag expected) {
  KeyTag tag;
  return Tag(&tag) && tag == expected;
}

bool KeyDecoder::U64(uint64_t* v) {
  if (!ReadU64(in_, v)) return false;
  in_.remove_prefix(8);
  return true;
}

bool KeyDecoder::I64(int64_t* v) {
  uint64_t u;
  if (!U64(&u)) return false;
  *v = static_cast<int64_t>(u ^ kSignBit);
  return true;
}

bool KeyDecoder::Str(std::string* s) {
  s->clear();
  for (size_t i = 0; i < in_.size(); ++i) {
    if (in_[i] != '\0') {
      s->push_back(in_[i]);
      continue;
    }
    if (i + 1 >= in_.size()) return false;
    char next = in_[i + 1];
    if (next == '\x01') {
      in_.remove_prefix(i + 2);
      return true;
    }
    if (next != '\xFF') return false;
    s->push_back('\0');
    ++i;
  }
  return false;  // no terminator
}

std::string StrKey(KeyTag tag, std::string_view s) { return KeyEncoder(tag).Str(s).key(); }

bool DecodeStrKey(std::string_view key, KeyTag tag, std::string* s) {
  KeyDecoder d(key);
  return d.ExpectTag(tag) && d.Str(s) && d.done();
}

std::string U64Key(KeyTag tag, uint64_t v) { return KeyEncoder(tag).U64(v).key(); }

bool DecodeU64Key(std::string_view key, KeyTag tag, uint64_t* v) {
  KeyDecoder d(key);
  return d.ExpectTag(tag) && d.U64(v) && d.done();
}

std::string StrU64Key(KeyTag tag, std::string_view s, uint64_t v) {
  return KeyEncoder(tag).Str(s).U64(v).key();
}

bool DecodeStrU64Key(std::string_view key, KeyTag tag, std::string* s, uint64_t* v) {
  KeyDecoder d(key);
  return d.ExpectTag(tag) && d.Str(s) && d.U64(v) && d.done();
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(s.back());
    if (last != 0xFF) {
      ++last;
      return s;
    }
    s.pop_back();
  }
  return s;
}

}  // namespace shim::storage

// libFuzzer target: the order-preserving key codec (storage/key_codec.h).
//
// Input: byte 0 is a shape (up to four fields, two bits each: 0 u64, 1 i64,
// 2 str, 3 end), byte 1 splits the rest into two keys a and b.
// Properties checked for every input:
//   1. Decoding arbitrary bytes with any shape never crashes or reads out
//      of bounds; a getter that fails leaves the decoder unusable (no claim
//      about the rest).
//   2. Canonical: when a whole key decodes (tag, every field, nothing left),
//      re-encoding the decoded values gives back exactly the same bytes.
//   3. Order: when a and b both decode with the same shape, comparing the
//      decoded tuples (tag, then fields; strings as unsigned bytes) agrees
//      with memcmp order of the encodings.
//   4. Round trip: the raw bytes taken as values (tag, strings, integers)
//      encode and decode back to the same values.
//   5. PrefixSuccessor(p), when not empty, is greater than p and than every
//      key that starts with p.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "storage/key_codec.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using shim::storage::KeyDecoder;
using shim::storage::KeyEncoder;
using shim::storage::KeyTag;
using Field = std::variant<uint64_t, int64_t, std::string>;

std::vector<int> Shape(uint8_t b) {
  std::vector<int> shape;
  for (int i = 0; i < 4; ++i) {
    int kind = (b >> (2 * i)) & 3;
    if (kind == 3) break;
    shape.push_back(kind);
  }
  return shape;
}

struct Decoded {
  uint8_t tag = 0;
  std::vector<Field> fields;
};

// Decodes `key` with `shape`; true only if everything decoded and nothing is left.
bool Decode(std::string_view key, const std::vector<int>& shape, Decoded* out) {
  KeyDecoder d(key);
  KeyTag tag;
  if (!d.Tag(&tag)) return false;
  out->tag = static_cast<uint8_t>(tag);
  for (int kind : shape) {
    if (kind == 0) {
      uint64_t v;
      if (!d.U64(&v)) return false;
      out->fields.emplace_back(v);
    } else if (kind == 1) {
      int64_t v;
      if (!d.I64(&v)) return false;
      out->fields.emplace_back(v);
    } else {
      std::string s;
      if (!d.Str(&s)) return false;
      out->fields.emplace_back(std::move(s));
    }
  }
  return d.done();
}

std::string Encode(const Decoded& t) {
  KeyEncoder e(static_cast<KeyTag>(t.tag));
  for (const Field& f : t.fields) {
    if (auto* u = std::get_if<uint64_t>(&f))
      e.U64(*u);
    else if (auto* i = std::get_if<int64_t>(&f))
      e.I64(*i);
    else
      e.Str(std::get<std::string>(f));
  }
  return std::move(e).key();
}

// Three-way comparison of decoded tuples of one shape (strings as bytes).
int Compare(const Decoded& a, const Decoded& b) {
  if (a.tag != b.tag) return a.tag < b.tag ? -1 : 1;
  for (size_t i = 0; i < a.fields.size(); ++i) {
    const Field& x = a.fields[i];
    const Field& y = b.fields[i];
    if (auto* u = std::get_if<uint64_t>(&x)) {
      uint64_t v = std::get<uint64_t>(y);
      if (*u != v) return *u < v ? -1 : 1;
    } else if (auto* s = std::get_if<int64_t>(&x)) {
      int64_t v = std::get<int64_t>(y);
      if (*s != v) return *s < v ? -1 : 1;
    } else {
      int c = std::get<std::string>(x).compare(
          std::get<std::string>(y));  // char_traits<char>: unsigned bytes
      if (c != 0) return c < 0 ? -1 : 1;
    }
  }
  return 0;
}

int MemCompare(std::string_view a, std::string_view b) {
  int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::vector<int> shape = Shape(data[0]);
  std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
  const size_t split = rest.empty() ? 0 : data[1] % (rest.size() + 1);
  const std::string_view a = rest.substr(0, split);
  const std::string_view b = rest.substr(split);

  // 1 + 2: decode, and canonical re-encoding.
  Decoded da, db;
  const bool ok_a = Decode(a, shape, &da);
  const bool ok_b = Decode(b, shape, &db);
  if (ok_a) SHIM_FUZZ_CHECK(Encode(da) == a);
  if (ok_b) SHIM_FUZZ_CHECK(Encode(db) == b);
  // 3: order.
  if (ok_a && ok_b) SHIM_FUZZ_CHECK(Compare(da, db) == MemCompare(a, b));

  // 4: the bytes as values: tag a[0], strings a and b, integers from b.
  {
    Decoded t;
    t.tag = a.empty() ? 0x10 : static_cast<uint8_t>(a[0]);
    uint64_t u = 0;
    std::memcpy(&u, b.data(), std::min<size_t>(8, b.size()));
    for (int kind : shape) {
      if (kind == 0)
        t.fields.emplace_back(u);
      else if (kind == 1)
        t.fields.emplace_back(static_cast<int64_t>(u));
      else
        t.fields.emplace_back(std::string(kind == 2 && t.fields.size() % 2 ? b : a));
    }
    const std::string key = Encode(t);
    Decoded back;
    SHIM_FUZZ_CHECK(Decode(key, shape, &back));
    SHIM_FUZZ_CHECK(back.tag == t.tag && back.fields == t.fields);
    // Order again, now for a well-formed pair: swap the strings.
    Decoded t2 = t;
    for (Field& f : t2.fields) {
      if (auto* s = std::get_if<std::string>(&f))
        *s = (*s == std::string(a)) ? std::string(b) : std::string(a);
    }
    SHIM_FUZZ_CHECK(Compare(t, t2) == MemCompare(key, Encode(t2)));
  }

  // 5: PrefixSuccessor.
  const std::string succ = shim::storage::PrefixSuccessor(a);
  if (!succ.empty()) {
    SHIM_FUZZ_CHECK(MemCompare(succ, a) > 0);
    std::string longer(a);
    longer.append(b);
    SHIM_FUZZ_CHECK(MemCompare(succ, longer) > 0);
  } else {
    for (char c : a) SHIM_FUZZ_CHECK(static_cast<unsigned char>(c) == 0xFF);
  }
  return 0;
}

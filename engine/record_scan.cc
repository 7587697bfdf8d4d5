#include "engine/record_scan.h"

#include "storage/failpoint.h"

namespace shim::engine {

namespace {
// Enough to tell keys apart in a message; a corrupt key may be any length.
constexpr size_t kMaxShownKeyBytes = 256;
}  // namespace

std::string PrintableBytes(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string_view shown = bytes.substr(0, kMaxShownKeyBytes);
  std::string out = "\"";
  for (unsigned char c : shown) {
    if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  out += '"';
  if (shown.size() < bytes.size()) out += "... (" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

Status CorruptRecord(const RecordKind& kind, std::string_view key) {
  const char* family = storage::FamilyName(kind.family);
  std::string shown = PrintableBytes(key);
  std::string message = std::string("corrupt ") + kind.name + " record in column family '" +
                        family + "' at key " + shown;
  return Status(StatusCode::kInternal, std::move(message),
                {{"family", family}, {"key", std::move(shown)}});
}

Status ScanRecords(const storage::Store& store, const RecordKind& kind,
                   const RecordDecoder& decode) {
  const std::string prefix(1, static_cast<char>(kind.tag));
  Status bad;
  Status s = store.Scan(kind.family, prefix, storage::PrefixSuccessor(prefix),
                        [&](std::string_view key, std::string_view value) {
                          if (!kind.failpoint.empty()) SHIM_FAILPOINT(kind.failpoint);
                          if (decode(key, value)) return true;
                          bad = CorruptRecord(kind, key);
                          return false;
                        });
  SHIM_RETURN_IF_ERROR(s);
  return bad;
}

}  // namespace shim::engine

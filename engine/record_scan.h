// The one recovery scan. Every module's Recover() reads its stored records
// through ScanRecords, so a record that does not decode fails the open the
// same way everywhere: INTERNAL, naming the record kind, its column family
// and its key. Each kind's key and Encode/Decode pair live beside each other
// in engine/<kind>_record.h (tasks: engine/tasks/task.h); a RecordKind constant
// there says where recovery finds the kind.
//
// Pure functions over a Store; any thread (StateModule::Load runs its scan
// on a second thread while the other modules recover).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "storage/key_codec.h"
#include "storage/store.h"

namespace shim::engine {

// Where one kind of stored record lives: every key starting with `tag` in
// `family`.
struct RecordKind {
  const char* name;  // in messages: "lease" gives "corrupt lease record ..."
  storage::Family family;
  storage::KeyTag tag;
  // Hit once per record read (storage/failpoint.h, docs/failpoints.md);
  // empty for a kind without one.
  std::string_view failpoint;
};

// Decodes one stored record into the caller's indexes; false when its key
// or value does not decode (the record is corrupt).
using RecordDecoder = std::function<bool(std::string_view key, std::string_view value)>;

// Calls `decode` for every record of `kind`, in key order. Errors: what the
// store's scan returns; CorruptRecord for the first record `decode` refuses
// (the scan stops there, and the caller's indexes hold what came before it).
Status ScanRecords(const storage::Store& store, const RecordKind& kind,
                   const RecordDecoder& decode);

// ScanRecords for a kind whose keys decode into a Key with `decode_key`
// (DecodeXKey) and whose values decode into a Value with `decode_value`
// (DecodeXRecord; Value may be the module's in-memory form, derived from
// the record struct): hands each pair to `keep(Key, Value)`. A key or a
// value that does not decode fails the scan as ScanRecords says.
template <class Key, class Value, class DecodeKey, class DecodeValue, class Keep>
Status ScanDecodedRecords(const storage::Store& store, const RecordKind& kind, DecodeKey decode_key,
                          DecodeValue decode_value, Keep keep) {
  return ScanRecords(store, kind, [&](std::string_view k, std::string_view v) {
    Key key;
    Value value;
    if (!decode_key(k, &key) || !decode_value(v, &value)) return false;
    keep(std::move(key), std::move(value));
    return true;
  });
}

// INTERNAL "corrupt <kind> record in column family '<family>' at key <key>",
// the key printable (PrintableBytes), with data {family, key}. For readers
// of a single record (the revision) to fail as a scan does.
Status CorruptRecord(const RecordKind& kind, std::string_view key);

// `bytes` quoted, with printable ASCII as it is and every other byte, '"'
// and '\\' as \xNN, so a binary key can go into a message and a log line.
// Past 256 bytes the rest is left out and the length is said instead.
std::string PrintableBytes(std::string_view bytes);

}  // namespace shim::engine

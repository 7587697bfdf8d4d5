// A record kind's four functions (its key, its key decoder and its
// Encode/Decode pair) built from what is particular to the kind: the tag
// its key starts with and its member table (engine/record_fields.h). So
// engine/<kind>_record.h states only those, and names the functions the
// modules and the tests call:
//
//   inline constexpr IdKey<std::string> WorkerKey{kWorkerRecords.tag};
//   inline constexpr IdKeyDecoder<std::string> DecodeWorkerKey{kWorkerRecords.tag};
//   inline constexpr JsonRecordEncoder EncodeWorkerRecord{kWorkerMembers};
//   inline constexpr JsonRecordDecoder DecodeWorkerRecord{kWorkerMembers};
//
// They are constant objects rather than functions so that no kind repeats
// the four one-line bodies; they are called like the functions they stand
// for and passed to ScanDecodedRecords as they are. A kind whose key or
// decoding is its own (checkpoint metas, channel heads) writes that one as
// a function beside them.
//
// Pure, any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "engine/record_fields.h"
#include "storage/key_codec.h"

namespace shim::engine {

namespace record_codec_detail {

inline std::string Key(storage::KeyTag tag, std::string_view id) {
  return storage::StrKey(tag, id);
}
inline std::string Key(storage::KeyTag tag, uint64_t id) { return storage::U64Key(tag, id); }

inline bool DecodeKey(std::string_view key, storage::KeyTag tag, std::string* id) {
  return storage::DecodeStrKey(key, tag, id);
}
inline bool DecodeKey(std::string_view key, storage::KeyTag tag, uint64_t* id) {
  return storage::DecodeU64Key(key, tag, id);
}

}  // namespace record_codec_detail

// The key of a kind keyed by one id after its tag: `Id` is std::string
// (escaped, storage::StrKey) or uint64_t (big-endian, storage::U64Key).
template <class Id>
struct IdKey {
  using Arg = std::conditional_t<std::is_same_v<Id, std::string>, std::string_view, Id>;
  storage::KeyTag tag;

  std::string operator()(Arg id) const { return record_codec_detail::Key(tag, id); }
};

// Its decoder: false for a key of another tag, or one that is not exactly
// an id.
template <class Id>
struct IdKeyDecoder {
  storage::KeyTag tag;

  bool operator()(std::string_view key, Id* id) const {
    return record_codec_detail::DecodeKey(key, tag, id);
  }
};

// Encode: the record as compact JSON, its members as the table names them
// (EncodeJsonRecord).
template <class... Fields>
struct JsonRecordEncoder {
  using Record = typename std::tuple_element_t<0, std::tuple<Fields...>>::Record;
  std::tuple<Fields...> members;

  std::string operator()(const Record& r) const { return EncodeJsonRecord(r, members); }
  // The record as the JSON object it is stored as (queue.configure answers
  // with it).
  nlohmann::json Object(const Record& r) const { return JsonRecordObject(r, members); }
};
template <class... Fields>
JsonRecordEncoder(std::tuple<Fields...>) -> JsonRecordEncoder<Fields...>;

// Decode: false when the value is not a JSON object, a member has another
// type or an enum member a name the enum does not have; members absent from
// the value keep their value in *r, the record's defaults (DecodeJsonRecord).
template <class... Fields>
struct JsonRecordDecoder {
  using Record = typename std::tuple_element_t<0, std::tuple<Fields...>>::Record;
  std::tuple<Fields...> members;

  bool operator()(std::string_view value, Record* r) const {
    return DecodeJsonRecord(value, r, members);
  }
};
template <class... Fields>
JsonRecordDecoder(std::tuple<Fields...>) -> JsonRecordDecoder<Fields...>;

}  // namespace shim::engine

// Stored JSON records (leases, locks, channels, workers, queues, sessions,
// checkpoint metas, signals): reading their members strictly, and each
// kind's members listed once, in one table that both its Encode and its
// Decode walk, so the two cannot drift apart.
//
// Reading: a member that is absent keeps the value its destination already
// holds (the record's default); a member of another type, or text that is
// not a JSON object, makes the record corrupt: ok() turns false and stays
// false. Never throws (nlohmann's value() throws on a member of another
// type, which recovery must not do), and never reads a float or a negative
// number as a count.
//
// Writing: members in name order, as nlohmann's object writes them, in
// shim's one JSON spelling (DumpCompact).
//
// Usage:  const auto kMembers = std::tuple{Field("owner", &LeaseRecord::owner),
//                                          Field("ttl_ms", &LeaseRecord::ttl_ms)};
//         EncodeJsonRecord(r, kMembers);  DecodeJsonRecord(text, &r, kMembers);
// Plain values and pure functions, any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "base/json_text.h"

namespace shim::engine {

class RecordFields {
 public:
  explicit RecordFields(std::string_view text);

  bool ok() const { return ok_; }
  // Marks the record corrupt (a member holding a value its reader refuses).
  void Refuse() { ok_ = false; }
  // The parsed record, for a reader that keeps it whole (signal history).
  nlohmann::json& doc() { return doc_; }

  // Reads member `name` into *out. T is one of std::string, int64_t,
  // uint64_t, bool, std::vector<std::string> (an array of strings) and
  // nlohmann::json (any value, moved out of the record).
  template <class T>
  RecordFields& Get(const char* name, T* out);

 private:
  // The member `name`, or nullptr when absent (or when already not ok).
  nlohmann::json* Find(const char* name);

  nlohmann::json doc_;
  bool ok_;
};

// One member of a record table: stored under `name`, held in `member`.
template <class R, class T>
struct Field {
  using Record = R;
  const char* name;
  T R::*member;
};

// A member held in a struct inside the record (ChannelMetaRecord::retention).
template <class R, class S, class T>
struct NestedField {
  using Record = R;
  const char* name;
  S R::*outer;
  T S::*member;
};

// An enum member, stored as one of its names; a name `parse` does not know
// makes the record corrupt.
template <class R, class E>
struct NamedField {
  using Record = R;
  const char* name;
  E R::*member;
  const char* (*to_name)(E);
  std::optional<E> (*parse)(std::string_view);
};

namespace record_fields_detail {

template <class R, class T>
void Put(nlohmann::json& j, const R& r, const Field<R, T>& f) {
  j[f.name] = r.*f.member;
}
template <class R, class S, class T>
void Put(nlohmann::json& j, const R& r, const NestedField<R, S, T>& f) {
  j[f.name] = r.*f.outer.*f.member;
}
template <class R, class E>
void Put(nlohmann::json& j, const R& r, const NamedField<R, E>& f) {
  j[f.name] = f.to_name(r.*f.member);
}

template <class R, class T>
void Read(RecordFields& in, R& r, const Field<R, T>& f) {
  in.Get(f.name, &(r.*f.member));
}
template <class R, class S, class T>
void Read(RecordFields& in, R& r, const NestedField<R, S, T>& f) {
  in.Get(f.name, &(r.*f.outer.*f.member));
}
template <class R, class E>
void Read(RecordFields& in, R& r, const NamedField<R, E>& f) {
  std::string name = f.to_name(r.*f.member);
  if (!in.Get(f.name, &name).ok()) return;
  if (std::optional<E> e = f.parse(name)) {
    r.*f.member = *e;
  } else {
    in.Refuse();
  }
}

}  // namespace record_fields_detail

// The record as the JSON object it is stored as (queue.configure also
// answers with it).
template <class R, class... Fields>
nlohmann::json JsonRecordObject(const R& r, const std::tuple<Fields...>& fields) {
  nlohmann::json j = nlohmann::json::object();
  std::apply([&](const auto&... f) { (record_fields_detail::Put(j, r, f), ...); }, fields);
  return j;
}

template <class R, class... Fields>
std::string EncodeJsonRecord(const R& r, const std::tuple<Fields...>& fields) {
  return DumpCompact(JsonRecordObject(r, fields));
}

// Members absent from `text` keep their value in *r. False when the record
// is corrupt (see above); *r may then hold some of its members.
template <class R, class... Fields>
bool DecodeJsonRecord(std::string_view text, R* r, const std::tuple<Fields...>& fields) {
  RecordFields in(text);
  std::apply([&](const auto&... f) { (record_fields_detail::Read(in, *r, f), ...); }, fields);
  return in.ok();
}

}  // namespace shim::engine

#if defined(__clang__) && __clang_major__ < 17
// Clang before 17 cannot deduce the template arguments of an aggregate from
// its initialisers (C++20, P1816), as GCC does for the record tables; the
// fuzz build is clang 14 (docs/fault-testing.md, "Fuzzing"). Kept apart at
// the end: GCC needs none of it.
namespace shim::engine {
template <class R, class T>
Field(const char*, T R::*) -> Field<R, T>;
template <class R, class S, class T>
NestedField(const char*, S R::*, T S::*) -> NestedField<R, S, T>;
template <class R, class E>
NamedField(const char*, E R::*, const char* (*)(E), std::optional<E> (*)(std::string_view))
    -> NamedField<R, E>;
}  // namespace shim::engine
#endif

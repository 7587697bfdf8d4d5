// A closed enum's names (as stored and on the wire) in one table that both
// its Name and its Parse walk, so the two cannot drift apart: Durability
// (storage/store.h), Routing (engine/tasks/task_queue.h), SessionState
// (engine/sessions/session_record.h).
//
// Usage:  constexpr EnumNames<Routing, 2> kRoutingNames{{{Routing::kA, "a"},
//                                                        {Routing::kB, "b"}}};
//         kRoutingNames.Name(Routing::kA);  kRoutingNames.Parse("b");
// A table must list every value of its enum (no compiler switch warning
// covers it); the tests that round-trip each value do.
// Plain constexpr values, any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>

namespace shim {

template <class E, size_t N>
struct EnumNames {
  std::pair<E, const char*> entries[N];

  // The name of `e`; "?" for a value the table does not list.
  constexpr const char* Name(E e) const {
    for (const auto& [value, name] : entries) {
      if (value == e) return name;
    }
    return "?";
  }

  // The value named `s`; nullopt for a name the table does not list.
  constexpr std::optional<E> Parse(std::string_view s) const {
    for (const auto& [value, name] : entries) {
      if (s == name) return value;
    }
    return std::nullopt;
  }
};

}  // namespace shim

// FakeClient: a connection as the engine sees it (engine/client.h), for the
// engine tests and bench/engine_bench.cc. It records the notifications it
// accepts, in order, or only counts them (set_keep_notes(false): in a
// benchmark keeping them would be most of what is measured). It can refuse
// unforced notifications, like a session whose outbound buffer is full, and
// be marked closed. Engine thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/client.h"

namespace shim::testing {

class FakeClient final : public engine::Client {
 public:
  struct Note {
    std::string method;
    nlohmann::json params;
    bool forced;
  };

  explicit FakeClient(uint64_t id) : id_(id) {}
  uint64_t id() const override { return id_; }
  bool Notify(std::string_view method, const nlohmann::json& params, bool force) override;
  // Keeps the text as the engine encoded it, then goes on as Notify.
  bool NotifyEncoded(std::string_view method, std::string_view params_json, bool force) override;
  bool closed() const override { return closed_; }
  size_t outbound_limit() const override { return outbound_limit_; }

  void set_closed(bool closed = true) { closed_ = closed; }
  void set_outbound_limit(size_t bytes) { outbound_limit_ = bytes; }
  // Refuses every unforced notification while set.
  void set_refuse(bool refuse) { refuse_ = refuse; }
  // Accepts `n` more unforced notifications, then refuses. nullopt: no limit.
  void set_budget(std::optional<size_t> n) { budget_ = n; }
  void set_keep_notes(bool keep) { keep_notes_ = keep; }

  // Notifications accepted, and refused, so far.
  int notifications() const { return notifications_; }
  int refused() const { return refused_; }
  // What was accepted, in arrival order, with the markers of Mark.
  const std::vector<Note>& notes() const { return notes_; }
  void clear() { notes_.clear(); }
  // Records a marker among the notes (e.g. "the reply arrived here").
  void Mark(std::string label) { notes_.push_back({std::move(label), nullptr, false}); }
  // Params texts passed to NotifyEncoded, in arrival order (refused ones too).
  const std::vector<std::string>& encoded() const { return encoded_; }
  // The params of the notes with this method, in arrival order.
  std::vector<nlohmann::json> Of(std::string_view method) const;
  // Seqs of the pubsub.message notes (optionally of one channel).
  std::vector<uint64_t> Seqs(std::string_view channel = {}) const;

 private:
  uint64_t id_;
  bool closed_ = false;
  size_t outbound_limit_ = std::numeric_limits<size_t>::max();
  bool refuse_ = false;
  std::optional<size_t> budget_;
  bool keep_notes_ = true;
  int notifications_ = 0;
  int refused_ = 0;
  std::vector<Note> notes_;
  std::vector<std::string> encoded_;
};

}  // namespace shim::testing

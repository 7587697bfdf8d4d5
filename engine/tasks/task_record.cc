// Task records: the compact binary form written since record version 1, and
// the dispatch that still reads the JSON records of earlier versions.
//
// Why binary: recovery decodes every task record at open. A JSON DOM per
// record cost several microseconds and a dozen allocations per task; this
// form decodes in well under a microsecond and allocates only for the rare
// fields a task actually has.
//
// Keys: TaskKey / TaskPayloadKey (engine/tasks/task.h).
//
// Grammar (integers are LEB128 varints; "z" = zigzag-encoded signed; str =
// varint length + bytes; json = str holding compact JSON text):
//   record   := 0x01 state:u8 priority:u8 original_priority:u8
//               max_attempts attempt z:created_at_ms z:run_at_ms
//               z:ready_at_ms z:finished_at_ms z:timeout_ms ready_order
//               queue:str extras:varint (bitmask) extra*
//   extra    := in bit order, one per set bit (see Bit below)
// A JSON record always starts with '{', so the first byte tells them apart.
// New optional fields take new bits; a reader that meets a bit it does not
// know refuses the record rather than misread it.
#include <algorithm>
#include <string>
#include <string_view>

#include "base/json_text.h"
#include "engine/json_parse.h"
#include "engine/tasks/task.h"
#include "storage/key_codec.h"

namespace shim::engine {

using nlohmann::json;

namespace {

constexpr uint8_t kVersion1 = 0x01;

enum Bit : uint32_t {
  kBackoff = 1u << 0,
  kDeadline = 1u << 1,
  kDependsOn = 1u << 2,
  kIgnoreDepFailure = 1u << 3,
  kRequires = 1u << 4,
  kParent = 1u << 5,
  kAggregate = 1u << 6,
  kChildren = 1u << 7,
  kIdempotencyKey = 1u << 8,
  kRef = 1u << 9,
  kTags = 1u << 10,
  kAttempts = 1u << 11,
  kResult = 1u << 12,
  kError = 1u << 13,
  kProgress = 1u << 14,
  kProgressMessage = 1u << 15,
  kWorkerId = 1u << 16,
  kLeaseToken = 1u << 17,
  kKnownBits = (1u << 18) - 1,
};

class Writer {
 public:
  explicit Writer(std::string* out) : out_(*out) {}
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U64(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void I64(int64_t v) { U64((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void Str(std::string_view s) {
    U64(s.size());
    out_.append(s);
  }
  void Json(const json& j) { Str(DumpCompact(j)); }
  void U64s(const std::vector<uint64_t>& v) {
    U64(v.size());
    for (uint64_t x : v) U64(x);
  }

 private:
  std::string& out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}
  bool ok() const { return ok_; }
  bool at_end() const { return p_ == end_; }
  uint8_t U8() {
    if (p_ == end_) return Fail(), 0;
    return static_cast<uint8_t>(*p_++);
  }
  uint64_t U64() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return Fail(), 0;
      const auto b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return Fail(), 0;
  }
  int64_t I64() {
    const uint64_t u = U64();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  std::string_view Str() {
    const uint64_t n = U64();
    if (!ok_ || n > static_cast<uint64_t>(end_ - p_)) return Fail(), std::string_view();
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }
  json Json() {
    json j = ParseStoredJson(Str());
    if (j.is_discarded()) Fail();
    return j;
  }
  std::vector<uint64_t> U64s() {
    const uint64_t n = U64();
    std::vector<uint64_t> v;
    // Each entry takes at least one byte: a bad count cannot make us allocate much.
    if (!ok_ || n > static_cast<uint64_t>(end_ - p_)) return Fail(), v;
    v.reserve(n);
    for (uint64_t i = 0; i < n && ok_; ++i) v.push_back(U64());
    return v;
  }
  size_t Count() {
    const uint64_t n = U64();
    if (!ok_ || n > static_cast<uint64_t>(end_ - p_)) return Fail(), 0;
    return n;
  }

 private:
  void Fail() { ok_ = false; }
  const char* p_;
  const char* end_;
  bool ok_ = true;
};

bool IsDefault(const Backoff& b) {
  const Backoff d;
  return b.type == d.type && b.delay_ms == d.delay_ms && b.max_delay_ms == d.max_delay_ms &&
         b.jitter == d.jitter;
}

uint32_t ExtrasOf(const TaskExtra& e) {
  uint32_t bits = 0;
  if (!IsDefault(e.backoff)) bits |= kBackoff;
  if (e.deadline_at_ms) bits |= kDeadline;
  if (!e.depends_on.empty()) bits |= kDependsOn;
  if (e.ignore_dependency_failure) bits |= kIgnoreDepFailure;
  if (!e.requires_caps.empty()) bits |= kRequires;
  if (e.parent) bits |= kParent;
  if (e.aggregate != Aggregate::kNone) bits |= kAggregate;
  // Children are not written: recovery rebuilds every parent's list from
  // its children's `parent` (TaskModule::Recover), so adding a child never
  // rewrites a parent record that grows with each child. Records of earlier
  // versions may still carry the list; Decode reads and recovery replaces it.
  if (!e.idempotency_key.empty()) bits |= kIdempotencyKey;
  if (!e.ref.empty()) bits |= kRef;
  if (!e.tags.is_null()) bits |= kTags;
  if (!e.attempts.empty()) bits |= kAttempts;
  if (!e.result.is_null()) bits |= kResult;
  if (!e.error.empty()) bits |= kError;
  if (!e.progress.is_null()) bits |= kProgress;
  if (!e.progress_message.empty()) bits |= kProgressMessage;
  if (!e.worker_id.empty()) bits |= kWorkerId;
  if (e.lease_token) bits |= kLeaseToken;
  return bits;
}

}  // namespace

std::string TaskKey(uint64_t seq) { return storage::U64Key(storage::KeyTag::kTask, seq); }
std::string TaskPayloadKey(uint64_t seq) {
  return storage::U64Key(storage::KeyTag::kTaskPayload, seq);
}
bool DecodeTaskKey(std::string_view key, uint64_t* seq) {
  return storage::DecodeU64Key(key, storage::KeyTag::kTask, seq);
}

std::string Task::EncodeRecord() const {
  std::string out;
  out.reserve(48 + queue().size());
  Writer w(&out);
  w.U8(kVersion1);
  w.U8(static_cast<uint8_t>(state));
  w.U8(priority);
  w.U8(original_priority);
  w.U64(static_cast<uint64_t>(max_attempts));
  w.U64(static_cast<uint64_t>(attempt));
  w.I64(created_at_ms);
  w.I64(run_at_ms);
  w.I64(ready_at_ms);
  w.I64(finished_at_ms);
  w.I64(timeout_ms);
  w.U64(ready_order);
  w.Str(queue());
  const TaskExtra& e = ext();
  const uint32_t bits = has_extra() ? ExtrasOf(e) : 0;
  w.U64(bits);
  if (bits & kBackoff) {
    w.U8(e.backoff.type == Backoff::Type::kExponential ? 1 : 0);
    w.I64(e.backoff.delay_ms);
    w.I64(e.backoff.max_delay_ms);
    w.U8(e.backoff.jitter ? 1 : 0);
  }
  if (bits & kDeadline) {
    w.I64(e.deadline_at_ms);
    w.I64(e.escalate_before_ms);
    w.U8(static_cast<uint8_t>((e.escalated ? 1 : 0) | (e.deadline_missed ? 2 : 0)));
  }
  if (bits & kDependsOn) w.U64s(e.depends_on);
  if (bits & kRequires) {
    w.U64(e.requires_caps.size());
    for (const auto& c : e.requires_caps) w.Str(c);
  }
  if (bits & kParent) w.U64(e.parent);
  if (bits & kAggregate) w.U8(static_cast<uint8_t>(e.aggregate));
  if (bits & kIdempotencyKey) w.Str(e.idempotency_key);
  if (bits & kRef) w.Str(e.ref);
  if (bits & kTags) w.Json(e.tags);
  if (bits & kAttempts) {
    w.U64(e.attempts.size());
    for (const auto& a : e.attempts) {
      w.Str(a.worker_id);
      w.I64(a.started_at_ms);
      w.I64(a.ended_at_ms);
      w.Str(a.error);
    }
  }
  if (bits & kResult) w.Json(e.result);
  if (bits & kError) w.Str(e.error);
  if (bits & kProgress) w.Json(e.progress);
  if (bits & kProgressMessage) w.Str(e.progress_message);
  if (bits & kWorkerId) w.Str(e.worker_id);
  if (bits & kLeaseToken) w.U64(e.lease_token);
  return out;
}

bool Task::DecodeRecord(uint64_t seq, std::string_view record, Task* t) {
  if (record.empty()) return false;
  if (record[0] == '{') return FromJsonRecord(seq, ParseStoredJson(record), t);
  if (static_cast<uint8_t>(record[0]) != kVersion1) return false;
  Reader r(record.substr(1));
  const uint8_t state = r.U8();
  const uint8_t priority = r.U8();
  const uint8_t original_priority = r.U8();
  if (state >= kTaskStateCount || priority < 1 || priority > 10 || original_priority < 1 ||
      original_priority > 10) {
    return false;
  }
  t->seq = seq;
  t->state = static_cast<TaskState>(state);
  t->priority = priority;
  t->original_priority = original_priority;
  t->max_attempts = static_cast<int16_t>(std::min<uint64_t>(r.U64(), kMaxTaskAttempts));
  t->attempt = static_cast<int16_t>(std::min<uint64_t>(r.U64(), kMaxTaskAttempts));
  t->created_at_ms = r.I64();
  t->run_at_ms = r.I64();
  t->ready_at_ms = r.I64();
  t->finished_at_ms = r.I64();
  t->timeout_ms = r.I64();
  t->ready_order = r.U64();
  t->set_queue(r.Str());
  const uint64_t bits = r.U64();
  if (!r.ok() || (bits & ~uint64_t{kKnownBits})) return false;
  if (bits == 0) return r.at_end();
  TaskExtra& e = t->x();
  if (bits & kBackoff) {
    e.backoff.type = r.U8() ? Backoff::Type::kExponential : Backoff::Type::kFixed;
    e.backoff.delay_ms = r.I64();
    e.backoff.max_delay_ms = r.I64();
    e.backoff.jitter = r.U8() != 0;
  }
  if (bits & kDeadline) {
    e.deadline_at_ms = r.I64();
    e.escalate_before_ms = r.I64();
    const uint8_t flags = r.U8();
    e.escalated = flags & 1;
    e.deadline_missed = flags & 2;
  }
  if (bits & kDependsOn) e.depends_on = r.U64s();
  e.ignore_dependency_failure = bits & kIgnoreDepFailure;
  if (bits & kRequires) {
    for (size_t n = r.Count(); n > 0 && r.ok(); --n) e.requires_caps.emplace_back(r.Str());
  }
  if (bits & kParent) e.parent = r.U64();
  if (bits & kAggregate) {
    const uint8_t a = r.U8();
    if (a > static_cast<uint8_t>(Aggregate::kLast)) return false;
    e.aggregate = static_cast<Aggregate>(a);
  }
  if (bits & kChildren) e.children = r.U64s();
  if (bits & kIdempotencyKey) e.idempotency_key = r.Str();
  if (bits & kRef) e.ref = r.Str();
  if (bits & kTags) e.tags = r.Json();
  if (bits & kAttempts) {
    for (size_t n = r.Count(); n > 0 && r.ok(); --n) {
      Attempt a;
      a.worker_id = r.Str();
      a.started_at_ms = r.I64();
      a.ended_at_ms = r.I64();
      a.error = r.Str();
      e.attempts.push_back(std::move(a));
    }
  }
  if (bits & kResult) e.result = r.Json();
  if (bits & kError) e.error = r.Str();
  if (bits & kProgress) e.progress = r.Json();
  if (bits & kProgressMessage) e.progress_message = r.Str();
  if (bits & kWorkerId) e.worker_id = r.Str();
  if (bits & kLeaseToken) e.lease_token = r.U64();
  return r.ok() && r.at_end();
}

}  // namespace shim::engine

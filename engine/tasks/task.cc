#include "engine/tasks/task.h"

#include <algorithm>
#include <charconv>
#include <mutex>
#include <unordered_set>

namespace shim::engine {

using nlohmann::json;

namespace {
constexpr const char* kStateNames[kTaskStateCount] = {"waiting",   "delayed", "ready",    "running",
                                                      "completed", "failed",  "cancelled"};
constexpr const char* kAggregateNames[] = {"none", "concatenate", "merge", "first", "last"};
}  // namespace

const char* TaskStateName(TaskState s) { return kStateNames[static_cast<int>(s)]; }

std::optional<TaskState> ParseTaskState(std::string_view s) {
  for (int i = 0; i < kTaskStateCount; ++i) {
    if (s == kStateNames[i]) return static_cast<TaskState>(i);
  }
  return std::nullopt;
}

const char* AggregateName(Aggregate a) { return kAggregateNames[static_cast<int>(a)]; }

const TaskExtra Task::kNoExtra;
const std::string Task::kNoQueue;

const std::string* InternQueueName(std::string_view name) {
  // Process-wide so a Task needs no pointer back to its module; the lock is
  // for engines on different threads in one process (tests), never contended
  // in the server. unordered_set nodes never move, so the pointers stay valid.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Tasks of one queue come in runs (a batch submit, a recovery scan): a
  // one-entry cache per thread skips the lock and the hash for them.
  thread_local const std::string* last = nullptr;
  if (last && *last == name) return last;
  static std::mutex mu;
  // Never freed: it must outlive every Task, including those of statics.
  static auto* names = new std::unordered_set<std::string, Hash, std::equal_to<>>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = names->find(name);
  if (it == names->end()) it = names->emplace(name).first;
  last = &*it;
  return last;
}

std::string TaskId(uint64_t seq) { return "t" + std::to_string(seq); }

std::optional<uint64_t> ParseTaskId(std::string_view id) {
  if (id.size() < 2 || id[0] != 't') return std::nullopt;
  uint64_t seq = 0;
  auto [end, ec] = std::from_chars(id.data() + 1, id.data() + id.size(), seq);
  if (ec != std::errc() || end != id.data() + id.size() || seq == 0) return std::nullopt;
  return seq;
}

json Task::ToJsonRecord() const {
  const TaskExtra& e = ext();
  json attempts_json = json::array();
  for (const auto& a : e.attempts) {
    json aj = {{"worker_id", a.worker_id},
               {"started_at_ms", a.started_at_ms},
               {"ended_at_ms", a.ended_at_ms}};
    if (!a.error.empty()) aj["error"] = a.error;
    attempts_json.push_back(std::move(aj));
  }
  json r = {{"queue", queue()},
            {"priority", priority},
            {"original_priority", original_priority},
            {"state", TaskStateName(state)},
            {"created_at_ms", created_at_ms},
            {"run_at_ms", run_at_ms},
            {"ready_at_ms", ready_at_ms},
            {"ready_order", ready_order},
            {"finished_at_ms", finished_at_ms},
            {"max_attempts", max_attempts},
            {"backoff", e.backoff.ToJson()},
            {"timeout_ms", timeout_ms},
            {"attempt", attempt},
            {"attempts", std::move(attempts_json)}};
  // Rare fields only when set, to keep the common record small.
  if (e.deadline_at_ms) {
    r["deadline_at_ms"] = e.deadline_at_ms;
    r["escalate_before_ms"] = e.escalate_before_ms;
    r["escalated"] = e.escalated;
    r["deadline_missed"] = e.deadline_missed;
  }
  if (!e.depends_on.empty()) r["depends_on"] = e.depends_on;
  if (e.ignore_dependency_failure) r["ignore_dependency_failure"] = true;
  if (!e.requires_caps.empty()) r["requires"] = e.requires_caps;
  if (e.parent) r["parent"] = e.parent;
  if (e.aggregate != Aggregate::kNone) r["aggregate"] = static_cast<int>(e.aggregate);
  if (!e.children.empty()) r["children"] = e.children;
  if (!e.idempotency_key.empty()) r["idempotency_key"] = e.idempotency_key;
  if (!e.ref.empty()) r["ref"] = e.ref;
  if (!e.tags.is_null()) r["tags"] = e.tags;
  if (!e.result.is_null()) r["result"] = e.result;
  if (!e.error.empty()) r["error"] = e.error;
  if (!e.progress.is_null()) r["progress"] = e.progress;
  if (!e.progress_message.empty()) r["progress_message"] = e.progress_message;
  if (!e.worker_id.empty()) r["worker_id"] = e.worker_id;
  if (e.lease_token) r["lease_token"] = e.lease_token;
  return r;
}

bool Task::FromJsonRecord(uint64_t seq, const json& r, Task* t) {
  if (!r.is_object()) return false;
  auto state_name = ParseTaskState(r.value("state", ""));
  if (!state_name) return false;
  t->seq = seq;
  t->set_queue(r.value("queue", ""));
  t->priority = static_cast<uint8_t>(std::clamp(r.value("priority", 5), 1, 10));
  t->original_priority =
      static_cast<uint8_t>(std::clamp(r.value("original_priority", int{t->priority}), 1, 10));
  t->state = *state_name;
  t->created_at_ms = r.value("created_at_ms", int64_t{0});
  t->run_at_ms = r.value("run_at_ms", int64_t{0});
  t->ready_at_ms = r.value("ready_at_ms", int64_t{0});
  t->ready_order = r.value("ready_order", uint64_t{0});
  t->finished_at_ms = r.value("finished_at_ms", int64_t{0});
  t->max_attempts =
      static_cast<int16_t>(std::clamp<int>(r.value("max_attempts", 3), 1, kMaxTaskAttempts));
  t->timeout_ms = r.value("timeout_ms", int64_t{60'000});
  t->attempt = static_cast<int16_t>(std::clamp<int>(r.value("attempt", 0), 0, kMaxTaskAttempts));
  // Only what is set goes into the extra part, so an old record of a plain
  // task costs no more memory than a new one.
  const json backoff = r.value("backoff", json(nullptr));
  auto b = Backoff::FromJson(&backoff);
  if (b.ok()) {
    const Backoff dflt;
    const Backoff& v = b.value();
    if (v.type != dflt.type || v.delay_ms != dflt.delay_ms || v.max_delay_ms != dflt.max_delay_ms ||
        v.jitter != dflt.jitter) {
      t->x().backoff = v;
    }
  }
  if (r.contains("deadline_at_ms")) {
    TaskExtra& e = t->x();
    e.deadline_at_ms = r.value("deadline_at_ms", int64_t{0});
    e.escalate_before_ms = r.value("escalate_before_ms", int64_t{0});
    e.escalated = r.value("escalated", false);
    e.deadline_missed = r.value("deadline_missed", false);
  }
  if (r.contains("depends_on")) t->x().depends_on = r.value("depends_on", std::vector<uint64_t>{});
  if (r.value("ignore_dependency_failure", false)) t->x().ignore_dependency_failure = true;
  if (r.contains("requires"))
    t->x().requires_caps = r.value("requires", std::vector<std::string>{});
  if (r.contains("parent")) t->x().parent = r.value("parent", uint64_t{0});
  if (r.contains("aggregate"))
    t->x().aggregate = static_cast<Aggregate>(std::clamp(r.value("aggregate", 0), 0, 4));
  if (r.contains("children")) t->x().children = r.value("children", std::vector<uint64_t>{});
  if (r.contains("idempotency_key")) t->x().idempotency_key = r.value("idempotency_key", "");
  if (r.contains("ref")) t->x().ref = r.value("ref", "");
  if (r.contains("tags") && !r["tags"].is_null()) t->x().tags = r["tags"];
  if (auto it = r.find("attempts"); it != r.end() && it->is_array() && !it->empty()) {
    for (const auto& a : *it) {
      t->x().attempts.push_back(Attempt{a.value("worker_id", ""),
                                        a.value("started_at_ms", int64_t{0}),
                                        a.value("ended_at_ms", int64_t{0}), a.value("error", "")});
    }
  }
  if (r.contains("result") && !r["result"].is_null()) t->x().result = r["result"];
  if (r.contains("error")) t->x().error = r.value("error", "");
  if (r.contains("progress") && !r["progress"].is_null()) t->x().progress = r["progress"];
  if (r.contains("progress_message")) t->x().progress_message = r.value("progress_message", "");
  if (r.contains("worker_id")) t->x().worker_id = r.value("worker_id", "");
  if (r.contains("lease_token")) t->x().lease_token = r.value("lease_token", uint64_t{0});
  return true;
}

}  // namespace shim::engine

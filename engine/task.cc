#include "engine/task.h"

#include <charconv>

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

std::string TaskId(uint64_t seq) { return "t" + std::to_string(seq); }

std::optional<uint64_t> ParseTaskId(std::string_view id) {
  if (id.size() < 2 || id[0] != 't') return std::nullopt;
  uint64_t seq = 0;
  auto [end, ec] = std::from_chars(id.data() + 1, id.data() + id.size(), seq);
  if (ec != std::errc() || end != id.data() + id.size() || seq == 0) return std::nullopt;
  return seq;
}

json Task::ToRecord() const {
  json attempts_json = json::array();
  for (const auto& a : attempts) {
    json aj = {{"worker_id", a.worker_id}, {"started_at_ms", a.started_at_ms}, {"ended_at_ms", a.ended_at_ms}};
    if (!a.error.empty()) aj["error"] = a.error;
    attempts_json.push_back(std::move(aj));
  }
  json r = {{"queue", queue},
            {"priority", priority},
            {"original_priority", original_priority},
            {"state", TaskStateName(state)},
            {"created_at_ms", created_at_ms},
            {"run_at_ms", run_at_ms},
            {"ready_at_ms", ready_at_ms},
            {"ready_order", ready_order},
            {"finished_at_ms", finished_at_ms},
            {"max_attempts", max_attempts},
            {"backoff", backoff.ToJson()},
            {"timeout_ms", timeout_ms},
            {"attempt", attempt},
            {"attempts", std::move(attempts_json)}};
  // Rare fields only when set, to keep the common record small.
  if (deadline_at_ms) {
    r["deadline_at_ms"] = deadline_at_ms;
    r["escalate_before_ms"] = escalate_before_ms;
    r["escalated"] = escalated;
    r["deadline_missed"] = deadline_missed;
  }
  if (!depends_on.empty()) r["depends_on"] = depends_on;
  if (ignore_dependency_failure) r["ignore_dependency_failure"] = true;
  if (!requires_caps.empty()) r["requires"] = requires_caps;
  if (parent) r["parent"] = parent;
  if (aggregate != Aggregate::kNone) r["aggregate"] = static_cast<int>(aggregate);
  if (!children.empty()) r["children"] = children;
  if (!idempotency_key.empty()) r["idempotency_key"] = idempotency_key;
  if (!ref.empty()) r["ref"] = ref;
  if (!tags.is_null()) r["tags"] = tags;
  if (!result.is_null()) r["result"] = result;
  if (!error.empty()) r["error"] = error;
  if (!progress.is_null()) r["progress"] = progress;
  if (!progress_message.empty()) r["progress_message"] = progress_message;
  if (!worker_id.empty()) r["worker_id"] = worker_id;
  if (lease_token) r["lease_token"] = lease_token;
  return r;
}

bool Task::FromRecord(uint64_t seq, const json& r, Task* t) {
  if (!r.is_object()) return false;
  auto state_name = ParseTaskState(r.value("state", ""));
  if (!state_name) return false;
  t->seq = seq;
  t->queue = r.value("queue", "");
  t->priority = r.value("priority", 5);
  t->original_priority = r.value("original_priority", t->priority);
  t->state = *state_name;
  t->created_at_ms = r.value("created_at_ms", int64_t{0});
  t->run_at_ms = r.value("run_at_ms", int64_t{0});
  t->ready_at_ms = r.value("ready_at_ms", int64_t{0});
  t->ready_order = r.value("ready_order", uint64_t{0});
  t->finished_at_ms = r.value("finished_at_ms", int64_t{0});
  t->max_attempts = r.value("max_attempts", int64_t{3});
  const json backoff = r.value("backoff", json(nullptr));
  auto b = Backoff::FromJson(&backoff);
  if (b.ok()) t->backoff = b.value();
  t->timeout_ms = r.value("timeout_ms", int64_t{60'000});
  t->deadline_at_ms = r.value("deadline_at_ms", int64_t{0});
  t->escalate_before_ms = r.value("escalate_before_ms", int64_t{0});
  t->escalated = r.value("escalated", false);
  t->deadline_missed = r.value("deadline_missed", false);
  t->depends_on = r.value("depends_on", std::vector<uint64_t>{});
  t->ignore_dependency_failure = r.value("ignore_dependency_failure", false);
  t->requires_caps = r.value("requires", std::vector<std::string>{});
  t->parent = r.value("parent", uint64_t{0});
  t->aggregate = static_cast<Aggregate>(r.value("aggregate", 0));
  t->children = r.value("children", std::vector<uint64_t>{});
  t->idempotency_key = r.value("idempotency_key", "");
  t->ref = r.value("ref", "");
  t->tags = r.value("tags", json(nullptr));
  t->attempt = r.value("attempt", int64_t{0});
  for (const auto& a : r.value("attempts", json::array())) {
    t->attempts.push_back(Attempt{a.value("worker_id", ""), a.value("started_at_ms", int64_t{0}),
                                  a.value("ended_at_ms", int64_t{0}), a.value("error", "")});
  }
  t->result = r.value("result", json(nullptr));
  t->error = r.value("error", "");
  t->progress = r.value("progress", json(nullptr));
  t->progress_message = r.value("progress_message", "");
  t->worker_id = r.value("worker_id", "");
  t->lease_token = r.value("lease_token", uint64_t{0});
  return true;
}

}  // namespace shim::engine

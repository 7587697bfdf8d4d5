// TaskModule: task.submit / task.submit_batch — validation, refs, idempotency,
// dependency-cycle detection, and the initial state of new tasks.
#include <algorithm>
#include <functional>
#include <unordered_map>

#include "base/json_text.h"
#include "engine/params.h"
#include "engine/tasks/tasks.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

struct TaskModule::Spec {
  Task task;
  std::vector<std::string> depends_on;  // task ids or refs of this batch
  std::string parent;                   // task id or ref; empty = none
  std::string queue;                    // interned into task at creation
  std::string payload;  // JSON text; stored, and cached until claimed (PayloadCache)
};

namespace {

// A reference from a spec to another task: into this batch, or an existing task.
struct Target {
  bool in_batch = false;
  size_t index = 0;  // in_batch
  uint64_t seq = 0;  // existing
};

std::string FieldOf(size_t index, bool batch, std::string_view field) {
  return batch ? "tasks[" + std::to_string(index) + "]." + std::string(field) : std::string(field);
}

Status Prefixed(const Status& s, size_t index, bool batch) {
  if (!batch) return s;
  json details = s.details().is_object() ? s.details() : json::object();
  if (details.contains("field"))
    details["field"] = FieldOf(index, true, details["field"].get<std::string>());
  details["index"] = index;
  return Status(s.code(), "tasks[" + std::to_string(index) + "]: " + s.message(),
                std::move(details));
}

}  // namespace

Result<TaskModule::Spec> TaskModule::ParseSpec(const json& j, size_t index) {
  (void)index;
  if (!j.is_object()) return Status::InvalidParams("task", "a task must be an object");
  Spec spec;
  Task& t = spec.task;
  const auto& lim = core_.limits();
  // The fields of task.submit and of a task of task.submit_batch.
  static constexpr std::string_view kFields[] = {"queue",
                                                 "payload",
                                                 "priority",
                                                 "delay_ms",
                                                 "run_at_ms",
                                                 "max_attempts",
                                                 "timeout_ms",
                                                 "deadline_at_ms",
                                                 "escalate_before_ms",
                                                 "depends_on",
                                                 "on_dependency_failure",
                                                 "requires",
                                                 "parent_id",
                                                 "aggregate",
                                                 "idempotency_key",
                                                 "ref",
                                                 "tags",
                                                 "backoff"};
  Params p(j, kFields);
  // The name is interned only when the task is created: a refused request
  // leaves nothing behind.
  spec.queue = p.Str("queue", {.min = 1, .max = limits_.max_queue_name_bytes});
  const json* payload = p.OptAny("payload");
  t.priority = static_cast<uint8_t>(p.OptInt("priority", {.min = 1, .max = 10}).value_or(5));
  auto delay = p.OptInt("delay_ms", {.min = 0, .max = lim.max_ttl_ms});
  auto run_at = p.OptInt("run_at_ms", {.min = 0});
  t.max_attempts = static_cast<int16_t>(
      p.OptInt("max_attempts", {.min = 1, .max = kMaxTaskAttempts}).value_or(3));
  t.timeout_ms = p.OptInt("timeout_ms", {.min = 1, .max = lim.max_ttl_ms}).value_or(60'000);
  // The rare fields go into the task's extra part only when given, so a
  // plain task allocates none (task.h).
  auto deadline = p.OptInt("deadline_at_ms", {.min = 1});
  auto escalate_before = p.OptInt("escalate_before_ms", {.min = 0, .max = lim.max_ttl_ms});
  const json* deps = p.OptArray("depends_on");
  auto on_dep_failure = p.OptStr("on_dependency_failure");
  const json* requires_caps = p.OptArray("requires");
  auto parent = p.OptStr("parent_id", {.min = 1, .max = 256});
  auto aggregate = p.OptStr("aggregate");
  auto idempotency_key = p.OptStr("idempotency_key", {.min = 1, .max = 256});
  auto ref = p.OptStr("ref", {.min = 1, .max = 256});
  const json* tags = p.OptArray("tags");
  const json* backoff = p.OptAny("backoff");
  if (!p.ok()) return p.status();

  if (delay && run_at)
    return Status::InvalidParams("delay_ms", "give delay_ms or run_at_ms, not both");
  const int64_t now = core_.clock().NowMs();
  t.run_at_ms = delay ? now + *delay : run_at.value_or(0);
  if (escalate_before.value_or(0) && !deadline) {
    return Status::InvalidParams("escalate_before_ms", "escalate_before_ms needs deadline_at_ms");
  }
  if (deadline) {
    t.x().deadline_at_ms = *deadline;
    t.x().escalate_before_ms = escalate_before.value_or(0);
  }
  if (idempotency_key) t.x().idempotency_key = std::move(*idempotency_key);
  if (ref) t.x().ref = std::move(*ref);
  if (backoff && !backoff->is_null()) {
    SHIM_ASSIGN_OR_RETURN(t.x().backoff, Backoff::FromJson(backoff));
  }
  if (on_dep_failure && *on_dep_failure != "fail" && *on_dep_failure != "ignore") {
    return Status::InvalidParams("on_dependency_failure",
                                 "on_dependency_failure must be \"fail\" or \"ignore\"");
  }
  if (on_dep_failure == "ignore") t.x().ignore_dependency_failure = true;
  if (aggregate) {
    if (*aggregate == "concatenate")
      t.x().aggregate = Aggregate::kConcatenate;
    else if (*aggregate == "merge")
      t.x().aggregate = Aggregate::kMerge;
    else if (*aggregate == "first")
      t.x().aggregate = Aggregate::kFirst;
    else if (*aggregate == "last")
      t.x().aggregate = Aggregate::kLast;
    else
      return Status::InvalidParams("aggregate",
                                   "aggregate must be concatenate, merge, first or last");
  }
  if (deps) {
    if (deps->size() > limits_.max_dependencies) {
      return Status::TooLarge(
          "depends_on: more than " + std::to_string(limits_.max_dependencies) + " entries",
          limits_.max_dependencies);
    }
    for (const auto& d : *deps) {
      if (!d.is_string() || d.get_ref<const std::string&>().empty()) {
        return Status::InvalidParams("depends_on",
                                     "depends_on must list task ids or refs (strings)");
      }
      spec.depends_on.push_back(d.get<std::string>());
    }
  }
  if (requires_caps && !requires_caps->empty()) {
    for (const auto& c : *requires_caps) {
      if (!c.is_string() || c.get_ref<const std::string&>().empty()) {
        return Status::InvalidParams("requires", "requires must list capabilities (strings)");
      }
      t.x().requires_caps.push_back(c.get<std::string>());
    }
  }
  if (tags) t.x().tags = *tags;
  spec.parent = parent.value_or("");
  spec.payload = payload ? DumpCompact(*payload) : "null";
  if (spec.payload.size() > limits_.max_payload_bytes) {
    return Status::TooLarge(
        "payload: encoded size over " + std::to_string(limits_.max_payload_bytes) + " bytes",
        limits_.max_payload_bytes);
  }
  t.original_priority = t.priority;
  return spec;
}

Result<json> TaskModule::SubmitSpecs(std::vector<Spec>& specs, bool batch) {
  const size_t n = specs.size();
  // 0. A queue being deleted takes nothing new (queue_admin.cc).
  for (size_t i = 0; i < n; ++i) {
    if (auto q = queues_.find(specs[i].queue); q != queues_.end() && q->second.deleting) {
      return Prefixed(
          Status(StatusCode::kInvalidState, "queue '" + specs[i].queue + "' is being deleted"), i,
          batch);
    }
  }
  // 1. Idempotency: reuse existing tasks (and earlier duplicates in the batch).
  std::vector<std::optional<uint64_t>> existing(n);
  std::vector<std::optional<size_t>> same_as(n);
  std::map<std::pair<std::string, std::string>, size_t> keys_in_batch;
  for (size_t i = 0; i < n; ++i) {
    const Task& t = specs[i].task;
    if (t.ext().idempotency_key.empty()) continue;
    auto key = std::pair(specs[i].queue, t.ext().idempotency_key);
    if (auto it = idempotency_.find(key); it != idempotency_.end()) {
      existing[i] = it->second;
    } else if (auto b = keys_in_batch.find(key); b != keys_in_batch.end()) {
      same_as[i] = b->second;
    } else {
      keys_in_batch.emplace(key, i);
    }
  }
  auto is_new = [&](size_t i) { return !existing[i] && !same_as[i]; };

  // 2. Resolve refs, dependencies and parents before anything is written.
  std::unordered_map<std::string, size_t> refs;
  for (size_t i = 0; i < n; ++i) {
    const std::string& ref = specs[i].task.ext().ref;
    if (ref.empty() || !is_new(i)) continue;
    if (!refs.emplace(ref, i).second) {
      return Prefixed(Status::InvalidParams("ref", "ref '" + ref + "' is used twice in this batch"),
                      i, batch);
    }
  }
  auto resolve = [&](const std::string& name, size_t i, const char* field) -> Result<Target> {
    if (auto r = refs.find(name); r != refs.end()) return Target{true, r->second, 0};
    if (auto seq = ParseTaskId(name); seq && tasks_.count(*seq)) return Target{false, 0, *seq};
    return Prefixed(
        Status(StatusCode::kNotFound, std::string(field) + ": no task or ref '" + name + "'",
               {{"field", field}}),
        i, batch);
  };
  std::vector<std::vector<Target>> dep_targets(n);
  std::vector<std::optional<Target>> parent_target(n);
  for (size_t i = 0; i < n; ++i) {
    if (!is_new(i)) continue;
    for (const std::string& d : specs[i].depends_on) {
      SHIM_ASSIGN_OR_RETURN(Target target, resolve(d, i, "depends_on"));
      dep_targets[i].push_back(target);
    }
    if (!specs[i].parent.empty()) {
      SHIM_ASSIGN_OR_RETURN(Target target, resolve(specs[i].parent, i, "parent_id"));
      if (!target.in_batch) {
        const Task& p = tasks_.at(target.seq);
        if (p.state != TaskState::kWaiting && p.state != TaskState::kDelayed &&
            p.state != TaskState::kReady) {
          return Prefixed(Status(StatusCode::kInvalidState,
                                 "parent " + specs[i].parent + " is " + TaskStateName(p.state) +
                                     "; children can be added only before it runs"),
                          i, batch);
        }
      }
      parent_target[i] = target;
    }
  }

  // 3. Cycles in the waits-for graph: a task waits for its dependencies, and
  // a parent waits for its children. Nodes: batch tasks, plus existing
  // parents (which will wait for new children). Existing tasks never wait
  // for new ones otherwise, so no cycle can pass through other old tasks.
  std::map<std::string, std::vector<std::string>> edges;  // node name -> waits for
  auto node_name = [&](const Target& t) {
    if (!t.in_batch) return TaskId(t.seq);
    const Task& bt = specs[t.index].task;
    return bt.ext().ref.empty() ? "tasks[" + std::to_string(t.index) + "]" : bt.ext().ref;
  };
  for (size_t i = 0; i < n; ++i) {
    if (!is_new(i)) continue;
    const std::string self = node_name(Target{true, i, 0});
    auto& out = edges[self];
    for (const Target& d : dep_targets[i]) out.push_back(node_name(d));
    if (parent_target[i]) edges[node_name(*parent_target[i])].push_back(self);
  }
  // Depth-first, with an explicit stack: a batch may be one chain of
  // max_batch tasks, too deep to recurse through.
  std::map<std::string, int> color;                         // 0 new, 1 on the path, 2 done
  std::vector<std::pair<const std::string*, size_t>> path;  // node, next edge to follow
  std::vector<std::string> cycle;
  for (const auto& [root, unused] : edges) {
    if (color[root] != 0) continue;
    color[root] = 1;
    path.emplace_back(&root, 0);
    while (!path.empty() && cycle.empty()) {
      auto& [v, next] = path.back();
      const std::vector<std::string>& out = edges[*v];
      if (next == out.size()) {
        color[*v] = 2;
        path.pop_back();
        continue;
      }
      const std::string& w = out[next++];
      if (color[w] == 1) {
        auto from =
            std::find_if(path.begin(), path.end(), [&](const auto& e) { return *e.first == w; });
        for (auto it = from; it != path.end(); ++it) cycle.push_back(*it->first);
        cycle.push_back(w);
      } else if (color[w] == 0) {
        color[w] = 1;
        path.emplace_back(&edges.try_emplace(w).first->first, 0);
      }
    }
    if (!cycle.empty()) {
      std::string text;
      for (const auto& c : cycle) text += (text.empty() ? "" : " -> ") + c;
      return Status(StatusCode::kDependencyCycle,
                    "dependency cycle: " + text + "; nothing was stored", {{"cycle", cycle}});
    }
  }

  // 4. Create the new tasks (all validation is done: from here on we write).
  std::vector<uint64_t> seqs(n, 0);
  std::vector<std::pair<uint64_t, std::string>> payloads;
  const int64_t now = core_.clock().NowMs();
  for (size_t i = 0; i < n; ++i) {
    if (existing[i]) seqs[i] = *existing[i];
    if (!is_new(i)) continue;
    Task t = std::move(specs[i].task);
    t.set_queue(specs[i].queue);
    t.seq = core_.NextRevision();
    t.created_at_ms = now;
    t.state = TaskState::kWaiting;
    seqs[i] = t.seq;
    TaskQueue& q = QueueFor(t.queue());
    ++q.counts[static_cast<int>(TaskState::kWaiting)];
    q.AddTask(t.seq);
    if (!t.ext().idempotency_key.empty())
      idempotency_[{t.queue(), t.ext().idempotency_key}] = t.seq;
    core_.batch().Put(Family::kTasks, TaskPayloadKey(t.seq), specs[i].payload);
    payloads.emplace_back(t.seq, std::move(specs[i].payload));
    tasks_.emplace(t.seq, std::move(t));
  }
  HoldPayloads(std::move(payloads));
  for (size_t i = 0; i < n; ++i) {
    if (same_as[i]) seqs[i] = seqs[*same_as[i]];
  }

  // 5. Wire dependencies and parents.
  std::vector<std::string> fail_reason(n);
  for (size_t i = 0; i < n; ++i) {
    if (!is_new(i)) continue;
    Task& t = tasks_.at(seqs[i]);
    for (const Target& d : dep_targets[i]) {
      const uint64_t dseq = d.in_batch ? seqs[d.index] : d.seq;
      t.x().depends_on.push_back(dseq);
      const Task& dep = tasks_.at(dseq);
      if (dep.state == TaskState::kCompleted) continue;
      if (IsFinished(dep.state)) {
        if (!t.ext().ignore_dependency_failure && fail_reason[i].empty()) {
          fail_reason[i] = "dependency " + TaskId(dseq) +
                           (dep.state == TaskState::kCancelled ? " was cancelled" : " failed");
        }
        continue;
      }
      ++t.x().unmet_dependencies;
      dependents_[dseq].push_back(t.seq);
    }
    if (parent_target[i]) {
      const uint64_t pseq =
          parent_target[i]->in_batch ? seqs[parent_target[i]->index] : parent_target[i]->seq;
      t.x().parent = pseq;
      Task& p = tasks_.at(pseq);
      p.x().children.push_back(t.seq);
      ++p.x().children_pending;
      if (!parent_target[i]->in_batch && p.state != TaskState::kWaiting) {
        SetState(p, TaskState::kWaiting);  // it now waits for its children
        Persist(p);
      }
    }
  }

  // 6. Initial states, in submit order.
  for (size_t i = 0; i < n; ++i) {
    if (!is_new(i)) continue;
    Task& t = tasks_.at(seqs[i]);
    Event(t, "submitted", {{"priority", t.priority}});
    ScheduleDeadline(t);
    if (!fail_reason[i].empty()) {
      t.x().error = fail_reason[i];
      Event(t, "failed", {{"error", t.ext().error}});
      Finish(t, TaskState::kFailed);
    } else if (t.ext().unmet_dependencies == 0 && t.ext().children_pending == 0) {
      Schedule(t);
    } else {
      Persist(t);
    }
  }

  if (batch) {
    json ids = json::array();
    for (uint64_t s : seqs) ids.push_back(TaskId(s));
    return json{{"task_ids", std::move(ids)}};
  }
  const Task* t = Find(seqs[0]);
  return json{{"task_id", TaskId(seqs[0])},
              {"state", t ? TaskStateName(t->state) : "completed"},
              {"existing", existing[0].has_value()}};
}

void TaskModule::Submit(Call& call) {
  auto spec = ParseSpec(call.params, 0);
  if (!spec.ok()) return core_.Reply(call.reply, spec.status());
  std::vector<Spec> specs;
  specs.push_back(std::move(spec).value());
  core_.Reply(call.reply, SubmitSpecs(specs, false));
}

void TaskModule::SubmitBatch(Call& call) {
  static constexpr std::string_view kFields[] = {"tasks"};
  Params p(call.params, kFields);
  const json* tasks = p.Array("tasks");
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (tasks->empty())
    return core_.Reply(call.reply, Status::InvalidParams("tasks", "tasks must not be empty"));
  if (tasks->size() > limits_.max_batch) {
    return core_.Reply(
        call.reply, Status::TooLarge("a batch holds at most " + std::to_string(limits_.max_batch) +
                                         " tasks; got " + std::to_string(tasks->size()),
                                     limits_.max_batch));
  }
  std::vector<Spec> specs;
  specs.reserve(tasks->size());
  for (size_t i = 0; i < tasks->size(); ++i) {
    auto spec = ParseSpec((*tasks)[i], i);
    if (!spec.ok()) return core_.Reply(call.reply, Prefixed(spec.status(), i, true));
    specs.push_back(std::move(spec).value());
  }
  core_.Reply(call.reply, SubmitSpecs(specs, true));
}

}  // namespace shim::engine

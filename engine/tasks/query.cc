// TaskModule: read-only views — task.get, task.list, queue.stats, queue.list.
#include <algorithm>

#include "engine/params.h"
#include "engine/reply_budget.h"
#include "engine/tasks/tasks.h"
#include "engine/workers.h"

namespace shim::engine {

using nlohmann::json;

json TaskModule::Describe(const Task& t, bool with_payload) const {
  json attempts = json::array();
  for (const auto& a : t.ext().attempts) {
    json aj = {{"worker_id", a.worker_id},
               {"started_at_ms", a.started_at_ms},
               {"ended_at_ms", a.ended_at_ms ? json(a.ended_at_ms) : json(nullptr)}};
    if (!a.error.empty()) aj["error"] = a.error;
    attempts.push_back(std::move(aj));
  }
  json deps = json::array();
  for (uint64_t d : t.ext().depends_on) deps.push_back(TaskId(d));
  json out = {{"task_id", TaskId(t.seq)},
              {"queue", t.queue()},
              {"state", TaskStateName(t.state)},
              {"priority", t.priority},
              {"attempt", t.attempt},
              {"max_attempts", t.max_attempts},
              {"attempts", std::move(attempts)},
              {"created_at_ms", t.created_at_ms},
              {"run_at_ms", t.run_at_ms ? json(t.run_at_ms) : json(nullptr)},
              {"finished_at_ms", t.finished_at_ms ? json(t.finished_at_ms) : json(nullptr)},
              {"timeout_ms", t.timeout_ms},
              {"backoff", t.ext().backoff.ToJson()},
              {"depends_on", std::move(deps)},
              {"on_dependency_failure", t.ext().ignore_dependency_failure ? "ignore" : "fail"},
              {"requires", t.ext().requires_caps},
              {"parent_id", t.ext().parent ? json(TaskId(t.ext().parent)) : json(nullptr)},
              {"tags", t.ext().tags}};
  if (with_payload) {
    out["payload"] = LoadPayload(t.seq);
  }
  if (t.state == TaskState::kRunning) {
    out["worker_id"] = t.ext().worker_id;
    out["lease_expires_at_ms"] =
        core_.clock().NowMs() + (t.ext().lease_expires_mono_ms - core_.clock().MonoMs());
  }
  if (t.state == TaskState::kCompleted) out["result"] = t.ext().result;
  if (!t.ext().error.empty()) out["error"] = t.ext().error;
  if (!t.ext().progress.is_null()) {
    out["progress"] = t.ext().progress;
    if (!t.ext().progress_message.empty()) out["progress_message"] = t.ext().progress_message;
  }
  if (t.ext().deadline_at_ms) {
    out["deadline_at_ms"] = t.ext().deadline_at_ms;
    out["escalated"] = t.ext().escalated;
    out["deadline_missed"] = t.ext().deadline_missed;
  }
  if (!t.ext().idempotency_key.empty()) out["idempotency_key"] = t.ext().idempotency_key;
  if (!t.ext().ref.empty()) out["ref"] = t.ext().ref;
  if (!t.ext().children.empty()) {
    out["aggregate"] = t.ext().aggregate == Aggregate::kNone
                           ? json(nullptr)
                           : json(AggregateName(t.ext().aggregate));
    json children = json::array();
    for (uint64_t c : t.ext().children) {
      auto it = tasks_.find(c);
      if (it == tasks_.end()) {
        children.push_back({{"task_id", TaskId(c)}, {"state", nullptr}, {"result", nullptr}});
        continue;
      }
      json cj = {{"task_id", TaskId(c)},
                 {"state", TaskStateName(it->second.state)},
                 {"result", it->second.state == TaskState::kCompleted ? it->second.ext().result
                                                                      : json(nullptr)}};
      if (!it->second.ext().error.empty()) cj["error"] = it->second.ext().error;
      children.push_back(std::move(cj));
    }
    out["children_results"] = std::move(children);
  }
  return out;
}

void TaskModule::Get(Call& call) {
  static constexpr std::string_view kFields[] = {"task_id"};
  Params p(call.params, kFields);
  std::string id = p.Str("task_id", {.min = 1, .max = 64});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  auto seq = ParseTaskId(id);
  auto it = seq ? tasks_.find(*seq) : tasks_.end();
  if (it == tasks_.end()) {
    return core_.Reply(call.reply,
                       Status::NotFound("no task '" + id + "' (unknown, or removed by retention)"));
  }
  core_.Reply(call.reply, Describe(it->second, true));
}

void TaskModule::List(Call& call) {
  static constexpr std::string_view kFields[] = {"queue", "state", "after", "limit"};
  Params p(call.params, kFields);
  std::string queue = p.Str("queue", {.min = 1, .max = limits_.max_queue_name_bytes});
  auto state_name = p.OptStr("state");
  auto after = p.OptStr("after");
  const int64_t limit = p.Limit(core_.limits().max_list_limit, 100);
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  std::optional<TaskState> state;
  if (state_name) {
    state = ParseTaskState(*state_name);
    if (!state)
      return core_.Reply(
          call.reply, Status::InvalidParams("state", "unknown task state '" + *state_name + "'"));
  }
  std::optional<uint64_t> after_seq;
  if (after) {
    after_seq = ParseTaskId(*after);
    if (!after_seq)
      return core_.Reply(call.reply, Status::InvalidParams("after", "after must be a task id"));
  }
  json items = json::array();
  json next = nullptr;
  ReplyBudget budget(core_.limits().max_reply_bytes);  // results and progress can be large
  auto qit = queues_.find(queue);
  if (qit != queues_.end()) {
    const auto& seqs = qit->second.tasks;
    for (auto it = after_seq ? std::upper_bound(seqs.begin(), seqs.end(), *after_seq)
                             : seqs.begin();
         it != seqs.end(); ++it) {
      auto found = tasks_.find(*it);
      if (found == tasks_.end()) continue;  // forgotten by retention (TaskQueue::tasks)
      const Task& t = found->second;
      if (state && t.state != *state) continue;
      if (static_cast<int64_t>(items.size()) == limit || budget.full()) {
        next = items.back()["task_id"];
        break;
      }
      items.push_back(Describe(t, false));
      budget.Add(items.back());
    }
  }
  core_.Reply(call.reply, json{{"tasks", std::move(items)}, {"next", std::move(next)}});
}

void TaskModule::QueueStats(Call& call) {
  static constexpr std::string_view kFields[] = {"queue"};
  Params p(call.params, kFields);
  std::string name = p.Str("queue", {.min = 1, .max = limits_.max_queue_name_bytes});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  // A read creates nothing: a queue no task or setting has named yet is
  // described from an empty one, which is not kept.
  TaskQueue unknown;
  auto found = queues_.find(name);
  TaskQueue& q = found != queues_.end() ? found->second : unknown;
  const int64_t now = core_.clock().NowMs();
  while (!q.completion_times.empty() && q.completion_times.front() < now - 60'000)
    q.completion_times.pop_front();

  int64_t oldest_ready_age = 0;
  const Task* top = nullptr;
  if (auto oldest = q.OldestReady()) {
    if (const auto it = tasks_.find(oldest->second); it != tasks_.end()) {
      oldest_ready_age = now - it->second.ready_at_ms;
    }
    for (int pr = 1; pr <= 10 && !top; ++pr) {
      if (!q.ready[pr].empty()) top = &tasks_.at(q.ready[pr].front().second);
    }
  }
  // Workers that serve this queue now: running its tasks or waiting on it.
  std::set<std::string> serving;
  for (const auto& [worker, seqs] : running_by_worker_) {
    for (uint64_t seq : seqs) {
      if (auto it = tasks_.find(seq); it != tasks_.end() && it->second.queue() == name) {
        serving.insert(worker);
        break;
      }
    }
  }
  for (const auto& w : waiters_) {
    if (std::find(w.queues.begin(), w.queues.end(), name) != w.queues.end())
      serving.insert(w.worker_id);
  }
  // Can any live worker take the task at the head of the queue?
  bool someone_can_take = !waiters_.empty() && top == nullptr;
  if (top) {
    for (const auto& w : waiters_) {
      if (std::find(w.queues.begin(), w.queues.end(), name) == w.queues.end()) continue;
      if (const auto* rec = workers_.Find(w.worker_id); rec && rec->dead) continue;
      const auto caps = CapabilitiesOf(w.worker_id);
      if (std::all_of(top->ext().requires_caps.begin(), top->ext().requires_caps.end(),
                      [&](const std::string& c) {
                        return std::find(caps.begin(), caps.end(), c) != caps.end();
                      })) {
        someone_can_take = true;
      }
    }
    if (!someone_can_take) {
      // Registered live workers with the capabilities count too, even if not
      // waiting right now (they may be busy and claim again soon).
      someone_can_take = workers_.AnyAliveWith(top->ext().requires_caps);
    }
  }
  json reasons = json::array();
  const bool starving = q.ready_count() > 0 && oldest_ready_age > q.config.starvation_ms;
  if (starving) {
    reasons.push_back("oldest ready task has waited " + std::to_string(oldest_ready_age) +
                      " ms (starvation_ms " + std::to_string(q.config.starvation_ms) + ")");
  }
  bool saturated = false;
  if (q.ready_count() > q.config.saturation_ready) {
    saturated = true;
    reasons.push_back(std::to_string(q.ready_count()) + " ready tasks exceed saturation_ready " +
                      std::to_string(q.config.saturation_ready));
  }
  if (q.ready_count() > 0 && !someone_can_take) {
    saturated = true;
    reasons.push_back("no live worker can take the ready tasks");
  }
  if (q.config.paused) reasons.push_back("queue is paused");
  core_.Reply(
      call.reply,
      json{{"queue", name},
           {"counts", q.Counts()},
           {"workers", serving.size()},
           {"paused", q.config.paused},
           {"routing", RoutingName(q.config.routing)},
           {"completed_per_min", q.completion_times.size()},
           {"oldest_ready_age_ms", oldest_ready_age},
           {"p50_wait_ms", q.wait_ms.Median()},
           {"p50_run_ms", q.run_ms.Median()},
           {"dead_letter", q.counts[static_cast<int>(TaskState::kFailed)]},
           {"health",
            {{"starving", starving}, {"saturated", saturated}, {"reasons", std::move(reasons)}}}});
}

void TaskModule::QueueList(Call& call) {
  static constexpr std::string_view kFields[] = {"after"};
  Params p(call.params, kFields);
  auto after = p.OptStr("after", {.max = limits_.max_queue_name_bytes});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  core_.Reply(
      call.reply,
      ListPage(
          queues_, after ? &*after : nullptr, core_.limits().max_reply_bytes, "queues",
          [](const std::string&, const TaskQueue&) { return true; },
          [](const std::string& name, const TaskQueue& q) {
            return json{{"queue", name}, {"counts", q.Counts()}, {"paused", q.config.paused}};
          }));
}

}  // namespace shim::engine

// TaskModule: state transitions and what they set off (dependents, parents,
// retention, events). Every function here runs inside one command's write.
#include <algorithm>

#include "engine/json_build.h"
#include "engine/pubsub.h"
#include "engine/tasks/tasks.h"
#include "engine/workers.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

Task* TaskModule::Find(uint64_t seq) {
  auto it = tasks_.find(seq);
  return it == tasks_.end() ? nullptr : &it->second;
}

TaskQueue& TaskModule::QueueFor(const std::string& name) {
  auto [it, inserted] = queues_.try_emplace(name);
  if (inserted) it->second.name = name;
  return it->second;
}

void TaskModule::Persist(const Task& t) {
  core_.batch().Put(Family::kTasks, TaskKey(t.seq), t.EncodeRecord());
}

void TaskModule::Event(const Task& t, const char* type, json extra) {
  extra["type"] = type;
  extra["task_id"] = TaskId(t.seq);
  extra["queue"] = t.queue();
  pubsub_.PublishInternal("events." + t.queue(), std::move(extra));
}

void TaskModule::SetState(Task& t, TaskState s) {
  TaskQueue& q = QueueFor(t.queue());
  if (t.state == TaskState::kReady) q.RemoveReady(t);
  --q.counts[static_cast<int>(t.state)];
  ++q.counts[static_cast<int>(s)];
  t.state = s;
}

void TaskModule::Schedule(Task& t) {
  if (t.run_at_ms > core_.clock().NowMs()) {
    SetState(t, TaskState::kDelayed);
    ScheduleRunAt(t);
    Persist(t);
  } else {
    MakeReady(t);
  }
}

void TaskModule::MakeReady(Task& t) {
  SetState(t, TaskState::kReady);
  t.ready_at_ms = core_.clock().NowMs();
  t.ready_order = next_ready_order_++;
  QueueFor(t.queue()).AddReady(t);
  Persist(t);
  Dispatch(t.queue());
}

void TaskModule::ScheduleRunAt(const Task& t) {
  core_.wall_timers().Schedule(t.run_at_ms, [this, seq = t.seq, run_at = t.run_at_ms] {
    Task* t = Find(seq);
    if (!t || t->state != TaskState::kDelayed || t->run_at_ms != run_at) return;
    MakeReady(*t);
  });
}

void TaskModule::ScheduleDeadline(const Task& t) {
  if (t.ext().deadline_at_ms == 0) return;
  const uint64_t seq = t.seq;
  if (t.ext().escalate_before_ms > 0 && !t.ext().escalated) {
    core_.wall_timers().Schedule(t.ext().deadline_at_ms - t.ext().escalate_before_ms, [this, seq] {
      Task* t = Find(seq);
      if (!t || t->ext().escalated || t->state == TaskState::kRunning || IsFinished(t->state))
        return;
      core_.NextRevision();
      TaskQueue& q = QueueFor(t->queue());
      const bool ready = t->state == TaskState::kReady;
      if (ready) q.RemoveReady(*t);
      const int from = t->priority;
      t->priority = 1;
      t->x().escalated = true;
      if (ready) q.AddReady(*t);
      Persist(*t);
      Event(*t, "escalated",
            {{"from_priority", from}, {"deadline_at_ms", t->ext().deadline_at_ms}});
    });
  }
  if (!t.ext().deadline_missed) {
    core_.wall_timers().Schedule(t.ext().deadline_at_ms, [this, seq] {
      Task* t = Find(seq);
      if (!t || t->ext().deadline_missed || t->state == TaskState::kCompleted ||
          t->state == TaskState::kCancelled)
        return;
      core_.NextRevision();
      t->x().deadline_missed = true;
      Persist(*t);
      Event(*t, "deadline_missed",
            {{"deadline_at_ms", t->ext().deadline_at_ms}, {"state", TaskStateName(t->state)}});
    });
  }
}

void TaskModule::ArmLease(const Task& t) {
  core_.mono_timers().Schedule(
      t.ext().lease_expires_mono_ms, [this, seq = t.seq, token = t.ext().lease_token] {
        Task* t = Find(seq);
        if (!t || t->state != TaskState::kRunning || t->ext().lease_token != token ||
            t->ext().lease_expires_mono_ms > core_.clock().MonoMs()) {
          return;
        }
        Stall(*t);
      });
}

void TaskModule::Stall(Task& t) {
  core_.NextRevision();
  AttemptFailed(
      t, "stalled: execution lease expired (timeout_ms " + std::to_string(t.timeout_ms) + ")",
      /*retry=*/true, /*apply_backoff=*/false, "stalled");
}

void TaskModule::StartRunning(Task& t, const std::string& worker_id,
                              const std::shared_ptr<Client>& client) {
  const int64_t now = core_.clock().NowMs();
  TaskQueue& q = QueueFor(t.queue());
  q.wait_ms.Add(now - t.ready_at_ms);
  SetState(t, TaskState::kRunning);
  ++t.attempt;
  t.x().attempts.push_back(Attempt{worker_id, now, 0, ""});
  t.x().worker_id = worker_id;
  t.x().lease_token = core_.NextRevision();
  t.x().lease_expires_mono_ms = core_.clock().MonoMs() + t.timeout_ms;
  t.x().claimed_by = client;
  running_by_worker_[worker_id].insert(t.seq);
  workers_.AdjustActive(worker_id, +1);
  Persist(t);
  Event(t, "claimed", {{"worker_id", worker_id}, {"attempt", t.attempt}});
  ArmLease(t);
}

void TaskModule::ReleaseRunning(Task& t) {
  if (auto it = running_by_worker_.find(t.ext().worker_id); it != running_by_worker_.end()) {
    it->second.erase(t.seq);
    if (it->second.empty()) running_by_worker_.erase(it);
  }
  workers_.AdjustActive(t.ext().worker_id, -1);
  const int64_t now = core_.clock().NowMs();
  if (!t.ext().attempts.empty()) {
    t.x().attempts.back().ended_at_ms = now;
    QueueFor(t.queue()).run_ms.Add(now - t.ext().attempts.back().started_at_ms);
  }
  t.x().claimed_by.reset();
}

void TaskModule::Finish(Task& t, TaskState final_state, bool cancel_children) {
  SetState(t, final_state);
  payloads_.Drop(
      t.seq);  // finished without a claim (cancelled, a failed dependency): not read again soon
  const int64_t now = core_.clock().NowMs();
  t.finished_at_ms = now;
  TaskQueue& q = QueueFor(t.queue());
  if (final_state == TaskState::kCompleted) {
    q.completion_times.push_back(now);
    while (!q.completion_times.empty() && q.completion_times.front() < now - 60'000)
      q.completion_times.pop_front();
  }
  Persist(t);
  // What this sets off is queued, not recursed into: a chain of dependents
  // or parents can be as long as clients make it.
  if (dependents_.contains(t.seq)) QueueStep(CascadeStep::Kind::kDependents, t.seq);
  if (t.ext().parent != 0) QueueStep(CascadeStep::Kind::kParent, t.seq);
  if (cancel_children && !t.ext().children.empty()) QueueStep(CascadeStep::Kind::kChildren, t.seq);
  Retain(q, t);
  RunCascade();  // a no-op inside a running cascade, which picks the steps up
}

void TaskModule::AttemptFailed(Task& t, const std::string& error, bool retry, bool apply_backoff,
                               const char* event) {
  ReleaseRunning(t);
  if (!t.ext().attempts.empty()) t.x().attempts.back().error = error;
  // The failed attempt's token stops working at once.
  t.x().lease_token = 0;
  if (std::string_view(event) == "stalled") {
    Event(t, "stalled",
          {{"attempt", t.attempt}, {"worker_id", t.ext().worker_id}, {"error", error}});
  }
  if (retry && t.attempt < t.max_attempts) {
    const int64_t delay = apply_backoff
                              ? t.ext().backoff.DelayMs(
                                    t.attempt, SplitMix64(t.seq) ^ static_cast<uint64_t>(t.attempt))
                              : 0;
    t.run_at_ms = core_.clock().NowMs() + delay;
    Event(t, "retrying",
          {{"attempt", t.attempt}, {"error", error}, {"next_run_at_ms", t.run_at_ms}});
    Schedule(t);
    return;
  }
  t.x().error = error;
  Event(t, "failed", {{"attempt", t.attempt}, {"error", error}, {"retryable", retry}});
  Finish(t, TaskState::kFailed);
}

void TaskModule::OnPrerequisiteDone(Task& waiter) {
  // The counters are not stored (recovery recounts them): nothing to write
  // until the task can be scheduled. Writing the record on every child's
  // completion made a parent of n children cost n records of n children.
  if (waiter.state == TaskState::kWaiting && waiter.ext().unmet_dependencies == 0 &&
      waiter.ext().children_pending == 0) {
    Schedule(waiter);
  }
}

void TaskModule::ResolveDependent(const Task& done, Task& d) {
  if (IsFinished(d.state)) return;
  if (done.state == TaskState::kCompleted || d.ext().ignore_dependency_failure) {
    --d.x().unmet_dependencies;
    OnPrerequisiteDone(d);
    return;
  }
  if (d.state == TaskState::kRunning) ReleaseRunning(d);
  d.x().error = "dependency " + TaskId(done.seq) +
                (done.state == TaskState::kCancelled ? " was cancelled" : " failed");
  Event(d, "failed", {{"error", d.ext().error}, {"dependency", TaskId(done.seq)}});
  Finish(d, TaskState::kFailed);
}

void TaskModule::NotifyParent(const Task& child) {
  if (child.ext().parent == 0) return;
  Task* p = Find(child.ext().parent);
  if (!p || IsFinished(p->state)) return;
  --p->x().children_pending;
  if (child.state != TaskState::kCompleted && !p->ext().ignore_dependency_failure) {
    return FailParentForChild(*p, child);
  }
  if (p->ext().children_pending > 0) return;
  if (p->ext().aggregate != Aggregate::kNone) {
    CompleteParentByAggregate(*p);
  } else {
    OnPrerequisiteDone(*p);
  }
}

void TaskModule::FailParentForChild(Task& p, const Task& child) {
  // A parent never waits forever: a failed child fails it, and the other
  // children are no longer wanted.
  const std::string reason = "child " + TaskId(child.seq) +
                             (child.state == TaskState::kCancelled ? " was cancelled" : " failed");
  if (p.state == TaskState::kRunning) ReleaseRunning(p);
  p.x().error = reason;
  Event(p, "failed", {{"error", reason}, {"child", TaskId(child.seq)}});
  Finish(p, TaskState::kFailed, /*cancel_children=*/true);
}

void TaskModule::CompleteParentByAggregate(Task& p) {
  std::vector<const json*> results;
  for (uint64_t c : p.ext().children) {
    const Task* ct = Find(c);
    if (ct && ct->state == TaskState::kCompleted) results.push_back(&ct->ext().result);
  }
  // Built within the result limits (engine/json_build.h): many children's
  // results together can be far more than one result may be.
  const JsonBuildLimits build{.max_bytes = limits_.max_result_bytes};
  Result<json> combined = json(nullptr);
  switch (p.ext().aggregate) {
    case Aggregate::kConcatenate:
      combined = ConcatenateJson(results, build);
      break;
    case Aggregate::kMerge:
      combined = DeepMergeJson(results, build);
      break;
    case Aggregate::kFirst:
      if (!results.empty()) combined = *results.front();
      break;
    case Aggregate::kLast:
      if (!results.empty()) combined = *results.back();
      break;
    case Aggregate::kNone:
      break;
  }
  if (p.state == TaskState::kRunning) ReleaseRunning(p);
  if (!combined.ok()) {
    // A parent never waits forever: an aggregate over the limits fails it.
    p.x().error = std::string("aggregate ") + AggregateName(p.ext().aggregate) + ": " +
                  combined.status().message();
    Event(p, "failed", {{"error", p.ext().error}});
    Finish(p, TaskState::kFailed);
    return;
  }
  p.x().result = std::move(combined).value();
  Event(p, "parent_completed",
        {{"aggregate", AggregateName(p.ext().aggregate)}, {"children", p.ext().children.size()}});
  Event(p, "completed", {{"result", p.ext().result}});
  Finish(p, TaskState::kCompleted);
}

void TaskModule::CancelTree(Task& t, const std::string& reason) {
  if (IsFinished(t.state)) return;
  std::shared_ptr<Client> worker;
  if (t.state == TaskState::kRunning) {
    worker = t.ext().claimed_by.lock();
    ReleaseRunning(t);
  }
  t.x().lease_token = 0;
  t.x().error = reason;
  Event(t, "cancelled", {{"reason", reason}});
  NotifyCancelled(t, worker, reason);
  Finish(t, TaskState::kCancelled, /*cancel_children=*/true);
}

void TaskModule::NotifyCancelled(const Task& t, const std::shared_ptr<Client>& worker,
                                 const std::string& reason) {
  if (!worker) return;
  // The worker hears of the cancel only once it is durable, like any other
  // consequence of a write: a crash before the commit leaves it running.
  core_.AfterCommit(
      [worker,
       params = json{{"task_id", TaskId(t.seq)}, {"queue", t.queue()}, {"reason", reason}}] {
        if (!worker->closed()) worker->Notify("task.cancelled", params, /*force=*/true);
      });
}

void TaskModule::Retain(TaskQueue& q, const Task& t) {
  (t.state == TaskState::kFailed ? q.failed_order : q.completed_order).push_back(t.seq);
  TrimRetention(q);
}

void TaskModule::TrimRetention(TaskQueue& q) {
  if (!cascade_.empty()) {
    // A pending step may still read a finished task; the end of the
    // cascade trims.
    if (!q.trim_deferred) {
      q.trim_deferred = true;
      trim_deferred_.push_back(&q);
    }
    return;
  }
  for (const bool failed : {false, true}) {
    auto& order = failed ? q.failed_order : q.completed_order;
    const int64_t keep = failed ? q.config.keep_failed : q.config.keep_completed;
    while (static_cast<int64_t>(order.size()) > keep) {
      const uint64_t old = order.front();
      order.pop_front();
      auto it = tasks_.find(old);
      if (it == tasks_.end()) continue;
      const TaskState state = it->second.state;
      // A task retried since it finished is no longer in this list.
      if (IsFinished(state) && (state == TaskState::kFailed) == failed) Forget(q, it);
    }
  }
}

void TaskModule::Forget(TaskQueue& q, std::unordered_map<uint64_t, Task>::iterator it) {
  // One lookup per forgotten task: a drain forgets one task per completion.
  const uint64_t seq = it->first;
  const Task& t = it->second;
  core_.batch().Delete(Family::kTasks, TaskKey(seq));
  core_.batch().Delete(Family::kTasks, TaskPayloadKey(seq));
  payloads_.Drop(seq);
  --q.counts[static_cast<int>(t.state)];
  if (!t.ext().idempotency_key.empty()) idempotency_.erase({t.queue(), t.ext().idempotency_key});
  tasks_.erase(it);
  // Its seq stays in q.tasks until forgotten ones are the majority.
  if (++q.forgotten > q.tasks.size() / 2) {
    std::erase_if(q.tasks, [this](uint64_t s) { return !tasks_.contains(s); });
    q.forgotten = 0;
  }
}

}  // namespace shim::engine

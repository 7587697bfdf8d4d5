// TaskModule: recovery and the handlers that act on one running task
// (progress, extend, complete, fail) or on any task (cancel, retry), and the
// queue controls.
#include "engine/tasks/tasks.h"

#include <algorithm>

#include "base/json_text.h"
#include "engine/params.h"
#include "engine/pubsub.h"
#include "engine/record_scan.h"
#include "engine/tasks/queue_record.h"
#include "engine/workers.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

TaskModule::TaskModule(Core& core, PubSubModule& pubsub, WorkerModule& workers)
    : core_(core), pubsub_(pubsub), workers_(workers) {}

void TaskModule::Reset() {
  for (auto& w : waiters_) w.answer(Status::Internal("storage failure; claim again"));
  waiters_.clear();
  tasks_.clear();
  queues_.clear();
  dependents_.clear();
  idempotency_.clear();
  running_by_worker_.clear();
  payloads_.Clear();
  cascade_.clear();
  trim_deferred_.clear();
  for (auto& [queue, job] : admin_) {
    for (const ReplyFn& reply : job.replies) reply(Status::Internal("storage failure; ask again"));
  }
  admin_.clear();
}

Status TaskModule::Recover() {
  Reset();
  // Queue settings.
  const Status queues = ScanDecodedRecords<std::string, QueueConfig>(
      core_.store(), kQueueRecords, DecodeQueueConfigKey, DecodeQueueRecord,
      [&](const std::string& name, QueueConfig config) {
        TaskQueue& q = QueueFor(name);
        q.config = std::move(config);
        q.configured = true;
      });
  if (!queues.ok()) return queues;
  // Task records, in seq order. Payloads (tag kTaskPayload) are not read:
  // they stay in the store until a claim or task.get asks for one. The
  // common case — a ready task with nothing rare about it — is indexed right
  // here; the rest need every task loaded first and wait for the pass below.
  std::vector<Task*> later;
  const std::string* last_queue = nullptr;
  TaskQueue* queue = nullptr;
  SHIM_RETURN_IF_ERROR(
      ScanRecords(core_.store(), kTaskRecords, [&](std::string_view k, std::string_view v) {
        uint64_t seq;
        if (!DecodeTaskKey(k, &seq)) return false;
        // Decoded in place, into the table's node: no copy of a million tasks.
        auto [it, inserted] = tasks_.try_emplace(seq);
        Task& t = it->second;
        if (!inserted || !Task::DecodeRecord(seq, v, &t)) {
          if (inserted) tasks_.erase(it);
          return false;
        }
        if (t.queue_name != last_queue) {  // interned: a pointer compare
          last_queue = t.queue_name;
          queue = &QueueFor(t.queue());
        }
        ++queue->counts[static_cast<int>(t.state)];
        queue->tasks.push_back(seq);  // ascending: the scan is in seq order
        next_ready_order_ = std::max(next_ready_order_, t.ready_order + 1);
        if (t.state == TaskState::kReady)
          queue->ready[t.priority].AppendUnsorted({t.ready_order, t.seq});
        if (t.state != TaskState::kReady || t.has_extra()) later.push_back(&t);
        return true;
      }));
  for (auto& [name, tq] : queues_) {
    for (ReadyList& list : tq.ready) list.Sort();
  }

  // Finished tasks go into the retention lists in finish order.
  std::vector<const Task*> finished;
  const int64_t mono = core_.clock().MonoMs();
  // A parent's children, in submit (= seq) order, from each child's
  // `parent`: the parent record does not hold them.
  for (Task* t : later) {
    if (t->has_extra()) t->x().children.clear();
  }
  for (Task* t : later) {
    if (t->ext().parent == 0) continue;
    if (Task* p = Find(t->ext().parent)) p->x().children.push_back(t->seq);
  }
  for (Task* task : later) {
    Task& t = *task;
    const uint64_t seq = t.seq;
    if (!t.ext().idempotency_key.empty()) idempotency_[{t.queue(), t.ext().idempotency_key}] = seq;
    // The prerequisite counters are not stored: recount what is still
    // unfinished (a finished dependency or child was already accounted for,
    // and one dropped by retention had finished). Only tasks with an extra
    // part can have either.
    if (!IsFinished(t.state) && t.has_extra()) {
      TaskExtra& e = t.x();
      e.children_pending = 0;
      for (uint64_t c : e.children) {
        const Task* ct = Find(c);
        if (ct && !IsFinished(ct->state)) ++e.children_pending;
      }
    }
    switch (t.state) {
      case TaskState::kWaiting:
        if (t.has_extra()) {
          TaskExtra& e = t.x();
          e.unmet_dependencies = 0;
          for (uint64_t dep : e.depends_on) {
            const Task* d = Find(dep);
            if (d && !IsFinished(d->state)) {
              dependents_[dep].push_back(seq);
              ++e.unmet_dependencies;
            }
          }
        }
        break;
      case TaskState::kDelayed:
        ScheduleRunAt(t);
        break;
      case TaskState::kReady:
        break;  // indexed during the scan
      case TaskState::kRunning:
        // Full execution lease again after a restart: nothing expires early.
        t.x().lease_expires_mono_ms = mono + t.timeout_ms;
        running_by_worker_[t.ext().worker_id].insert(seq);
        workers_.AdjustActive(t.ext().worker_id, +1);
        ArmLease(t);
        break;
      default:
        finished.push_back(&t);
        break;
    }
    if (!IsFinished(t.state)) ScheduleDeadline(t);
  }
  std::sort(finished.begin(), finished.end(), [](const Task* a, const Task* b) {
    return std::pair(a->finished_at_ms, a->seq) < std::pair(b->finished_at_ms, b->seq);
  });
  for (const Task* t : finished) {
    TaskQueue& q = QueueFor(t->queue());
    (t->state == TaskState::kFailed ? q.failed_order : q.completed_order).push_back(t->seq);
  }
  QueueRechecksAfterRecovery();
  // After the tasks: a drain or delete a crash interrupted goes on.
  return RecoverAdminJobs();
}

Result<Task*> TaskModule::RunningWithToken(Params& p) {
  std::string id = p.Str("task_id", {.min = 1, .max = 64});
  const uint64_t token = static_cast<uint64_t>(p.Int("lease_token", {.min = 0}));
  if (!p.ok()) return p.status();
  auto seq = ParseTaskId(id);
  Task* t = seq ? Find(*seq) : nullptr;
  if (!t) return Status::NotFound("no task '" + id + "'");
  auto not_owner = [&](TaskState state) {
    return Status(StatusCode::kNotOwner,
                  "lease_token " + std::to_string(token) + " does not own task " + id +
                      " (its lease expired and it was handed out again, or it was cancelled)",
                  {{"state", TaskStateName(state)}});
  };
  if (t->state == TaskState::kRunning && t->ext().lease_token == token && token != 0 &&
      t->ext().lease_expires_mono_ms <= core_.clock().MonoMs()) {
    // Its lease ran out but the timer has not run yet (requests are served
    // in between): it stalled all the same; a late worker does not own it.
    Stall(*t);
    t = Find(*seq);  // failed for good, it may have been forgotten by retention
    if (!t) return not_owner(TaskState::kFailed);
  }
  if (t->ext().lease_token != token || token == 0) return not_owner(t->state);
  if (t->state != TaskState::kRunning) {
    return Status(StatusCode::kInvalidState,
                  "task " + id + " is " + TaskStateName(t->state) + ", not running",
                  {{"state", TaskStateName(t->state)}});
  }
  return t;
}

void TaskModule::Progress(Call& call) {
  static constexpr std::string_view kFields[] = {"task_id", "lease_token", "progress", "message"};
  Params p(call.params, kFields);
  auto t = RunningWithToken(p);
  if (!t.ok()) return core_.Reply(call.reply, t.status());
  const json& progress = p.Any("progress");
  auto message = p.OptStr("message", {.max = 4096});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (DumpCompact(progress).size() > 64 * 1024)
    return core_.Reply(call.reply, Status::TooLarge("progress over 64 KiB", 64 * 1024));
  core_.NextRevision();
  (*t)->x().progress = progress;
  (*t)->x().progress_message = message.value_or("");
  Persist(**t);
  json event = {{"progress", progress}, {"worker_id", (*t)->ext().worker_id}};
  if (message) event["message"] = *message;
  Event(**t, "progress", std::move(event));
  core_.Reply(call.reply, json{{"ok", true}});
}

void TaskModule::Extend(Call& call) {
  static constexpr std::string_view kFields[] = {"task_id", "lease_token", "extend_ms"};
  Params p(call.params, kFields);
  auto t = RunningWithToken(p);
  if (!t.ok()) return core_.Reply(call.reply, t.status());
  const int64_t extend = p.Int("extend_ms", {.min = 1, .max = core_.limits().max_ttl_ms});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  // Liveness only: a restart grants the full timeout anyway.
  (*t)->x().lease_expires_mono_ms = core_.clock().MonoMs() + extend;
  ArmLease(**t);
  core_.Reply(call.reply, json{{"lease_expires_at_ms", core_.clock().NowMs() + extend}});
}

void TaskModule::Complete(Call& call) {
  static constexpr std::string_view kFields[] = {"task_id", "lease_token", "result", "claim_next"};
  Params p(call.params, kFields);
  auto found = RunningWithToken(p);
  if (!found.ok()) return core_.Reply(call.reply, found.status());
  const json* result = p.OptAny("result");
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (result && DumpCompact(*result).size() > limits_.max_result_bytes) {
    return core_.Reply(call.reply,
                       Status::TooLarge("result: encoded size over " +
                                            std::to_string(limits_.max_result_bytes) + " bytes",
                                        limits_.max_result_bytes));
  }
  Task& t = **found;
  auto next = ParseClaimNext(p, t);
  if (!next.ok()) return core_.Reply(call.reply, next.status());
  core_.NextRevision();
  ReleaseRunning(t);
  t.x().result = result ? *result : json(nullptr);
  Event(t, "completed",
        {{"worker_id", t.ext().worker_id}, {"attempt", t.attempt}, {"result", t.ext().result}});
  Finish(t, TaskState::kCompleted);  // t may be forgotten by retention now
  ReplyWithClaimNext(call, json{{"ok", true}}, std::move(*next));
}

void TaskModule::Fail(Call& call) {
  static constexpr std::string_view kFields[] = {"task_id", "lease_token", "error", "retry",
                                                 "claim_next"};
  Params p(call.params, kFields);
  auto found = RunningWithToken(p);
  if (!found.ok()) return core_.Reply(call.reply, found.status());
  const json& error = p.Any("error");
  const bool retry = p.OptBool("retry").value_or(true);
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  std::string error_text = error.is_string() ? error.get<std::string>() : DumpCompact(error);
  if (error_text.size() > 64 * 1024) error_text.resize(64 * 1024);
  Task& t = **found;
  auto next = ParseClaimNext(p, t);
  if (!next.ok()) return core_.Reply(call.reply, next.status());
  const uint64_t seq = t.seq;
  core_.NextRevision();
  AttemptFailed(t, error_text, retry, /*apply_backoff=*/true, "failed");
  const Task* after = Find(seq);
  const TaskState state = after ? after->state : TaskState::kFailed;
  const bool again =
      state == TaskState::kDelayed || state == TaskState::kReady || state == TaskState::kRunning;
  ReplyWithClaimNext(
      call,
      json{{"state", TaskStateName(state)},
           {"next_run_at_ms", again && after ? json(after->run_at_ms) : json(nullptr)}},
      std::move(*next));
}

void TaskModule::Cancel(Call& call) {
  static constexpr std::string_view kFields[] = {"task_id", "reason"};
  Params p(call.params, kFields);
  std::string id = p.Str("task_id", {.min = 1, .max = 64});
  auto reason = p.OptStr("reason", {.max = 4096});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  auto seq = ParseTaskId(id);
  Task* t = seq ? Find(*seq) : nullptr;
  if (!t) return core_.Reply(call.reply, Status::NotFound("no task '" + id + "'"));
  if (t->state == TaskState::kCancelled)
    return core_.Reply(call.reply, json{{"state", "cancelled"}});
  if (IsFinished(t->state)) {
    return core_.Reply(call.reply, Status(StatusCode::kInvalidState,
                                          "task " + id + " is already " + TaskStateName(t->state),
                                          {{"state", TaskStateName(t->state)}}));
  }
  core_.NextRevision();
  CancelTree(*t, reason.value_or("cancelled by a client"));
  core_.Reply(call.reply, json{{"state", "cancelled"}});
}

void TaskModule::Retry(Call& call) {
  static constexpr std::string_view kFields[] = {"task_id"};
  Params p(call.params, kFields);
  std::string id = p.Str("task_id", {.min = 1, .max = 64});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  auto seq = ParseTaskId(id);
  Task* t = seq ? Find(*seq) : nullptr;
  if (!t) return core_.Reply(call.reply, Status::NotFound("no task '" + id + "'"));
  if (t->state != TaskState::kFailed && t->state != TaskState::kCancelled) {
    return core_.Reply(call.reply, Status(StatusCode::kInvalidState,
                                          "only failed or cancelled tasks can be retried; " + id +
                                              " is " + TaskStateName(t->state),
                                          {{"state", TaskStateName(t->state)}}));
  }
  if (TaskQueue& q = QueueFor(t->queue()); q.deleting) {
    return core_.Reply(
        call.reply, Status(StatusCode::kInvalidState, "queue '" + q.name + "' is being deleted"));
  }
  core_.NextRevision();
  // It leaves the retention list it finished into; if it finishes again it
  // is appended anew, and must not be forgotten for its old position.
  TaskQueue& q = QueueFor(t->queue());
  auto& order = t->state == TaskState::kFailed ? q.failed_order : q.completed_order;
  order.erase(std::remove(order.begin(), order.end(), t->seq), order.end());
  // A fresh set of attempts; their history stays in t->ext().attempts.
  t->attempt = 0;
  t->x().error.clear();
  t->finished_at_ms = 0;
  t->x().lease_token = 0;
  t->run_at_ms = 0;
  Event(*t, "retrying", {{"manual", true}, {"attempt", t->attempt}});
  MakeReady(*t);
  core_.Reply(call.reply, json{{"task_id", id}, {"state", TaskStateName(t->state)}});
}

void TaskModule::OnWorkerGone(const std::string& worker_id) {
  auto it = running_by_worker_.find(worker_id);
  if (it == running_by_worker_.end()) return;
  const std::set<uint64_t> running = it->second;
  for (uint64_t seq : running) {
    Task* t = Find(seq);
    if (!t || t->state != TaskState::kRunning) continue;
    AttemptFailed(*t, "worker " + worker_id + " died or left while running it", /*retry=*/true,
                  /*apply_backoff=*/true, "stalled");
  }
}

void TaskModule::PersistQueueConfig(TaskQueue& q) {
  q.configured = true;
  core_.batch().Put(Family::kQueues, QueueConfigKey(q.name), EncodeQueueRecord(q.config));
}

void TaskModule::QueuePause(Call& call) { SetQueuePaused(call, true); }

void TaskModule::QueueResume(Call& call) { SetQueuePaused(call, false); }

void TaskModule::SetQueuePaused(Call& call, bool paused) {
  static constexpr std::string_view kFields[] = {"queue"};
  Params p(call.params, kFields);
  std::string name = p.Str("queue", {.min = 1, .max = limits_.max_queue_name_bytes});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  core_.NextRevision();
  TaskQueue& q = QueueFor(name);
  q.config.paused = paused;
  PersistQueueConfig(q);
  if (!paused) Dispatch(name);  // what waited on the pause can run now
  core_.Reply(call.reply, json{{"queue", name}, {"paused", paused}});
}

void TaskModule::QueueConfigure(Call& call) {
  static constexpr std::string_view kFields[] = {
      "queue", "routing", "starvation_ms", "saturation_ready", "keep_completed", "keep_failed"};
  Params p(call.params, kFields);
  std::string name = p.Str("queue", {.min = 1, .max = limits_.max_queue_name_bytes});
  auto routing = p.OptStr("routing");
  auto starvation = p.OptInt("starvation_ms", {.min = 1});
  auto saturation = p.OptInt("saturation_ready", {.min = 1});
  auto keep_completed = p.OptInt("keep_completed", {.min = 0, .max = 10'000'000});
  auto keep_failed = p.OptInt("keep_failed", {.min = 0, .max = 10'000'000});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  std::optional<Routing> r;
  if (routing) {
    r = ParseRouting(*routing);
    if (!r) {
      return core_.Reply(call.reply,
                         Status::InvalidParams(
                             "routing", "routing must be least_loaded, round_robin or capability"));
    }
  }
  core_.NextRevision();
  TaskQueue& q = QueueFor(name);
  if (r) q.config.routing = *r;
  if (starvation) q.config.starvation_ms = *starvation;
  if (saturation) q.config.saturation_ready = *saturation;
  if (keep_completed) q.config.keep_completed = *keep_completed;
  if (keep_failed) q.config.keep_failed = *keep_failed;
  PersistQueueConfig(q);
  TrimRetention(q);  // smaller limits apply at once
  json out = QueueConfigJson(q.config);
  out["queue"] = name;
  core_.Reply(call.reply, out);
}

}  // namespace shim::engine

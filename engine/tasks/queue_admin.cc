// TaskModule: queue.drain and queue.delete, run as jobs in slices.
//
// A drain removes the tasks of a queue that have not started (waiting,
// delayed, ready) among those that existed when it was asked for; a delete
// removes the queue with every task in it, its settings and its stats. Both
// erase a task outright — record, payload, indexes — unless other tasks
// hang on it (tasks that depend on it, its parent, its children): such a
// task is cancelled instead, as task.cancel would (without cancelling its
// children), so that what waits on it fails through the ordinary cascade
// and nothing waits forever. A delete erases the cancelled ones too, once
// their cascade is over.
//
// Why slices: a queue holds up to millions of tasks, and one engine turn
// must stay short (docs/design.md, style rule 11). Why a stored record per
// job: the reply waits for the last slice, and a crash before it must not
// leave a drain or a delete half done; recovery reads the record and goes
// on. A delete holds the queue's ready tasks back (TaskQueue::deleting) and
// refuses new submits and retries for its queue while it runs.
#include <algorithm>

#include "base/enum_names.h"
#include "engine/params.h"
#include "engine/pubsub.h"
#include "engine/record_scan.h"
#include "engine/tasks/queue_record.h"
#include "engine/tasks/tasks.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

namespace {

constexpr EnumNames<AdminOp, 2> kAdminOpNames{
    {{AdminOp::kDrain, "drain"}, {AdminOp::kDelete, "delete"}}};

}  // namespace

const char* AdminOpName(AdminOp op) { return kAdminOpNames.Name(op); }
std::optional<AdminOp> ParseAdminOp(std::string_view s) { return kAdminOpNames.Parse(s); }

void TaskModule::QueueDrain(Call& call) {
  static constexpr std::string_view kFields[] = {"queue"};
  Params p(call.params, kFields);
  std::string name = p.Str("queue", {.min = 1, .max = limits_.max_queue_name_bytes});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  auto qit = queues_.find(name);
  if (qit == queues_.end())
    return core_.Reply(call.reply, Status::NotFound("no queue '" + name + "'"));
  if (qit->second.deleting) {
    return core_.Reply(call.reply,
                       Status(StatusCode::kInvalidState, "queue '" + name + "' is being deleted"));
  }
  StartAdmin(call, name, AdminOp::kDrain, false);
}

void TaskModule::QueueDelete(Call& call) {
  static constexpr std::string_view kFields[] = {"queue", "force"};
  Params p(call.params, kFields);
  std::string name = p.Str("queue", {.min = 1, .max = limits_.max_queue_name_bytes});
  const bool force = p.OptBool("force").value_or(false);
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  auto qit = queues_.find(name);
  if (qit == queues_.end())
    return core_.Reply(call.reply, Status::NotFound("no queue '" + name + "'"));
  const int64_t running = qit->second.counts[static_cast<int>(TaskState::kRunning)];
  if (running > 0 && !force) {
    return core_.Reply(
        call.reply, Status(StatusCode::kInvalidState,
                           "queue '" + name + "' has " + std::to_string(running) +
                               " running task(s); wait for them, cancel them, or delete with force "
                               "(their leases end and their workers' completes are refused)",
                           {{"running", running}}));
  }
  StartAdmin(call, name, AdminOp::kDelete, force);
}

void TaskModule::StartAdmin(Call& call, const std::string& queue, AdminOp op, bool force) {
  // The revision that marks the drain is the first one no earlier task can
  // have: tasks submitted from here on are not drained.
  const uint64_t rev = core_.NextRevision();
  auto [it, added] = admin_.try_emplace(queue);
  AdminJob& job = it->second;
  if (added) job.queue = queue;
  // A second drain joins the first and takes in what was submitted since;
  // a delete takes over a drain (it removes all the drain would).
  if (op == AdminOp::kDelete) {
    if (job.record.op != AdminOp::kDelete) job.cursor = 0;
    job.record.op = AdminOp::kDelete;
    job.record.force = job.record.force || force;
    QueueFor(queue).deleting = true;
  } else {
    job.record.below = rev;
  }
  job.replies.push_back(call.reply);
  // Stored at once: the first slice may not reach this job (others take
  // its budget), and a crash must not lose a job once it holds the queue.
  core_.batch().Put(Family::kQueues, QueueAdminKey(queue), EncodeQueueAdminRecord(job.record));
  // Small queues are done within the request's own group; the rest goes on
  // in later turns, unless a cascade is under way (it runs first).
  if (cascade_.empty()) RunAdmin();
}

void TaskModule::RunAdmin() {
  size_t budget = kAdminSlice;
  // A cancel here queues its cascade for the engine's later turns rather
  // than running a slice of it per cancelled task inside this one.
  const bool was_cascading = cascading_;
  cascading_ = true;
  for (auto it = admin_.begin(); it != admin_.end() && budget > 0;) {
    AdminJob& job = it->second;
    if (!RunAdminJob(job, budget)) {
      core_.batch().Put(Family::kQueues, QueueAdminKey(job.queue),
                        EncodeQueueAdminRecord(job.record));
      ++it;
      continue;
    }
    FinishAdminJob(job);
    it = admin_.erase(it);
  }
  cascading_ = was_cascading;
}

bool TaskModule::RunAdminJob(AdminJob& job, size_t& budget) {
  auto qit = queues_.find(job.queue);
  if (qit == queues_.end()) return true;
  TaskQueue& q = qit->second;
  const bool drain = job.record.op == AdminOp::kDrain;
  while (budget > 0) {
    // By seq, not by position: erasing compacts q.tasks now and then.
    auto pos = std::lower_bound(q.tasks.begin(), q.tasks.end(), job.cursor);
    if (pos == q.tasks.end() || (drain && *pos >= job.record.below)) break;
    job.cursor = *pos + 1;
    auto it = tasks_.find(*pos);
    if (it == tasks_.end()) continue;  // forgotten by retention
    --budget;
    if (RemoveForAdmin(job, q, it)) ++job.record.removed;
  }
  if (budget == 0) return false;  // maybe more in this pass
  if (drain) return true;
  int64_t left = 0;
  for (int64_t c : q.counts) left += c;
  if (left == 0 && cascade_.empty()) return true;
  // Another pass for what this one skipped or cancelled, once the cascades
  // those cancels set off are over (until then a step may read them).
  if (cascade_.empty()) {
    job.cursor = 0;
    job.again = false;
  }
  return false;
}

bool TaskModule::RemoveForAdmin(AdminJob& job, TaskQueue& q,
                                std::unordered_map<uint64_t, Task>::iterator it) {
  Task& t = it->second;
  const bool drain = job.record.op == AdminOp::kDrain;
  if (IsFinished(t.state)) {
    if (drain) return false;
    if (!cascade_.empty()) {
      job.again = true;
      return false;
    }
    Forget(q, it);
    return true;
  }
  const std::string reason = "queue '" + q.name + "' " + (drain ? "drained" : "deleted");
  if (t.state == TaskState::kRunning) {
    if (drain) return false;
    // Only a forced delete gets here: the lease ends now, so the worker's
    // complete or fail is refused, and the worker is told to stop.
    std::shared_ptr<Client> worker = t.ext().claimed_by.lock();
    ReleaseRunning(t);
    t.x().lease_token = 0;
    NotifyCancelled(t, worker, reason);
  }
  const bool linked =
      dependents_.contains(t.seq) || t.ext().parent != 0 || !t.ext().children.empty();
  if (linked) {
    t.x().error = reason;
    Event(t, "cancelled", {{"reason", reason}});
    Finish(t, TaskState::kCancelled);
    job.again = !drain;
    return drain;  // a delete counts it when it erases it
  }
  Erase(q, it);
  return true;
}

void TaskModule::Erase(TaskQueue& q, std::unordered_map<uint64_t, Task>::iterator it) {
  Task& t = it->second;
  if (t.state == TaskState::kReady) q.RemoveReady(t);
  // Its timers (run_at, deadline, lease) find no task and do nothing; a
  // task waiting on others stays in their dependents lists, where a missing
  // task is skipped.
  Forget(q, it);
}

void TaskModule::FinishAdminJob(AdminJob& job) {
  core_.batch().Delete(Family::kQueues, QueueAdminKey(job.queue));
  const bool drain = job.record.op == AdminOp::kDrain;
  json result = {{"queue", job.queue}, {"removed", job.record.removed}};
  if (!drain) {
    if (auto qit = queues_.find(job.queue); qit != queues_.end()) {
      std::erase(trim_deferred_, &qit->second);
      queues_.erase(qit);
    }
    core_.batch().Delete(Family::kQueues, QueueConfigKey(job.queue));
  }
  // The events channel stays: its last event says what became of the queue.
  pubsub_.PublishInternal("events." + job.queue, json{{"type", drain ? "drained" : "deleted"},
                                                      {"queue", job.queue},
                                                      {"removed", job.record.removed}});
  for (const ReplyFn& reply : job.replies) core_.Reply(reply, result);
}

Status TaskModule::RecoverAdminJobs() {
  return ScanDecodedRecords<std::string, QueueAdminRecord>(
      core_.store(), kQueueAdminRecords, DecodeQueueAdminKey, DecodeQueueAdminRecord,
      [&](const std::string& name, QueueAdminRecord record) {
        AdminJob& job = admin_[name];
        job.queue = name;
        job.record = record;
        QueueFor(name).deleting = record.op == AdminOp::kDelete;
      });
}

}  // namespace shim::engine

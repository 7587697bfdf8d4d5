// TaskModule: durable priority task queues (task.* and queue.* methods).
//
// Lifecycle: waiting (dependencies or children unmet) -> delayed (run time
// in the future) -> ready -> running -> completed | failed | cancelled.
// Every transition is one write in the open group: the task record, the
// records of every task it touches (dependents, parent), and its event on
// channel `events.<queue>`.
//
// Claims take the highest priority, then the oldest ready task, among the
// tasks whose `requires` the worker has. A claim that finds nothing may wait
// server-side; when a task becomes ready, the queue's routing picks among
// the waiting workers (least_loaded, round_robin, capability). A claim gives
// an execution lease with a fencing `lease_token` (a fresh revision):
// progress/extend/complete/fail need the current token, so a worker that
// stalled past its lease cannot complete a task that was handed out again.
// Leases that lapse and workers that die return their tasks as failed
// attempts. Files (engine/tasks/): tasks.cc (handlers), submit.cc
// (validation, batches, cycles), lifecycle.cc (transitions), claim.cc
// (claims, waiters, routing), query.cc (get/list/stats), payload.cc
// (payloads, read from the store on demand), queue_admin.cc (queue.drain,
// queue.delete).
// Engine thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/call.h"
#include "engine/core.h"
#include "engine/params.h"
#include "engine/tasks/payload_cache.h"
#include "engine/tasks/queue_admin_record.h"
#include "engine/tasks/task.h"
#include "engine/tasks/task_queue.h"

namespace shim::engine {

class PubSubModule;
class WorkerModule;

struct TaskLimits {
  size_t max_batch = 10'000;           // tasks per task.submit_batch
  size_t max_payload_bytes = 1 << 20;  // encoded JSON
  size_t max_result_bytes = 1 << 20;
  size_t max_dependencies = 1000;
  size_t max_claim = 100;  // task.claim max
  size_t max_claim_waiters = 10'000;
  // 256 (the channel limit) less "events.": every queue has its events channel.
  size_t max_queue_name_bytes = 249;
  // Payloads of ready tasks kept in memory so a claim need not read them
  // from the store (PayloadCache). 8 MiB holds ~100k small payloads.
  size_t payload_cache_bytes = 8 << 20;
};

class TaskModule {
 public:
  TaskModule(Core& core, PubSubModule& pubsub, WorkerModule& workers);

  Status Recover();
  void Reset();

  void Submit(Call& call);
  void SubmitBatch(Call& call);
  void Claim(Call& call);
  void Progress(Call& call);
  void Extend(Call& call);
  void Complete(Call& call);
  void Fail(Call& call);
  void Cancel(Call& call);
  void Retry(Call& call);
  void Get(Call& call);
  void List(Call& call);
  void QueueStats(Call& call);
  void QueueList(Call& call);
  void QueuePause(Call& call);
  void QueueResume(Call& call);
  void QueueConfigure(Call& call);
  void QueueDrain(Call& call);
  void QueueDelete(Call& call);

  // Returns the running tasks of a dead or deregistered worker.
  void OnWorkerGone(const std::string& worker_id);
  // Ends every waiting claim of this connection now, each answered with no
  // tasks as if its wait had run out, freeing its place among the waiting
  // claims (max_claim_waiters) and its timer.
  void EndWaits(uint64_t client_id);

  // Cascades (cascade.cc): what a finished task sets off in its
  // dependents, its parent and its children runs as queued steps, never as
  // recursion, at most kCascadeSlice steps per engine turn. A cascade
  // larger than that goes on in later turns (RunCascade, from the engine's
  // timer turn), each slice in its own group, so other clients are served
  // in between. Recovery finds an interrupted cascade from the task states
  // and queues what is left.
  bool cascade_pending() const { return !cascade_.empty(); }
  // Runs one slice of the pending cascade.
  void RunCascade();
  static constexpr size_t kCascadeSlice = 512;

  // Queue admin (queue_admin.cc): queue.drain and queue.delete touch every
  // task of a queue, which can be millions, so they run as jobs of at most
  // kAdminSlice tasks per engine turn (RunAdmin, from the engine's timer
  // turn once no cascade is pending), each slice in its own group, and
  // answer once the last slice is durable. A job's progress is stored
  // (engine/tasks/queue_admin_record.h), so recovery finishes a job a crash
  // interrupted.
  bool admin_pending() const { return !admin_.empty(); }
  // Runs one slice of the pending admin jobs.
  void RunAdmin();
  static constexpr size_t kAdminSlice = 4096;

  size_t task_count() const { return tasks_.size(); }
  const PayloadCache& payload_cache() const { return payloads_; }
  const TaskLimits& limits() const { return limits_; }

 private:
  // ---- submit (submit.cc)
  struct Spec;  // one validated task of a submit
  Result<Spec> ParseSpec(const nlohmann::json& j, size_t index);
  Result<nlohmann::json> SubmitSpecs(std::vector<Spec>& specs, bool batch);

  // ---- lifecycle (lifecycle.cc)
  Task* Find(uint64_t seq);
  TaskQueue& QueueFor(const std::string& name);
  void Persist(const Task& t);
  void Event(const Task& t, const char* type, nlohmann::json extra = nlohmann::json::object());
  void SetState(Task& t, TaskState s);
  // Puts a task whose prerequisites are met into delayed or ready.
  void Schedule(Task& t);
  void MakeReady(Task& t);
  void ScheduleRunAt(const Task& t);
  void ScheduleDeadline(const Task& t);
  void ArmLease(const Task& t);
  // The running task's execution lease has run out: a failed attempt.
  void Stall(Task& t);
  // Makes `t` final and queues what that sets off in its dependents and
  // parent, and, with `cancel_children`, the cancel of its children; runs a
  // slice of the cascade unless one is running. `t` may be forgotten by
  // retention when it returns.
  void Finish(Task& t, TaskState final_state, bool cancel_children = false);
  // A failed attempt: retry with backoff (or at once) or fail for good.
  void AttemptFailed(Task& t, const std::string& error, bool retry, bool apply_backoff,
                     const char* event);
  void ReleaseRunning(Task& t);
  void OnPrerequisiteDone(Task& waiter);
  // What a finished task `done` does to one task waiting on it.
  void ResolveDependent(const Task& done, Task& dependent);
  // What a finished child does to its parent.
  void NotifyParent(const Task& child);
  // A parent fails because a child failed or was cancelled; its other
  // children are cancelled (queued).
  void FailParentForChild(Task& parent, const Task& child);
  void CompleteParentByAggregate(Task& parent);
  // Cancels `t` now and queues the cancel of its subtree.
  void CancelTree(Task& t, const std::string& reason);

  // ---- cascades (cascade.cc)
  struct CascadeStep {
    enum class Kind : uint8_t {
      kDependents,  // `seq` finished: resolve the tasks waiting on it
      kParent,      // `seq` finished: tell its parent
      kChildren,    // `seq` failed or was cancelled: cancel its children
      kRecheck,     // after recovery: `seq` may need to fail, be cancelled or run
    };
    Kind kind;
    uint64_t seq;
    size_t next = 0;  // kDependents, kChildren: the next index to handle
  };
  void QueueStep(CascadeStep::Kind kind, uint64_t seq) { cascade_.push_back({kind, seq}); }
  // Runs (part of) `step`, taking from `budget`; true when it is done.
  bool RunStep(CascadeStep& step, size_t& budget);
  // At the end of recovery: queues a kRecheck for every unfinished task
  // that an interrupted cascade left behind.
  void QueueRechecksAfterRecovery();
  void Recheck(Task& t);
  // Remembers a finished task for retention and drops the oldest beyond
  // keep_completed / keep_failed.
  void Retain(TaskQueue& q, const Task& t);
  void TrimRetention(TaskQueue& q);
  // Deletes a finished task of `q` from memory and the store.
  void Forget(TaskQueue& q, std::unordered_map<uint64_t, Task>::iterator it);
  // The running task that params' task_id names, if its lease_token owns it.
  // Errors: the params' own, NotFound, NotOwner, InvalidState (not running).
  // `p`'s table (the calling method's) holds task_id and lease_token.
  Result<Task*> RunningWithToken(Params& p);

  // Tells the connection that claimed a running task that it is no longer
  // its to run, once that is durable (a task.cancelled notification).
  void NotifyCancelled(const Task& t, const std::shared_ptr<Client>& worker,
                       const std::string& reason);

  // ---- queue admin (queue_admin.cc)
  struct AdminJob {
    std::string queue;
    QueueAdminRecord record;
    uint64_t cursor = 0;  // the next seq of the queue's tasks to look at
    // delete: a finished task was skipped while a cascade was pending (a
    // step may still read it), or a task was cancelled rather than erased:
    // another pass is needed once the cascade is over.
    bool again = false;
    std::vector<ReplyFn> replies;  // answered {queue, removed} at the end
  };
  Status RecoverAdminJobs();
  // Starts (or joins) the job of `queue`, runs its first slice in the
  // caller's group and answers `call` when the job is done.
  void StartAdmin(Call& call, const std::string& queue, AdminOp op, bool force);
  // Runs `job` on, taking from `budget`; true when it is done.
  bool RunAdminJob(AdminJob& job, size_t& budget);
  // One task of a drained or deleted queue: true if it left the queue now.
  bool RemoveForAdmin(AdminJob& job, TaskQueue& q, std::unordered_map<uint64_t, Task>::iterator it);
  void FinishAdminJob(AdminJob& job);
  // Deletes a task of `q` in any state but running from memory and the
  // store, at once (Forget is for finished ones).
  void Erase(TaskQueue& q, std::unordered_map<uint64_t, Task>::iterator it);

  // ---- claims (claim.cc)
  // A validated task.claim (or the claim_next of task.complete / task.fail).
  struct ClaimRequest {
    std::string worker_id;
    std::vector<std::string> queues;
    size_t max = 1;
    int64_t wait_ms = 0;
  };
  // Validates claim params; `field_prefix` ("claim_next.") names the fields
  // of a nested claim in errors. Refuses a worker marked dead.
  Result<ClaimRequest> ParseClaim(const nlohmann::json& params, std::string_view field_prefix);
  // A claim's outcome: the JSON text of its array of claim records, or why
  // it failed. Called once, when the claim is served (at once, or later
  // for a claim that waits); it answers through Core, which holds the
  // answer until the group is durable.
  using ClaimAnswer = std::function<void(Result<std::string> tasks_json)>;
  // Claims now, or parks the claim until a task is ready or wait_ms passes.
  void StartClaim(ClaimRequest req, const std::shared_ptr<Client>& client, ClaimAnswer answer);
  // Parses `claim_next` of a finishing call (null when absent); `p`'s
  // table holds claim_next.
  Result<std::optional<ClaimRequest>> ParseClaimNext(Params& p, const Task& finishing);
  // Replies `base`, plus the claim_next tasks when asked for.
  void ReplyWithClaimNext(Call& call, nlohmann::json base, std::optional<ClaimRequest> next);
  // Answers `base` with its "tasks" set to the claimed records' text: as
  // text through `reply_encoded` when the caller takes it, else as a
  // document.
  void ReplyWithTasks(const ReplyFn& reply, const EncodedReplyFn& reply_encoded,
                      nlohmann::json base, const std::string& tasks_json);
  struct ClaimWaiter {
    uint64_t id;
    std::string worker_id;
    std::vector<std::string> queues;
    size_t max;
    uint64_t client_id;
    std::weak_ptr<Client> client;
    ClaimAnswer answer;
    int64_t since_mono_ms;
    TimerQueue::TimerId timer;  // ends the wait at wait_ms
  };
  // Removes a waiting claim that is answered (or dropped) otherwise than by
  // its timer, and cancels that timer.
  std::list<ClaimWaiter>::iterator EraseWaiter(std::list<ClaimWaiter>::iterator it);
  // Claims up to `max` tasks for the worker; returns the JSON text of the
  // array of their claim records. Built as text, with each payload's stored
  // text spliced in: a claim is on every task's path, and building the
  // records as documents (payload parsed, then dumped again) was a fifth of
  // the request thread in a queue drain.
  std::string ClaimFor(const std::string& worker_id, const std::vector<std::string>& queues,
                       size_t max, const std::shared_ptr<Client>& client);
  // One claim record's JSON text, members in the order the library sorts them.
  std::string ClaimRecord(const Task& t) const;
  Task* BestReady(const std::vector<std::string>& queues, const std::vector<std::string>& caps);
  void StartRunning(Task& t, const std::string& worker_id, const std::shared_ptr<Client>& client);
  size_t FreeSlots(const std::string& worker_id, size_t want) const;
  std::vector<std::string> CapabilitiesOf(const std::string& worker_id) const;
  // Serves waiting claims from queue `q` while it has ready tasks.
  void Dispatch(const std::string& queue);
  std::list<ClaimWaiter>::iterator PickWaiter(TaskQueue& q, const Task& t);

  // ---- payloads (payload.cc)
  // A task's payload, from the cache or the store (null if it cannot be read).
  nlohmann::json LoadPayload(uint64_t seq) const;
  // The same as JSON text ("null" if it cannot be read).
  std::string LoadPayloadText(uint64_t seq) const;
  // Hands payloads written in the open group to the cache, which holds
  // them at least until that group has committed (the store cannot return
  // them before).
  void HoldPayloads(std::vector<std::pair<uint64_t, std::string>> payloads);

  // ---- queries (query.cc)
  nlohmann::json Describe(const Task& t, bool with_payload) const;
  void PersistQueueConfig(TaskQueue& q);
  // queue.pause and queue.resume: one revision that stores the flag; a
  // resume dispatches what the pause held back.
  void SetQueuePaused(Call& call, bool paused);

  Core& core_;
  PubSubModule& pubsub_;
  WorkerModule& workers_;
  TaskLimits limits_;
  std::unordered_map<uint64_t, Task> tasks_;
  std::map<std::string, TaskQueue, std::less<>> queues_;
  std::unordered_map<uint64_t, std::vector<uint64_t>> dependents_;  // dep -> tasks waiting on it
  std::map<std::pair<std::string, std::string>, uint64_t> idempotency_;  // (queue, key) -> seq
  std::unordered_map<std::string, std::set<uint64_t>> running_by_worker_;
  std::list<ClaimWaiter> waiters_;
  PayloadCache payloads_{limits_.payload_cache_bytes};
  uint64_t next_waiter_id_ = 1;
  uint64_t next_ready_order_ = 1;
  // Pending cascade steps, oldest first. While any is pending no finished
  // task is forgotten by retention (the steps and a recovery after a crash
  // read them): TrimRetention defers to the end of the cascade.
  std::deque<CascadeStep> cascade_;
  bool cascading_ = false;  // RunCascade is on the stack
  std::vector<TaskQueue*> trim_deferred_;
  // Admin jobs under way, by queue; at most one per queue.
  std::map<std::string, AdminJob, std::less<>> admin_;
};

}  // namespace shim::engine

#include "engine/engine.h"

#include <algorithm>
#include <thread>

#include "engine/leases.h"
#include "engine/locks.h"
#include "engine/params.h"
#include "engine/pubsub.h"
#include "engine/record_scan.h"
#include "engine/sessions/sessions.h"
#include "engine/state.h"
#include "engine/tasks/tasks.h"
#include "engine/workers.h"
#include "storage/failpoint.h"
#include "storage/key_codec.h"

namespace shim::engine {

using nlohmann::json;

Result<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  if (!options.clock || !options.store) return Status::Internal("engine needs a clock and a store");
  std::unique_ptr<Engine> engine(new Engine(options));
  SHIM_RETURN_IF_ERROR(engine->Recover());
  return engine;
}

Engine::Engine(const EngineOptions& options)
    : core_(*options.clock, *options.store, options.limits),
      pubsub_(std::make_unique<PubSubModule>(core_)),
      leases_(std::make_unique<LeaseModule>(core_)),
      locks_(std::make_unique<LockModule>(core_, *leases_)),
      state_(std::make_unique<StateModule>(core_, *leases_, *locks_)),
      workers_(std::make_unique<WorkerModule>(core_, *pubsub_)),
      tasks_(std::make_unique<TaskModule>(core_, *pubsub_, *workers_)),
      sessions_(std::make_unique<SessionModule>(core_, *pubsub_, *state_, options.risk)) {
  // A dead or departed worker's running tasks go back to their queues.
  workers_->OnDead([this](const std::string& id) { tasks_->OnWorkerGone(id); });
  // A lease's end deletes its keys and releases its locks in the same write.
  leases_->OnEnd([this](uint64_t id) { state_->DeleteForLease(id); });
  leases_->OnEnd([this](uint64_t id) { locks_->ReleaseForLease(id); });
  RegisterMethods();
}

Engine::~Engine() = default;

Status Engine::Recover() {
  auto rev = core_.store().Get(storage::Family::kMeta, RevisionKey());
  if (!rev.ok()) return rev.status();
  uint64_t revision = 0;
  if (rev.value() && !storage::ReadU64(*rev.value(), &revision)) {
    return CorruptRecord({"revision", storage::Family::kMeta, storage::KeyTag::kMeta, {}},
                         RevisionKey());
  }
  core_.set_revision(revision);
  recovery_phases_.clear();
  auto timed = [this](const char* name, auto&& recover) {
    const int64_t start = core_.clock().MonoMs();
    Status s = recover();
    recovery_phases_.push_back({name, core_.clock().MonoMs() - start});
    return s;
  };
  // Leases first: state and locks refer to them.
  SHIM_RETURN_IF_ERROR(timed("leases", [&] { return leases_->Recover(); }));
  // The key table and the task table are the two big indexes (about 1 s
  // each with a million entries). State's Load touches only its own module
  // and the store, so it runs on a second thread while the others load
  // here, on the second core; its purge timers are set after the join.
  Status state_status;
  int64_t state_ms = 0;
  std::thread state_loader([&] {
    const int64_t start = core_.clock().MonoMs();
    state_status = state_->Load();
    state_ms = core_.clock().MonoMs() - start;
  });
  Status rest = [&]() -> Status {
    SHIM_RETURN_IF_ERROR(timed("locks", [&] { return locks_->Recover(); }));
    SHIM_RETURN_IF_ERROR(timed("pubsub", [&] { return pubsub_->Recover(); }));
    SHIM_RETURN_IF_ERROR(timed("workers", [&] { return workers_->Recover(); }));
    // After workers: counts their active tasks.
    SHIM_RETURN_IF_ERROR(timed("tasks", [&] { return tasks_->Recover(); }));
    return timed("sessions", [&] { return sessions_->Recover(); });
  }();
  state_loader.join();
  recovery_phases_.push_back({"state (in parallel)", state_ms});
  SHIM_RETURN_IF_ERROR(state_status);
  SHIM_RETURN_IF_ERROR(rest);
  state_->SchedulePurgesOfLoadedKeys();
  return Status::Ok();
}

// Every method says whether it may write to the store (`writes`, on any of
// its paths: lease.keepalive ends an expired lease, worker.heartbeat
// revives a dead worker, recovery.check with ack marks a session
// recovered): a read-only engine refuses those and serves the rest.
void Engine::RegisterMethods() {
  constexpr MethodTraits kReads{};
  auto bind = [this](auto* module, void (std::remove_pointer_t<decltype(module)>::*fn)(Call&)) {
    return [module, fn](Call& call) { (module->*fn)(call); };
  };
  StateModule* st = state_.get();
  // state.get and state.list copy the stored values' text into their
  // answers; a claim, complete or fail answers with a payload's text.
  Register("state.get", bind(st, &StateModule::Get), {.answers_encoded = true});
  Register("state.set", bind(st, &StateModule::Set), {.writes = true});
  Register("state.patch", bind(st, &StateModule::Patch), {.writes = true});
  Register("state.incr", bind(st, &StateModule::Incr), {.writes = true});
  Register("state.del", bind(st, &StateModule::Del), {.writes = true});
  Register("state.list", bind(st, &StateModule::List), {.answers_encoded = true});
  Register("state.txn", bind(st, &StateModule::Txn), {.writes = true});
  PubSubModule* ps = pubsub_.get();
  Register("pubsub.publish", bind(ps, &PubSubModule::Publish), {.writes = true});
  Register("pubsub.subscribe", bind(ps, &PubSubModule::Subscribe), kReads);
  Register("pubsub.unsubscribe", bind(ps, &PubSubModule::Unsubscribe), kReads);
  Register("pubsub.history", bind(ps, &PubSubModule::History), kReads);
  Register("pubsub.configure", bind(ps, &PubSubModule::Configure), {.writes = true});
  LeaseModule* le = leases_.get();
  Register("lease.grant", bind(le, &LeaseModule::Grant), {.writes = true});
  Register("lease.keepalive", bind(le, &LeaseModule::Keepalive), {.writes = true});
  Register("lease.revoke", bind(le, &LeaseModule::Revoke), {.writes = true});
  Register("lease.list", bind(le, &LeaseModule::List), kReads);
  LockModule* lk = locks_.get();
  Register("lock.acquire", bind(lk, &LockModule::Acquire), {.writes = true});
  Register("lock.extend", bind(lk, &LockModule::Extend), {.writes = true});
  Register("lock.release", bind(lk, &LockModule::Release), {.writes = true});
  Register("lock.status", bind(lk, &LockModule::GetStatus), kReads);
  Register("lock.list", bind(lk, &LockModule::List), kReads);
  WorkerModule* wk = workers_.get();
  Register("worker.register", bind(wk, &WorkerModule::Register), {.writes = true});
  Register("worker.heartbeat", bind(wk, &WorkerModule::Heartbeat), {.writes = true});
  Register("worker.deregister", bind(wk, &WorkerModule::Deregister), {.writes = true});
  Register("worker.list", bind(wk, &WorkerModule::List), kReads);
  TaskModule* tk = tasks_.get();
  Register("task.submit", bind(tk, &TaskModule::Submit), {.writes = true});
  Register("task.submit_batch", bind(tk, &TaskModule::SubmitBatch), {.writes = true});
  Register("task.claim", bind(tk, &TaskModule::Claim), {.writes = true, .answers_encoded = true});
  Register("task.progress", bind(tk, &TaskModule::Progress), {.writes = true});
  Register("task.extend", bind(tk, &TaskModule::Extend), {.writes = true});
  Register("task.complete", bind(tk, &TaskModule::Complete),
           {.writes = true, .answers_encoded = true});
  Register("task.fail", bind(tk, &TaskModule::Fail), {.writes = true, .answers_encoded = true});
  Register("task.cancel", bind(tk, &TaskModule::Cancel), {.writes = true});
  Register("task.retry", bind(tk, &TaskModule::Retry), {.writes = true});
  Register("task.get", bind(tk, &TaskModule::Get), kReads);
  Register("task.list", bind(tk, &TaskModule::List), kReads);
  Register("queue.stats", bind(tk, &TaskModule::QueueStats), kReads);
  Register("queue.list", bind(tk, &TaskModule::QueueList), kReads);
  Register("queue.pause", bind(tk, &TaskModule::QueuePause), {.writes = true});
  Register("queue.resume", bind(tk, &TaskModule::QueueResume), {.writes = true});
  Register("queue.configure", bind(tk, &TaskModule::QueueConfigure), {.writes = true});
  Register("queue.drain", bind(tk, &TaskModule::QueueDrain), {.writes = true});
  Register("queue.delete", bind(tk, &TaskModule::QueueDelete), {.writes = true});
  SessionModule* se = sessions_.get();
  Register("session.open", bind(se, &SessionModule::Open), {.writes = true});
  Register("session.heartbeat", bind(se, &SessionModule::Heartbeat), {.writes = true});
  Register("session.close", bind(se, &SessionModule::Close), {.writes = true});
  Register("session.status", bind(se, &SessionModule::GetStatus), kReads);
  Register("session.clear", bind(se, &SessionModule::Clear), {.writes = true});
  Register("session.list", bind(se, &SessionModule::List), kReads);
  Register("checkpoint.save", bind(se, &SessionModule::CheckpointSave), {.writes = true});
  Register("checkpoint.get", bind(se, &SessionModule::CheckpointGet), kReads);
  Register("checkpoint.list", bind(se, &SessionModule::CheckpointList), kReads);
  Register("checkpoint.delete", bind(se, &SessionModule::CheckpointDelete), {.writes = true});
  Register("checkpoint.auto", bind(se, &SessionModule::AutoCheckpoint), {.writes = true});
  Register("signal.record", bind(se, &SessionModule::SignalRecord), {.writes = true});
  Register("signal.history", bind(se, &SessionModule::SignalHistory), kReads);
  Register("recovery.check", bind(se, &SessionModule::RecoveryCheck), {.writes = true});
  Register("recovery.ack", bind(se, &SessionModule::RecoveryAck), {.writes = true});
  Register(
      "sys.ping",
      [this](Call& call) {
        Params p(call.params, kNoFields);
        if (!p.ok()) return core_.Reply(call.reply, p.status());
        core_.Reply(call.reply, json{{"pong", true}, {"revision", core_.revision()}});
      },
      kReads);
}

void Engine::Register(std::string name, Handler handler, MethodTraits traits) {
  Method& m = methods_[std::move(name)];
  m.handler_ = std::move(handler);
  m.traits_ = traits;
}

std::vector<Engine::NamedMethod> Engine::Methods() const {
  std::vector<NamedMethod> out;
  out.reserve(methods_.size());
  for (const auto& [name, method] : methods_) out.push_back({name, &method});
  return out;
}

const Engine::Method* Engine::FindMethod(std::string_view method) const {
  auto it = methods_.find(method);
  return it == methods_.end() ? nullptr : &it->second;
}

std::vector<std::string_view> Engine::MethodNames() const {
  std::vector<std::string_view> names;
  names.reserve(methods_.size());
  for (const auto& [name, method] : methods_) names.push_back(name);
  return names;
}

void Engine::Execute(std::string_view method, json params, std::shared_ptr<Client> client,
                     ReplyFn reply, EncodedReplyFn reply_encoded) {
  const Method* m = FindMethod(method);
  if (!m) {
    reply(Status(StatusCode::kInvalidParams, "unknown method " + std::string(method)));
    return;
  }
  Execute(*m, std::move(params), std::move(client), std::move(reply), std::move(reply_encoded));
}

void Engine::Execute(const Method& method, json params, std::shared_ptr<Client> client,
                     ReplyFn reply, EncodedReplyFn reply_encoded) {
  if (read_only_ && method.writes()) {
    core_.Reply(reply, ReadOnlyError());
    return;
  }
  Call call{std::move(params), std::move(client), std::move(reply), std::move(reply_encoded)};
  const uint64_t before = core_.revision();
  method.handler_(call);
  if (core_.revision() != before) core_.group().CountCommand();
}

void Engine::EndWaits(uint64_t client_id) {
  locks_->EndWaits(client_id);
  tasks_->EndWaits(client_id);
}

void Engine::OnClientClosed(uint64_t client_id) {
  pubsub_->OnClientClosed(client_id);
  EndWaits(client_id);
}

void Engine::OnClientWritable(uint64_t client_id) { pubsub_->OnClientWritable(client_id); }

bool Engine::ReadyToSeal() const { return !core_.in_flight() && !core_.group().empty(); }

bool Engine::busy() const { return core_.in_flight() || !core_.group().empty(); }

std::unique_ptr<Group> Engine::Seal() {
  std::unique_ptr<Group> group = core_.Seal();
  // Execute refuses the methods that write, and the timers that write do
  // not run; a write here means a method registered as a read wrote. It
  // must not reach the store either.
  if (read_only_ && group->has_writes()) group->Refuse(ReadOnlyError());
  return group;
}

void Engine::Land(Group& group, const Status& write_status) {
  core_.Landed();
  if (write_status.ok()) {
    SHIM_FAILPOINT("engine.after_commit_before_reply");
    if (group.has_writes()) {
      ++stats_.groups;
      stats_.grouped_commands += group.commands();
    }
    for (Effect& e : group.effects()) {
      Result<json> r = e.produce ? e.produce() : Result<json>(json(nullptr));
      const bool ok = r.ok();
      if (e.reply) e.reply(std::move(r));
      if (ok && e.then) e.then();
    }
    return;
  }
  ++stats_.failed_groups;
  if (read_only_) {
    // A group Seal refused: nothing of it was written, and memory is
    // already not the store's. Its replies say why.
    FailEffects(group,
                write_status.code() == StatusCode::kReadOnly ? write_status : ReadOnlyError());
    return;
  }
  // Memory is now ahead of disk, and the open group was built on top of the
  // failed one: fail both, then rebuild memory from the store.
  Status failure(
      StatusCode::kInternal,
      "storage write failed; nothing of this request was applied: " + write_status.message());
  FailEffects(group, failure);
  std::unique_ptr<Group> open = core_.TakeOpenGroup();
  FailEffects(*open, failure);
  Reload();
}

void Engine::Reload() {
  state_->Reset();
  pubsub_->Reset();
  leases_->Reset();
  locks_->Reset();
  workers_->Reset();
  tasks_->Reset();
  sessions_->Reset();
  Status reloaded = Recover();
  // `error` here: the reload reports failure after it ran (the indexes hold
  // what it loaded), which the engine must treat like any failed reload.
  Status injected = SHIM_FAILPOINT_STATUS("engine.reload");
  if (reloaded.ok()) reloaded = std::move(injected);
  if (reloaded.ok()) return;
  // Memory now holds what part of the store the reload read, maybe nothing:
  // a write planned on it could break what is on disk (reuse a revision,
  // overwrite a record it did not load). Writes stop; reads go on from
  // what memory holds, and a restart reloads from scratch.
  read_only_ = ReadOnlyState{core_.clock().NowMs(), reloaded.message()};
}

Status Engine::ReadOnlyError() const {
  const std::string cause = read_only_ ? read_only_->cause : std::string();
  return Status(StatusCode::kReadOnly,
                "the server is read-only: after a failed write, reloading its state from the store "
                "failed too (" +
                    cause + "); reads still work, writes need a restart",
                {{"cause", cause}});
}

void Engine::FailEffects(Group& group, const Status& status) {
  for (Effect& e : group.effects()) {
    if (e.reply) e.reply(status);
  }
}

void Engine::RunTimers() {
  // A bounded turn: what is still due runs in the next one (NextTimerInMs
  // then says 0), with other clients' requests in between.
  core_.pacing_timers().RunDue(core_.clock().MonoMs(), kTimerCallbacksPerTurn);
  // The other timers act on data and write: not on memory that failed to
  // reload.
  if (read_only_) return;
  core_.wall_timers().RunDue(core_.clock().NowMs(), kTimerCallbacksPerTurn);
  core_.mono_timers().RunDue(core_.clock().MonoMs(), kTimerCallbacksPerTurn);
  // The next slice of a cascade too large for one turn.
  if (tasks_->cascade_pending()) {
    core_.NextRevision();
    tasks_->RunCascade();
  } else if (tasks_->admin_pending()) {
    // The next slice of a queue.drain or queue.delete, after any cascade
    // (a delete waits for the cascades its cancels set off).
    core_.NextRevision();
    tasks_->RunAdmin();
  }
}

std::optional<int64_t> Engine::NextTimerInMs() const {
  if ((tasks_->cascade_pending() || tasks_->admin_pending()) && !read_only_) return 0;
  std::optional<int64_t> next;
  const Core& core = core_;
  auto consider = [&](const TimerQueue& timers, int64_t now) {
    if (auto due = timers.NextDueMs()) {
      const int64_t in = std::max<int64_t>(0, *due - now);
      next = next ? std::min(*next, in) : in;
    }
  };
  consider(core.pacing_timers(), core.clock().MonoMs());
  if (read_only_) return next;  // the others do not run (RunTimers)
  consider(core.wall_timers(), core.clock().NowMs());
  consider(core.mono_timers(), core.clock().MonoMs());
  return next;
}

json Engine::Describe() const {
  auto store_stats = core_.store().stats();
  return json{{"revision", core_.revision()},
              {"keys", state_->key_count()},
              {"channels", pubsub_->channel_count()},
              {"subscriptions", pubsub_->subscription_count()},
              {"leases", leases_->count()},
              {"locks_held", locks_->held_count()},
              {"workers", workers_->count()},
              {"workers_alive", workers_->alive_count()},
              {"tasks", tasks_->task_count()},
              {"task_payloads_cached", tasks_->payload_cache().entries()},
              {"task_payload_cache_bytes", tasks_->payload_cache().bytes()},
              {"sessions", sessions_->count()},
              {"timers", core_.wall_timers().size() + core_.mono_timers().size() +
                             core_.pacing_timers().size()},
              {"commit_groups", stats_.groups},
              {"commit_mean_group_size",
               stats_.groups ? double(stats_.grouped_commands) / double(stats_.groups) : 0.0},
              {"failed_groups", stats_.failed_groups},
              {"store_commits", store_stats.commits},
              {"fsyncs", store_stats.fsyncs},
              {"store_no_space_errors", store_stats.no_space_errors},
              {"store_resumes", store_stats.resumes},
              {"store_bytes_written", store_stats.bytes_written},
              {"store_size_bytes", core_.store().ApproximateSizeBytes()}};
}

}  // namespace shim::engine

// WorkerModule: the worker registry (worker.* methods).
//
// A worker registers with capabilities, a concurrency limit, metadata and a
// heartbeat TTL, then heartbeats. One that misses its TTL is marked dead
// (persisted), `worker.failed` is published on channel `events.workers`, and
// the OnDead hooks run in that same write (the task queues return its
// running tasks there). A dead worker that heartbeats again is alive again.
// Liveness is on the monotonic clock: after a restart every live worker gets
// its full TTL again. Persisted in Family::kWorkers: worker_id -> record
// (engine/worker_record.h).
// Engine thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/call.h"
#include "engine/core.h"
#include "engine/worker_record.h"

namespace shim::engine {

class PubSubModule;

class WorkerModule {
 public:
  WorkerModule(Core& core, PubSubModule& pubsub) : core_(core), pubsub_(pubsub) {}

  using DeadHook = std::function<void(const std::string& worker_id)>;
  void OnDead(DeadHook hook) { dead_hooks_.push_back(std::move(hook)); }

  Status Recover();
  void Reset() { workers_.clear(); }

  void Register(Call& call);
  void Heartbeat(Call& call);
  void Deregister(Call& call);
  void List(Call& call);

  // The stored part (engine/worker_record.h) and what lives only in memory.
  struct Worker : WorkerRecord {
    int64_t expires_mono_ms = 0;
    int64_t active_tasks = 0;  // maintained by the task queues
  };
  // nullptr if unknown.
  Worker* Find(const std::string& worker_id);
  const Worker* Find(const std::string& worker_id) const;
  bool IsAlive(const std::string& worker_id) const;
  // True if some live worker has every capability in `caps`.
  bool AnyAliveWith(const std::vector<std::string>& caps) const;
  void AdjustActive(const std::string& worker_id, int64_t delta);
  size_t count() const { return workers_.size(); }
  size_t alive_count() const;

 private:
  void Persist(const std::string& id, const Worker& w);
  void Arm(const std::string& id, const Worker& w);
  void MarkDead(const std::string& id, Worker& w, const char* reason);
  nlohmann::json Describe(const std::string& id, const Worker& w) const;

  Core& core_;
  PubSubModule& pubsub_;
  std::map<std::string, Worker, std::less<>> workers_;
  std::vector<DeadHook> dead_hooks_;
};

}  // namespace shim::engine

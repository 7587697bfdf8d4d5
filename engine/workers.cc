#include "engine/workers.h"

#include <algorithm>

#include "base/json_text.h"
#include "engine/params.h"
#include "engine/pubsub.h"
#include "engine/reply_budget.h"
#include "engine/worker_record.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

namespace {
const char kEventsChannel[] = "events.workers";
constexpr int64_t kMaxHeartbeatTtlMs = 24LL * 3600 * 1000;
constexpr size_t kMaxCapabilities = 64;
}  // namespace

Status WorkerModule::Recover() {
  workers_.clear();
  return ScanDecodedRecords<std::string, Worker>(core_.store(), kWorkerRecords, DecodeWorkerKey,
                                                 DecodeWorkerRecord, [&](std::string id, Worker w) {
                                                   // Full TTL again after a restart: nothing
                                                   // expires early.
                                                   w.expires_mono_ms =
                                                       core_.clock().MonoMs() + w.heartbeat_ttl_ms;
                                                   if (!w.dead) Arm(id, w);
                                                   workers_.emplace(std::move(id), std::move(w));
                                                 });
}

void WorkerModule::Persist(const std::string& id, const Worker& w) {
  core_.batch().Put(Family::kWorkers, WorkerKey(id), EncodeWorkerRecord(w));
}

void WorkerModule::Arm(const std::string& id, const Worker& w) {
  core_.mono_timers().Schedule(w.expires_mono_ms, [this, id] {
    auto it = workers_.find(id);
    if (it == workers_.end() || it->second.dead ||
        it->second.expires_mono_ms > core_.clock().MonoMs())
      return;
    MarkDead(id, it->second, "heartbeat_timeout");
  });
}

void WorkerModule::MarkDead(const std::string& id, Worker& w, const char* reason) {
  core_.NextRevision();
  w.dead = true;
  Persist(id, w);
  pubsub_.PublishInternal(kEventsChannel, json{{"type", "worker.failed"},
                                               {"worker_id", id},
                                               {"name", w.name},
                                               {"reason", reason},
                                               {"last_heartbeat_at_ms", w.last_heartbeat_at_ms}});
  for (auto& hook : dead_hooks_) hook(id);
}

json WorkerModule::Describe(const std::string& id, const Worker& w) const {
  // Past its TTL is dead even before the timer has run.
  const bool dead = w.dead || w.expires_mono_ms <= core_.clock().MonoMs();
  const char* status = dead ? "dead" : (w.active_tasks > 0 ? "busy" : "idle");
  return json{{"worker_id", id},
              {"name", w.name},
              {"capabilities", w.capabilities},
              {"status", status},
              {"active_tasks", w.active_tasks},
              {"max_concurrency", w.max_concurrency},
              {"heartbeat_ttl_ms", w.heartbeat_ttl_ms},
              {"metadata", w.metadata},
              {"registered_at_ms", w.registered_at_ms},
              {"last_heartbeat_at_ms", w.last_heartbeat_at_ms}};
}

void WorkerModule::Register(Call& call) {
  const auto& lim = core_.limits();
  static constexpr std::string_view kFields[] = {
      "worker_id", "name", "capabilities", "max_concurrency", "heartbeat_ttl_ms", "metadata"};
  Params p(call.params, kFields);
  auto worker_id = p.OptStr("worker_id", {.min = 1, .max = lim.max_name_bytes});
  std::string name = p.OptStr("name", {.max = lim.max_name_bytes}).value_or("");
  const json* caps = p.OptArray("capabilities");
  int64_t max_concurrency = p.OptInt("max_concurrency", {.min = 1, .max = 10'000}).value_or(1);
  int64_t ttl =
      p.OptInt("heartbeat_ttl_ms", {.min = 100, .max = kMaxHeartbeatTtlMs}).value_or(15'000);
  const json* metadata = p.OptObject("metadata");
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  std::vector<std::string> capabilities;
  if (caps) {
    if (caps->size() > kMaxCapabilities) {
      return core_.Reply(call.reply, Status::TooLarge("capabilities: more than " +
                                                          std::to_string(kMaxCapabilities),
                                                      kMaxCapabilities));
    }
    for (const auto& c : *caps) {
      if (!c.is_string() || c.get_ref<const std::string&>().empty()) {
        return core_.Reply(
            call.reply,
            Status::InvalidParams("capabilities", "capabilities must be non-empty strings"));
      }
      capabilities.push_back(c.get<std::string>());
    }
  }
  if (metadata && DumpCompact(*metadata).size() > 64 * 1024) {
    return core_.Reply(call.reply, Status::TooLarge("metadata over 64 KiB", 64 * 1024));
  }
  const uint64_t rev = core_.NextRevision();
  std::string id = worker_id.value_or("worker-" + std::to_string(rev));
  Worker& w = workers_[id];
  const bool fresh = w.registered_at_ms == 0;
  w.name = name.empty() ? (fresh ? id : w.name) : name;
  w.capabilities = std::move(capabilities);
  w.max_concurrency = max_concurrency;
  w.heartbeat_ttl_ms = ttl;
  if (metadata) w.metadata = *metadata;
  w.dead = false;
  const int64_t now = core_.clock().NowMs();
  if (fresh) w.registered_at_ms = now;
  w.last_heartbeat_at_ms = now;
  w.expires_mono_ms = core_.clock().MonoMs() + ttl;
  Persist(id, w);
  Arm(id, w);
  pubsub_.PublishInternal(kEventsChannel, json{{"type", "worker.registered"},
                                               {"worker_id", id},
                                               {"name", w.name},
                                               {"capabilities", w.capabilities}});
  core_.Reply(call.reply, json{{"worker_id", id}, {"expires_at_ms", now + ttl}});
}

void WorkerModule::Heartbeat(Call& call) {
  static constexpr std::string_view kFields[] = {"worker_id", "metadata"};
  Params p(call.params, kFields);
  std::string id = p.Str("worker_id", {.min = 1, .max = core_.limits().max_name_bytes});
  const json* metadata = p.OptObject("metadata");
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  auto it = workers_.find(id);
  if (it == workers_.end()) {
    return core_.Reply(call.reply, Status::NotFound("no worker '" + id + "' (register it first)"));
  }
  if (metadata && DumpCompact(*metadata).size() > 64 * 1024) {
    return core_.Reply(call.reply, Status::TooLarge("metadata over 64 KiB", 64 * 1024));
  }
  Worker& w = it->second;
  if (!w.dead && w.expires_mono_ms <= core_.clock().MonoMs()) {
    // Its TTL has passed but its timer has not run yet (requests are served
    // in between): it died all the same. Say so, and return its tasks, as
    // the timer would; this heartbeat then brings it back.
    MarkDead(id, w, "heartbeat_timeout");
  }
  const int64_t now = core_.clock().NowMs();
  w.last_heartbeat_at_ms = now;
  w.expires_mono_ms = core_.clock().MonoMs() + w.heartbeat_ttl_ms;
  // A heartbeat is liveness, not state: persist only what a reader would
  // miss after a restart (metadata, coming back from dead).
  if (metadata || w.dead) {
    if (metadata) w.metadata = *metadata;
    if (w.dead) {
      w.dead = false;
      pubsub_.PublishInternal(
          kEventsChannel, json{{"type", "worker.recovered"}, {"worker_id", id}, {"name", w.name}});
    }
    core_.NextRevision();
    Persist(id, w);
  }
  Arm(id, w);
  core_.Reply(call.reply, json{{"expires_at_ms", now + w.heartbeat_ttl_ms}});
}

void WorkerModule::Deregister(Call& call) {
  static constexpr std::string_view kFields[] = {"worker_id"};
  Params p(call.params, kFields);
  std::string id = p.Str("worker_id", {.min = 1, .max = core_.limits().max_name_bytes});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  auto it = workers_.find(id);
  if (it == workers_.end())
    return core_.Reply(call.reply, Status::NotFound("no worker '" + id + "'"));
  core_.NextRevision();
  // Its running tasks go back to their queues, as for a dead worker.
  if (!it->second.dead) {
    for (auto& hook : dead_hooks_) hook(id);
  }
  pubsub_.PublishInternal(
      kEventsChannel,
      json{{"type", "worker.deregistered"}, {"worker_id", id}, {"name", it->second.name}});
  core_.batch().Delete(Family::kWorkers, WorkerKey(id));
  workers_.erase(id);
  core_.Reply(call.reply, json{{"ok", true}});
}

void WorkerModule::List(Call& call) {
  static constexpr std::string_view kFields[] = {"capability", "after"};
  Params p(call.params, kFields);
  auto capability = p.OptStr("capability");
  auto after = p.OptStr("after", {.max = core_.limits().max_name_bytes});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  core_.Reply(call.reply,
              ListPage(
                  workers_, after ? &*after : nullptr, core_.limits().max_reply_bytes, "workers",
                  [&capability](const std::string&, const Worker& w) {
                    return !capability || std::find(w.capabilities.begin(), w.capabilities.end(),
                                                    *capability) != w.capabilities.end();
                  },
                  [this](const std::string& id, const Worker& w) { return Describe(id, w); }));
}

WorkerModule::Worker* WorkerModule::Find(const std::string& worker_id) {
  auto it = workers_.find(worker_id);
  return it == workers_.end() ? nullptr : &it->second;
}

const WorkerModule::Worker* WorkerModule::Find(const std::string& worker_id) const {
  auto it = workers_.find(worker_id);
  return it == workers_.end() ? nullptr : &it->second;
}

bool WorkerModule::AnyAliveWith(const std::vector<std::string>& caps) const {
  // Not a structured binding: clang before 16 cannot capture one in a lambda
  // (the fuzz build, docs/fault-testing.md).
  for (const auto& entry : workers_) {
    const auto& w = entry.second;
    if (w.dead) continue;
    if (std::all_of(caps.begin(), caps.end(), [&](const std::string& c) {
          return std::find(w.capabilities.begin(), w.capabilities.end(), c) != w.capabilities.end();
        })) {
      return true;
    }
  }
  return false;
}

bool WorkerModule::IsAlive(const std::string& worker_id) const {
  auto it = workers_.find(worker_id);
  return it != workers_.end() && !it->second.dead;
}

void WorkerModule::AdjustActive(const std::string& worker_id, int64_t delta) {
  if (auto* w = Find(worker_id)) w->active_tasks = std::max<int64_t>(0, w->active_tasks + delta);
}

size_t WorkerModule::alive_count() const {
  size_t n = 0;
  for (const auto& [id, w] : workers_) n += !w.dead;
  return n;
}

}  // namespace shim::engine

// TaskModule: claims, waiting claims and routing among waiting workers.
#include <algorithm>

#include "base/json_text.h"
#include "engine/json_parse.h"
#include "engine/params.h"
#include "engine/tasks/tasks.h"
#include "engine/workers.h"

namespace shim::engine {

using nlohmann::json;

namespace {

// How many ready tasks of one priority a claim looks past when their
// `requires` do not match the worker. Bounded so a claim stays cheap however
// deep the queue; tasks further back wait for a matching worker's claim.
constexpr int kRequiresScanLimit = 256;

bool HasAll(const std::vector<std::string>& have, const std::vector<std::string>& need) {
  return std::all_of(need.begin(), need.end(), [&](const std::string& c) {
    return std::find(have.begin(), have.end(), c) != have.end();
  });
}

}  // namespace

std::vector<std::string> TaskModule::CapabilitiesOf(const std::string& worker_id) const {
  auto* w = workers_.Find(worker_id);
  return w ? w->capabilities : std::vector<std::string>{};
}

size_t TaskModule::FreeSlots(const std::string& worker_id, size_t want) const {
  auto* w = workers_.Find(worker_id);
  if (!w) return want;  // unregistered workers have no declared limit
  const int64_t free = w->max_concurrency - w->active_tasks;
  return free <= 0 ? 0 : std::min<size_t>(want, static_cast<size_t>(free));
}

Task* TaskModule::BestReady(const std::vector<std::string>& queues,
                            const std::vector<std::string>& caps) {
  Task* best = nullptr;
  for (const std::string& name : queues) {
    auto qit = queues_.find(name);
    if (qit == queues_.end() || !qit->second.hands_out()) continue;
    TaskQueue& q = qit->second;
    Task* found = nullptr;
    for (int p = 1; p <= 10 && !found; ++p) {
      if (best && p > best->priority) break;
      int scanned = 0;
      for (const auto& [order, seq] : q.ready[p]) {
        if (seq == 0) continue;  // an erased entry (ReadyList)
        if (++scanned > kRequiresScanLimit) break;
        Task* t = Find(seq);
        if (t && HasAll(caps, t->ext().requires_caps)) {
          found = t;
          break;
        }
      }
    }
    if (found && (!best || found->priority < best->priority ||
                  (found->priority == best->priority && found->ready_order < best->ready_order))) {
      best = found;
    }
  }
  return best;
}

std::string TaskModule::ClaimFor(const std::string& worker_id,
                                 const std::vector<std::string>& queues, size_t max,
                                 const std::shared_ptr<Client>& client) {
  std::string out = "[";
  const std::vector<std::string> caps = CapabilitiesOf(worker_id);
  for (size_t n = FreeSlots(worker_id, max); n > 0; --n) {
    Task* t = BestReady(queues, caps);
    if (!t) break;
    StartRunning(*t, worker_id, client);
    if (out.size() > 1) out += ',';
    out += ClaimRecord(*t);
    payloads_.Drop(t->seq);  // a retry reads it from the store
  }
  out += ']';
  return out;
}

std::string TaskModule::ClaimRecord(const Task& t) const {
  std::string out = "{";
  out.reserve(256);
  auto key = [&out](std::string_view name) {
    if (out.size() > 1) out += ',';
    AppendKey(out, name);
  };
  key("attempt");
  out += std::to_string(t.attempt);
  key("lease_expires_at_ms");
  out += std::to_string(core_.clock().NowMs() + t.timeout_ms);
  key("lease_token");
  out += std::to_string(t.ext().lease_token);
  key("max_attempts");
  out += std::to_string(t.max_attempts);
  key("payload");
  out += LoadPayloadText(t.seq);
  key("priority");
  out += std::to_string(t.priority);
  key("queue");
  AppendJsonString(out, t.queue());
  key("tags");
  AppendCompact(out, t.ext().tags);
  key("task_id");
  AppendJsonString(out, TaskId(t.seq));
  key("timeout_ms");
  out += std::to_string(t.timeout_ms);
  out += '}';
  return out;
}

std::list<TaskModule::ClaimWaiter>::iterator TaskModule::PickWaiter(TaskQueue& q, const Task& t) {
  auto best = waiters_.end();
  auto load = [this](const ClaimWaiter& w) {
    auto* rec = workers_.Find(w.worker_id);
    return rec ? rec->active_tasks : 0;
  };
  auto extra_caps = [this, &t](const ClaimWaiter& w) {
    return static_cast<int64_t>(CapabilitiesOf(w.worker_id).size()) -
           static_cast<int64_t>(t.ext().requires_caps.size());
  };
  std::vector<std::list<ClaimWaiter>::iterator> eligible;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    // Its connection is gone: nobody to answer. (A claim made without a
    // connection, in-process, has client_id 0 and is answered by its reply.)
    auto client = it->client.lock();
    if (it->client_id != 0 && (!client || client->closed())) {
      it = EraseWaiter(it);
      continue;
    }
    // A worker that died while its claim waited gets nothing until it
    // heartbeats again (task.claim refuses dead workers the same way).
    const auto* rec = workers_.Find(it->worker_id);
    if (std::find(it->queues.begin(), it->queues.end(), q.name) != it->queues.end() &&
        !(rec && rec->dead) && HasAll(CapabilitiesOf(it->worker_id), t.ext().requires_caps) &&
        FreeSlots(it->worker_id, 1) > 0) {
      eligible.push_back(it);
    }
    ++it;
  }
  if (eligible.empty()) return best;
  switch (q.config.routing) {
    case Routing::kLeastLoaded:
      best = *std::min_element(eligible.begin(), eligible.end(),
                               [&](auto a, auto b) { return load(*a) < load(*b); });
      break;
    case Routing::kCapability:
      // The most specialised worker that can do it, so generalists stay free
      // for tasks only they can take; then the least loaded.
      best = *std::min_element(eligible.begin(), eligible.end(), [&](auto a, auto b) {
        return std::pair(extra_caps(*a), load(*a)) < std::pair(extra_caps(*b), load(*b));
      });
      break;
    case Routing::kRoundRobin: {
      // The next worker id after the last one served, wrapping around.
      std::sort(eligible.begin(), eligible.end(),
                [](auto a, auto b) { return a->worker_id < b->worker_id; });
      auto next = std::find_if(eligible.begin(), eligible.end(),
                               [&](auto w) { return w->worker_id > q.last_round_robin_worker; });
      best = next != eligible.end() ? *next : eligible.front();
      q.last_round_robin_worker = best->worker_id;
      break;
    }
  }
  return best;
}

void TaskModule::Dispatch(const std::string& queue) {
  if (waiters_.empty()) return;
  auto qit = queues_.find(queue);
  if (qit == queues_.end() || !qit->second.hands_out()) return;
  TaskQueue& q = qit->second;
  bool served = true;
  while (served && !waiters_.empty() && q.ready_count() > 0) {
    served = false;
    for (int p = 1; p <= 10 && !served; ++p) {
      int scanned = 0;
      for (const auto& [order, seq] : q.ready[p]) {
        if (seq == 0) continue;  // an erased entry (ReadyList)
        if (++scanned > kRequiresScanLimit) break;
        Task* t = Find(seq);
        if (!t) continue;
        auto w = PickWaiter(q, *t);
        if (w == waiters_.end()) continue;
        ClaimWaiter waiter = std::move(*w);
        EraseWaiter(w);
        waiter.answer(ClaimFor(waiter.worker_id, waiter.queues, waiter.max, waiter.client.lock()));
        served = true;
        break;  // the ready sets changed under the iterator
      }
    }
  }
}

namespace {

// The status of a nested claim names its field as "claim_next.<field>".
Status PrefixField(Status s, std::string_view prefix) {
  if (prefix.empty() || !s.details().is_object() || !s.details().contains("field")) return s;
  json details = s.details();
  details["field"] = std::string(prefix) + details["field"].get<std::string>();
  return Status(s.code(), s.message(), std::move(details));
}

}  // namespace

Result<TaskModule::ClaimRequest> TaskModule::ParseClaim(const json& params,
                                                        std::string_view field_prefix) {
  // The fields of task.claim and of claim_next.
  static constexpr std::string_view kFields[] = {"queues", "worker_id", "max", "wait_ms"};
  Params p(params, kFields);
  const json* queues_json = p.Array("queues");
  ClaimRequest req;
  req.worker_id = p.Str("worker_id", {.min = 1, .max = core_.limits().max_name_bytes});
  req.max = static_cast<size_t>(
      p.OptInt("max", {.min = 1, .max = static_cast<int64_t>(limits_.max_claim)}).value_or(1));
  req.wait_ms = p.OptInt("wait_ms", {.min = 0, .max = core_.limits().max_wait_ms}).value_or(0);
  if (!p.ok()) return PrefixField(p.status(), field_prefix);
  for (const auto& q : *queues_json) {
    if (!q.is_string() || q.get_ref<const std::string&>().empty() ||
        q.get_ref<const std::string&>().size() > limits_.max_queue_name_bytes) {
      return PrefixField(Status::InvalidParams("queues", "queues must be non-empty queue names"),
                         field_prefix);
    }
    req.queues.push_back(q.get<std::string>());
  }
  if (req.queues.empty() || req.queues.size() > 64) {
    return PrefixField(Status::InvalidParams("queues", "queues must name 1 to 64 queues"),
                       field_prefix);
  }
  if (auto* w = workers_.Find(req.worker_id); w && w->dead) {
    return Status(StatusCode::kInvalidState,
                  "worker '" + req.worker_id + "' is marked dead; heartbeat or register again");
  }
  return req;
}

void TaskModule::StartClaim(ClaimRequest req, const std::shared_ptr<Client>& client,
                            ClaimAnswer answer) {
  std::string tasks = ClaimFor(req.worker_id, req.queues, req.max, client);
  if (tasks != "[]" || req.wait_ms == 0) return answer(std::move(tasks));
  if (waiters_.size() >= limits_.max_claim_waiters) {
    return answer(Status(StatusCode::kOverloaded, "too many waiting claims",
                         {{"limit", limits_.max_claim_waiters}}));
  }
  const uint64_t id = next_waiter_id_++;
  // A wait that runs out answers with no tasks: the worker simply claims again.
  const auto timer = core_.mono_timers().Schedule(core_.clock().MonoMs() + req.wait_ms, [this, id] {
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (it->id != id) continue;
      ClaimAnswer answer = std::move(it->answer);
      waiters_.erase(it);
      answer(std::string("[]"));
      return;
    }
  });
  waiters_.push_back(ClaimWaiter{id, std::move(req.worker_id), std::move(req.queues), req.max,
                                 client ? client->id() : 0, client, std::move(answer),
                                 core_.clock().MonoMs(), timer});
}

std::list<TaskModule::ClaimWaiter>::iterator TaskModule::EraseWaiter(
    std::list<ClaimWaiter>::iterator it) {
  core_.mono_timers().Cancel(it->timer);
  return waiters_.erase(it);
}

void TaskModule::Claim(Call& call) {
  auto req = ParseClaim(call.params, "");
  if (!req.ok()) return core_.Reply(call.reply, req.status());
  StartClaim(
      std::move(*req), call.client,
      [this, reply = call.reply, reply_encoded = call.reply_encoded](Result<std::string> tasks) {
        if (!tasks.ok()) return core_.Reply(reply, tasks.status());
        ReplyWithTasks(reply, reply_encoded, json::object(), *tasks);
      });
}

Result<std::optional<TaskModule::ClaimRequest>> TaskModule::ParseClaimNext(Params& p,
                                                                           const Task& finishing) {
  const json* asked = p.OptAny("claim_next");
  if (!p.ok()) return p.status();
  if (!asked || asked->is_null()) return std::optional<ClaimRequest>();
  if (!asked->is_object())
    return Status::InvalidParams("claim_next", "claim_next must be an object");
  json next = *asked;
  // The worker that finishes a task claims the next one unless told otherwise.
  if (!next.contains("worker_id")) next["worker_id"] = finishing.ext().worker_id;
  auto req = ParseClaim(next, "claim_next.");
  if (!req.ok()) return req.status();
  return std::optional<ClaimRequest>(std::move(*req));
}

void TaskModule::ReplyWithClaimNext(Call& call, json base, std::optional<ClaimRequest> next) {
  if (!next) return core_.Reply(call.reply, std::move(base));
  // One answer: the finish (committed in this group or an earlier one) and
  // the claim, held until the claim's group is durable.
  StartClaim(std::move(*next), call.client,
             [this, reply = call.reply, reply_encoded = call.reply_encoded,
              base = std::move(base)](Result<std::string> tasks) mutable {
               if (!tasks.ok()) {
                 base["tasks"] = json::array();
                 base["claim_error"] = {{"reason", StatusCodeReason(tasks.status().code())},
                                        {"message", tasks.status().message()}};
                 return core_.Reply(reply, std::move(base));
               }
               ReplyWithTasks(reply, reply_encoded, std::move(base), *tasks);
             });
}

void TaskModule::ReplyWithTasks(const ReplyFn& reply, const EncodedReplyFn& reply_encoded,
                                json base, const std::string& tasks_json) {
  if (reply_encoded)
    return core_.ReplyEncoded(reply_encoded, DumpWithMember(base, "tasks", tasks_json));
  base["tasks"] = ParseStoredJson(tasks_json);  // built by the engine from stored payloads
  core_.Reply(reply, std::move(base));
}

void TaskModule::EndWaits(uint64_t client_id) {
  if (client_id == 0) return;  // in-process claims have no connection to end
  // Taken out first, answered after: an answer can close the connection,
  // which comes back here.
  std::vector<ClaimAnswer> ended;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->client_id != client_id) {
      ++it;
      continue;
    }
    ended.push_back(std::move(it->answer));
    it = EraseWaiter(it);
  }
  for (auto& answer : ended) answer(std::string("[]"));
}

}  // namespace shim::engine

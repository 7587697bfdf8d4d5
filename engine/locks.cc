#include "engine/locks.h"

#include <vector>

#include "engine/leases.h"
#include "engine/lock_record.h"
#include "engine/params.h"
#include "engine/reply_budget.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

Status LockModule::Recover() {
  locks_.clear();
  return ScanDecodedRecords<std::string, Lock>(core_.store(), kLockRecords, DecodeLockKey,
                                               DecodeLockRecord, [&](std::string name, Lock lock) {
                                                 lock.held = true;  // only a held lock has a record
                                                 // Full TTL again after a restart: nothing expires
                                                 // early.
                                                 lock.expires_mono_ms =
                                                     core_.clock().MonoMs() + lock.ttl_ms;
                                                 Arm(name, lock);
                                                 locks_.emplace(std::move(name), std::move(lock));
                                               });
}

void LockModule::Reset() {
  // Waiters belong to live connections: they are failed by the caller's
  // group failure path, not kept across a reload.
  for (auto& [name, lock] : locks_) {
    for (auto& w : lock.waiters) {
      core_.mono_timers().Cancel(w.timer);
      w.reply(Status::Internal("storage failure; retry"));
    }
  }
  locks_.clear();
}

int64_t LockModule::WallExpiry(const Lock& lock) const {
  return core_.clock().NowMs() + (lock.expires_mono_ms - core_.clock().MonoMs());
}

json LockModule::Describe(const std::string& name, const Lock& lock) const {
  return json{{"name", name},
              {"held", lock.held},
              {"owner", lock.held ? json(lock.owner) : json(nullptr)},
              {"token", lock.held ? json(lock.token) : json(nullptr)},
              {"expires_at_ms", lock.held ? json(WallExpiry(lock)) : json(nullptr)},
              {"lease_id", lock.held && lock.lease_id ? json(lock.lease_id) : json(nullptr)},
              {"waiters", lock.waiters.size()}};
}

void LockModule::Arm(const std::string& name, const Lock& lock) {
  core_.mono_timers().Schedule(lock.expires_mono_ms, [this, name, token = lock.token] {
    auto it = locks_.find(name);
    if (it == locks_.end()) return;
    Lock& l = it->second;
    // Released, re-granted or extended since this timer was set.
    if (!l.held || l.token != token || l.expires_mono_ms > core_.clock().MonoMs()) return;
    ReleaseAndHandOff(name, l);
  });
}

void LockModule::Grant(const std::string& name, Lock& lock, const std::string& owner,
                       int64_t ttl_ms, uint64_t lease_id) {
  lock.held = true;
  lock.owner = owner;
  lock.token = core_.NextRevision();
  lock.ttl_ms = ttl_ms;
  lock.lease_id = lease_id;
  lock.expires_mono_ms = core_.clock().MonoMs() + ttl_ms;
  core_.batch().Put(Family::kLocks, LockKey(name), EncodeLockRecord(lock));
  Arm(name, lock);
}

void LockModule::ReleaseAndHandOff(const std::string& name, Lock& lock) {
  core_.NextRevision();
  core_.batch().Delete(Family::kLocks, LockKey(name));
  lock.held = false;
  lock.owner.clear();
  while (!lock.waiters.empty()) {
    Waiter w = std::move(lock.waiters.front());
    lock.waiters.pop_front();
    core_.mono_timers().Cancel(w.timer);
    if (w.lease_id && !leases_.Exists(w.lease_id)) {
      core_.Reply(w.reply,
                  Status::NotFound("lease " + std::to_string(w.lease_id) + " ended while waiting"));
      continue;
    }
    Grant(name, lock, w.owner, w.ttl_ms, w.lease_id);
    core_.Reply(w.reply, json{{"token", lock.token}, {"expires_at_ms", WallExpiry(lock)}});
    return;
  }
  ForgetIfIdle(name);
}

bool LockModule::Lapsed(const Lock& lock) const {
  return lock.held && (lock.expires_mono_ms <= core_.clock().MonoMs() ||
                       (lock.lease_id != 0 && !leases_.Exists(lock.lease_id)));
}

void LockModule::CollectIfLapsed(const std::string& name) {
  auto it = locks_.find(name);
  if (it != locks_.end() && Lapsed(it->second)) ReleaseAndHandOff(name, it->second);
}

void LockModule::ForgetIfIdle(const std::string& name) {
  auto it = locks_.find(name);
  if (it != locks_.end() && !it->second.held && it->second.waiters.empty()) locks_.erase(it);
}

void LockModule::Acquire(Call& call) {
  const auto& lim = core_.limits();
  static constexpr std::string_view kFields[] = {"name", "owner", "ttl_ms", "wait_ms", "lease_id"};
  Params p(call.params, kFields);
  std::string name = p.Str("name", {.min = 1, .max = lim.max_name_bytes});
  std::string owner = p.Str("owner", {.min = 1, .max = lim.max_name_bytes});
  int64_t ttl = p.Int("ttl_ms", {.min = 1, .max = lim.max_ttl_ms});
  int64_t wait = p.OptInt("wait_ms", {.min = 0, .max = lim.max_wait_ms}).value_or(0);
  uint64_t lease_id = static_cast<uint64_t>(p.OptInt("lease_id", {.min = 1}).value_or(0));
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (lease_id && !leases_.Exists(lease_id)) {
    return core_.Reply(call.reply, Status::NotFound("no lease " + std::to_string(lease_id)));
  }
  CollectIfLapsed(name);
  Lock& lock = locks_[name];
  if (!lock.held) {
    Grant(name, lock, owner, ttl, lease_id);
    return core_.Reply(call.reply,
                       json{{"token", lock.token}, {"expires_at_ms", WallExpiry(lock)}});
  }
  if (lock.owner == owner) {
    // Re-entrant: same token, TTL refreshed (and persisted, so a restart
    // grants the new TTL).
    core_.NextRevision();
    lock.ttl_ms = ttl;
    lock.expires_mono_ms = core_.clock().MonoMs() + ttl;
    if (lease_id) lock.lease_id = lease_id;
    core_.batch().Put(Family::kLocks, LockKey(name), EncodeLockRecord(lock));
    Arm(name, lock);
    return core_.Reply(call.reply,
                       json{{"token", lock.token}, {"expires_at_ms", WallExpiry(lock)}});
  }
  if (wait == 0) {
    return core_.Reply(
        call.reply,
        Status(StatusCode::kLockHeld, "lock '" + name + "' is held by '" + lock.owner + "'",
               {{"holder", lock.owner}, {"expires_at_ms", WallExpiry(lock)}}));
  }
  if (lock.waiters.size() >= lim.max_waiters_per_lock) {
    return core_.Reply(call.reply, Status(StatusCode::kOverloaded,
                                          "lock '" + name + "' already has " +
                                              std::to_string(lock.waiters.size()) + " waiters",
                                          {{"limit", lim.max_waiters_per_lock}}));
  }
  const uint64_t waiter_id = next_waiter_id_++;
  const auto timer = core_.mono_timers().Schedule(core_.clock().MonoMs() + wait, [this, name,
                                                                                  waiter_id, wait] {
    auto it = locks_.find(name);
    if (it == locks_.end()) return;
    auto& q = it->second.waiters;
    for (auto w = q.begin(); w != q.end(); ++w) {
      if (w->id != waiter_id) continue;
      ReplyFn reply = std::move(w->reply);
      q.erase(w);
      core_.Reply(reply, Status(StatusCode::kTimeout, "lock '" + name + "' not acquired within " +
                                                          std::to_string(wait) + " ms"));
      ForgetIfIdle(name);
      return;
    }
  });
  lock.waiters.push_back(Waiter{waiter_id, owner, ttl, lease_id,
                                call.client ? call.client->id() : 0, call.reply, timer});
}

LockModule::Lock* LockModule::HeldWithToken(Call& call, const std::string& name, uint64_t token) {
  CollectIfLapsed(name);
  auto it = locks_.find(name);
  if (it != locks_.end() && it->second.held && it->second.token == token) return &it->second;
  core_.Reply(call.reply, Status(StatusCode::kNotOwner, "token " + std::to_string(token) +
                                                            " does not hold lock '" + name + "'"));
  return nullptr;
}

void LockModule::Extend(Call& call) {
  const auto& lim = core_.limits();
  static constexpr std::string_view kFields[] = {"name", "token", "ttl_ms"};
  Params p(call.params, kFields);
  std::string name = p.Str("name", {.min = 1, .max = lim.max_name_bytes});
  uint64_t token = static_cast<uint64_t>(p.Int("token", {.min = 0}));
  int64_t ttl = p.Int("ttl_ms", {.min = 1, .max = lim.max_ttl_ms});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  Lock* held = HeldWithToken(call, name, token);
  if (!held) return;
  Lock& lock = *held;
  core_.NextRevision();
  lock.ttl_ms = ttl;
  lock.expires_mono_ms = core_.clock().MonoMs() + ttl;
  core_.batch().Put(Family::kLocks, LockKey(name), EncodeLockRecord(lock));
  Arm(name, lock);
  core_.Reply(call.reply, json{{"expires_at_ms", WallExpiry(lock)}});
}

void LockModule::Release(Call& call) {
  static constexpr std::string_view kFields[] = {"name", "token"};
  Params p(call.params, kFields);
  std::string name = p.Str("name", {.min = 1, .max = core_.limits().max_name_bytes});
  uint64_t token = static_cast<uint64_t>(p.Int("token", {.min = 0}));
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  Lock* held = HeldWithToken(call, name, token);
  if (!held) return;
  ReleaseAndHandOff(name, *held);
  core_.Reply(call.reply, json{{"ok", true}});
}

void LockModule::GetStatus(Call& call) {
  static constexpr std::string_view kFields[] = {"name"};
  Params p(call.params, kFields);
  std::string name = p.Str("name", {.min = 1, .max = core_.limits().max_name_bytes});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  CollectIfLapsed(name);
  auto it = locks_.find(name);
  core_.Reply(call.reply, it == locks_.end() ? Describe(name, Lock{}) : Describe(name, it->second));
}

void LockModule::List(Call& call) {
  static constexpr std::string_view kFields[] = {"after"};
  Params p(call.params, kFields);
  auto after = p.OptStr("after", {.max = core_.limits().max_name_bytes});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  std::vector<std::string> lapsed;
  for (const auto& [name, lock] : locks_) {
    if (Lapsed(lock)) lapsed.push_back(name);
  }
  for (const auto& name : lapsed) CollectIfLapsed(name);
  core_.Reply(
      call.reply,
      ListPage(
          locks_, after ? &*after : nullptr, core_.limits().max_reply_bytes, "locks",
          [](const std::string&, const Lock& lock) { return lock.held || !lock.waiters.empty(); },
          [this](const std::string& name, const Lock& lock) { return Describe(name, lock); }));
}

Status LockModule::CheckFence(const json& fence) const {
  static constexpr std::string_view kFenceFields[] = {"lock", "token"};
  SHIM_RETURN_IF_ERROR(CheckKnownFields(fence, kFenceFields, "fence."));
  if (!fence.is_object() || !fence.contains("lock") || !fence["lock"].is_string() ||
      !fence.contains("token") || !fence["token"].is_number_integer()) {
    return Status::InvalidParams("fence", "fence must be {\"lock\": NAME, \"token\": INTEGER}");
  }
  const std::string& name = fence["lock"].get_ref<const std::string&>();
  const uint64_t token = fence["token"].is_number_unsigned() || fence["token"].get<int64_t>() >= 0
                             ? fence["token"].get<uint64_t>()
                             : 0;
  auto it = locks_.find(name);
  const bool live = it != locks_.end() && it->second.held && !Lapsed(it->second);
  if (live && it->second.token == token) return Status::Ok();
  json details = {{"lock", name}, {"token", token}};
  details["current_token"] = live ? json(it->second.token) : json(nullptr);
  return Status(
      StatusCode::kFenced,
      "fence token " + std::to_string(token) + " is not the current holder of lock '" + name + "'",
      std::move(details));
}

void LockModule::ReleaseForLease(uint64_t lease_id) {
  std::vector<std::string> names;
  for (const auto& [name, lock] : locks_) {
    if (lock.held && lock.lease_id == lease_id) names.push_back(name);
  }
  for (const auto& name : names) {
    auto it = locks_.find(name);
    if (it != locks_.end()) ReleaseAndHandOff(name, it->second);
  }
}

void LockModule::EndWaits(uint64_t client_id) {
  if (client_id == 0) return;  // in-process calls have no connection to end
  // Taken out first, answered after: an answer can close the connection,
  // which comes back here.
  std::vector<std::pair<std::string, Waiter>> ended;
  for (auto& [name, lock] : locks_) {
    for (auto it = lock.waiters.begin(); it != lock.waiters.end();) {
      if (it->client_id != client_id) {
        ++it;
        continue;
      }
      ended.emplace_back(name, std::move(*it));
      it = lock.waiters.erase(it);
    }
  }
  for (auto& [name, w] : ended) {
    core_.mono_timers().Cancel(w.timer);
    ForgetIfIdle(name);
    core_.Reply(w.reply,
                Status(StatusCode::kTimeout, "lock '" + name +
                                                 "' not acquired: the connection stopped sending "
                                                 "(closed or half-closed), which ends its waits"));
  }
}

size_t LockModule::held_count() const {
  size_t n = 0;
  for (const auto& [name, lock] : locks_) n += lock.held;
  return n;
}

}  // namespace shim::engine

#include "engine/leases.h"

#include "engine/lease_record.h"
#include "engine/params.h"
#include "engine/reply_budget.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

Status LeaseModule::Recover() {
  leases_.clear();
  return ScanDecodedRecords<uint64_t, Lease>(core_.store(), kLeaseRecords, DecodeLeaseKey,
                                             DecodeLeaseRecord, [&](uint64_t id, Lease lease) {
                                               // Full TTL again after a restart: nothing expires
                                               // early.
                                               lease.expires_mono_ms =
                                                   core_.clock().MonoMs() + lease.ttl_ms;
                                               Arm(id, lease);
                                               leases_.emplace(id, std::move(lease));
                                             });
}

int64_t LeaseModule::WallExpiry(const Lease& lease) const {
  return core_.clock().NowMs() + (lease.expires_mono_ms - core_.clock().MonoMs());
}

bool LeaseModule::Exists(uint64_t lease_id) const {
  auto it = leases_.find(lease_id);
  return it != leases_.end() && it->second.expires_mono_ms > core_.clock().MonoMs();
}

void LeaseModule::Arm(uint64_t id, const Lease& lease) {
  core_.mono_timers().Schedule(lease.expires_mono_ms, [this, id] {
    auto it = leases_.find(id);
    // Kept alive since this timer was set: a later timer covers it.
    if (it == leases_.end() || it->second.expires_mono_ms > core_.clock().MonoMs()) return;
    End(id);
  });
}

void LeaseModule::End(uint64_t id) {
  core_.NextRevision();
  core_.batch().Delete(Family::kLeases, LeaseKey(id));
  leases_.erase(id);
  for (auto& hook : end_hooks_) hook(id);
}

void LeaseModule::Grant(Call& call) {
  static constexpr std::string_view kFields[] = {"ttl_ms", "owner"};
  Params p(call.params, kFields);
  int64_t ttl = p.Int("ttl_ms", {.min = 1, .max = core_.limits().max_ttl_ms});
  std::string owner = p.OptStr("owner", {.max = 256}).value_or("");
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  const uint64_t id = core_.NextRevision();
  Lease lease{{owner, ttl}, core_.clock().MonoMs() + ttl};
  core_.batch().Put(Family::kLeases, LeaseKey(id), EncodeLeaseRecord(lease));
  Arm(id, lease);
  const int64_t expires = WallExpiry(lease);
  leases_.emplace(id, std::move(lease));
  core_.Reply(call.reply, json{{"lease_id", id}, {"expires_at_ms", expires}});
}

void LeaseModule::Keepalive(Call& call) {
  static constexpr std::string_view kFields[] = {"lease_id"};
  Params p(call.params, kFields);
  uint64_t id = static_cast<uint64_t>(p.Int("lease_id", {.min = 1}));
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  auto it = leases_.find(id);
  if (it != leases_.end() && !Exists(id)) {
    // Its TTL has passed but its timer has not run yet (requests are served
    // in between): it is over all the same; end it now, as the timer would.
    End(id);
    it = leases_.end();
  }
  if (it == leases_.end())
    return core_.Reply(
        call.reply, Status::NotFound("no lease " + std::to_string(id) + " (it may have expired)"));
  // Liveness only: nothing to persist, a restart grants the full TTL anyway.
  it->second.expires_mono_ms = core_.clock().MonoMs() + it->second.ttl_ms;
  Arm(id, it->second);
  core_.Reply(call.reply, json{{"expires_at_ms", WallExpiry(it->second)}});
}

void LeaseModule::Revoke(Call& call) {
  static constexpr std::string_view kFields[] = {"lease_id"};
  Params p(call.params, kFields);
  uint64_t id = static_cast<uint64_t>(p.Int("lease_id", {.min = 1}));
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  if (!leases_.count(id))
    return core_.Reply(call.reply, Status::NotFound("no lease " + std::to_string(id)));
  End(id);
  core_.Reply(call.reply, json{{"ok", true}});
}

void LeaseModule::List(Call& call) {
  static constexpr std::string_view kFields[] = {"after"};
  Params p(call.params, kFields);
  auto after = p.OptInt("after", {.min = 0});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  const uint64_t after_id = after ? static_cast<uint64_t>(*after) : 0;
  core_.Reply(call.reply, ListPage(
                              leases_, after ? &after_id : nullptr, core_.limits().max_reply_bytes,
                              "leases", [](uint64_t, const Lease&) { return true; },
                              [this](uint64_t id, const Lease& lease) {
                                return json{{"lease_id", id},
                                            {"owner", lease.owner},
                                            {"ttl_ms", lease.ttl_ms},
                                            {"expires_at_ms", WallExpiry(lease)}};
                              }));
}

}  // namespace shim::engine

// LeaseModule: leases (lease.* methods) — a TTL that other objects hang on.
//
// A lease lives until revoked or until `ttl_ms` passes without a keepalive.
// When it ends, in one serialized write, every key set with its lease_id is
// deleted and every lock taken with it is released (handing the lock to the
// next waiter). Liveness runs on the monotonic clock and is not persisted:
// after a restart every lease gets its full TTL again, so nothing expires
// early. Persisted in Family::kLeases: lease_id -> {owner, ttl_ms}
// (engine/lease_record.h).
// Engine thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "engine/call.h"
#include "engine/core.h"
#include "engine/lease_record.h"

namespace shim::engine {

class LeaseModule {
 public:
  explicit LeaseModule(Core& core) : core_(core) {}

  // Called when a lease ends, inside the ending write: delete its keys,
  // release its locks.
  using EndHook = std::function<void(uint64_t lease_id)>;
  void OnEnd(EndHook hook) { end_hooks_.push_back(std::move(hook)); }

  Status Recover();
  void Reset() { leases_.clear(); }

  void Grant(Call& call);
  void Keepalive(Call& call);
  void Revoke(Call& call);
  void List(Call& call);

  // True while the lease is live: granted, not ended, and its TTL not yet
  // passed, even if the timer that ends it has not run yet.
  bool Exists(uint64_t lease_id) const;
  size_t count() const { return leases_.size(); }

 private:
  // The stored part (engine/lease_record.h) and the deadline.
  struct Lease : LeaseRecord {
    int64_t expires_mono_ms = 0;
  };
  void Arm(uint64_t id, const Lease& lease);
  void End(uint64_t id);
  int64_t WallExpiry(const Lease& lease) const;

  Core& core_;
  std::map<uint64_t, Lease> leases_;
  std::vector<EndHook> end_hooks_;
};

}  // namespace shim::engine

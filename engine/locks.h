// LockModule: fenced locks (lock.* methods) and the fence check for writes.
//
// A lock is held by one owner with a TTL. Its fencing token is the
// store-wide revision of the write that granted it, so tokens strictly
// increase across holders and across restarts (the revision is persisted
// and never goes down). A write carrying `fence: {lock, token}` is accepted
// only while that lock is held with exactly that token: a holder that
// stalled past its TTL and lost the lock is FENCED, which closes the
// lost-update hole of Redis-style locks.
//
// Waiters (wait_ms > 0) queue server-side, FIFO, bounded per lock; each ends
// with the lock or TIMEOUT, and ends with TIMEOUT at once when its
// connection closes or stops sending (EndWaits).
// On release or expiry the lock passes to the first waiter in the same
// write. Liveness is on the monotonic clock; after a restart held locks get
// their full TTL again. Persisted in Family::kLocks: name -> {owner, token,
// ttl_ms, lease_id} (engine/lock_record.h). Engine thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/call.h"
#include "engine/core.h"
#include "engine/lock_record.h"

namespace shim::engine {

class LeaseModule;

class LockModule {
 public:
  LockModule(Core& core, LeaseModule& leases) : core_(core), leases_(leases) {}

  Status Recover();
  void Reset();

  void Acquire(Call& call);
  void Extend(Call& call);
  void Release(Call& call);
  void GetStatus(Call& call);
  void List(Call& call);

  // OK if `fence` ({lock, token}) names a lock held right now with exactly
  // that token; FENCED otherwise; INVALID_PARAMS if malformed.
  Status CheckFence(const nlohmann::json& fence) const;
  // Releases every lock taken with this lease (part of the lease's end).
  void ReleaseForLease(uint64_t lease_id);
  // Ends every wait of this connection now, each answered TIMEOUT, and
  // frees its place in the queue and its timer.
  void EndWaits(uint64_t client_id);

  size_t held_count() const;

 private:
  struct Waiter {
    uint64_t id;
    std::string owner;
    int64_t ttl_ms;
    uint64_t lease_id;
    uint64_t client_id;
    ReplyFn reply;
    TimerQueue::TimerId timer;  // ends the wait at wait_ms
  };
  // The stored part (engine/lock_record.h: owner, token, ttl_ms, lease_id)
  // and what lives only in memory.
  struct Lock : LockRecord {
    bool held = false;
    int64_t expires_mono_ms = 0;
    std::deque<Waiter> waiters;
  };

  // True if `lock` is held but its TTL (or the TTL of the lease it was taken
  // with) has passed: it is lost from that moment, even before the timer
  // that frees it runs (the host serves requests in between).
  bool Lapsed(const Lock& lock) const;
  // Frees `name` now, handing it on, if it has lapsed: what its timer does.
  void CollectIfLapsed(const std::string& name);
  // The lock `name` when `token` holds it (after collecting it if it
  // lapsed); else answers the call NOT_OWNER and returns null.
  Lock* HeldWithToken(Call& call, const std::string& name, uint64_t token);
  // Grants `name` to the given owner: new token, persisted, timer armed.
  void Grant(const std::string& name, Lock& lock, const std::string& owner, int64_t ttl_ms,
             uint64_t lease_id);
  // Frees the lock and hands it to the first waiter, if any.
  void ReleaseAndHandOff(const std::string& name, Lock& lock);
  void Arm(const std::string& name, const Lock& lock);
  int64_t WallExpiry(const Lock& lock) const;
  nlohmann::json Describe(const std::string& name, const Lock& lock) const;
  void ForgetIfIdle(const std::string& name);

  Core& core_;
  LeaseModule& leases_;
  std::map<std::string, Lock, std::less<>> locks_;
  uint64_t next_waiter_id_ = 1;
};

}  // namespace shim::engine

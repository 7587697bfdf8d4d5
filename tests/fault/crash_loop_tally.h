// The crash loop's books: what kinds of load it runs (Load), how many of
// each were acknowledged, and the checks it made (Tally).
//
// Every kind of load has a minimum count of acknowledged operations per
// kill, which the loop asserts at the end: a kind that silently stops
// running (a method that always refuses, an op the weights never pick, a
// client stuck on an unexpected error) fails the test instead of passing
// with nothing checked. The minimums are about a quarter of what the ASan
// build acknowledged per kill on a loaded 2-core machine (load average
// 18), about a tenth of what a release build does; every one is at least
// one in a run.
//
// Thread-safe: client threads and the verifier share one Tally.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace shim::fault {

enum class Load : int {
  kOwnSet,
  kOwnCas,
  kOwnBadCas,  // counted when the conflict came back, as it must
  kOwnRead,
  kOwnDel,
  kOwnPatchMerge,
  kOwnPatchOps,
  kIncr,
  kPairTxn,
  kPairTxnFailureBranch,  // a txn whose compare failed on purpose ran its failure ops
  kTransferTxn,
  kSharedCas,
  kTtlSet,
  kTtlRead,
  kLeaseGrant,
  kLeaseKeepalive,
  kLeaseKey,
  kLeaseRevoke,
  kPublishOwn,
  kPublishShared,
  kSubscribe,        // a subscription (re)opened with from_seq, after a restart too
  kMessageReceived,  // a pubsub.message checked against the log
  kLockAcquire,
  kLockExtend,
  kFencedWrite,
  kLockRelease,
  kStaleFenceProbe,  // counted when FENCED came back, as it must
  kTaskSubmit,
  kTaskSubmitDelayed,
  kTaskSubmitBatch,
  kTaskClaim,
  kTaskClaimNext,
  kTaskComplete,
  kTaskFailRetry,
  kTaskFailFinal,
  kTaskRetry,
  kTaskExtend,
  kWorkerRegister,
  kWorkerHeartbeat,
  kWorkerDeregister,
  kCheckpointSave,
  kCheckpointAuto,
  kSessionOpen,  // short-heartbeat sessions, left to go unclean
  kSessionClose,
  kRecoveryCheck,
  kRecoveryAck,
  kCount
};

struct LoadInfo {
  const char* name;
  double min_per_kill;  // acknowledged at least this many times per kill
};

inline constexpr std::array<LoadInfo, static_cast<size_t>(Load::kCount)> kLoadInfo = {{
    {"state.set (own keys)", 1},
    {"state.set with expected_version (own keys)", 0.7},
    {"state.set with a wrong expected_version: VERSION_CONFLICT", 0.25},
    {"state.get (own keys)", 0.2},
    {"state.del (own keys)", 0.3},
    {"state.patch merge (own keys)", 0.3},
    {"state.patch ops (own keys)", 0.2},
    {"state.incr (own counter)", 0.25},
    {"state.txn on a key pair (compare held)", 0.3},
    {"state.txn on a key pair (compare failed: failure ops)", 0.2},
    {"state.txn transfer between two shared keys", 0.3},
    {"state.set CAS (shared keys)", 0.8},
    {"state.set with ttl_ms", 0.3},
    {"state.get of TTL keys", 0.15},
    {"lease.grant", 0.2},
    {"lease.keepalive", 0.15},
    {"state.set with lease_id", 0.1},
    {"lease.revoke", 0.1},
    {"pubsub.publish (own channel)", 0.4},
    {"pubsub.publish (shared channel)", 0.4},
    {"pubsub.subscribe from_seq (replay)", 2},
    {"pubsub.message received and checked", 4},
    {"lock.acquire", 0.6},
    {"lock.extend", 0.1},
    {"state.set fenced by the lock", 1},
    {"lock.release", 0.4},
    {"state.set with a released token: FENCED", 0.2},
    {"task.submit", 0.6},
    {"task.submit with delay_ms", 0.2},
    {"task.submit_batch (dependencies, parent, children)", 0.4},
    {"task.claim (tasks handed out)", 2.5},
    {"task.complete claim_next (tasks handed out)", 0.15},
    {"task.complete", 0.8},
    {"task.fail, retried with backoff", 0.2},
    {"task.fail, final", 0.1},
    {"task.retry", 0.05},
    {"task.extend", 0.1},
    {"worker.register", 0.25},
    {"worker.heartbeat", 2},
    {"worker.deregister", 0.15},
    {"checkpoint.save", 0.7},
    {"checkpoint.auto (retention 5)", 0.3},
    {"session.open (left to go unclean)", 0.3},
    {"session.close", 0.1},
    {"recovery.check of an unclean session", 0.2},
    {"recovery.ack", 0.1},
}};

inline const char* LoadName(Load l) { return kLoadInfo[static_cast<size_t>(l)].name; }

// Counts checks by category; a failed check is a test failure with its story,
// unless the loop runs to prove that its checks catch a broken server
// (expect_violations): then failures are only counted, per category.
class Tally {
 public:
  explicit Tally(bool expect_violations) : expect_violations_(expect_violations) {}

  bool Expect(bool ok, const std::string& category, const std::string& what);
  // n checks of one kind that all passed (re-checks over a growing set count
  // only the facts that are new since the last round).
  void Pass(const std::string& category, uint64_t n);
  void Note(const std::string& what, uint64_t n = 1);
  void Acked(Load load, uint64_t n = 1);
  void Refused(Load load);

  uint64_t acked(Load load);
  uint64_t passed();
  uint64_t failed();
  std::map<std::string, uint64_t> failed_by_category();
  // The checks by kind, the notes, and the acknowledged operations by load.
  std::string Summary();
  std::string LoadSummary();

 private:
  const bool expect_violations_;
  std::mutex mu_;
  std::map<std::string, uint64_t> passed_;
  std::map<std::string, uint64_t> failed_by_;
  std::map<std::string, uint64_t> notes_;
  std::array<uint64_t, static_cast<size_t>(Load::kCount)> acked_{};
  std::array<uint64_t, static_cast<size_t>(Load::kCount)> refused_{};
  uint64_t failed_ = 0;
  int reported_ = 0;
};

}  // namespace shim::fault

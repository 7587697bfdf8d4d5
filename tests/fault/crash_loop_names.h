// Names and sizes of the crash loop's objects (tests/fault/crash_loop.h):
// which keys, channels, locks, queues and sessions each client uses.
#pragma once

#include <cstdint>
#include <string>

namespace shim::fault {

constexpr int kCrashLoopClients = 8;
constexpr int kOwnKeys = 4;
constexpr int kSharedKeys = 3;
constexpr int kTtlKeys = 2;
constexpr int kLocks = 2;
constexpr int64_t kLockTtlMs = 400;
constexpr int64_t kShortLeaseMs = 300;
constexpr int64_t kLongLeaseMs = 5000;
constexpr int64_t kWorkerTtlMs = 2500;
constexpr int64_t kWorkerMaxConcurrency = 3;
constexpr int kAutoKeep = 5;  // keep_checkpoints of the checkpoint.auto sessions
constexpr int kCallTimeoutMs = 15'000;
// Each round's load runs a random 100..700 ms, and longer if fewer than
// this many requests were acknowledged by then (a release build on a
// loaded 2-core machine acknowledges about 200 in a round).
constexpr uint64_t kMinAckedPerRound = 80;
// Slack for comparing the server's wall-clock and monotonic times with the
// test's (same machine, same clocks; ms rounding, timer granularity).
constexpr int64_t kClockSlackMs = 5;
// Slack for liveness deadlines that restart at recovery: a process's start
// is measured from the spawn, its TTLs restart a little later.
constexpr int64_t kLivenessSlackMs = 50;

constexpr char kQueue[] = "fq";
constexpr char kDagQueue[] = "fdag";
constexpr char kSharedChannel[] = "fch/shared";
constexpr char kTransferA[] = "txn/a";
constexpr char kTransferB[] = "txn/b";

inline std::string C(int c) { return "c" + std::to_string(c); }
inline std::string OwnKey(int c, int k) { return "own/" + C(c) + "/k" + std::to_string(k); }
inline std::string CounterKey(int c) { return "ctr/" + C(c); }
inline std::string PairKey(int c, char side) { return "pair/" + C(c) + "/" + side; }
inline std::string PairFailsKey(int c) { return "pair/" + C(c) + "/fails"; }
inline std::string SharedKey(int k) { return "shared/k" + std::to_string(k); }
inline std::string TtlKeyName(int c, int k) { return "ttl/" + C(c) + "/k" + std::to_string(k); }
inline std::string LeaseKeyName(int c) { return "lease/" + C(c); }
inline std::string LockName(int l) { return "flock/" + std::to_string(l); }
inline std::string FencedKey(int l) { return "fenced/" + std::to_string(l); }
inline std::string OwnChannel(int c) { return "fch/" + C(c); }
inline std::string EventsChannel(const std::string& queue) { return "events." + queue; }
inline std::string SessionId(int c) { return "fsess-" + C(c); }
inline std::string AutoSessionId(int c) { return "fauto-" + C(c); }
inline std::string WorkerId(int c) { return "fw-" + C(c); }

}  // namespace shim::fault

// Failpoints: named places in storage and engine where a crash test can make
// the process die, to check what a crash at exactly that point leaves on disk.
//
// They are armed once, when the process starts, from the environment:
//
//   SHIM_FAILPOINTS="store.before_write:crash@3,recovery.mid_scan:abort"
//
// Each entry is NAME:ACTION[@N]. ACTION is `crash` (write a line naming the
// failpoint to stderr, then _exit(kFailpointExitCode) at once: no
// destructors, no flush, like a SIGKILL at that instruction), `abort`
// (std::abort()) or, at the failpoints of kFailpointsThatCanFail, `error`
// (the code there fails as if the operation had: the process goes on, to
// test what it does about the failure). With @N the failpoint fires on its
// Nth hit (1-based), once; the hits before and after pass. An unknown name or a malformed entry
// makes the process print the problem and _exit(2) before main(), so a typo cannot silently disarm
// a test. The names, and what a crash at each leaves behind, are in docs/failpoints.md;
// kFailpointNames below is the list.
//
// Cost when nothing is armed: SHIM_FAILPOINT(name) is one predictable branch
// on a plain static bool that is written only during static initialisation
// (or by Configure() in single-threaded test set-up). Any thread may pass a
// failpoint; Hit() is thread-safe.
#pragma once

#include <string_view>

#include "base/status.h"

namespace shim::failpoint {

// Exit status of a process stopped by a `crash` failpoint.
inline constexpr int kFailpointExitCode = 86;

// Every failpoint name, in the order the write path reaches them.
inline constexpr std::string_view kFailpointNames[] = {
    "store.before_write",                // Store::Commit, before the RocksDB write
    "store.after_write_before_sync",     // the batch is in the WAL file, not yet fsynced
    "store.after_sync",                  // the batch is written and fsynced, Commit not returned
    "engine.after_commit_before_reply",  // the group landed; none of its replies released
    "engine.reload",  // Engine::Land reloaded from the store after a failed group write
    // Recovery at open, one per module's Recover(): each is hit once per
    // record that module reads from the store (recovery.mid_scan is the
    // state module's, named before there were others).
    "recovery.mid_scan",  // per state record
    "recovery.leases",    // per lease record
    "recovery.locks",     // per held-lock record
    "recovery.pubsub",    // per channel record
    "recovery.workers",   // per worker record
    "recovery.tasks",     // per task record
    "recovery.sessions",  // per session record
};

// The failpoints whose place can fail instead of crashing (ACTION `error`),
// reached through SHIM_FAILPOINT_STATUS: store.before_write makes
// Store::Commit fail without writing (a failed group write), engine.reload
// makes the reload after a failed group write report failure (the engine
// then turns read-only, docs/protocol.md "Read-only").
inline constexpr std::string_view kFailpointsThatCanFail[] = {"store.before_write",
                                                              "engine.reload"};

// True when any failpoint is armed. Read through SHIM_FAILPOINT.
extern bool g_any_armed;

// Slow path of SHIM_FAILPOINT: counts the hit and fires if armed.
void Hit(std::string_view name);
// Hit() for a place that can fail: an `error` failpoint firing here returns
// INTERNAL "failpoint NAME fired (hit N): injected error"; otherwise OK
// (crash and abort fire as in Hit()).
Status HitStatus(std::string_view name);
// Whether `name` is armed (and not yet fired). For call sites that need a
// different code path to reach a point at all (store.after_write_before_sync).
bool Armed(std::string_view name);

// Parses a SHIM_FAILPOINTS value and arms what it names, replacing whatever
// was armed. Errors: INVALID_PARAMS naming the bad entry. Not thread-safe:
// for start-up and single-threaded test set-up only.
Status Configure(std::string_view spec);
// Disarms everything.
void Reset();

}  // namespace shim::failpoint

#define SHIM_FAILPOINT(name)                                                               \
  do {                                                                                     \
    if (__builtin_expect(::shim::failpoint::g_any_armed, 0)) ::shim::failpoint::Hit(name); \
  } while (0)

// A failpoint at a place that can fail: the Status to fail with (OK unless
// an `error` action fires here). One branch when none is armed:
//   SHIM_RETURN_IF_ERROR(SHIM_FAILPOINT_STATUS("store.before_write"));
#define SHIM_FAILPOINT_STATUS(name)                                                         \
  (__builtin_expect(::shim::failpoint::g_any_armed, 0) ? ::shim::failpoint::HitStatus(name) \
                                                       : ::shim::Status())

// True only when the named failpoint is armed; one branch when none is.
#define SHIM_FAILPOINT_ARMED(name) \
  (__builtin_expect(::shim::failpoint::g_any_armed, 0) && ::shim::failpoint::Armed(name))

// Simulated power loss, for tests only: the journal a test-only RocksDB
// FileSystem (storage/power_cut_fs.h) writes while a store runs, and
// ApplyPowerCut(), which turns a data directory left by a killed process
// into what a power cut at the moment of the kill could have left.
//
// Why: SIGKILL keeps the kernel's page cache, so a crash test that only
// kills the server would pass even if nothing were ever fsynced. A power cut
// loses every byte and every directory entry that was not synced. The
// journal records, as they happen, what was made durable; the cut then drops
// the rest:
//   - each file is truncated to the length it had when it was last synced
//     (a file never synced keeps nothing);
//   - a file created since its directory was last synced is removed;
//   - a rename not followed by a sync of its directory is undone: the file
//     replaced by it comes back (the journal keeps it through a hard link)
//     and the renamed file goes back to its old name, or away if that entry
//     was never synced either.
// It is the harshest outcome a POSIX filesystem allows, as RocksDB's own
// FaultInjectionTestFS models it (utilities/fault_injection_fs.cc).
//
// What it does not model (written down in docs/fault-testing.md): a deleted
// file stays deleted even when its directory was not synced (a real cut
// could bring it back); data overwritten in place below a synced length;
// torn sectors. Operations RocksDB does not use in shim's configuration
// (LinkFile, ReuseWritableFile, random-access writes) are journaled as
// "unmodelled" and make ApplyPowerCut() fail rather than cut wrongly.
//
// Turned on by `shim serve` when SHIM_TEST_POWER_CUT_JOURNAL names a
// directory (kPowerCutJournalEnv; StoreOptions::power_cut_journal in
// process). That directory must be on the data directory's filesystem
// (hard links) and holds the journal of the current run only: opening a
// store truncates it, so a cut applies to the run that was killed last.
//
// Threads: ApplyPowerCut() touches only files; call it while no process has
// the store open (after the kill, before the restart).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace shim::storage {

// The environment variable `shim serve` reads; test-only.
inline constexpr const char* kPowerCutJournalEnv = "SHIM_TEST_POWER_CUT_JOURNAL";

// Journal format: one line per event, each written with one write(2) on an
// O_APPEND descriptor (the page cache survives SIGKILL, so no fsync is
// needed; a line cut short by the kill is ignored). Fields are separated by
// one space; the path or paths come last (two paths separated by a tab).
// Times are CLOCK_MONOTONIC nanoseconds (std::chrono::steady_clock).
//   C <ns> <existed 0|1> <path>       before a file is created (NewWritableFile)
//   O <ns> <size> <path>              before an existing file is reopened for appending
//   S <ns> <length> <path>            after a file sync succeeded; <length> is its size
//                                     when the sync began
//   D <ns> <dir>                      after a directory fsync succeeded
//   R <ns> <saved|-> <from>\t<to>     after a rename; <saved> is the journal-dir
//                                     name of a hard link to what <to> held before
//   X <ns> <path>                     after a file was deleted
//   T <ns> <size> <path>              after a file was truncated by name
//   U <ns> <operation> <path>         an operation the cut cannot model
namespace power_cut {
inline constexpr char kCreate = 'C';
inline constexpr char kReopen = 'O';
inline constexpr char kSync = 'S';
inline constexpr char kDirSync = 'D';
inline constexpr char kRename = 'R';
inline constexpr char kDelete = 'X';
inline constexpr char kTruncate = 'T';
inline constexpr char kUnmodelled = 'U';
// File names inside the journal directory.
inline constexpr const char* kJournalFile = "journal";
inline constexpr const char* kSavedPrefix = "saved.";
}  // namespace power_cut

// What a cut did, and what the journal says about syncs.
struct PowerCutReport {
  uint64_t records = 0;          // journal lines read
  uint64_t files_truncated = 0;  // files that lost their unsynced tail
  uint64_t bytes_dropped = 0;    // bytes those tails held
  uint64_t files_removed = 0;    // entries never made durable by a directory sync
  uint64_t files_restored = 0;   // files put back by undoing a rename
  uint64_t wal_syncs = 0;        // syncs of RocksDB WAL files (*.log) this run
  // When the last sync of the newest WAL file began (steady clock), -1 if
  // it was never synced. Only a sync of the whole WAL (DB::SyncWAL, a
  // synced write) reaches the current file, and it syncs the older ones
  // first, so everything written before this moment was durable. (A sync
  // of an older file alone — RocksDB syncs closed WAL files before a
  // flush — says nothing about the current one.)
  int64_t newest_wal_synced_ns = -1;
  std::string ToString() const;
};

// Applies a power cut to the files named in the journal in `journal_dir`
// (see above), then empties the journal directory. A journal directory that
// does not exist or has no journal is a cut with nothing to drop.
// Errors: INTERNAL when a file operation fails or the journal holds an
// unmodelled operation; the data directory may then be partly cut.
Result<PowerCutReport> ApplyPowerCut(const std::string& journal_dir);

}  // namespace shim::storage

// The note a running `shim serve` leaves in its data directory, saying which
// server uses it: `DIR/shim-server.json`, {"pid": N, "socket": PATH}.
//
// RocksDB's LOCK file is what keeps a second server out of a data directory
// (its open fails); this note only lets the refusal name the server that
// holds it: "another shim server (pid N, socket S) is using DIR". The note
// is written after the store is open (the lock is ours) and removed before
// it is closed, so a note is never removed by a server that no longer holds
// the lock. A killed server leaves it behind; the next one overwrites it,
// and a reader checks that its pid still runs. RocksDB ignores files whose
// names it does not know. Any thread; plain file I/O.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/status.h"

namespace shim::cli {

struct DataDirOwner {
  pid_t pid = 0;
  std::string socket;
};

// Writes the note for this process (atomically: a reader sees the old note
// or the new one, never half). Errors: INTERNAL when it cannot be written.
Status WriteDataDirOwner(const std::string& data_dir, const DataDirOwner& owner);
// The note, if there is one and its process is still running.
std::optional<DataDirOwner> ReadLiveDataDirOwner(const std::string& data_dir);
// Removes the note if it names this process.
void RemoveDataDirOwner(const std::string& data_dir);

// True while process `pid` runs: it exists and is not a zombie (an exited
// child not yet reaped by its parent counts as gone). Linux (/proc).
bool ProcessRunning(pid_t pid);

}  // namespace shim::cli

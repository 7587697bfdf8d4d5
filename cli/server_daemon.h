// Starting `shim serve` in the background, for `shim mcp` (which starts the
// server when none answers), and telling at once why it did not start.
// Blocks the calling thread while it waits; any thread.
#pragma once

#include <string>

#include "base/status.h"

namespace shim::cli {

struct ServerDaemonOptions {
  std::string socket;
  std::string data_dir;
  // `shim serve --log-file`: rotated by size (shim serve --help). The
  // daemon's stdout and stderr are appended to it too, for what it prints
  // before its logger is set up (a refused option).
  std::string log_file;
  // How long a server that is still running (recovering a large store) may
  // take to answer. One that exits is reported as soon as it has.
  int answer_timeout_ms = 30'000;
};

// Starts `shim serve --socket S --data D --log-file L` (this same binary)
// in a session of its own, never a zombie of the caller, and returns once
// the socket accepts connections (a server another process started on it
// meanwhile counts too). Errors: INTERNAL when it cannot be started, when
// it exits first (within a few tens of ms of its exit), with the first
// error line it logged ("the server did not start: another shim server
// (pid 12, socket ...) is using ...; log: L"), or when it has not answered
// within answer_timeout_ms.
Status StartServerDaemon(const ServerDaemonOptions& options);

// The line that says why a server did not start: among `log_text`, the
// first one logged at error level or printed as "shim serve: ..." (not a
// warning), with spdlog's time/logger/level prefix removed; else the last
// non-empty line; "" if there is none.
std::string FirstErrorLine(const std::string& log_text);

}  // namespace shim::cli

// ServerProcess: a real `shim serve` child process for end-to-end and crash
// tests, on a temp data dir and a temp socket, stopped by PID.
//
//   ServerProcess server({.durability = "sync"});
//   ASSERT_OK(server.Start());           // waits until the socket answers
//   auto client = server.Connect();      // LineClient
//   server.Kill();                       // SIGKILL, waits for the exit
//   ASSERT_OK(server.Start());           // same data dir and socket
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/line_client.h"
#include "storage/power_cut.h"
#include "tests/support/temp_dir.h"

namespace shim::testing {

struct ServerProcessOptions {
  std::string durability = "sync";
  std::vector<std::string> extra_args{};  // e.g. {"--max-outbound-bytes", "65536"}
  // "NAME=value" entries added to the child's environment only, e.g.
  // {"SHIM_FAILPOINTS=store.before_write:crash@3"} (docs/failpoints.md).
  std::vector<std::string> env{};
  // Test-only power-cut journal (storage/power_cut.h): the server records
  // what it syncs, so that CutPower() after Kill() can drop what a power
  // cut would have lost. docs/fault-testing.md, "Power cuts".
  bool power_cut_journal = false;
};

class ServerProcess {
 public:
  explicit ServerProcess(ServerProcessOptions options = {});
  ~ServerProcess();  // SIGKILLs a still-running child

  // Starts the server and waits (up to 20 s) until it accepts connections.
  Status Start();
  // Starts the server and returns at once, while it is still recovering
  // (for tests that kill it before it is ready). Errors: INTERNAL if one is
  // running already or fork failed.
  Status Spawn();
  // SIGKILL and reap.
  void Kill();
  // SIGTERM and reap; returns the exit status (0 on a clean shutdown).
  int Stop();
  // Waits up to timeout_ms for the child to exit on its own (e.g. at a
  // failpoint) and reaps it. Returns its exit code, 128 + signal if a signal
  // ended it, or -1 if it is still running (or none was started).
  int WaitForExit(int timeout_ms);
  // Exit code (as WaitForExit) of the last child that ended on its own,
  // during Start() or WaitForExit(); -1 if none did.
  int last_exit_status() const { return last_exit_status_; }
  // After Kill() (or a failpoint exit), before the next Start(): applies a
  // simulated power cut to the data directory — every byte and directory
  // entry the killed server had not synced is gone. Needs
  // options().power_cut_journal for the run that was killed.
  Result<storage::PowerCutReport> CutPower();
  // Options used by the next Start() (e.g. to arm or disarm failpoints).
  ServerProcessOptions& options() { return options_; }
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  Result<std::unique_ptr<net::LineClient>> Connect() const;
  const std::string& socket_path() const { return socket_path_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }

 private:
  ServerProcessOptions options_;
  TempDir dir_;
  std::string socket_path_, data_dir_, log_path_;
  // Beside the data directory, on its filesystem (the journal hard-links).
  std::string PowerCutJournalDir() const;
  pid_t pid_ = -1;
  int last_exit_status_ = -1;
};

// Starts `shim serve --log-level warn <args>` (SHIM_BINARY) with stdout and
// stderr appended to log_path, SHIM_AUTH_TOKEN removed from its environment
// (a test server never inherits the runner's token) and then the "NAME=value"
// entries of env added. Returns the child's pid, -1 if fork failed.
pid_t SpawnServe(const std::vector<std::string>& args, const std::string& log_path,
                 const std::vector<std::string>& env = {});

// SpawnServe, then waits (bounded) for the child to exit: its exit code,
// 128 + signal if a signal ended it, or -1 if it was still running at the
// deadline (then it is killed). For start-up failures, e.g. a bad flag.
int RunServeToExit(const std::vector<std::string>& args, const std::string& log_path,
                   int timeout_ms = 20'000);

// Runs `shim ARGS...` (a client command; ARGS go through the shell, with
// `env` assignments before it), returns its exit code (-1 if a signal ended
// it); its stdout and stderr into *out.
int RunShim(const std::string& args, std::string* out, const std::string& env = "");

// Resident set size of a process in KiB (VmRSS from /proc), -1 if unknown:
// what the memory-bound tests assert on.
long RssKiB(pid_t pid);
// Its peak since it started (VmHWM), -1 if unknown: for bounds on what one
// request made the server hold, however briefly.
long PeakRssKiB(pid_t pid);

// The whole text of a file ("" if it cannot be read), e.g. a server's log
// for a failure message.
std::string ReadFile(const std::string& path);

}  // namespace shim::testing

// The in-process engine the JSON-RPC and MCP fuzz targets drive: a SyncHost
// (tests/support/sync_host.h) on a real Store (Durability none, so no
// fsync) in a fresh /tmp directory removed at exit, with a FakeClock,
// opened once per process and shared by every input, as one long-lived
// server would be. A fault the host finds aborts. Engine thread = the
// fuzzer's thread. The clock moves only when an input says so (MoveClock),
// so TTLs, leases, heartbeats, delayed tasks and retention run as the
// fuzzer chooses, and a crash replays from its inputs.
//
// Every inputs_per_open inputs (BeginInput; 1,000, or
// SHIM_FUZZ_INPUTS_PER_OPEN: the seed replay of `make test` uses 16, so
// that recovery runs over the corpus's state too) the engine and store are
// closed and opened again on what they wrote, as a server restart does: a
// recovery that fails aborts, since a server could not restart on that
// data either. Every kOpensPerStore opens the store starts empty again, so
// that a campaign of millions of inputs keeps a bounded state and speed
// (what 4,000 inputs leave: with 200,000, list replies of some 100,000
// sessions took most of jsonrpc_fuzz's time; with 5,000, a quarter).
#pragma once

#include <memory>
#include <string>

#include "engine/clock.h"
#include "net/mcp_adapter.h"
#include "net/method_table.h"
#include "tests/support/sync_host.h"

namespace shim::fuzz {

struct FuzzEngine {
  static constexpr uint64_t kOpensPerStore = 4;

  std::string dir;
  engine::FakeClock clock;
  std::unique_ptr<testing::SyncHost> host;
  std::unique_ptr<net::McpAdapter> mcp;       // on host's engine, rebuilt with it
  std::unique_ptr<net::MethodTable> methods;  // the same
  uint64_t inputs_per_open = 1'000;
  uint64_t inputs = 0;
  uint64_t opens = 0;

  // Call at the start of each input: counts it, and reopens (see above)
  // when it is time. References into the engine do not survive it.
  void BeginInput();
  // Opens the host on `dir` (emptied first if `fresh`).
  void Open(bool fresh);

  // Moves the monotonic and wall clocks forward by `mono_ms` (clamped to
  // 0 .. kMaxStepMs) and then the wall clock alone by `wall_ms` (either
  // sign, clamped to +-kMaxStepMs: a wall clock set by hand or by NTP can
  // go back), then runs what fell due (SyncHost::RunUntilIdle).
  void MoveClock(int64_t mono_ms, int64_t wall_ms);
  static constexpr int64_t kMaxStepMs = int64_t{400} * 24 * 3600 * 1000;  // 400 days
};

// The engine's limits in the fuzz targets: smaller than the defaults where
// a default lets one request of a few KiB do far more work than a fuzzer
// can afford per input (fuzz_engine.cc says which and why).
engine::EngineLimits FuzzLimits();

// The process-wide instance; aborts if the store cannot be opened.
FuzzEngine& GetFuzzEngine();

}  // namespace shim::fuzz

#include "tests/fuzz/fuzz_engine.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace shim::fuzz {

namespace {

FuzzEngine* g_engine = nullptr;

void Cleanup() {
  // Only the directory: at exit RocksDB's logger may already be torn down
  // (closing the store here made ASan report a bad free in EnvLogger).
  if (!g_engine) return;
  std::error_code ec;
  std::filesystem::remove_all(g_engine->dir, ec);
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fuzz engine: %s\n", what.c_str());
  std::abort();
}

}  // namespace

engine::EngineLimits FuzzLimits() {
  engine::EngineLimits limits;
  // Pages of 4 KiB, not 4 MiB: list reads page (and continue) far more
  // often. A list read costs as much as its page, and the harness encodes
  // and parses every reply again for its checks: with 4 MiB pages the
  // campaign slowed from 200 to 6 inputs a second as the state grew, with
  // 64 KiB pages session.list over the sessions of a few thousand inputs
  // still took 27% of jsonrpc_fuzz's time.
  limits.max_reply_bytes = 4 << 10;
  // A value or message of 64 KiB, not 1 MiB, and a patch that may walk
  // and copy 256 KiB, not 16 MiB: inputs are a few KiB, so only a patch of
  // doubling copies, or values grown over many inputs, come near these,
  // and each such request may then build and encode megabytes of JSON
  // under ASan. The checks are the same code; they are only reached sooner.
  limits.max_value_bytes = 64 << 10;
  limits.max_message_data_bytes = 64 << 10;
  limits.max_patch_work = 256 << 10;
  return limits;
}

void FuzzEngine::MoveClock(int64_t mono_ms, int64_t wall_ms) {
  clock.Advance(std::clamp<int64_t>(mono_ms, 0, kMaxStepMs));
  clock.AdjustWall(std::clamp<int64_t>(wall_ms, -kMaxStepMs, kMaxStepMs));
  host->RunUntilIdle();
}

void FuzzEngine::Open(bool fresh) {
  methods.reset();
  mcp.reset();
  if (host) {
    Status closed = host->Close();
    if (!closed.ok()) Die("closing the store: " + closed.ToString());
    host.reset();
  }
  if (fresh) {
    std::error_code ec;
    std::filesystem::remove_all(dir + "/data", ec);
  }
  storage::StoreOptions so;
  so.path = dir + "/data";
  so.durability = storage::Durability::kNone;
  engine::EngineOptions eo;
  eo.clock = &clock;
  eo.limits = FuzzLimits();
  auto opened = testing::SyncHost::Open(so, eo, [](const std::string& what) { Die(what); });
  if (!opened.ok())
    Die("opening the store or recovering the engine from it: " + opened.status().ToString());
  host = std::move(opened).value();
  mcp = std::make_unique<net::McpAdapter>(host->engine(), "fuzz");
  methods = std::make_unique<net::MethodTable>(host->engine());
  ++opens;
}

void FuzzEngine::BeginInput() {
  if (++inputs % inputs_per_open != 0) return;
  Open(/*fresh=*/opens % kOpensPerStore == 0);
}

FuzzEngine& GetFuzzEngine() {
  if (g_engine) return *g_engine;
  // On tmpfs when there is one: the store's files then never reach a disk,
  // and the fsyncs of checkpoint saves (synced in every durability mode)
  // cost nothing. On a loaded shared disk each took milliseconds.
  const bool shm = ::access("/dev/shm", W_OK) == 0;
  char tmpl[] = "/dev/shm/shim-fuzz-XXXXXX";
  char* dir = shm ? ::mkdtemp(tmpl) : nullptr;
  char tmp_tmpl[] = "/tmp/shim-fuzz-XXXXXX";
  if (!dir) dir = ::mkdtemp(tmp_tmpl);
  if (!dir) Die("cannot create a directory under /dev/shm or /tmp");
  g_engine = new FuzzEngine;
  g_engine->dir = dir;
  if (const char* n = std::getenv("SHIM_FUZZ_INPUTS_PER_OPEN");
      n && std::strtoull(n, nullptr, 10) > 0) {
    g_engine->inputs_per_open = std::strtoull(n, nullptr, 10);
  }
  std::atexit(Cleanup);
  g_engine->Open(/*fresh=*/true);
  return *g_engine;
}

}  // namespace shim::fuzz

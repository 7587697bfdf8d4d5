#include "tests/fuzz/fuzz_engine.h"

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
  // Pages of 64 KiB, not 4 MiB: list reads page (and continue) far more
  // often, and an input of many list reads over a state grown by earlier
  // inputs no longer takes seconds (at 4 MiB the campaign slowed from 200
  // to 6 inputs a second as the state grew).
  eo.limits.max_reply_bytes = kMaxReplyBytes;
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
  char tmpl[] = "/tmp/shim-fuzz-XXXXXX";
  if (!::mkdtemp(tmpl)) Die("cannot create a directory under /tmp");
  g_engine = new FuzzEngine;
  g_engine->dir = tmpl;
  if (const char* n = std::getenv("SHIM_FUZZ_INPUTS_PER_OPEN");
      n && std::strtoull(n, nullptr, 10) > 0) {
    g_engine->inputs_per_open = std::strtoull(n, nullptr, 10);
  }
  std::atexit(Cleanup);
  g_engine->Open(/*fresh=*/true);
  return *g_engine;
}

}  // namespace shim::fuzz

#include "tests/fuzz/fuzz_engine.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
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

void FuzzEngine::Pump() {
  // Landing a group can make timers due (a grant with a TTL of 0 left) and
  // timers can open groups (an expiry writes): alternate until both rest.
  constexpr int kMaxRounds = 100'000;
  for (int round = 0;; ++round) {
    if (round == kMaxRounds) Die("groups or due timers still pending after " + std::to_string(kMaxRounds) + " rounds");
    if (engine->ReadyToSeal()) {
      std::unique_ptr<engine::Group> group = engine->Seal();
      Status s = group->Write();
      if (!s.ok()) Die("group write failed: " + s.ToString());
      engine->Land(*group, s);
      continue;
    }
    std::optional<int64_t> next = engine->NextTimerInMs();
    if (!next || *next > 0) return;
    engine->RunTimers();
  }
}

void FuzzEngine::MoveClock(int64_t mono_ms, int64_t wall_ms) {
  clock.Advance(std::clamp<int64_t>(mono_ms, 0, kMaxStepMs));
  clock.AdjustWall(std::clamp<int64_t>(wall_ms, -kMaxStepMs, kMaxStepMs));
  Pump();
}

void FuzzEngine::Open(bool fresh) {
  methods.reset();
  mcp.reset();
  engine.reset();
  if (store) {
    Status closed = store->Close();
    if (!closed.ok()) Die("closing the store: " + closed.ToString());
    store.reset();
  }
  if (fresh) {
    std::error_code ec;
    std::filesystem::remove_all(dir + "/data", ec);
  }
  storage::StoreOptions so;
  so.path = dir + "/data";
  so.durability = storage::Durability::kNone;
  auto opened_store = storage::Store::Open(so);
  if (!opened_store.ok()) Die("opening the store: " + opened_store.status().ToString());
  store = std::move(opened_store).value();
  engine::EngineOptions eo;
  eo.clock = &clock;
  eo.store = store.get();
  // Pages of 64 KiB, not 4 MiB: list reads page (and continue) far more
  // often, and an input of many list reads over a state grown by earlier
  // inputs no longer takes seconds (at 4 MiB the campaign slowed from 200
  // to 6 inputs a second as the state grew).
  eo.limits.max_reply_bytes = kMaxReplyBytes;
  auto opened = engine::Engine::Open(eo);
  if (!opened.ok()) Die("recovering the engine from what it wrote: " + opened.status().ToString());
  engine = std::move(opened).value();
  mcp = std::make_unique<net::McpAdapter>(*engine, "fuzz");
  methods = std::make_unique<net::MethodTable>(*engine);
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
  if (const char* n = std::getenv("SHIM_FUZZ_INPUTS_PER_OPEN"); n && std::strtoull(n, nullptr, 10) > 0) {
    g_engine->inputs_per_open = std::strtoull(n, nullptr, 10);
  }
  std::atexit(Cleanup);
  g_engine->Open(/*fresh=*/true);
  return *g_engine;
}

}  // namespace shim::fuzz

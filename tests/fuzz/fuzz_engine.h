// The in-process engine the JSON-RPC and MCP fuzz targets drive: a real
// Store (Durability none, so no fsync) in a fresh /tmp directory removed at
// exit, a FakeClock and an Engine, opened once per process and shared by
// every input, as one long-lived server would be. Engine thread = the
// fuzzer's thread.
#pragma once

#include <memory>
#include <string>

#include "engine/clock.h"
#include "engine/engine.h"
#include "storage/store.h"

namespace shim::fuzz {

struct FuzzEngine {
  std::string dir;
  engine::FakeClock clock;
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<engine::Engine> engine;

  // Seals, writes and lands open groups until none is left (as
  // net/engine_host.cc does, but synchronously).
  void Pump();
};

// The process-wide instance; aborts if the store cannot be opened.
FuzzEngine& GetFuzzEngine();

}  // namespace shim::fuzz

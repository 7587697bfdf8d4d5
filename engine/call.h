// Call: one request as handed to the engine, and how its answer goes back.
// Engine thread only.
#pragma once

#include <functional>
#include <memory>

#include <nlohmann/json.hpp>

#include "engine/client.h"
#include "storage/status.h"

namespace shim::engine {

// Receives a call's result exactly once, on the engine thread.
using ReplyFn = std::function<void(Result<nlohmann::json>)>;

struct Call {
  nlohmann::json params;            // the request's params (object or null)
  std::shared_ptr<Client> client;   // may be null (in-process callers)
  ReplyFn reply;
};

}  // namespace shim::engine

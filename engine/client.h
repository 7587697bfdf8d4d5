// Client: a connection as the engine sees it (implemented by net/ sessions,
// and by test doubles). The engine holds clients through weak/shared
// pointers for subscriptions and waits; net tells the engine when one closes
// (Engine::OnClientClosed), after which the engine drops every reference.
//
// Flow control, for output the engine paces (a pub/sub replay): when Notify
// has refused for a full outbound buffer, the connection calls
// Engine::OnClientWritable once that buffer has drained below its limit, and
// the engine sends more. Called only on the engine thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>

#include "engine/json_parse.h"

namespace shim::engine {

class Client {
 public:
  virtual ~Client() = default;
  // Unique for the server's lifetime.
  virtual uint64_t id() const = 0;
  // Queues a JSON-RPC notification. Returns false, queuing nothing, when the
  // client's outbound buffer is over its limit, unless `force` is set (used
  // for the one small notice that tells the client what was dropped).
  virtual bool Notify(std::string_view method, const nlohmann::json& params,
                      bool force = false) = 0;
  // Notify with params already serialized as one compact JSON object text
  // (keys in sorted order, as nlohmann::json writes them). The hot path of
  // pub/sub: a message's data is encoded once for all its subscribers. This
  // default parses the text back for Notify; net sessions splice it.
  virtual bool NotifyEncoded(std::string_view method, std::string_view params_json,
                             bool force = false) {
    Result<nlohmann::json> params = ParseJson(params_json, kMaxShimJsonDepth);
    return Notify(method, params.ok() ? params.value() : nlohmann::json(nullptr), force);
  }
  // True once the connection is gone; the engine then stops using it.
  virtual bool closed() const = 0;
  // The outbound buffer's limit in bytes (past it Notify refuses). A paced
  // replay holds back the live messages meant for it and drops the
  // subscription once they would not have fitted either.
  virtual size_t outbound_limit() const { return std::numeric_limits<size_t>::max(); }
};

}  // namespace shim::engine

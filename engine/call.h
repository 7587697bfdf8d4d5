// Call: one request as handed to the engine, and how its answer goes back.
// Engine thread only.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "engine/client.h"

namespace shim::engine {

// Receives a call's result exactly once, on the engine thread.
using ReplyFn = std::function<void(Result<nlohmann::json>)>;

// Receives a successful result already encoded as compact JSON text, the
// bytes json::dump would give for the result document. Given only by a
// caller that writes the text out as is (the socket session), and only to
// methods that declare they use it (Engine::AnswersEncoded): such a method
// may answer a success here instead of through `reply`, and so skip
// building a document from text it holds (a stored value) only to have it
// dumped again. Errors always go to `reply`.
using EncodedReplyFn = std::function<void(std::string result_json)>;

struct Call {
  nlohmann::json params;           // the request's params (object or null)
  std::shared_ptr<Client> client;  // may be null (in-process callers)
  ReplyFn reply;
  EncodedReplyFn reply_encoded;  // may be empty: then answer through `reply`
};

}  // namespace shim::engine

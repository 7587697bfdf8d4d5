// A fast path for the common JSON-RPC request line: the envelope is read by
// a small scanner instead of being parsed into a document; only `params` goes
// through nlohmann. Pure function; any thread.
#pragma once

#include <optional>
#include <string_view>

#include "net/jsonrpc.h"

namespace shim::net {

// Accepts one object holding only "jsonrpc": "2.0", "method" (a string of
// printable ASCII without escapes), optionally "id" (an integer of at most
// 18 digits, such a string, or null) and "params" (an object or null), each
// at most once, with JSON whitespace anywhere between tokens. Returns
// nullopt for anything else, valid or not: the caller then parses the whole
// line, which gives the same Request or the proper error reply. For a line
// it accepts, the Request equals what ParseRequest makes of the parsed line
// (tests/net/simple_request_test.cc).
std::optional<Request> ParseSimpleRequest(std::string_view line);

}  // namespace shim::net

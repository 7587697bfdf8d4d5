// Helpers shared by the client subcommands: connecting to the server,
// common options, printing errors, parsing values typed on the command line.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "cli/parsed_args.h"
#include "net/line_client.h"

namespace shim::cli {

// With --json: prints `result` as one compact JSON line and returns true
// (the command is done). Without: false, for the caller to print it for
// people.
bool PrintedAsJson(const ParsedArgs& args, const nlohmann::json& result);

// Connects to --connect HOST:PORT over TCP (then authenticates with
// --auth-token, --auth-token-file or $SHIM_AUTH_TOKEN, if one is given),
// else to --socket (else the default socket). Errors: INVALID_PARAMS for
// conflicting options, INTERNAL when nothing answers, UNAUTHORIZED for a
// refused token.
Result<std::unique_ptr<net::LineClient>> ConnectFromArgs(const ParsedArgs& args);
// ConnectFromArgs; on failure prints why and returns null (exit code
// kExitNoServer).
std::unique_ptr<net::LineClient> ConnectOrReport(const ParsedArgs& args, const char* command);

int TimeoutMs(const ParsedArgs& args);
int64_t WallNowMs();
// Prints "shim CMD: REASON: message" to stderr; returns kExitServerError.
int PrintError(const char* command, const Status& s);
// A value typed on the command line: JSON if it parses within shim's limits
// (nesting, 64-bit integers: engine/json_parse.h), else the text as a string,
// which keeps it exact.
nlohmann::json ParseValueArg(const std::string& text);
// Prints "shim COMMAND: message" and where the help is to stderr, for a
// command line that is wrong; returns kExitUsage.
int UsageError(const ParsedArgs& args, const std::string& message);
// The text of a value argument named `name` (VALUE, DATA, ...):
// `positional` itself (null when it was not given), all of stdin when it is
// "-", or with --file FILE the file's bytes (FILE "-": stdin). One trailing
// newline of what is read is dropped (echo and editors add one). Errors,
// all INVALID_PARAMS: neither or both of the positional and --file, a file
// that cannot be read, more than 64 MiB (far past any server limit).
Result<std::string> ValueText(const ParsedArgs& args, const std::string* positional,
                              const char* name);
// ValueText as a value: with --string the text as a string, else as
// ParseValueArg reads it.
Result<nlohmann::json> ValueArg(const ParsedArgs& args, const std::string* positional,
                                const char* name);
// Calls a list method that pages by `after`/`next` (lease.list, lock.list,
// worker.list, queue.list, ...: each page ends at the server's reply
// budget) page by page, and returns the last page's result with the items
// of every page in `items_field`: for the commands that show a whole list.
Result<nlohmann::json> CallAllPages(net::LineClient& client, const std::string& method,
                                    nlohmann::json params, const std::string& items_field,
                                    int timeout_ms);

}  // namespace shim::cli

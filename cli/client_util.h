// Helpers shared by the client subcommands: connecting to the server,
// common options, printing errors, parsing values typed on the command line.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "base/status.h"
#include "cli/args.h"
#include "net/line_client.h"

namespace shim::cli {

// Options every client command takes.
extern const std::set<std::string> kClientValued;  // socket, timeout-ms, connect, auth-token[-file]
extern const std::set<std::string> kClientFlags;   // json, help
extern const char* const kCommonOptions;           // their --help text

std::set<std::string> With(std::set<std::string> base, std::initializer_list<std::string> more);

// Parses argv or exits: usage errors exit 2, --help prints `help` and exits 0.
void ParseOrExit(Args& args, int argc, char** argv, int from, const char* command,
                 const std::string& help);

// Prints `help` to stderr, for a command line the command cannot run;
// returns kExitUsage.
int UsageError(const std::string& help);
// With --json: prints `result` as one compact JSON line and returns true
// (the command is done). Without: false, for the caller to print it for
// people.
bool PrintedAsJson(const Args& args, const nlohmann::json& result);

// Connects to --connect HOST:PORT over TCP (then authenticates with
// --auth-token, --auth-token-file or $SHIM_AUTH_TOKEN, if one is given),
// else to --socket (else the default socket). Errors: INVALID_PARAMS for
// conflicting options, INTERNAL when nothing answers, UNAUTHORIZED for a
// refused token.
Result<std::unique_ptr<net::LineClient>> ConnectFromArgs(const Args& args);
// ConnectFromArgs; on failure prints why and returns null (exit code
// kExitNoServer).
std::unique_ptr<net::LineClient> ConnectOrReport(const Args& args, const char* command);

int TimeoutMs(const Args& args);
int64_t WallNowMs();
// Prints "shim CMD: REASON: message" to stderr; returns kExitServerError.
int PrintError(const char* command, const Status& s);
// A value typed on the command line: JSON if it parses within shim's limits
// (nesting, 64-bit integers: engine/json_parse.h), else the text as a string,
// which keeps it exact.
nlohmann::json ParseValueArg(const std::string& text);
// Calls a list method that pages by `after`/`next` (lease.list, lock.list,
// worker.list, queue.list, ...: each page ends at the server's reply
// budget) page by page, and returns the last page's result with the items
// of every page in `items_field`: for the commands that show a whole list.
Result<nlohmann::json> CallAllPages(net::LineClient& client, const std::string& method,
                                    nlohmann::json params, const std::string& items_field,
                                    int timeout_ms);

}  // namespace shim::cli

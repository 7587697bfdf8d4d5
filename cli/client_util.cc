// Helpers shared by the client subcommands (see client_util.h).
#include "cli/client_util.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "cli/paths.h"

namespace shim::cli {

const std::set<std::string> kClientValued = {"socket", "timeout-ms"};
const std::set<std::string> kClientFlags = {"json", "help"};
const char* const kCommonOptions = R"(
Common options:
  --socket PATH      server socket (default $SHIM_SOCKET, else $SHIM_HOME/shim.sock)
  --json             print the raw JSON result (for scripts)
  --timeout-ms N     give up waiting for the reply after N ms (default 30000)
)";

std::set<std::string> With(std::set<std::string> base, std::initializer_list<std::string> more) {
  base.insert(more);
  return base;
}

std::unique_ptr<net::LineClient> ConnectOrReport(const Args& args, const char* command) {
  std::string socket = args.GetOr("socket", DefaultSocketPath());
  auto client = net::LineClient::ConnectUnix(socket);
  if (!client.ok()) {
    std::fprintf(stderr, "shim %s: %s\n", command, client.status().message().c_str());
    return nullptr;
  }
  return std::move(client).value();
}

int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int TimeoutMs(const Args& args) {
  long long t = 30'000;
  args.GetInt("timeout-ms", &t);
  return static_cast<int>(t);
}

int PrintError(const char* command, const Status& s) {
  std::string reason = s.details().is_object() ? s.details().value("reason", "") : "";
  std::fprintf(stderr, "shim %s: %s%s%s\n", command, reason.c_str(), reason.empty() ? "" : ": ",
               s.message().c_str());
  return kExitServerError;
}

nlohmann::json ParseValueArg(const std::string& text) {
  nlohmann::json v = nlohmann::json::parse(text, nullptr, false);
  return v.is_discarded() ? nlohmann::json(text) : v;
}

void ParseOrExit(Args& args, int argc, char** argv, int from, const char* command, const std::string& help) {
  if (!args.Parse(argc, argv, from)) {
    std::fprintf(stderr, "shim %s: %s\n(see shim %s --help)\n", command, args.error().c_str(), command);
    std::exit(kExitUsage);
  }
  if (args.Flag("help")) {
    std::fputs(help.c_str(), stdout);
    std::exit(kExitOk);
  }
}

}  // namespace shim::cli

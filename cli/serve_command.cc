// `shim serve`: opens the store, recovers the engine, serves until SIGINT or
// SIGTERM, then shuts down in order (stop accepting, commit what is in
// flight, flush replies, close the store).
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/paths.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "net/asio.h"
#include "net/engine_host.h"
#include "net/server.h"
#include "storage/store.h"

namespace shim::cli {
namespace {

constexpr const char* kServeHelp = R"(Usage: shim serve [OPTIONS]

Runs the shim server in the foreground: an embedded RocksDB store and a
JSON-RPC (one message per line) endpoint on a Unix socket, optionally also
on loopback TCP. Stop it with Ctrl-C or SIGTERM; it finishes the writes in
flight and closes the store cleanly.

Options:
  --data DIR                 store directory          (default $SHIM_HOME/data)
  --socket PATH              Unix socket, mode 0600   (default $SHIM_HOME/shim.sock)
  --listen HOST:PORT         also serve TCP on a loopback address, e.g. 127.0.0.1:7420
  --durability MODE          sync  - fsync before every acknowledgement (default)
                             async - WAL written before ack, fsynced every 100 ms
                             none  - no WAL; memory until flush (benchmarks only)
  --log-level LEVEL          trace|debug|info|warn|error|off (default info)
  --max-message-bytes N      longest request line (default 1048576)
  --max-outbound-bytes N     per-connection output buffer (default 8388608)
  --max-connections N        concurrent connections (default 1024)
  --risk-config FILE         JSON overriding risk-model thresholds (docs/risk-model.md)

Environment: SHIM_HOME (default ~/.shim), SHIM_SOCKET.
)";

}  // namespace

int RunServe(int argc, char** argv, int from) {
  Args args({"data", "socket", "listen", "durability", "log-level", "max-message-bytes",
             "max-outbound-bytes", "max-connections", "risk-config"},
            {"help"});
  if (!args.Parse(argc, argv, from)) {
    std::fprintf(stderr, "shim serve: %s\n(see shim serve --help)\n", args.error().c_str());
    return kExitUsage;
  }
  if (args.Flag("help")) {
    std::fputs(kServeHelp, stdout);
    return kExitOk;
  }
  if (!args.positional().empty()) {
    std::fprintf(stderr, "shim serve: unexpected argument '%s'\n", args.positional()[0].c_str());
    return kExitUsage;
  }

  auto logger = spdlog::stderr_color_mt("shim");
  spdlog::set_default_logger(logger);
  auto level = spdlog::level::from_str(args.GetOr("log-level", "info"));
  if (level == spdlog::level::off && args.GetOr("log-level", "info") != "off") {
    std::fprintf(stderr, "shim serve: unknown --log-level '%s'\n", args.GetOr("log-level", "").c_str());
    return kExitUsage;
  }
  spdlog::set_level(level);

  storage::StoreOptions store_options;
  store_options.path = args.GetOr("data", DefaultDataDir());
  auto durability = storage::ParseDurability(args.GetOr("durability", "sync"));
  if (!durability) {
    std::fprintf(stderr, "shim serve: --durability must be sync, async or none\n");
    return kExitUsage;
  }
  store_options.durability = *durability;

  net::ServerOptions server_options;
  server_options.socket_path = args.GetOr("socket", DefaultSocketPath());
  server_options.tcp_listen = args.GetOr("listen", "");
  server_options.data_dir = store_options.path;
  server_options.durability = storage::DurabilityName(*durability);
  long long n;
  for (auto [name, field] : {std::pair{"max-message-bytes", &server_options.max_message_bytes},
                             std::pair{"max-outbound-bytes", &server_options.max_outbound_bytes},
                             std::pair{"max-connections", &server_options.max_connections}}) {
    n = static_cast<long long>(*field);
    if (!args.GetInt(name, &n) || n < 1) {
      std::fprintf(stderr, "shim serve: --%s wants a positive integer\n", name);
      return kExitUsage;
    }
    *field = static_cast<size_t>(n);
  }

  // The home directory holds the socket: keep it private to the user.
  if (!std::getenv("SHIM_SOCKET") && !args.Get("socket")) {
    std::filesystem::create_directories(ShimHome());
    ::chmod(ShimHome().c_str(), 0700);
  }

  engine::RiskConfig risk;
  if (auto path = args.Get("risk-config")) {
    std::ifstream in(*path);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    auto parsed = j.is_discarded() ? Result<engine::RiskConfig>(Status::InvalidParams("risk-config", "not valid JSON"))
                                   : engine::RiskConfig::FromJson(j);
    if (!in || !parsed.ok()) {
      std::fprintf(stderr, "shim serve: --risk-config %s: %s\n", path->c_str(),
                   in ? parsed.status().message().c_str() : "cannot read the file");
      return kExitUsage;
    }
    risk = parsed.value();
  }

  auto store = storage::Store::Open(store_options);
  if (!store.ok()) {
    spdlog::error("cannot open the store: {}", store.status().ToString());
    return kExitServerError;
  }
  engine::SystemClock clock;
  auto opened = std::chrono::steady_clock::now();
  auto engine = engine::Engine::Open({.clock = &clock, .store = store->get(), .limits = {}, .risk = risk});
  if (!engine.ok()) {
    spdlog::error("cannot recover the engine: {}", engine.status().ToString());
    return kExitServerError;
  }
  auto recovery_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - opened);

  int exit_code = kExitOk;
  {
    asio::io_context io(1);
    net::EngineHost host(io, **engine);
    net::Server server(io, host, server_options);
    if (Status s = server.Start(); !s.ok()) {
      spdlog::error("{}", s.message());
      return kExitServerError;
    }
    spdlog::info("shim serving on {}{}{} (data {}, durability {}, revision {}, recovered in {} ms)",
                 server_options.socket_path, server_options.tcp_listen.empty() ? "" : " and ",
                 server_options.tcp_listen, store_options.path, server_options.durability,
                 (*engine)->revision(), recovery_ms.count());

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      spdlog::info("signal {}: finishing writes in flight and shutting down", sig);
      server.Shutdown([&io] { io.stop(); });
    });
    io.run();
  }
  engine->reset();
  if (Status s = (*store)->Close(); !s.ok()) {
    spdlog::error("closing the store: {}", s.ToString());
    exit_code = kExitServerError;
  }
  spdlog::info("shim stopped");
  return exit_code;
}

}  // namespace shim::cli

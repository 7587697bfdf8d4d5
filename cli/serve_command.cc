// `shim serve`: opens the store, recovers the engine, serves until SIGINT,
// SIGTERM or sys.shutdown (`shim stop`), then shuts down in order (stop
// accepting, commit what is in flight, flush replies, close the store).
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

#include "cli/commands.h"
#include "cli/data_dir_owner.h"
#include "cli/parsed_args.h"
#include "cli/paths.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "engine/json_parse.h"
#include "net/access.h"
#include "net/asio.h"
#include "net/engine_host.h"
#include "net/server.h"
#include "storage/power_cut.h"
#include "storage/store.h"

namespace shim::cli {
namespace {

// The auth token from --auth-token, --auth-token-file or $SHIM_AUTH_TOKEN
// (in that order; the two options exclude each other). Empty = none. On a
// usage error prints it and returns false.
bool ReadAuthToken(const ParsedArgs& args, std::string* token) {
  auto inline_token = args.Get("auth-token");
  auto file = args.Get("auth-token-file");
  if (inline_token && file) {
    std::fprintf(stderr, "shim serve: give --auth-token or --auth-token-file, not both\n");
    return false;
  }
  std::string source;
  if (inline_token) {
    *token = *inline_token;
    source = "--auth-token";
  } else if (file) {
    std::ifstream in(*file);
    if (!in || !std::getline(in, *token)) {
      std::fprintf(stderr, "shim serve: --auth-token-file %s: cannot read the file\n",
                   file->c_str());
      return false;
    }
    source = "--auth-token-file " + *file;
    struct stat st;
    if (::stat(file->c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      std::fprintf(stderr,
                   "shim serve: warning: %s is readable by other users (mode %04o); chmod 600 it\n",
                   file->c_str(), static_cast<unsigned>(st.st_mode & 07777));
    }
  } else if (const char* env = std::getenv("SHIM_AUTH_TOKEN"); env && *env) {
    *token = env;
    source = "$SHIM_AUTH_TOKEN";
  } else {
    token->clear();
    return true;
  }
  while (!token->empty() && std::isspace(static_cast<unsigned char>(token->back())))
    token->pop_back();
  if (token->empty()) {
    std::fprintf(stderr, "shim serve: %s: the token is empty\n", source.c_str());
    return false;
  }
  if (token->size() < 16) {
    std::fprintf(stderr,
                 "shim serve: warning: the auth token from %s is short (%zu bytes); use 16 or more "
                 "random bytes, e.g. `openssl rand -hex 32`\n",
                 source.c_str(), token->size());
  }
  return true;
}

// Reads each --NAME given into its field (an absent one keeps the field's
// default). False, after saying why, when one is not an integer of at
// least `min` (`wants` says what it must be).
template <class T>
bool ReadIntOptions(const ParsedArgs& args,
                    std::initializer_list<std::pair<const char*, T*>> fields, long long min,
                    const char* wants) {
  for (auto [name, field] : fields) {
    long long n = static_cast<long long>(*field);
    args.GetInt(name, &n);
    if (n < min) {
      std::fprintf(stderr, "shim serve: --%s wants %s\n", name, wants);
      return false;
    }
    *field = static_cast<T>(n);
  }
  return true;
}

// --log-file: rotated by size, so that a server left running for months
// (the one `shim mcp` starts) cannot fill the disk with its log. Documented
// in the command table (cli/command_table.cc).
constexpr size_t kLogFileMaxBytes = 10 << 20;
constexpr size_t kLogFilesKept = 3;

// The logger: to `log_file` (rotating; every line of info level and above
// is flushed at once, so a reader of the file, such as `shim mcp` waiting
// for a start-up error, sees it), else to stderr. False, after saying why,
// when the file cannot be opened.
bool SetUpLogger(const std::string& log_file) {
  std::shared_ptr<spdlog::logger> logger;
  if (log_file.empty()) {
    logger = spdlog::stderr_color_mt("shim");
  } else {
    try {
      logger = spdlog::rotating_logger_mt("shim", log_file, kLogFileMaxBytes, kLogFilesKept);
    } catch (const spdlog::spdlog_ex& e) {
      std::fprintf(stderr, "shim serve: --log-file %s: %s\n", log_file.c_str(), e.what());
      return false;
    }
    logger->flush_on(spdlog::level::info);
  }
  spdlog::set_default_logger(logger);
  return true;
}

// The data directory, private like the socket's (docs/threat-model.md): the
// store holds everything clients wrote.
Status PrepareDataDirectory(const std::string& dir) {
  return net::PreparePrivateDirectory(
      dir, {.refusing = "open the store",
            .subject = "its data directory " + dir,
            .must = "the data directory must be private",
            .other = "use --data with a private directory (the default $SHIM_HOME/data)",
            .shared_other = "Use --data with a directory of its own inside a private one, or "
                            "the default $SHIM_HOME/data"});
}

// The data directory's note naming this server (cli/data_dir_owner.h),
// removed when the server returns, however it returns, while the store is
// still open.
class OwnerNote {
 public:
  OwnerNote(std::string data_dir, const std::string& socket) : data_dir_(std::move(data_dir)) {
    if (Status s = WriteDataDirOwner(data_dir_, {::getpid(), socket}); !s.ok())
      spdlog::warn("{} (a second server on this directory could not be named)", s.message());
  }
  ~OwnerNote() { RemoveDataDirOwner(data_dir_); }
  OwnerNote(const OwnerNote&) = delete;
  OwnerNote& operator=(const OwnerNote&) = delete;

 private:
  std::string data_dir_;
};

}  // namespace

// Every connection is a file descriptor, and RocksDB keeps its own files
// open: raise the soft limit (often 1024) toward the hard one so that
// --max-connections, not EMFILE, is what turns clients away.
static void RaiseFileLimit(size_t max_connections) {
  constexpr rlim_t kForStoreAndServer = 512;  // RocksDB files, listeners, logs
  const rlim_t wanted = static_cast<rlim_t>(max_connections) + kForStoreAndServer;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted) return;
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur < wanted) {
    spdlog::warn(
        "open-file limit is {} (hard limit {}): fewer than --max-connections {} clients may "
        "connect; raise it with `ulimit -n`",
        limit.rlim_cur > before ? limit.rlim_cur : before, limit.rlim_max, max_connections);
  }
}

int RunServe(const ParsedArgs& args) {
  std::string log_file = args.GetOr("log-file", "");
  if (!log_file.empty()) log_file = std::filesystem::absolute(log_file).lexically_normal().string();
  if (!SetUpLogger(log_file)) return kExitUsage;
  auto level = spdlog::level::from_str(args.GetOr("log-level", "info"));
  if (level == spdlog::level::off && args.GetOr("log-level", "info") != "off") {
    std::fprintf(stderr, "shim serve: unknown --log-level '%s'\n",
                 args.GetOr("log-level", "").c_str());
    return kExitUsage;
  }
  spdlog::set_level(level);

  storage::StoreOptions store_options;
  store_options.path = args.Get("data") ? *args.Get("data") : DefaultDataDir();
  auto durability = storage::ParseDurability(args.GetOr("durability", "sync"));
  if (!durability) {
    std::fprintf(stderr, "shim serve: --durability must be sync, async or none\n");
    return kExitUsage;
  }
  store_options.durability = *durability;
  // Test only (docs/fault-testing.md, "Power cuts"): journal what is synced
  // so that a test can simulate a power cut after killing this process.
  if (const char* journal = std::getenv(storage::kPowerCutJournalEnv); journal && *journal) {
    store_options.power_cut_journal = journal;
    spdlog::warn("test-only power-cut journal in {} ({} is set)", journal,
                 storage::kPowerCutJournalEnv);
  }

  net::ServerOptions server_options;
  server_options.socket_path = args.Get("socket") ? *args.Get("socket") : DefaultSocketPath();
  server_options.log_file = log_file;
  server_options.tcp_listen = args.GetOr("listen", "");
  server_options.data_dir = store_options.path;
  server_options.durability = storage::DurabilityName(*durability);
  engine::EngineLimits limits;
  if (!ReadIntOptions<size_t>(args,
                              {{"max-message-bytes", &server_options.max_message_bytes},
                               {"max-outbound-bytes", &server_options.max_outbound_bytes},
                               {"max-reply-bytes", &limits.max_reply_bytes},
                               {"max-held-reply-bytes", &server_options.max_held_reply_bytes},
                               {"max-connections", &server_options.max_connections}},
                              1, "a positive integer") ||
      !ReadIntOptions<int64_t>(
          args,
          {{"auth-timeout-ms", &server_options.auth_timeout_ms},
           {"idle-timeout-ms", &server_options.idle_timeout_ms},
           {"partial-line-timeout-ms", &server_options.partial_line_timeout_ms}},
          0, "a number of milliseconds (0 = no limit)")) {
    return kExitUsage;
  }
  // A page must fit the connection's output buffer.
  limits.max_reply_bytes = std::min(limits.max_reply_bytes, server_options.max_outbound_bytes);
  if (!ReadAuthToken(args, &server_options.auth_token)) return kExitUsage;
  // Judged before the store is opened: a refused --listen changes nothing.
  if (Status s = net::Server::ValidateOptions(server_options); !s.ok()) {
    std::fprintf(stderr, "shim serve: %s\n", s.message().c_str());
    return kExitUsage;
  }
  if (!server_options.auth_token.empty() && server_options.tcp_listen.empty()) {
    std::fprintf(stderr,
                 "shim serve: warning: an auth token without --listen has no effect (Unix-socket "
                 "clients do not need it)\n");
  }

  if (!std::getenv("SHIM_SOCKET") && !args.Get("socket")) TightenShimHome();

  engine::RiskConfig risk;
  if (auto path = args.Get("risk-config")) {
    std::ifstream in(*path);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Result<nlohmann::json> j = ParseJson(text);
    auto parsed =
        j.ok() ? engine::RiskConfig::FromJson(j.value()) : Result<engine::RiskConfig>(j.status());
    if (!in || !parsed.ok()) {
      std::fprintf(stderr, "shim serve: --risk-config %s: %s\n", path->c_str(),
                   in ? parsed.status().message().c_str() : "cannot read the file");
      return kExitUsage;
    }
    risk = parsed.value();
  }

  if (Status s = PrepareDataDirectory(store_options.path); !s.ok()) {
    std::fprintf(stderr, "shim serve: %s\n", s.message().c_str());
    return kExitUsage;
  }
  RaiseFileLimit(server_options.max_connections);
  const auto store_open_start = std::chrono::steady_clock::now();
  auto store = storage::Store::Open(store_options);
  if (!store.ok()) {
    // RocksDB's LOCK refused us: name the server that holds it.
    if (auto owner = ReadLiveDataDirOwner(store_options.path)) {
      spdlog::error("another shim server (pid {}, socket {}) is using {}", owner->pid,
                    owner->socket, store_options.path);
      spdlog::debug("the store's own error: {}", store.status().ToString());
    } else {
      spdlog::error("cannot open the store: {}", store.status().ToString());
    }
    return kExitServerError;
  }
  // Declared after the store, so that an early return removes it first.
  std::optional<OwnerNote> owner_note;
  owner_note.emplace(store_options.path, server_options.socket_path);
  engine::SystemClock clock;
  auto opened = std::chrono::steady_clock::now();
  auto engine = engine::Engine::Open(
      {.clock = &clock, .store = store->get(), .limits = limits, .risk = risk});
  if (!engine.ok()) {
    spdlog::error("cannot recover the engine: {}", engine.status().ToString());
    return kExitServerError;
  }
  auto recovery_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - opened);
  // Where a restart's time went: the store's open (RocksDB WAL replay) and
  // each module's rebuild of its in-memory indexes.
  std::string phases = fmt::format(
      "store open {} ms",
      std::chrono::duration_cast<std::chrono::milliseconds>(opened - store_open_start).count());
  for (const auto& phase : (*engine)->recovery_phases())
    phases += fmt::format(", {} {} ms", phase.name, phase.ms);
  spdlog::info("recovery: {}", phases);

  int exit_code = kExitOk;
  {
    asio::io_context io(1);
    net::EngineHost host(io, **engine);
    net::Server server(io, host, server_options);
    if (Status s = server.Start(); !s.ok()) {
      spdlog::error("{}", s.message());
      return kExitServerError;
    }
    spdlog::info(
        "shim serving on {}{}{}{} (data {}, durability {}, revision {}, recovered in {} ms)",
        server_options.socket_path, server.tcp_bound().empty() ? "" : " and ", server.tcp_bound(),
        server_options.auth_token.empty() || server.tcp_bound().empty() ? ""
                                                                        : " (TCP needs sys.auth)",
        store_options.path, server_options.durability, (*engine)->revision(), recovery_ms.count());

    // One way to stop, whoever asks: a signal or sys.shutdown (`shim stop`).
    auto stop = [&](const std::string& why) {
      spdlog::info("{}: finishing writes in flight and shutting down", why);
      server.Shutdown([&io] { io.stop(); });
    };
    server.OnStopRequested(stop);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (!ec) stop(fmt::format("signal {}", sig));
    });
    io.run();
  }
  engine->reset();
  owner_note.reset();  // while the store, and so its LOCK, is still ours
  if (Status s = (*store)->Close(); !s.ok()) {
    spdlog::error("closing the store: {}", s.ToString());
    exit_code = kExitServerError;
  }
  spdlog::info("shim stopped");
  return exit_code;
}

}  // namespace shim::cli

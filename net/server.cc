#include "net/server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "engine/params.h"
#include "net/access.h"
#include "net/session.h"

namespace shim::net {

using boost::system::error_code;
using nlohmann::json;

namespace {
constexpr auto kFlushGrace = std::chrono::seconds(2);

// sys.info's read_only: {since_ms, cause} once the engine took no more
// writes, else null.
json ReadOnlyJson(const std::optional<engine::ReadOnlyState>& read_only) {
  if (!read_only) return nullptr;
  return json{{"since_ms", read_only->since_ms}, {"cause", read_only->cause}};
}
}  // namespace

Server::Server(asio::io_context& io, EngineHost& host, ServerOptions options)
    : io_(io),
      host_(host),
      options_(std::move(options)),
      mcp_(host.engine(), options_.version),
      methods_(host.engine()),
      shutdown_timer_(io) {
  // Per-method stats exist only for names that exist (docs/design.md, style rule 12).
  for (const MethodEntry* m : methods_.All()) {
    if (m->stats_name != ServerStats::kOtherMethods) stats_.Register(m->stats_name);
  }
}

Server::~Server() {
  for (auto& [id, s] : std::map<uint64_t, std::shared_ptr<Session>>(sessions_)) s->Close();
}

Status Server::BindUnix() {
  const std::string& path = options_.socket_path;
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::InvalidParams("socket", "socket path longer than " +
                                               std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                               " bytes: " + path);
  }
  SHIM_RETURN_IF_ERROR(PrepareSocketDirectory(path));
  error_code ec;
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Status::Internal(path + " exists and is not a socket; not touching it");
    // Replace the file only if nobody answers on it: a live server keeps it.
    asio::local::stream_protocol::socket probe(io_);
    probe.connect(asio::local::stream_protocol::endpoint(path), ec);
    if (!ec) return Status::Internal("another shim server is already listening on " + path);
    ::unlink(path.c_str());
  }
  unix_acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(io_);
  unix_acceptor_->open(asio::local::stream_protocol(), ec);
  // The umask makes the socket 0600 from its first instant; chmod documents it.
  mode_t old_mask = ::umask(0177);
  if (!ec) unix_acceptor_->bind(asio::local::stream_protocol::endpoint(path), ec);
  ::umask(old_mask);
  if (!ec) ::chmod(path.c_str(), 0600);
  if (!ec) unix_acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::Internal("cannot listen on " + path + ": " + ec.message());
  return Status::Ok();
}

Status Server::ValidateOptions(const ServerOptions& options) {
  SHIM_RETURN_IF_ERROR(PrepareSocketDirectory(options.socket_path));
  if (options.tcp_listen.empty()) return Status::Ok();
  SHIM_ASSIGN_OR_RETURN(auto endpoint, ParseListenEndpoint(options.tcp_listen));
  return ValidateListen(endpoint, options.tcp_listen, !options.auth_token.empty());
}

Status Server::BindTcp() {
  SHIM_ASSIGN_OR_RETURN(auto endpoint, ParseListenEndpoint(options_.tcp_listen));
  SHIM_RETURN_IF_ERROR(ValidateListen(endpoint, options_.tcp_listen, !options_.auth_token.empty()));
  tcp_acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(io_);
  error_code ec;
  tcp_acceptor_->open(endpoint.protocol(), ec);
  if (!ec) tcp_acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) tcp_acceptor_->bind(endpoint, ec);
  if (!ec) tcp_acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::Internal("cannot listen on " + options_.tcp_listen + ": " + ec.message());
  auto local = tcp_acceptor_->local_endpoint(ec);
  if (ec) local = endpoint;
  tcp_bound_ = local.address().is_v6()
                   ? "[" + local.address().to_string() + "]:" + std::to_string(local.port())
                   : local.address().to_string() + ":" + std::to_string(local.port());
  if (!endpoint.address().is_loopback()) {
    spdlog::warn(
        "TCP on {} is reachable from other machines: every connection must authenticate with "
        "sys.auth, and traffic (the token too) is not encrypted",
        tcp_bound_);
  }
  return Status::Ok();
}

Status Server::Start() {
  SHIM_RETURN_IF_ERROR(BindUnix());
  asio::co_spawn(io_, AcceptLoop(*unix_acceptor_), asio::detached);
  if (!options_.tcp_listen.empty()) {
    if (Status s = BindTcp(); !s.ok()) {
      // Do not leave a socket file behind that nobody will ever answer on.
      error_code ec;
      unix_acceptor_->close(ec);
      ::unlink(options_.socket_path.c_str());
      return s;
    }
    asio::co_spawn(io_, AcceptLoop(*tcp_acceptor_), asio::detached);
  }
  return Status::Ok();
}

template <typename Acceptor>
asio::awaitable<void> Server::AcceptLoop(Acceptor& acceptor) {
  while (!shutting_down_) {
    error_code ec;
    auto socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || shutting_down_) co_return;
    if (ec) {
      // EMFILE and friends: back off briefly instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if constexpr (std::is_same_v<Acceptor, asio::ip::tcp::acceptor>) {
      socket.set_option(asio::ip::tcp::no_delay(true), ec);
    }
    Admit(asio::generic::stream_protocol::socket(std::move(socket)),
          std::is_same_v<Acceptor, asio::ip::tcp::acceptor>);
  }
}

void Server::Admit(asio::generic::stream_protocol::socket socket, bool tcp) {
  if (sessions_.size() >= options_.max_connections) {
    // Tell the client why before closing; the write is tiny and the socket
    // new, so a blocking write cannot stall here.
    std::string line = EncodeErrorLine(
        RequestId(),
        Status(StatusCode::kOverloaded,
               "connection limit reached (" + std::to_string(options_.max_connections) + ")",
               {{"limit", options_.max_connections}}));
    error_code ec;
    asio::write(socket, asio::buffer(line), ec);
    socket.close(ec);
    return;
  }
  const uint64_t id = next_session_id_++;
  // Unix-socket clients are trusted by the filesystem (0600 socket in a 0700
  // directory); TCP clients must show the token when one is configured.
  const bool needs_auth = tcp && !options_.auth_token.empty();
  auto session = std::make_shared<Session>(std::move(socket), *this, id, tcp, needs_auth);
  sessions_.emplace(id, session);
  session->Start();
}

void Server::OnSessionClosed(uint64_t id) {
  host_.engine().OnClientClosed(id);
  sessions_.erase(id);
}

bool Server::TokenMatches(std::string_view token) const {
  return !options_.auth_token.empty() && ConstantTimeEquals(token, options_.auth_token);
}

Result<json> Server::HandleLocal(std::string_view method, const json& params) {
  // None of these takes params (engine/params.h: an unknown field is refused).
  SHIM_RETURN_IF_ERROR(engine::CheckKnownFields(params, engine::kNoFields));
  const auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - started_)
                          .count();
  if (method == "sys.shutdown") {
    // Posted, so that this reply is queued on its connection before the
    // shutdown flushes and closes the connections.
    asio::post(io_, [this] {
      if (shutting_down_) return;
      if (stop_requested_) return stop_requested_("sys.shutdown");
      Shutdown([] {});
    });
    return json{{"stopping", true}, {"pid", static_cast<int64_t>(::getpid())}};
  }
  if (method == "sys.info") {
    return json{{"version", options_.version},
                {"protocol", 3},
                {"durability", options_.durability},
                {"data_dir", options_.data_dir},
                {"socket", options_.socket_path},
                {"listen", tcp_bound_.empty() ? json(nullptr) : json(tcp_bound_)},
                {"tcp_auth", !tcp_bound_.empty() && !options_.auth_token.empty()},
                {"uptime_ms", uptime},
                {"revision", engine().revision()},
                {"connections", sessions_.size()},
                {"read_only", ReadOnlyJson(engine().read_only())},
                {"pid", static_cast<int64_t>(::getpid())},
                {"log_file", options_.log_file.empty() ? json(nullptr) : json(options_.log_file)}};
  }
  json stats = stats_.ToJson();
  stats["engine"] = engine().Describe();
  stats["connections"] = sessions_.size();
  stats["uptime_ms"] = uptime;
  return stats;
}

void Server::Shutdown(std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  error_code ec;
  if (unix_acceptor_) {
    unix_acceptor_->close(ec);
    ::unlink(options_.socket_path.c_str());
  }
  if (tcp_acceptor_) tcp_acceptor_->close(ec);
  shutdown_done_ = std::move(done);
  host_.WhenIdle([this] {
    for (auto& [id, s] : std::map<uint64_t, std::shared_ptr<Session>>(sessions_))
      s->CloseWhenFlushed();
    shutdown_deadline_ = std::chrono::steady_clock::now() + kFlushGrace;
    PollShutdown();
  });
}

void Server::PollShutdown() {
  // Wait until every session has flushed and closed, or the grace ends.
  if (sessions_.empty() || std::chrono::steady_clock::now() >= shutdown_deadline_) {
    for (auto& [id, s] : std::map<uint64_t, std::shared_ptr<Session>>(sessions_)) s->Close();
    if (auto done = std::move(shutdown_done_)) done();
    return;
  }
  shutdown_timer_.expires_after(std::chrono::milliseconds(10));
  shutdown_timer_.async_wait([this](const error_code& ec) {
    if (!ec) PollShutdown();
  });
}

}  // namespace shim::net

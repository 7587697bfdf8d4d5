#include "net/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <spdlog/spdlog.h>

#include "net/session.h"

namespace shim::net {

using nlohmann::json;
using boost::system::error_code;

namespace {
constexpr auto kFlushGrace = std::chrono::seconds(2);
}  // namespace

Result<asio::ip::tcp::endpoint> ParseLoopbackEndpoint(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::InvalidParams("listen", "--listen wants HOST:PORT, e.g. 127.0.0.1:7420");
  }
  std::string host = text.substr(0, colon);
  std::string port_text = text.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  char* end = nullptr;
  long port = std::strtol(port_text.c_str(), &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) {
    return Status::InvalidParams("listen", "bad port '" + port_text + "'");
  }
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return Status::InvalidParams("listen", "bad address '" + host + "'");
  if (!address.is_loopback()) {
    return Status::InvalidParams("listen", "shim listens on loopback only; '" + host + "' is not a loopback address");
  }
  return asio::ip::tcp::endpoint(address, static_cast<uint16_t>(port));
}

Server::Server(asio::io_context& io, EngineHost& host, ServerOptions options)
    : io_(io), host_(host), options_(std::move(options)), mcp_(host.engine(), options_.version), shutdown_timer_(io) {}

Server::~Server() {
  for (auto& [id, s] : std::map<uint64_t, std::shared_ptr<Session>>(sessions_)) s->Close();
}

Status Server::BindUnix() {
  namespace fs = std::filesystem;
  const std::string& path = options_.socket_path;
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::InvalidParams("socket", "socket path longer than " +
                                               std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes: " + path);
  }
  fs::path parent = fs::path(path).parent_path();
  error_code ec;
  if (!parent.empty() && !fs::exists(parent)) {
    std::error_code fec;
    fs::create_directories(parent, fec);
    if (fec) return Status::Internal("cannot create " + parent.string() + ": " + fec.message());
    ::chmod(parent.c_str(), 0700);
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::Internal(path + " exists and is not a socket; not touching it");
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

Status Server::BindTcp() {
  SHIM_ASSIGN_OR_RETURN(auto endpoint, ParseLoopbackEndpoint(options_.tcp_listen));
  tcp_acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(io_);
  error_code ec;
  tcp_acceptor_->open(endpoint.protocol(), ec);
  if (!ec) tcp_acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) tcp_acceptor_->bind(endpoint, ec);
  if (!ec) tcp_acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::Internal("cannot listen on " + options_.tcp_listen + ": " + ec.message());
  return Status::Ok();
}

Status Server::Start() {
  SHIM_RETURN_IF_ERROR(BindUnix());
  asio::co_spawn(io_, AcceptLoop(*unix_acceptor_), asio::detached);
  if (!options_.tcp_listen.empty()) {
    SHIM_RETURN_IF_ERROR(BindTcp());
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
    Admit(asio::generic::stream_protocol::socket(std::move(socket)));
  }
}

void Server::Admit(asio::generic::stream_protocol::socket socket) {
  if (sessions_.size() >= options_.max_connections) {
    // Tell the client why before closing; the write is tiny and the socket
    // new, so a blocking write cannot stall here.
    std::string line = EncodeLine(ErrorResponse(
        nullptr, Status(StatusCode::kOverloaded,
                        "connection limit reached (" + std::to_string(options_.max_connections) + ")",
                        {{"limit", options_.max_connections}})));
    error_code ec;
    asio::write(socket, asio::buffer(line), ec);
    socket.close(ec);
    return;
  }
  const uint64_t id = next_session_id_++;
  auto session = std::make_shared<Session>(std::move(socket), *this, id);
  sessions_.emplace(id, session);
  session->Start();
}

void Server::OnSessionClosed(uint64_t id) {
  host_.engine().OnClientClosed(id);
  sessions_.erase(id);
}

bool Server::IsLocalMethod(std::string_view method) const {
  return method == "sys.info" || method == "sys.stats";
}

Result<json> Server::HandleLocal(std::string_view method, const json&) {
  const auto uptime =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_).count();
  if (method == "sys.info") {
    return json{{"version", options_.version},
                {"protocol", 1},
                {"durability", options_.durability},
                {"data_dir", options_.data_dir},
                {"socket", options_.socket_path},
                {"listen", options_.tcp_listen.empty() ? json(nullptr) : json(options_.tcp_listen)},
                {"uptime_ms", uptime},
                {"revision", engine().revision()},
                {"connections", sessions_.size()}};
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
    for (auto& [id, s] : std::map<uint64_t, std::shared_ptr<Session>>(sessions_)) s->CloseWhenFlushed();
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

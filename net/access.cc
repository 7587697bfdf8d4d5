#include "net/access.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace shim::net {

namespace {

std::string Octal(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

Result<asio::ip::tcp::endpoint> ParseListenEndpoint(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::InvalidParams("listen", "--listen wants HOST:PORT, e.g. 127.0.0.1:7420");
  }
  std::string host = text.substr(0, colon);
  std::string port_text = text.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  char* end = nullptr;
  long port = std::strtol(port_text.c_str(), &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) {
    return Status::InvalidParams("listen", "bad port '" + port_text + "'");
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec)
    return Status::InvalidParams("listen",
                                 "bad address '" + host + "' (want an IP address or localhost)");
  return asio::ip::tcp::endpoint(address, static_cast<uint16_t>(port));
}

Status ValidateListen(const asio::ip::tcp::endpoint& endpoint, const std::string& listen_text,
                      bool have_token) {
  if (endpoint.address().is_loopback() || have_token) return Status::Ok();
  return Status::InvalidParams(
      "listen", "refusing to listen on " + listen_text +
                    ": it is not a loopback address, so other machines could connect. TCP beyond "
                    "loopback needs an auth token (--auth-token-file FILE, --auth-token TOKEN or "
                    "$SHIM_AUTH_TOKEN); to stay on this machine use --listen 127.0.0.1:PORT");
}

Status PreparePrivateDirectory(const std::string& dir_text, const PrivateDirectoryUse& use) {
  namespace fs = std::filesystem;
  const fs::path dir = dir_text.empty() ? fs::path(".") : fs::path(dir_text);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT)
      return Status::Internal("cannot check " + dir.string() + ": " + std::strerror(errno));
    // Ours from the first instant: parents as the umask says, the directory
    // itself 0700 (mkdir's mode can only be narrowed by the umask; the
    // chmod makes it exact).
    std::error_code ec;
    if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
    if (ec || (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)) {
      return Status::Internal("cannot create " + dir.string() + ": " +
                              (ec ? ec.message() : std::strerror(errno)));
    }
    ::chmod(dir.c_str(), 0700);
    if (::stat(dir.c_str(), &st) != 0) {
      return Status::Internal("cannot check " + dir.string() + ": " + std::strerror(errno));
    }
  }
  if (!S_ISDIR(st.st_mode)) return Status::Internal(dir.string() + " is not a directory");
  const std::string where = "refusing to " + use.refusing + ": " + use.subject;
  if (st.st_uid != ::geteuid()) {
    return Status::Internal(where + " belongs to uid " + std::to_string(st.st_uid) +
                            ", not to this user (uid " + std::to_string(::geteuid()) +
                            "), who could read or replace what is in it. " + use.other);
  }
  if ((st.st_mode & 077) != 0) {
    // A sticky, world-writable directory is shared by design (/tmp): never
    // suggest opening or closing it up.
    const bool shared = (st.st_mode & S_ISVTX) != 0;
    return Status::Internal(
        where + " has mode " + Octal(st.st_mode) +
        (shared ? " and is shared with other users" : " and is open to other users") + "; " +
        use.must + " (mode 0700). " +
        (shared ? use.shared_other
                : "Run `chmod 700 " + dir.string() + "` if the directory is yours alone, or " +
                      use.other));
  }
  return Status::Ok();
}

Status PrepareSocketDirectory(const std::string& socket_path) {
  const std::string dir = std::filesystem::path(socket_path).parent_path().string();
  const std::string shown = dir.empty() ? "." : dir;
  return PreparePrivateDirectory(
      dir, {.refusing = "create the socket " + socket_path,
            .subject = "its directory " + shown,
            .must = "the socket must live in a private directory",
            .other = "use --socket in a private directory (the default $SHIM_HOME/shim.sock)",
            .shared_other = "Use --socket in a private directory, e.g. one made by `mktemp -d`, "
                            "or the default $SHIM_HOME/shim.sock"});
}

bool ConstantTimeEquals(std::string_view presented, std::string_view expected) {
  // The loop runs over the presented token, which the client already knows;
  // every byte is compared, and the expected token is indexed cyclically so
  // its length does not change the work either.
  if (expected.empty()) return false;
  volatile unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < presented.size(); ++i) {
    diff = diff | static_cast<unsigned char>(presented[i] ^ expected[i % expected.size()]);
  }
  return diff == 0 && !presented.empty();
}

bool LooksLikeHttpRequest(std::string_view line) {
  // METHOD SP TARGET SP HTTP/x.y
  const size_t first = line.find(' ');
  if (first == std::string_view::npos || first == 0 || first > 24) return false;
  for (char c : line.substr(0, first)) {
    if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_')) return false;
  }
  const size_t last = line.rfind(' ');
  if (last == first) return false;
  return line.substr(last + 1).rfind("HTTP/", 0) == 0;
}

std::string HttpRefusal() {
  static const std::string body =
      "This is shim, which speaks JSON-RPC 2.0, one JSON message per line, not HTTP.\n"
      "The connection is closed. See docs/protocol.md.\n";
  return "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace shim::net

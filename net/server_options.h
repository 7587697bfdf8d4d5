// ServerOptions: everything `shim serve` configures in net/. Defaults are
// the documented ones (docs/protocol.md "Limits", `shim serve --help`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace shim::net {

struct ServerOptions {
  std::string socket_path;  // Unix socket; required
  std::string tcp_listen;   // "127.0.0.1:7420"; empty = no TCP
  // TCP authentication. When set, every TCP connection must send
  // `sys.auth {token}` before anything else; a non-loopback --listen is
  // refused without it. Unix-socket connections never need it (the socket's
  // 0600 mode and 0700 directory guard them). Empty = no token.
  std::string auth_token;
  // An unauthenticated TCP connection (token set) is closed this long after
  // it was accepted.
  int64_t auth_timeout_ms = 5'000;
  // A connection with no bytes in either direction and no request pending
  // for this long is closed. 0 = never (the default: chat clients and
  // subscribers on quiet channels sit idle for hours).
  int64_t idle_timeout_ms = 0;
  // A request line must be complete this long after its first byte arrived
  // (trickling bytes does not extend it); else the connection is closed.
  // 0 = never.
  int64_t partial_line_timeout_ms = 30'000;
  size_t max_message_bytes = 1 << 20;   // longest accepted request line
  size_t max_outbound_bytes = 8 << 20;  // per-connection queued output
  // Server-wide: while the replies held until a commit lands (reads
  // answered behind a pending write) exceed this, no connection's next
  // request is taken. Bounds what pipelined reads can pin while a commit
  // is slow; costs nothing otherwise (those replies could not leave before
  // the land anyway).
  size_t max_held_reply_bytes = 64 << 20;
  size_t max_connections = 1024;
  // Reported by sys.info; net does not touch storage itself.
  std::string data_dir;
  std::string log_file;  // empty: the log goes to stderr
  std::string durability;
  std::string version = "0.1.0";
};

}  // namespace shim::net

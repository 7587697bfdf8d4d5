// ServerOptions: everything `shim serve` configures in net/. Defaults are
// the documented ones (docs/protocol.md "Limits", `shim serve --help`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace shim::net {

struct ServerOptions {
  std::string socket_path;              // Unix socket; required
  std::string tcp_listen;               // "127.0.0.1:7420"; empty = no TCP
  size_t max_message_bytes = 1 << 20;   // longest accepted request line
  size_t max_outbound_bytes = 8 << 20;  // per-connection queued output
  size_t max_connections = 1024;
  // Reported by sys.info; net does not touch storage itself.
  std::string data_dir;
  std::string durability;
  std::string version = "0.1.0";
};

}  // namespace shim::net

// Access control helpers for the listeners and sessions: where a Unix
// socket may live, which TCP addresses may be bound and with what, token
// comparison, and recognising an HTTP request sent to the line protocol.
// The threat model behind them is docs/threat-model.md. Pure functions (the
// socket-directory check reads and may create a directory); any thread.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "net/asio.h"

namespace shim::net {

// Splits "HOST:PORT" ("[::1]:7420" for IPv6; "localhost" means 127.0.0.1)
// into an endpoint. Any address is accepted here; whether it may be bound
// is ValidateListen's business. Errors: INVALID_PARAMS (field "listen").
Result<asio::ip::tcp::endpoint> ParseListenEndpoint(const std::string& text);

// The TCP rule: a loopback address may always be bound; any other address
// (0.0.0.0, a LAN address, ::) only with an auth token. Errors:
// INVALID_PARAMS (field "listen") with a message saying what to do.
Status ValidateListen(const asio::ip::tcp::endpoint& endpoint, const std::string& listen_text,
                      bool have_token);

// What a private directory is for, in the words of PreparePrivateDirectory's
// refusals: "refusing to <refusing>: <subject> has mode 0755 ...". `other`
// is the advice for using another directory ("use --data DIR ...").
struct PrivateDirectoryUse {
  std::string refusing;      // e.g. "create the socket /run/x/s.sock"
  std::string subject;       // e.g. "its directory /run/x"
  std::string must;          // e.g. "the socket must live in a private directory"
  std::string other;         // e.g. "use --socket in a private directory"
  std::string shared_other;  // the same advice when `dir` is shared, like /tmp
};

// Makes sure `dir` is private: owned by this user and with no group/other
// permission bits. A missing directory is created (its parents as the
// umask says), itself mode 0700. An existing directory that is not private
// is refused, never chmod'ed: it may be shared (/tmp) or hold other things
// whose modes are not ours to change. Errors: INTERNAL with a message
// naming the directory, its mode and owner, and the fix.
Status PreparePrivateDirectory(const std::string& dir, const PrivateDirectoryUse& use);

// PreparePrivateDirectory for the directory that will hold the Unix socket
// at `socket_path` (the socket's 0600 mode alone does not stop another user
// from replacing it in a directory they can write).
Status PrepareSocketDirectory(const std::string& socket_path);

// Compares a presented secret with the expected one in time that depends
// only on the presented length, never on where the first difference is.
bool ConstantTimeEquals(std::string_view presented, std::string_view expected);

// True for a line shaped like an HTTP request line ("GET / HTTP/1.1",
// "POST /x HTTP/1.0", "PRI * HTTP/2.0"). No JSON text starts with an upper
// case token followed by a space, so this never matches a real request.
bool LooksLikeHttpRequest(std::string_view line);

// The reply to a connection whose first line is HTTP: a complete HTTP/1.1
// 400 response with a plain-text explanation, so curl and browsers show why.
std::string HttpRefusal();

}  // namespace shim::net

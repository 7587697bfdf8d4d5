// Helpers shared by the client subcommands (see client_util.h).
#include "cli/client_util.h"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "base/json_text.h"
#include "cli/commands.h"
#include "cli/paths.h"
#include "engine/json_parse.h"

namespace shim::cli {

Result<std::unique_ptr<net::LineClient>> ConnectFromArgs(const ParsedArgs& args) {
  auto connect = args.Get("connect");
  if (!connect) return net::LineClient::ConnectUnix(args.GetOr("socket", DefaultSocketPath()));
  if (args.Get("socket"))
    return Status::InvalidParams("connect", "give --socket or --connect, not both");
  std::string token;
  if (auto t = args.Get("auth-token")) {
    token = *t;
  } else if (auto file = args.Get("auth-token-file")) {
    std::ifstream in(*file);
    if (!in || !std::getline(in, token)) {
      return Status::InvalidParams("auth-token-file",
                                   "--auth-token-file " + *file + ": cannot read the file");
    }
  } else if (const char* env = std::getenv("SHIM_AUTH_TOKEN"); env && *env) {
    token = env;
  }
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  SHIM_ASSIGN_OR_RETURN(auto client, net::LineClient::ConnectTcp(*connect));
  if (!token.empty()) {
    auto auth = client->Call("sys.auth", {{"token", token}}, TimeoutMs(args));
    if (!auth.ok()) {
      return Status(auth.status().code(),
                    "sys.auth on " + *connect + ": " + auth.status().message(),
                    auth.status().details());
    }
  }
  return client;
}

std::unique_ptr<net::LineClient> ConnectOrReport(const ParsedArgs& args, const char* command) {
  auto client = ConnectFromArgs(args);
  if (!client.ok()) {
    // A refused token is the server's answer: name its reason.
    const nlohmann::json& details = client.status().details();
    std::string reason = details.is_object() ? details.value("reason", "") : "";
    std::fprintf(stderr, "shim %s: %s%s%s\n", command, reason.c_str(), reason.empty() ? "" : ": ",
                 client.status().message().c_str());
    return nullptr;
  }
  return std::move(client).value();
}

int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int TimeoutMs(const ParsedArgs& args) {
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
  Result<nlohmann::json> v = ParseJson(text);
  return v.ok() ? std::move(v).value() : nlohmann::json(text);
}

int UsageError(const ParsedArgs& args, const std::string& message) {
  std::fprintf(stderr, "shim %s: %s\n(see shim %s --help)\n", args.command().c_str(),
               message.c_str(), args.command().c_str());
  return kExitUsage;
}

namespace {

constexpr size_t kMaxValueTextBytes = 64 << 20;

// All of `in`, up to kMaxValueTextBytes; false if there was more or it
// could not be read.
bool ReadAllBounded(std::istream& in, std::string* out) {
  char buf[65536];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    out->append(buf, static_cast<size_t>(in.gcount()));
    if (out->size() > kMaxValueTextBytes) return false;
  }
  return !in.bad();
}

}  // namespace

Result<std::string> ValueText(const ParsedArgs& args, const std::string* positional,
                              const char* name) {
  const std::optional<std::string> file = args.Get("file");
  if (positional && file)
    return Status::InvalidParams("file", std::string("give ") + name + " or --file, not both");
  if (!positional && !file) {
    return Status::InvalidParams(
        "file", std::string(name) + " is required (or --file FILE, or - to read it from stdin)");
  }
  const std::string source = file ? *file : *positional;
  if (positional && source != "-") return source;
  std::string text;
  bool read;
  if (source == "-") {
    read = ReadAllBounded(std::cin, &text);
  } else {
    std::ifstream in(source, std::ios::binary);
    read = in && ReadAllBounded(in, &text);
  }
  const std::string from = source == "-" ? "stdin" : "--file " + source;
  if (!read) {
    return Status::InvalidParams("file", text.size() > kMaxValueTextBytes
                                             ? from + ": larger than 64 MiB"
                                             : from + ": cannot read it");
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

Result<nlohmann::json> ValueArg(const ParsedArgs& args, const std::string* positional,
                                const char* name) {
  SHIM_ASSIGN_OR_RETURN(std::string text, ValueText(args, positional, name));
  if (args.Flag("string")) return nlohmann::json(std::move(text));
  return ParseValueArg(text);
}

bool PrintedAsJson(const ParsedArgs& args, const nlohmann::json& result) {
  if (!args.Flag("json")) return false;
  std::cout << DumpCompact(result) << "\n";
  return true;
}

Result<nlohmann::json> CallAllPages(net::LineClient& client, const std::string& method,
                                    nlohmann::json params, const std::string& items_field,
                                    int timeout_ms) {
  nlohmann::json all = nlohmann::json::array();
  for (;;) {
    auto page = client.Call(method, params, timeout_ms);
    if (!page.ok()) return page.status();
    for (auto& item : (*page)[items_field]) all.push_back(std::move(item));
    const nlohmann::json next = page->value("next", nlohmann::json());
    if (next.is_null()) {
      (*page)[items_field] = std::move(all);
      return page;
    }
    params["after"] = next;
  }
}

}  // namespace shim::cli

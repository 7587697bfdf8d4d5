// The error table (base/error_codes.h): every row complete, the wire
// contract unchanged, every code with an MCP hint, the JSON-RPC protocol
// errors answered from it, and docs/protocol.md listing exactly its rows.
#include "base/error_codes.h"

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "net/jsonrpc.h"
#include "net/mcp_tools.h"

namespace shim {
namespace {

using nlohmann::json;

TEST(ErrorCodesTest, EveryRowIsCompleteAndInCodeOrder) {
  for (size_t i = 0; i < kErrorTable.size(); ++i) {
    const ErrorRow& row = kErrorTable[i];
    SCOPED_TRACE(row.reason);
    EXPECT_EQ(static_cast<size_t>(row.code), i);
    EXPECT_FALSE(row.reason.empty());
    EXPECT_FALSE(row.message.empty());
    EXPECT_FALSE(row.mcp_hint.empty());
    if (row.code == StatusCode::kOk) {
      EXPECT_EQ(row.http_status, 200);
    } else {
      EXPECT_GE(row.http_status, 400);
      EXPECT_LE(row.http_status, 599);
    }
  }
  EXPECT_EQ(kErrorTable.size(), static_cast<size_t>(kLastStatusCode) + 1);
}

TEST(ErrorCodesTest, ReasonsAndWireCodesAreUnique) {
  std::set<std::string_view> reasons;
  std::set<int> codes;
  for (const ErrorRow& row : kErrorTable) {
    EXPECT_TRUE(reasons.insert(row.reason).second) << row.reason;
    EXPECT_TRUE(codes.insert(row.wire_code).second) << row.wire_code;
  }
}

// The contract of docs/protocol.md: these pairs never change (rows are only
// added after them).
TEST(ErrorCodesTest, WireCodesAndReasonsAreTheContract) {
  const std::vector<std::pair<int, std::string_view>> contract = {
      {-32700, "PARSE_ERROR"},    {-32600, "INVALID_REQUEST"}, {-32601, "METHOD_NOT_FOUND"},
      {-32602, "INVALID_PARAMS"}, {-32603, "INTERNAL"},        {1001, "VERSION_CONFLICT"},
      {1002, "NOT_FOUND"},        {1003, "LOCK_HELD"},         {1004, "NOT_OWNER"},
      {1005, "FENCED"},           {1006, "DEPENDENCY_CYCLE"},  {1007, "TIMEOUT"},
      {1008, "TOO_LARGE"},        {1009, "TYPE_MISMATCH"},     {1010, "INVALID_STATE"},
      {1011, "OVERLOADED"},       {1012, "SHUTTING_DOWN"},     {1013, "UNAUTHORIZED"},
      {1014, "READ_ONLY"},        {1015, "FORBIDDEN"},
  };
  for (const auto& [code, reason] : contract) {
    bool found = false;
    for (const ErrorRow& row : kErrorTable) {
      if (row.reason != reason) continue;
      found = true;
      EXPECT_EQ(row.wire_code, code) << reason;
      EXPECT_EQ(StatusCodeWireCode(row.code), code) << reason;
      EXPECT_EQ(StatusCodeReason(row.code), reason);
    }
    EXPECT_TRUE(found) << reason << " is missing from kErrorTable";
  }
}

// What `shim mcp` tells a model for every error code: the reason, the
// message and the code's own hint.
TEST(ErrorCodesTest, EveryCodeGivesAnMcpHint) {
  std::set<std::string_view> hints;
  for (const ErrorRow& row : kErrorTable) {
    if (row.code == StatusCode::kOk) continue;
    SCOPED_TRACE(row.reason);
    json result = net::McpToolError(Status(row.code, "it failed"));
    EXPECT_EQ(result["isError"], true);
    const std::string text = result["content"][0]["text"];
    EXPECT_EQ(text, std::string(row.reason) + ": it failed\nHint: " + std::string(row.mcp_hint));
    EXPECT_TRUE(hints.insert(row.mcp_hint).second) << "two codes share the hint: " << row.mcp_hint;
  }
}

TEST(ErrorCodesTest, AStatusWithoutMessageTakesTheRowsMessage) {
  for (const ErrorRow& row : kErrorTable) {
    if (row.code == StatusCode::kOk) continue;
    EXPECT_EQ(Status(row.code).message(), row.message) << row.reason;
  }
  EXPECT_EQ(Status(StatusCode::kNotFound, "no key 'a'").message(), "no key 'a'");
}

json ErrorOf(const std::string& line) {
  json reply = json::parse(line, nullptr, false);
  EXPECT_TRUE(reply.is_object()) << line;
  return reply.is_object() ? reply["error"] : json();
}

void ExpectProtocolRow(const json& error, StatusCode code) {
  const ErrorRow& row = ErrorRowFor(code);
  EXPECT_EQ(error["code"], row.wire_code) << error;
  EXPECT_EQ(error["data"], json({{"reason", row.reason}})) << error;
}

// The three JSON-RPC protocol errors net/ answers with are rows of the
// table, with the codes JSON-RPC 2.0 gives them.
TEST(ErrorCodesTest, ProtocolErrorsAreRowsOfTheTable) {
  EXPECT_EQ(StatusCodeWireCode(StatusCode::kParseError), -32700);
  EXPECT_EQ(StatusCodeWireCode(StatusCode::kInvalidRequest), -32600);
  EXPECT_EQ(StatusCodeWireCode(StatusCode::kMethodNotFound), -32601);

  // Not JSON: the session answers PARSE_ERROR (net/session_protocol.cc).
  net::RequestLine read = net::ReadRequestLine("{not json");
  EXPECT_TRUE(read.syntax_error);
  const json parse_error = ErrorOf(net::EncodeErrorLine(
      net::RequestId(), Status(StatusCode::kParseError, "the line is not valid JSON")));
  ExpectProtocolRow(parse_error, StatusCode::kParseError);
  EXPECT_EQ(parse_error["message"], "the line is not valid JSON");

  // Not a request: ParseRequest writes the INVALID_REQUEST line itself.
  for (const json& bad : {json(17), json{{"jsonrpc", "1.0"}, {"id", 1}, {"method", "m"}},
                          json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", 5}}}) {
    std::string line;
    Result<net::Request> req = net::ParseRequest(bad, "", &line);
    ASSERT_FALSE(req.ok()) << bad;
    EXPECT_EQ(req.status().code(), StatusCode::kInvalidRequest);
    ExpectProtocolRow(ErrorOf(line), StatusCode::kInvalidRequest);
  }

  const json unknown = ErrorOf(net::EncodeErrorLine(
      net::RequestId::FromJson(3), Status(StatusCode::kMethodNotFound, "unknown method 'x'")));
  ExpectProtocolRow(unknown, StatusCode::kMethodNotFound);
}

std::string ReadProtocolDoc() {
  const auto path = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() /
                    "docs" / "protocol.md";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The rows of the table under "## Errors": `| code | reason | HTTP | ...`.
std::vector<std::vector<std::string>> DocumentedErrorRows(const std::string& doc) {
  std::vector<std::vector<std::string>> rows;
  const size_t start = doc.find("\n## Errors\n");
  EXPECT_NE(start, std::string::npos) << "docs/protocol.md has no \"## Errors\" section";
  if (start == std::string::npos) return rows;
  const size_t end = doc.find("\n## ", start + 1);
  std::istringstream section(doc.substr(start, end - start));
  for (std::string line; std::getline(section, line);) {
    if (line.rfind("| ", 0) != 0) continue;
    std::vector<std::string> cells;
    std::istringstream cols(line.substr(1));
    for (std::string cell; std::getline(cols, cell, '|');) {
      const size_t b = cell.find_first_not_of(' ');
      const size_t e = cell.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    // Only rows whose first cell is a number: not the header or the rule.
    if (cells.size() >= 3 && !cells[0].empty() &&
        (std::isdigit(cells[0][0]) || cells[0][0] == '-')) {
      rows.push_back(std::move(cells));
    }
  }
  return rows;
}

TEST(ErrorCodesTest, ProtocolDocListsEveryRowAndNothingElse) {
  const auto documented = DocumentedErrorRows(ReadProtocolDoc());
  std::set<std::string> in_doc;
  for (const auto& cells : documented) {
    in_doc.insert(cells[1]);
    bool found = false;
    for (const ErrorRow& row : kErrorTable) {
      if (row.reason != cells[1]) continue;
      found = true;
      EXPECT_EQ(cells[0], std::to_string(row.wire_code)) << row.reason;
      EXPECT_EQ(cells[2], std::to_string(row.http_status)) << row.reason << ": the HTTP column";
    }
    EXPECT_TRUE(found) << "docs/protocol.md documents " << cells[1]
                       << ", which kErrorTable does not have";
  }
  for (const ErrorRow& row : kErrorTable) {
    if (row.code == StatusCode::kOk) continue;
    EXPECT_TRUE(in_doc.count(std::string(row.reason)))
        << "docs/protocol.md does not list " << row.reason;
  }
}

}  // namespace
}  // namespace shim

// Assertions on raw JSON-RPC lines, for the tests that speak the wire
// protocol byte by byte instead of through LineClient::Call.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace shim::testing {

// One request or notification as the line a client sends.
inline std::string JsonLine(const nlohmann::json& message) { return message.dump() + "\n"; }

// Expects `response` to be a JSON-RPC error (no result) with this code,
// data.reason and id, and a message.
inline void ExpectError(const nlohmann::json& response, int code, const std::string& reason,
                        const nlohmann::json& id) {
  ASSERT_TRUE(response.is_object()) << response.dump();
  EXPECT_EQ(response.value("jsonrpc", ""), "2.0") << response.dump();
  ASSERT_TRUE(response.contains("id")) << response.dump();
  EXPECT_EQ(response["id"], id) << response.dump();
  EXPECT_FALSE(response.contains("result")) << response.dump();
  ASSERT_TRUE(response.contains("error")) << response.dump();
  EXPECT_EQ(response["error"]["code"], code) << response.dump();
  EXPECT_EQ(response["error"]["data"]["reason"], reason) << response.dump();
  EXPECT_TRUE(response["error"]["message"].is_string()) << response.dump();
}

}  // namespace shim::testing

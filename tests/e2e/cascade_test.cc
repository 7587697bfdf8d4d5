// Cascades against a live server: a lapsed lease, a cancel or a failure at
// the head of a chain of tens of thousands of dependents or descendants
// once recursed until `shim serve` died with SIGSEGV, and, since nothing had
// committed, died again after every restart when the head's lease lapsed.
// Now the cascade runs in slices between other clients' requests, and a
// kill in the middle of one is finished after the restart.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/server_process.h"
#include "tests/support/test_util.h"

namespace shim {
namespace {

using nlohmann::json;
using testing::ServerProcess;

// Submits a chain of `n` tasks on queue `queue`, each linked to the one
// before by `link` ("depends_on" or "parent_id"), in batches of 10,000 (a
// batch names earlier tasks of its own by ref, of earlier batches by id).
std::vector<std::string> SubmitChain(net::LineClient& c, const std::string& queue, size_t n,
                                     const char* link, const json& head_extra = json::object()) {
  // Every finished task is kept, so the test can count them.
  auto configured =
      c.Call("queue.configure",
             {{"queue", queue}, {"keep_completed", 10'000'000}, {"keep_failed", 10'000'000}});
  EXPECT_TRUE(configured.ok()) << configured.status().ToString();
  std::vector<std::string> ids;
  while (ids.size() < n) {
    json batch = json::array();
    const size_t first = ids.size();
    for (size_t i = first; i < n && i < first + 10'000; ++i) {
      json t = {{"queue", queue}, {"ref", "r" + std::to_string(i)}};
      if (i == 0) t.update(head_extra);
      if (i > 0) {
        const std::string prev = i == first ? ids.back() : "r" + std::to_string(i - 1);
        t[link] = std::string(link) == "depends_on" ? json::array({prev}) : json(prev);
      }
      batch.push_back(std::move(t));
    }
    auto r = c.Call("task.submit_batch", {{"tasks", batch}}, testing::kLoadedCallTimeoutMs);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    for (const json& id : r.value()["task_ids"]) ids.push_back(id);
  }
  return ids;
}

// Polls queue.stats until `state` counts `want` (or a generous deadline).
int64_t WaitForCount(net::LineClient& c, const std::string& queue, const std::string& state,
                     int64_t want) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(testing::LatencyBoundMs(60));
  int64_t have = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = c.Call("queue.stats", {{"queue", queue}});
    if (!r.ok()) return -1;
    have = r.value()["counts"][state].get<int64_t>();
    if (have == want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return have;
}

class CascadeTest : public ::testing::Test {
 protected:
  // Starts the server with `durability` ("sync" or "async") and connects c_.
  void Start(const char* durability) {
    server_.options().durability = durability;
    ASSERT_OK(server_.Start());
    ASSERT_OK_AND_ASSIGN(c_, server_.Connect());
  }

  ServerProcess server_;
  std::unique_ptr<net::LineClient> c_;
};

TEST_F(CascadeTest, ALapsedLeaseAtTheHeadOfALongChainFailsItWithoutKillingTheServer) {
  ASSERT_NO_FATAL_FAILURE(Start("async"));
  const size_t n = 20'000;
  std::vector<std::string> ids =
      SubmitChain(*c_, "chain", n, "depends_on", {{"timeout_ms", 200}, {"max_attempts", 1}});
  ASSERT_EQ(ids.size(), n);
  auto claimed = c_->Call("task.claim", {{"queues", {"chain"}}, {"worker_id", "w"}});
  ASSERT_OK(claimed);
  ASSERT_EQ(claimed.value()["tasks"][0]["task_id"], ids[0]);
  // No client acts: the lease lapses, the head fails, the chain follows.
  EXPECT_EQ(WaitForCount(*c_, "chain", "failed", static_cast<int64_t>(n)), static_cast<int64_t>(n));
  EXPECT_TRUE(server_.running());
  auto tail = c_->Call("task.get", {{"task_id", ids.back()}});
  ASSERT_OK(tail);
  EXPECT_EQ(tail.value()["error"], "dependency " + ids[n - 2] + " failed");
}

TEST_F(CascadeTest, CancellingTheRootOfADeepParentChainCancelsItAll) {
  ASSERT_NO_FATAL_FAILURE(Start("async"));
  const size_t n = 30'000;
  std::vector<std::string> ids = SubmitChain(*c_, "tree", n, "parent_id");
  ASSERT_EQ(ids.size(), n);
  ASSERT_OK(c_->Call("task.cancel", {{"task_id", ids[0]}}, testing::kLoadedCallTimeoutMs));
  EXPECT_EQ(WaitForCount(*c_, "tree", "cancelled", static_cast<int64_t>(n)),
            static_cast<int64_t>(n));
  EXPECT_TRUE(server_.running());
}

TEST_F(CascadeTest, AKillInTheMiddleOfACascadeIsFinishedAfterTheRestart) {
  ASSERT_NO_FATAL_FAILURE(Start("sync"));
  const size_t n = 30'000;
  std::vector<std::string> ids = SubmitChain(*c_, "chain", n, "depends_on");
  ASSERT_EQ(ids.size(), n);
  ASSERT_OK(c_->Call("task.cancel", {{"task_id", ids[0]}}));
  server_.Kill();  // right after the acknowledgement: the cascade is under way
  ASSERT_OK(server_.Start());
  ASSERT_OK_AND_ASSIGN(c_, server_.Connect());
  auto head = c_->Call("task.get", {{"task_id", ids[0]}});
  ASSERT_OK(head);
  EXPECT_EQ(head.value()["state"], "cancelled") << "the acknowledged cancel is durable";
  EXPECT_EQ(WaitForCount(*c_, "chain", "failed", static_cast<int64_t>(n - 1)),
            static_cast<int64_t>(n - 1));
  EXPECT_EQ(WaitForCount(*c_, "chain", "waiting", 0), 0);
}

}  // namespace
}  // namespace shim

// task.claim, and task.complete / task.fail with claim_next, answer the
// socket as text (Call::reply_encoded): the claim records are built as
// text with each payload's stored text spliced in. These check that text
// against the library's dump of the same answer as a document, byte for
// byte, for every member of a claim record, odd queue names and payloads
// included, on each path that answers a claim.
#include <string>

#include "base/json_text.h"
#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

class TasksClaimTextTest : public TasksTest {
 protected:
  // Starts `method` with a text answer and commits; each text answer goes
  // to *text and counts in *texts. A document answer is a failure.
  void StartForText(const std::string& method, json params, std::string* text, int* texts) {
    engine_->Execute(
        method, std::move(params), nullptr,
        [method](Result<json> r) {
          ADD_FAILURE() << method
                        << " answered a document: " << (r.ok() ? r->dump() : r.status().ToString());
        },
        [text, texts](std::string t) {
          *text = std::move(t);
          ++*texts;
        });
    Pump();
  }
  // The text `method` answered at once, or "" if it did not.
  std::string TextAnswer(const std::string& method, json params) {
    std::string text;
    int texts = 0;
    StartForText(method, std::move(params), &text, &texts);
    return text;
  }
  // The claim record the text must hold for `id` claimed now.
  json ExpectedRecord(const std::string& id, const json& claimed_text_record) {
    const json task = Get(id);
    return {{"attempt", task["attempt"]},
            {"lease_expires_at_ms", Now() + task["timeout_ms"].get<int64_t>()},
            {"lease_token", claimed_text_record["lease_token"]},
            {"max_attempts", task["max_attempts"]},
            {"payload", task["payload"]},
            {"priority", task["priority"]},
            {"queue", task["queue"]},
            {"tags", task["tags"]},
            {"task_id", id},
            {"timeout_ms", task["timeout_ms"]}};
  }
  // The library's own dump, not DumpCompact: the claim text is built with
  // json_text.h's pieces, so the reference must not share them.
  static std::string Dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  }
};

TEST_F(TasksClaimTextTest, AClaimRecordAsTextIsTheDumpOfItsDocument) {
  const std::string odd_queue = "caf\xc3\xa9 \"q\" \\ \x01";
  const std::string a =
      Submit({{"payload", {{"x", {1, 2.5, {{"y", "caf\xc3\xa9\n"}}}}, {"n", nullptr}}},
              {"tags", {"ci", "b\"x"}},
              {"priority", 2},
              {"max_attempts", 4},
              {"timeout_ms", 5000}});
  const std::string b = Submit({{"queue", odd_queue}});  // no payload, no tags
  for (const auto& [id, queue] : {std::pair{a, std::string("q")}, std::pair{b, odd_queue}}) {
    const std::string text = TextAnswer("task.claim", {{"queues", {queue}}, {"worker_id", "w"}});
    const json answer = json::parse(text, nullptr, false);
    ASSERT_TRUE(answer.is_object()) << text;
    ASSERT_EQ(answer["tasks"].size(), 1u) << text;
    EXPECT_EQ(text, Dump({{"tasks", {ExpectedRecord(id, answer["tasks"][0])}}}));
  }
}

TEST_F(TasksClaimTextTest, AnEmptyClaimAnswersAnEmptyListAsText) {
  EXPECT_EQ(TextAnswer("task.claim", {{"queues", {"q"}}, {"worker_id", "w"}}), R"({"tasks":[]})");
}

TEST_F(TasksClaimTextTest, FinishingWithClaimNextAnswersTheFinishAndTheClaimAsText) {
  const std::string first = Submit({{"payload", {{"i", 1}}}});
  const std::string second = Submit({{"payload", {{"i", 2}}}});
  const std::string third =
      Submit({{"payload", {{"i", 3}}}, {"backoff", {{"type", "fixed"}, {"delay_ms", 500}}}});
  json claimed = ClaimOne("w");
  ASSERT_EQ(claimed["task_id"], first);
  const json next = {{"queues", {"q"}}};

  std::string text = TextAnswer(
      "task.complete",
      {{"task_id", first}, {"lease_token", claimed["lease_token"]}, {"claim_next", next}});
  json answer = json::parse(text, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << text;
  ASSERT_EQ(answer["tasks"].size(), 1u) << text;
  EXPECT_EQ(text, Dump({{"ok", true}, {"tasks", {ExpectedRecord(second, answer["tasks"][0])}}}));

  claimed = answer["tasks"][0];
  text = TextAnswer("task.fail", {{"task_id", second},
                                  {"lease_token", claimed["lease_token"]},
                                  {"error", "e"},
                                  {"claim_next", next}});
  answer = json::parse(text, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << text;
  ASSERT_EQ(answer["tasks"].size(), 1u) << text;
  EXPECT_EQ(text, Dump({{"next_run_at_ms", answer["next_run_at_ms"]},
                        {"state", "delayed"},
                        {"tasks", {ExpectedRecord(third, answer["tasks"][0])}}}));
  EXPECT_TRUE(answer["next_run_at_ms"].is_number_integer());

  // Nothing ready: the finish still answers, with no tasks.
  claimed = answer["tasks"][0];
  text = TextAnswer(
      "task.complete",
      {{"task_id", third}, {"lease_token", claimed["lease_token"]}, {"claim_next", next}});
  EXPECT_EQ(text, R"({"ok":true,"tasks":[]})");
}

TEST_F(TasksClaimTextTest, AWaitingClaimIsAnsweredAsTextWhenATaskArrivesOrTheWaitEnds) {
  std::string text;
  int texts = 0;
  StartForText("task.claim", {{"queues", {"q"}}, {"worker_id", "w"}, {"wait_ms", 1000}}, &text,
               &texts);
  EXPECT_EQ(texts, 0) << "it waits";
  const std::string id = Submit({{"payload", "p"}});
  ASSERT_EQ(texts, 1);
  const json answer = json::parse(text, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << text;
  ASSERT_EQ(answer["tasks"].size(), 1u);
  EXPECT_EQ(answer["tasks"][0]["task_id"], id);
  EXPECT_EQ(answer["tasks"][0]["payload"], "p");

  StartForText("task.claim", {{"queues", {"q"}}, {"worker_id", "w2"}, {"wait_ms", 200}}, &text,
               &texts);
  Advance(200);
  EXPECT_EQ(texts, 2);
  EXPECT_EQ(text, R"({"tasks":[]})");
}

}  // namespace
}  // namespace shim::engine::taskstest

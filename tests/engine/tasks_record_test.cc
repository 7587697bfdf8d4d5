// Task records and payloads: the binary record keeps every field, JSON
// records written by earlier versions still load (data dirs keep working),
// corrupt records are refused, and payloads — read from the store rather
// than held in memory — come back from task.claim and task.get, after a
// restart too and before their write has committed.
#include <string>
#include <utility>
#include <vector>

#include "engine/tasks/task.h"
#include "storage/key_codec.h"
#include "tests/engine/tasks_fixture.h"

namespace shim::engine::taskstest {
namespace {

Task FullTask() {
  Task t;
  t.seq = 42;
  t.set_queue("jobs");
  t.priority = 2;
  t.original_priority = 7;
  t.state = TaskState::kRunning;
  t.max_attempts = 9;
  t.attempt = 2;
  t.created_at_ms = 1'700'000'000'000;
  t.run_at_ms = -5;  // signed fields survive negative values
  t.ready_at_ms = 1'700'000'000'123;
  t.ready_order = 77;
  t.finished_at_ms = 0;
  t.timeout_ms = 5000;
  TaskExtra& e = t.x();
  e.backoff.type = Backoff::Type::kExponential;
  e.backoff.delay_ms = 250;
  e.backoff.max_delay_ms = 10'000;
  e.backoff.jitter = true;
  e.deadline_at_ms = 1'700'000'100'000;
  e.escalate_before_ms = 3000;
  e.escalated = true;
  e.deadline_missed = false;
  e.depends_on = {3, 300, 1ull << 40};
  e.ignore_dependency_failure = true;
  e.requires_caps = {"gpu", "linux"};
  e.parent = 7;
  e.aggregate = Aggregate::kMerge;
  e.children = {50, 51};
  e.idempotency_key = "idem";
  e.ref = "r1";
  e.tags = json::array({"a", "b"});
  e.attempts = {Attempt{"w1", 10, 20, "boom"}, Attempt{"w2", 30, 0, ""}};
  e.result = json{{"x", 1}};
  e.error = "old error";
  e.progress = json{{"pct", 50}};
  e.progress_message = "half";
  e.worker_id = "w2";
  e.lease_token = 99;
  return t;
}

TEST(TaskRecordTest, BinaryRecordKeepsEveryStoredField) {
  const Task t = FullTask();
  const std::string rec = t.EncodeRecord();
  ASSERT_FALSE(rec.empty());
  EXPECT_NE(rec[0], '{');
  Task back;
  ASSERT_TRUE(Task::DecodeRecord(42, rec, &back));
  EXPECT_EQ(back.seq, 42u);
  // Children are the one field not stored: recovery rebuilds a parent's
  // list from its children's `parent`.
  EXPECT_TRUE(back.ext().children.empty());
  Task expected = FullTask();
  expected.x().children.clear();
  EXPECT_EQ(back.ToJsonRecord(), expected.ToJsonRecord());
  EXPECT_EQ(back.queue_name, t.queue_name) << "queue names are interned";
}

// Task keeps max_attempts and attempt in 16 bits; the largest values
// task.submit allows (kMaxTaskAttempts, 1000) survive both record forms.
TEST(TaskRecordTest, LargestAttemptCountsSurviveBothRecordForms) {
  Task t = FullTask();
  t.max_attempts = 1000;
  t.attempt = 1000;
  Task from_binary, from_json;
  ASSERT_TRUE(Task::DecodeRecord(42, t.EncodeRecord(), &from_binary));
  ASSERT_TRUE(Task::DecodeRecord(42, t.ToJsonRecord().dump(), &from_json));
  for (const Task* back : {&from_binary, &from_json}) {
    EXPECT_EQ(back->max_attempts, 1000);
    EXPECT_EQ(back->attempt, 1000);
  }
}

TEST(TaskRecordTest, PlainTaskIsSmallAndAllocatesNoExtra) {
  Task t;
  t.seq = 1;
  t.set_queue("fill");
  t.state = TaskState::kReady;
  t.created_at_ms = t.ready_at_ms = 1'700'000'000'000;
  t.ready_order = 123'456;
  const std::string rec = t.EncodeRecord();
  EXPECT_LT(rec.size(), 40u);
  Task back;
  ASSERT_TRUE(Task::DecodeRecord(1, rec, &back));
  EXPECT_FALSE(back.has_extra());
  EXPECT_EQ(back.ToJsonRecord(), t.ToJsonRecord());
}

TEST(TaskRecordTest, JsonRecordsOfEarlierVersionsStillDecode) {
  const Task t = FullTask();
  const std::string old = t.ToJsonRecord().dump();
  ASSERT_EQ(old[0], '{');
  Task back;
  ASSERT_TRUE(Task::DecodeRecord(42, old, &back));
  EXPECT_EQ(back.ToJsonRecord(), t.ToJsonRecord());
  // A plain old record costs no extra part.
  Task plain;
  plain.set_queue("q");
  Task plain_back;
  ASSERT_TRUE(Task::DecodeRecord(5, plain.ToJsonRecord().dump(), &plain_back));
  EXPECT_FALSE(plain_back.has_extra());
}

TEST(TaskRecordTest, CorruptRecordsAreRefused) {
  const std::string rec = FullTask().EncodeRecord();
  Task out;
  EXPECT_FALSE(Task::DecodeRecord(1, "", &out));
  EXPECT_FALSE(Task::DecodeRecord(1, "{not json", &out));
  EXPECT_FALSE(Task::DecodeRecord(1, std::string(1, '\x7f') + rec.substr(1), &out))
      << "unknown version";
  for (size_t cut = 1; cut < rec.size(); ++cut) {
    Task part;
    EXPECT_FALSE(Task::DecodeRecord(1, rec.substr(0, cut), &part)) << "truncated at " << cut;
  }
  EXPECT_FALSE(Task::DecodeRecord(1, rec + "x", &out)) << "trailing bytes";
}

using TasksRecordTest = TasksTest;

// Rewrites every task record in the store the way versions before the
// binary record wrote them (JSON).
void RewriteRecordsAsJson(storage::Store& store) {
  const std::string prefix(1, static_cast<char>(storage::KeyTag::kTask));
  std::vector<std::pair<std::string, std::string>> old;
  ASSERT_OK(store.Scan(storage::Family::kTasks, prefix, storage::PrefixSuccessor(prefix),
                       [&](std::string_view k, std::string_view v) {
                         storage::KeyDecoder d(k);
                         storage::KeyTag tag;
                         uint64_t seq = 0;
                         Task t;
                         EXPECT_TRUE(d.Tag(&tag) && d.U64(&seq) && Task::DecodeRecord(seq, v, &t));
                         old.emplace_back(std::string(k), t.ToJsonRecord().dump());
                         return true;
                       }));
  ASSERT_FALSE(old.empty());
  storage::WriteBatch batch(store);
  for (const auto& [k, v] : old) batch.Put(storage::Family::kTasks, k, v);
  ASSERT_OK(store.Commit(batch, /*force_sync=*/true));
}

TEST_F(TasksRecordTest, DataWithOldJsonRecordsRecovers) {
  const std::string low = Submit({{"priority", 6}, {"payload", {{"n", 1}}}});
  const std::string high = Submit({{"priority", 2}, {"payload", "two"}, {"tags", {"t"}}});
  const std::string dep = Submit({{"depends_on", {low}}, {"payload", 3}});
  const std::string running = Submit({{"queue", "r"}, {"payload", 4}, {"timeout_ms", 5000}});
  json claimed = ClaimOne("w", "r");
  ASSERT_FALSE(claimed.is_null());
  const json counts = Stats("q")["counts"];
  Pump();
  Close();
  {
    storage::StoreOptions so;
    so.path = store_options_.path;
    ASSERT_OK_AND_ASSIGN(auto store, storage::Store::Open(so));
    ASSERT_NO_FATAL_FAILURE(RewriteRecordsAsJson(*store));
    ASSERT_OK(store->Close());
  }
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Stats("q")["counts"], counts);
  EXPECT_EQ(StateOf(dep), "waiting");
  EXPECT_EQ(StateOf(running), "running");
  EXPECT_EQ(Get(high)["tags"], json::array({"t"}));
  json a = ClaimOne("w");
  EXPECT_EQ(a["task_id"], high);
  EXPECT_EQ(a["payload"], "two");
  json b = ClaimOne("w");
  EXPECT_EQ(b["task_id"], low);
  EXPECT_EQ(b["payload"], json({{"n", 1}}));
  ASSERT_OK(Complete(b));
  EXPECT_EQ(StateOf(dep), "ready") << "the dependency count was rebuilt";
  ASSERT_OK(Complete(claimed, 5));
  EXPECT_EQ(Get(running)["result"], 5);
}

TEST_F(TasksRecordTest, PayloadsComeFromTheStoreAfterARestart) {
  const std::vector<std::string> ids = SubmitBatch({{{"queue", "q"}, {"payload", {{"i", 0}}}},
                                                    {{"queue", "q"}, {"payload", nullptr}},
                                                    {{"queue", "q"}}});
  ASSERT_EQ(ids.size(), 3u);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(Get(ids[0])["payload"], json({{"i", 0}}));
  json t = ClaimOne("w");
  EXPECT_EQ(t["task_id"], ids[0]);
  EXPECT_EQ(t["payload"], json({{"i", 0}}));
  EXPECT_EQ(ClaimOne("w")["payload"], nullptr);
  EXPECT_EQ(ClaimOne("w")["payload"], nullptr) << "no payload given is stored as null";
}

TEST_F(TasksRecordTest, ClaimInTheSameGroupAsTheSubmitGetsThePayload) {
  // Both requests land in one open group: the payload is not in the store
  // yet when the claim reads it.
  auto submitted =
      Execute("task.submit", {{"queue", "q"}, {"payload", {{"big", std::string(100, 'x')}}}});
  auto claimed = Execute("task.claim", {{"queues", {"q"}}, {"worker_id", "w"}});
  Pump();
  ASSERT_TRUE(submitted->ok());
  ASSERT_TRUE(claimed->ok());
  ASSERT_EQ(claimed->value()["tasks"].size(), 1u);
  EXPECT_EQ(claimed->value()["tasks"][0]["payload"]["big"], std::string(100, 'x'));
  // And after it committed, from the store.
  EXPECT_EQ(Get(submitted->value()["task_id"])["payload"]["big"], std::string(100, 'x'));
}

}  // namespace
}  // namespace shim::engine::taskstest

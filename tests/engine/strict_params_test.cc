// Strict parameters (docs/protocol.md, "Unknown fields"): a field a method
// does not take is INVALID_PARAMS naming it and the nearest field it does
// take, for every engine method and inside the nested objects of a fixed
// shape; free-form values (state values, payloads, metadata, signals) take
// anything.
#include <gtest/gtest.h>

#include <string>

#include "engine/params.h"
#include "tests/engine/engine_fixture.h"

namespace shim::engine::test {
namespace {

class StrictParamsTest : public EngineTest {
 protected:
  // `method` with `params` fails INVALID_PARAMS with `field` and `message`.
  void ExpectUnknown(const std::string& method, json params, const std::string& field,
                     const std::string& message) {
    Result<json> r = Call(method, params);
    ASSERT_TRUE(FailedWith(r, StatusCode::kInvalidParams)) << method << " " << params.dump();
    EXPECT_EQ(r.status().details().value("field", ""), field) << r.status().ToString();
    EXPECT_EQ(r.status().message(), message) << method << " " << params.dump();
  }
  // A running task: {task_id, lease_token}.
  json ClaimOne() {
    Ok("worker.register", {{"worker_id", "w"}});
    Ok("task.submit", {{"queue", "q"}, {"payload", 1}});
    json claimed = Ok("task.claim", {{"queues", {"q"}}, {"worker_id", "w"}});
    return {{"task_id", claimed["tasks"][0]["task_id"]},
            {"lease_token", claimed["tasks"][0]["lease_token"]}};
  }
};

TEST_F(StrictParamsTest, EveryEngineMethodRefusesAnUnknownFieldNamingIt) {
  // The registry, not a list kept here: a new method is covered at once.
  for (std::string_view name : engine_->MethodNames()) {
    const std::string method(name);
    Result<json> r = Call(method, {{"no_such_field", 1}});
    ASSERT_TRUE(FailedWith(r, StatusCode::kInvalidParams)) << method;
    EXPECT_EQ(r.status().details().value("field", ""), "no_such_field") << method;
    EXPECT_EQ(r.status().message().rfind("unknown field 'no_such_field'", 0), 0u)
        << method << ": " << r.status().message();
  }
}

TEST_F(StrictParamsTest, AnUnknownFieldNamesTheNearestKnownOne) {
  ExpectUnknown("state.set", {{"key", "k"}, {"value", 1}, {"ttl", 5}}, "ttl",
                "unknown field 'ttl'; did you mean 'ttl_ms'?");
  ExpectUnknown("state.get", {{"kye", "k"}}, "kye", "unknown field 'kye'; did you mean 'key'?");
  ExpectUnknown("lock.acquire", {{"name", "L"}, {"owner", "me"}, {"ttl_ms", 1}, {"waitMs", 5}},
                "waitMs", "unknown field 'waitMs'; did you mean 'wait_ms'?");
  // Nothing near: the known fields are listed instead.
  ExpectUnknown("lease.grant", {{"ttl_ms", 1000}, {"zzz", 1}}, "zzz",
                "unknown field 'zzz'; known fields: ttl_ms owner");
  ExpectUnknown("sys.ping", {{"x", 1}}, "x", "unknown field 'x'; it takes none");
  // The unknown field is reported before a missing required one: a typo of
  // a required field reads as a typo.
  ExpectUnknown("state.get", {{"keyy", "k"}}, "keyy", "unknown field 'keyy'; did you mean 'key'?");
  EXPECT_EQ(Get("k"), nullptr) << "nothing was written";
}

TEST_F(StrictParamsTest, FreeFormValuesTakeAnyFields) {
  Ok("state.set", {{"key", "k"}, {"value", {{"any", 1}, {"ttl", 2}}}});
  Ok("worker.register", {{"worker_id", "w"}, {"metadata", {{"host", "h"}, {"anything", true}}}});
  Ok("session.open", {{"session_id", "s"}, {"metadata", {{"model", "m"}}}});
  // Other signals than the scored ones are stored (docs/protocol.md).
  Ok("signal.record", {{"session_id", "s"}, {"signals", {{"tokens_used", 1}, {"mood", 3}}}});
  Ok("task.submit", {{"queue", "q"}, {"payload", {{"whatever", {{"deep", 1}}}}}});
  Ok("pubsub.publish", {{"channel", "c"}, {"data", {{"x", 1}}}});
}

TEST_F(StrictParamsTest, NestedObjectsOfAFixedShapeAreCheckedWithTheirPath) {
  // A task of a batch.
  Result<json> r =
      Call("task.submit_batch", {{"tasks", {{{"queue", "q"}}, {{"queue", "q"}, {"priorty", 1}}}}});
  ASSERT_TRUE(FailedWith(r, StatusCode::kInvalidParams));
  EXPECT_EQ(r.status().details()["field"], "tasks[1].priorty");
  EXPECT_EQ(r.status().message(), "tasks[1]: unknown field 'priorty'; did you mean 'priority'?");
  // A task's backoff.
  ExpectUnknown("task.submit", {{"queue", "q"}, {"backoff", {{"delay", 5}}}}, "backoff.delay",
                "unknown field 'backoff.delay'; did you mean 'backoff.delay_ms'?");
  // A txn's compares and ops (an op's params are its method's).
  r = Call("state.txn",
           {{"compare", {{{"key", "k"}, {"verison", 0}}}}, {"success", json::array()}});
  ASSERT_TRUE(FailedWith(r, StatusCode::kInvalidParams));
  EXPECT_EQ(r.status().details()["field"], "compare[0].verison");
  EXPECT_EQ(r.status().message(), "compare[0]: unknown field 'verison'; did you mean 'version'?");
  r = Call("state.txn", {{"success", {{{"set", {{"key", "k"}, {"value", 1}, {"ttl", 5}}}}}}});
  ASSERT_TRUE(FailedWith(r, StatusCode::kInvalidParams));
  EXPECT_EQ(r.status().details()["field"], "success[0].set.ttl");
  EXPECT_EQ(r.status().message(), "success[0]: unknown field 'ttl'; did you mean 'ttl_ms'?");
  // A fence.
  ExpectUnknown("state.set", {{"key", "k"}, {"value", 1}, {"fence", {{"lock", "L"}, {"tok", 1}}}},
                "fence.tok", "unknown field 'fence.tok'; did you mean 'fence.token'?");
  EXPECT_EQ(Get("k"), nullptr) << "nothing was written";
  // claim_next of a finishing call; the task stays running.
  json running = ClaimOne();
  json complete = running;
  complete["claim_next"] = {{"queues", {"q"}}, {"maxx", 2}};
  r = Call("task.complete", complete);
  ASSERT_TRUE(FailedWith(r, StatusCode::kInvalidParams));
  EXPECT_EQ(r.status().details()["field"], "claim_next.maxx");
  EXPECT_EQ(r.status().message(), "unknown field 'maxx'; did you mean 'max'?");
  EXPECT_EQ(Ok("task.get", {{"task_id", running["task_id"]}})["state"], "running");
}

// Params itself: the table is checked at construction, and a read of a
// field the table lacks is a bug in the handler, failed as INTERNAL so that
// any test of that field finds it.
TEST(ParamsTest, AReadOfAFieldMissingFromTheTableIsInternal) {
  static constexpr std::string_view kFields[] = {"key"};
  const json params = {{"key", "k"}, {"value", 1}};
  Params unknown(params, kFields);
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidParams);
  EXPECT_EQ(unknown.status().details()["field"], "value");

  const json ok_params = {{"key", "k"}};
  Params p(ok_params, kFields);
  EXPECT_EQ(p.Str("key"), "k");
  EXPECT_TRUE(p.ok());
  (void)p.OptInt("ttl_ms");
  EXPECT_EQ(p.status().code(), StatusCode::kInternal) << p.status().ToString();
  EXPECT_NE(p.status().message().find("ttl_ms"), std::string::npos);
}

TEST(ParamsTest, CheckKnownFieldsPassesNonObjectsAndNamesThePrefixedField) {
  static constexpr std::string_view kFields[] = {"lock", "token"};
  EXPECT_TRUE(CheckKnownFields(json(nullptr), kFields).ok());
  EXPECT_TRUE(CheckKnownFields(json::array({1}), kFields).ok());
  EXPECT_TRUE(CheckKnownFields({{"lock", "L"}}, kFields).ok());
  Status s = CheckKnownFields({{"lock", "L"}, {"Token", 1}}, kFields, "fence.");
  EXPECT_EQ(s.code(), StatusCode::kInvalidParams);
  EXPECT_EQ(s.details()["field"], "fence.Token");
  EXPECT_EQ(s.message(), "unknown field 'fence.Token'; did you mean 'fence.token'?");
}

}  // namespace
}  // namespace shim::engine::test

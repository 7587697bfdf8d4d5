// The stored record schemas (engine/*_record.h, the task record in
// engine/tasks/task.h): every kind's Encode writes the bytes earlier versions
// wrote (stores keep opening), and its decoders refuse a key of another tag,
// a cut key, a cut value, an unknown record tag where the record has one,
// and a member of another type, instead of misreading or throwing.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/channel_meta_record.h"
#include "engine/kv_record.h"
#include "engine/lease_record.h"
#include "engine/lock_record.h"
#include "engine/sessions/checkpoint_record.h"
#include "engine/sessions/session_record.h"
#include "engine/sessions/signal_record.h"
#include "engine/tasks/queue_admin_record.h"
#include "engine/tasks/queue_record.h"
#include "engine/tasks/task.h"
#include "engine/tasks/task_queue.h"
#include "engine/worker_record.h"
#include "storage/key_codec.h"

namespace shim::engine {
namespace {

using nlohmann::json;
using storage::KeyTag;

// One record kind: a good key and value as the engine writes them, and its
// two decoders.
struct CodecRow {
  std::string kind;
  std::string key;
  std::string value;
  std::function<bool(std::string_view)> key_decodes;
  std::function<bool(std::string_view)> value_decodes;
  // Every value prefix shorter than this must be refused: the whole value
  // for JSON and the task record; the header and no text for a state key
  // (its JSON text is kept unparsed: KvEntry).
  size_t refused_cuts_below;
  bool is_json;
  // Members of the JSON value that may hold any type.
  std::vector<std::string> any_type;
};

// Whether `decode` (a DecodeXKey or DecodeXRecord) accepts its input, into
// a T thrown away.
template <class T, class Decode>
std::function<bool(std::string_view)> DecodesInto(Decode decode) {
  return [decode](std::string_view in) {
    T out;
    return decode(in, &out);
  };
}

// A JSON record: every cut of it is refused.
CodecRow JsonRow(std::string kind, std::string key, std::string value,
                 std::function<bool(std::string_view)> key_decodes,
                 std::function<bool(std::string_view)> value_decodes,
                 std::vector<std::string> any_type = {}) {
  const size_t size = value.size();
  return CodecRow{std::move(kind),
                  std::move(key),
                  std::move(value),
                  std::move(key_decodes),
                  std::move(value_decodes),
                  size,
                  true,
                  std::move(any_type)};
}

std::vector<CodecRow> CodecRows() {
  std::vector<CodecRow> rows;
  KvEntry e;
  e.value_json = R"({"a":1})";
  e.version = 3;
  rows.push_back(CodecRow{"state",
                          KvKey("k"),
                          EncodeKvRecord(e),
                          DecodesInto<std::string>(DecodeKvKey),
                          DecodesInto<KvEntry>(DecodeKvRecord),
                          /*refused_cuts_below=*/33,
                          /*is_json=*/false,
                          {}});
  Task t;
  t.set_queue("q");
  t.x().tags = json::array({"a"});
  const std::string task = t.EncodeRecord();
  rows.push_back(CodecRow{"task",
                          TaskKey(5),
                          task,
                          DecodesInto<uint64_t>(DecodeTaskKey),
                          [](std::string_view v) {
                            Task out;
                            return Task::DecodeRecord(5, v, &out);
                          },
                          task.size(),
                          /*is_json=*/false,
                          {}});
  rows.push_back(JsonRow("lease", LeaseKey(7), EncodeLeaseRecord({"w1", 5000}),
                         DecodesInto<uint64_t>(DecodeLeaseKey),
                         DecodesInto<LeaseRecord>(DecodeLeaseRecord)));
  rows.push_back(JsonRow("lock", LockKey("l"), EncodeLockRecord({"o", 7, 1000, 9}),
                         DecodesInto<std::string>(DecodeLockKey),
                         DecodesInto<LockRecord>(DecodeLockRecord)));
  rows.push_back(JsonRow("channel", ChannelMetaKey("c"),
                         EncodeChannelMetaRecord({10, 3, {100, 60'000}}),
                         DecodesInto<std::string>(DecodeChannelMetaKey),
                         DecodesInto<ChannelMetaRecord>(DecodeChannelMetaRecord)));
  WorkerRecord w;
  w.name = "n";
  w.capabilities = {"gpu"};
  w.metadata = {{"m", 1}};
  rows.push_back(JsonRow("worker", WorkerKey("w"), EncodeWorkerRecord(w),
                         DecodesInto<std::string>(DecodeWorkerKey),
                         DecodesInto<WorkerRecord>(DecodeWorkerRecord), {"metadata"}));
  rows.push_back(JsonRow("queue", QueueConfigKey("q"), EncodeQueueRecord(QueueConfig{}),
                         DecodesInto<std::string>(DecodeQueueConfigKey),
                         DecodesInto<QueueConfig>(DecodeQueueRecord)));
  rows.push_back(JsonRow("queue admin", QueueAdminKey("q"),
                         EncodeQueueAdminRecord(QueueAdminRecord{AdminOp::kDelete, 7, true, 3}),
                         DecodesInto<std::string>(DecodeQueueAdminKey),
                         DecodesInto<QueueAdminRecord>(DecodeQueueAdminRecord)));
  SessionRecord session;
  session.name = "chat";
  session.last_risk = {{"risk", 0.5}};
  rows.push_back(JsonRow("session", SessionKey("s"), EncodeSessionRecord(session),
                         DecodesInto<std::string>(DecodeSessionKey),
                         DecodesInto<SessionRecord>(DecodeSessionRecord),
                         {"metadata", "last_risk"}));
  CheckpointMetaRecord m;
  m.reason = "manual";
  m.signals = {{"tokens_used", 5}};
  rows.push_back(
      JsonRow("checkpoint meta", CheckpointMetaKey("s", 2), EncodeCheckpointMetaRecord(m),
              [](std::string_view k) {
                std::string s;
                uint64_t id;
                return DecodeCheckpointMetaKey(k, &s, &id);
              },
              DecodesInto<CheckpointMetaRecord>(DecodeCheckpointMetaRecord), {"signals"}));
  return rows;
}

// Every tag the key codec knows, and one it does not.
const uint8_t kEveryTag[] = {0x01, 0x10, 0x20, 0x21, 0x30, 0x31, 0x32, 0x40,
                             0x41, 0x42, 0x43, 0x50, 0x51, 0x52, 0x53, 0xEE};

TEST(RecordCodecTest, GoodRecordsDecode) {
  for (const CodecRow& row : CodecRows()) {
    EXPECT_TRUE(row.key_decodes(row.key)) << row.kind;
    EXPECT_TRUE(row.value_decodes(row.value)) << row.kind;
  }
}

TEST(RecordCodecTest, KeyDecodersRefuseEveryOtherTag) {
  for (const CodecRow& row : CodecRows()) {
    for (uint8_t tag : kEveryTag) {
      if (tag == static_cast<uint8_t>(row.key[0])) continue;
      std::string other = row.key;
      other[0] = static_cast<char>(tag);
      EXPECT_FALSE(row.key_decodes(other)) << row.kind << " read a key of tag " << int(tag);
    }
  }
}

TEST(RecordCodecTest, KeyDecodersRefuseCutKeysAndTrailingBytes) {
  for (const CodecRow& row : CodecRows()) {
    for (size_t cut = 0; cut < row.key.size(); ++cut) {
      EXPECT_FALSE(row.key_decodes(row.key.substr(0, cut))) << row.kind << " key cut at " << cut;
    }
    EXPECT_FALSE(row.key_decodes(row.key + "x")) << row.kind << " key with a trailing byte";
  }
}

TEST(RecordCodecTest, ValueDecodersRefuseCutValues) {
  for (const CodecRow& row : CodecRows()) {
    ASSERT_GT(row.refused_cuts_below, 0u) << row.kind;
    for (size_t cut = 0; cut < row.refused_cuts_below; ++cut) {
      EXPECT_FALSE(row.value_decodes(row.value.substr(0, cut)))
          << row.kind << " value cut at " << cut;
    }
  }
}

TEST(RecordCodecTest, JsonRecordsRefuseAMemberOfAnotherType) {
  for (const CodecRow& row : CodecRows()) {
    if (!row.is_json) continue;
    const json good = json::parse(row.value);
    ASSERT_TRUE(good.is_object()) << row.kind;
    EXPECT_FALSE(row.value_decodes("[]")) << row.kind << ": not an object";
    for (const auto& [name, member] : good.items()) {
      if (std::find(row.any_type.begin(), row.any_type.end(), name) != row.any_type.end()) continue;
      json bad = good;
      bad[name] = member.is_string() ? json(5) : json("5");
      EXPECT_FALSE(row.value_decodes(bad.dump()))
          << row.kind << "." << name << " = " << bad[name].dump();
    }
    // Members a record does not know are left alone (none is written today).
    json more = good;
    more["unknown_member"] = 1;
    EXPECT_TRUE(row.value_decodes(more.dump())) << row.kind;
  }
}

TEST(RecordCodecTest, CountsRefuseNegativeAndFractionalNumbers) {
  LockRecord r;
  EXPECT_FALSE(DecodeLockRecord(R"({"owner":"o","token":-1})", &r));
  EXPECT_FALSE(DecodeLockRecord(R"({"owner":"o","ttl_ms":1.5})", &r));
  EXPECT_FALSE(DecodeLockRecord(R"({"owner":"o","ttl_ms":9223372036854775808})", &r))
      << "past int64";
  EXPECT_TRUE(DecodeLockRecord(R"({"owner":"o","token":18446744073709551615})", &r));
  EXPECT_EQ(r.token, UINT64_MAX);
}

TEST(RecordCodecTest, TaskRecordRefusesAnUnknownRecordTag) {
  Task t;
  t.set_queue("q");
  std::string rec = t.EncodeRecord();
  Task out;
  ASSERT_TRUE(Task::DecodeRecord(1, rec, &out));
  for (int tag = 0; tag < 256; ++tag) {
    if (tag == 0x01 || tag == '{')
      continue;  // the binary record and the JSON record of earlier versions
    rec[0] = static_cast<char>(tag);
    Task bad;
    EXPECT_FALSE(Task::DecodeRecord(1, rec, &bad)) << "tag " << tag;
  }
}

TEST(RecordCodecTest, NamedStatesMustBeKnown) {
  SessionRecord s;
  EXPECT_TRUE(DecodeSessionRecord(R"({"state":"unclean"})", &s));
  EXPECT_EQ(s.state, SessionState::kUnclean);
  EXPECT_FALSE(DecodeSessionRecord(R"({"state":"asleep"})", &s));
  QueueConfig c;
  EXPECT_TRUE(DecodeQueueRecord(R"({"routing":"round_robin"})", &c));
  EXPECT_EQ(c.routing, Routing::kRoundRobin);
  EXPECT_FALSE(DecodeQueueRecord(R"({"routing":"sideways"})", &c));
}

// The bytes below are what the engine wrote before the record schemas had
// their own files: a store written then must open now.
TEST(RecordCodecTest, EncodersWriteTheFormatOfEarlierVersions) {
  EXPECT_EQ(EncodeLeaseRecord({"w1", 5000}), R"({"owner":"w1","ttl_ms":5000})");
  EXPECT_EQ(EncodeLockRecord({"o", 7, 1000, 9}),
            R"({"lease_id":9,"owner":"o","token":7,"ttl_ms":1000})");
  EXPECT_EQ(EncodeChannelMetaRecord({10, 3, {100, 60'000}}),
            R"({"first_seq":3,"last_seq":10,"max_age_ms":60000,"max_messages":100})");
  WorkerRecord w;
  w.name = "n";
  w.capabilities = {"gpu"};
  w.last_heartbeat_at_ms = 4;
  EXPECT_EQ(
      EncodeWorkerRecord(w),
      R"({"capabilities":["gpu"],"dead":false,"heartbeat_ttl_ms":15000,"last_heartbeat_at_ms":4,)"
      R"("max_concurrency":1,"metadata":null,"name":"n","registered_at_ms":0})");
  EXPECT_EQ(EncodeQueueRecord(QueueConfig{}),
            R"({"keep_completed":1000,"keep_failed":10000,"paused":false,"routing":"least_loaded",)"
            R"("saturation_ready":1000,"starvation_ms":60000})");
  SessionRecord s;
  s.name = "chat";
  s.state = SessionState::kClosed;
  EXPECT_EQ(
      EncodeSessionRecord(s),
      R"({"closed_at_ms":0,"heartbeat_ttl_ms":60000,"keep_checkpoints":50,"last_heartbeat_at_ms":0,)"
      R"("last_risk":null,"metadata":null,"name":"chat","next_checkpoint_id":1,"next_signal_seq":1,)"
      R"("opened_at_ms":0,"recovery_acked":false,"state":"closed"})");
  CheckpointMetaRecord m;
  m.bytes = 12;
  m.hash = 18446744073709551615u;
  m.reason = "auto";
  EXPECT_EQ(
      EncodeCheckpointMetaRecord(m),
      R"({"bytes":12,"created_at_ms":0,"hash":18446744073709551615,"label":"","reason":"auto","signals":null})");
  EXPECT_EQ(EncodeSignalRecord(5, json{{"messages", 3}}, 0.25, "low"),
            R"({"at_ms":5,"level":"low","risk":0.25,"signals":{"messages":3}})");
  KvEntry e;
  e.value_json = "[1]";
  e.version = 1;
  e.revision = 2;
  e.expires_at_ms = 3;
  e.lease_id = 4;
  EXPECT_EQ(EncodeKvRecord(e),
            std::string("\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\2\0\0\0\0\0\0\0\3\0\0\0\0\0\0\0\4[1]", 35));
  // Keys: a tag byte, then the fields (storage/key_codec.h).
  EXPECT_EQ(LeaseKey(7), std::string("\x30\0\0\0\0\0\0\0\x07", 9));
  EXPECT_EQ(LockKey("l"), std::string("\x31l\0\x01", 4));
  EXPECT_EQ(TaskPayloadKey(1), std::string("\x41\0\0\0\0\0\0\0\x01", 9));
  EXPECT_EQ(CheckpointDataKey("s", 2), std::string("\x52s\0\x01\0\0\0\0\0\0\0\x02", 12));
  EXPECT_EQ(SignalKey("s", 2), std::string("\x53s\0\x01\0\0\0\0\0\0\0\x02", 12));
}

TEST(RecordCodecTest, DecodersReadBackWhatEncodersWrote) {
  LeaseRecord lease;
  ASSERT_TRUE(DecodeLeaseRecord(EncodeLeaseRecord({"w1", 5000}), &lease));
  EXPECT_EQ(lease.owner, "w1");
  EXPECT_EQ(lease.ttl_ms, 5000);
  LockRecord lock;
  ASSERT_TRUE(DecodeLockRecord(EncodeLockRecord({"o", 7, 1000, 9}), &lock));
  EXPECT_EQ(lock.owner, "o");
  EXPECT_EQ(lock.token, 7u);
  EXPECT_EQ(lock.ttl_ms, 1000);
  EXPECT_EQ(lock.lease_id, 9u);
  ChannelMetaRecord ch;
  ASSERT_TRUE(DecodeChannelMetaRecord(EncodeChannelMetaRecord({10, 3, {100, 60'000}}), &ch));
  EXPECT_EQ(ch.last_seq, 10u);
  EXPECT_EQ(ch.first_seq, 3u);
  EXPECT_EQ(ch.retention.max_messages, 100);
  EXPECT_EQ(ch.retention.max_age_ms, 60'000);
  ChannelMetaRecord bare;
  ASSERT_TRUE(DecodeChannelMetaRecord(R"({"last_seq":4})", &bare));
  EXPECT_EQ(bare.first_seq, 5u) << "no first_seq: the channel is empty";
  WorkerRecord w;
  w.name = "n";
  w.capabilities = {"gpu", "linux"};
  w.dead = true;
  w.metadata = {{"m", 1}};
  WorkerRecord w2;
  ASSERT_TRUE(DecodeWorkerRecord(EncodeWorkerRecord(w), &w2));
  EXPECT_EQ(w2.name, "n");
  EXPECT_EQ(w2.capabilities, w.capabilities);
  EXPECT_TRUE(w2.dead);
  EXPECT_EQ(w2.metadata, w.metadata);
  QueueConfig q;
  q.routing = Routing::kCapability;
  q.keep_failed = 3;
  q.paused = true;
  QueueConfig q2;
  ASSERT_TRUE(DecodeQueueRecord(EncodeQueueRecord(q), &q2));
  EXPECT_EQ(QueueConfigJson(q2), QueueConfigJson(q));
  SessionRecord s;
  s.name = "chat";
  s.state = SessionState::kUnclean;
  s.next_signal_seq = 8;
  s.last_risk = {{"risk", 0.5}};
  SessionRecord s2;
  ASSERT_TRUE(DecodeSessionRecord(EncodeSessionRecord(s), &s2));
  EXPECT_EQ(EncodeSessionRecord(s2), EncodeSessionRecord(s));
  CheckpointMetaRecord m;
  m.hash = 42;
  m.label = "before refactor";
  CheckpointMetaRecord m2;
  ASSERT_TRUE(DecodeCheckpointMetaRecord(EncodeCheckpointMetaRecord(m), &m2));
  EXPECT_EQ(m2.hash, 42u);
  EXPECT_EQ(m2.label, "before refactor");
  json signal;
  int64_t at_ms = 0;
  ASSERT_TRUE(DecodeSignalRecord(EncodeSignalRecord(5, json{{"messages", 3}}, 0.25, "low"), &signal,
                                 &at_ms));
  EXPECT_EQ(at_ms, 5);
  EXPECT_EQ(signal["level"], "low");
  EXPECT_FALSE(DecodeSignalRecord(R"({"at_ms":"5"})", &signal, &at_ms));
  EXPECT_FALSE(DecodeSignalRecord(R"([1])", &signal, &at_ms));
  KvEntry e;
  e.value_json = "[1]";
  e.expires_at_ms = 3;
  KvEntry e2;
  ASSERT_TRUE(DecodeKvRecord(EncodeKvRecord(e), &e2));
  EXPECT_EQ(e2.value_json, "[1]");
  EXPECT_EQ(e2.expires_at_ms, 3);
  std::string session;
  uint64_t id = 0;
  ASSERT_TRUE(
      DecodeCheckpointMetaKey(CheckpointMetaKey(std::string_view("s\0x", 3), 9), &session, &id));
  EXPECT_EQ(session, std::string_view("s\0x", 3));
  EXPECT_EQ(id, 9u);
  EXPECT_FALSE(DecodeCheckpointMetaKey(CheckpointDataKey("s", 9), &session, &id))
      << "a data key is not a meta key";
  uint64_t seq = 0;
  EXPECT_FALSE(DecodeTaskKey(TaskPayloadKey(3), &seq)) << "a payload key is not a task key";
}

}  // namespace
}  // namespace shim::engine

// An engine opened on a store holding one corrupt record fails the open,
// the same way for every family: INTERNAL, naming the record kind, its
// column family and its key. Each case writes one bad record (a key that
// does not decode, or a value that does not) through the store API into an
// otherwise empty store, then opens the engine on it.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "engine/channel_meta_record.h"
#include "engine/clock.h"
#include "engine/core.h"
#include "engine/engine.h"
#include "engine/kv_record.h"
#include "engine/lease_record.h"
#include "engine/lock_record.h"
#include "engine/record_scan.h"
#include "engine/sessions/checkpoint_record.h"
#include "engine/sessions/session_record.h"
#include "engine/tasks/queue_admin_record.h"
#include "engine/tasks/queue_record.h"
#include "engine/tasks/task.h"
#include "engine/worker_record.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim::engine {
namespace {

struct CorruptCase {
  const char* test_name;
  const char* kind;  // as the message names it
  storage::Family family;
  std::string key;
  std::string value;
};

std::string Tagged(storage::KeyTag tag, std::string_view rest) {
  return std::string(1, static_cast<char>(tag)) + std::string(rest);
}

class RecoveryCorruptTest : public ::testing::TestWithParam<CorruptCase> {};

TEST_P(RecoveryCorruptTest, OpenFailsNamingTheFamilyAndTheKey) {
  const CorruptCase& c = GetParam();
  testing::TempDir dir;
  storage::StoreOptions so;
  so.path = dir.Sub("data");
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::Store::Open(so));
    storage::WriteBatch batch(*store);
    batch.Put(c.family, c.key, c.value);
    ASSERT_OK(store->Commit(batch));
    ASSERT_OK(store->Close());
  }
  ASSERT_OK_AND_ASSIGN(auto store, storage::Store::Open(so));
  FakeClock clock;
  EngineOptions eo;
  eo.clock = &clock;
  eo.store = store.get();
  Result<std::unique_ptr<Engine>> engine = Engine::Open(eo);
  ASSERT_FALSE(engine.ok()) << "an engine opened on a corrupt " << c.kind << " record";
  const Status& s = engine.status();
  EXPECT_EQ(s.code(), StatusCode::kInternal) << s.ToString();
  const std::string family = storage::FamilyName(c.family);
  EXPECT_EQ(s.message(), std::string("corrupt ") + c.kind + " record in column family '" + family +
                             "' at key " + PrintableBytes(c.key));
  EXPECT_EQ(s.details()["family"], family);
  EXPECT_EQ(s.details()["key"], PrintableBytes(c.key));
}

using storage::Family;
using storage::KeyTag;

INSTANTIATE_TEST_SUITE_P(
    EveryFamily, RecoveryCorruptTest,
    ::testing::Values(
        CorruptCase{"RevisionValue", "revision", Family::kMeta, RevisionKey(), "abc"},
        CorruptCase{"StateKey", "state", Family::kKv, Tagged(KeyTag::kKv, "no terminator"),
                    std::string(40, 'x')},
        CorruptCase{"StateValue", "state", Family::kKv, KvKey("k"), "short"},
        CorruptCase{"LeaseKey", "lease", Family::kLeases, Tagged(KeyTag::kLease, "\x01\x02"),
                    EncodeLeaseRecord({"o", 1000})},
        CorruptCase{"LeaseValue", "lease", Family::kLeases, LeaseKey(3), "{bad"},
        CorruptCase{"LockKey", "lock", Family::kLocks, Tagged(KeyTag::kLock, "l"),
                    EncodeLockRecord({"o", 1, 1000, 0})},
        CorruptCase{"LockValue", "lock", Family::kLocks, LockKey("l"), R"({"owner":7})"},
        CorruptCase{"ChannelKey", "channel", Family::kChannelMeta,
                    Tagged(KeyTag::kChannelConfig, "c"), EncodeChannelMetaRecord({})},
        CorruptCase{"ChannelValue", "channel", Family::kChannelMeta, ChannelMetaKey("c"), "[]"},
        CorruptCase{"WorkerKey", "worker", Family::kWorkers, Tagged(KeyTag::kWorker, "w"),
                    EncodeWorkerRecord({})},
        CorruptCase{"WorkerValue", "worker", Family::kWorkers, WorkerKey("w"),
                    R"({"capabilities":"gpu"})"},
        // A bad queue key was skipped without a word before the scans were one.
        CorruptCase{"QueueKey", "queue", Family::kQueues, Tagged(KeyTag::kQueueConfig, "q"), "{}"},
        CorruptCase{"QueueValue", "queue", Family::kQueues, QueueConfigKey("q"),
                    R"({"routing":"sideways"})"},
        CorruptCase{"QueueAdminValue", "queue admin", Family::kQueues, QueueAdminKey("q"),
                    R"({"op":"obliterate"})"},
        CorruptCase{"TaskKey", "task", Family::kTasks, Tagged(KeyTag::kTask, "\x05"), "{}"},
        CorruptCase{"TaskValue", "task", Family::kTasks, TaskKey(5), "\x7f unknown record tag"},
        CorruptCase{"SessionKey", "session", Family::kSessions, Tagged(KeyTag::kSession, "s"),
                    EncodeSessionRecord({})},
        CorruptCase{"SessionValue", "session", Family::kSessions, SessionKey("s"),
                    R"({"state":"asleep"})"},
        // So were bad checkpoint metas.
        CorruptCase{"CheckpointKey", "checkpoint meta", Family::kCheckpoints,
                    Tagged(KeyTag::kCheckpointMeta, std::string("s\0\x01\x02", 4)), "{}"},
        CorruptCase{"CheckpointValue", "checkpoint meta", Family::kCheckpoints,
                    CheckpointMetaKey("s", 1), "not json"}),
    [](const ::testing::TestParamInfo<CorruptCase>& info) {
      return std::string(info.param.test_name);
    });

}  // namespace
}  // namespace shim::engine

// ScanRecords (engine/record_scan.h), the one recovery scan: it hands every
// record of one kind to the decoder in key order, and the first record the
// decoder refuses ends the scan with INTERNAL naming the kind, the column
// family and the key, printable.
#include "engine/record_scan.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/lease_record.h"
#include "engine/tasks/task.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_util.h"

namespace shim::engine {
namespace {

class RecordScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::StoreOptions so;
    so.path = dir_.Sub("data");
    ASSERT_OK_AND_ASSIGN(store_, storage::Store::Open(so));
  }

  void Put(storage::Family family, const std::string& key, const std::string& value) {
    storage::WriteBatch batch(*store_);
    batch.Put(family, key, value);
    ASSERT_OK(store_->Commit(batch));
  }

  // The lease ids the scan handed over, in order.
  Status ScanLeases(std::vector<uint64_t>* seen) {
    return ScanRecords(*store_, kLeaseRecords, [&](std::string_view k, std::string_view v) {
      uint64_t id;
      LeaseRecord r;
      if (!DecodeLeaseKey(k, &id) || !DecodeLeaseRecord(v, &r)) return false;
      seen->push_back(id);
      return true;
    });
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(RecordScanTest, HandsOverEveryRecordOfTheKindInKeyOrder) {
  ASSERT_NO_FATAL_FAILURE(
      Put(storage::Family::kLeases, LeaseKey(300), EncodeLeaseRecord({"c", 1})));
  ASSERT_NO_FATAL_FAILURE(Put(storage::Family::kLeases, LeaseKey(2), EncodeLeaseRecord({"a", 1})));
  ASSERT_NO_FATAL_FAILURE(Put(storage::Family::kLeases, LeaseKey(40), EncodeLeaseRecord({"b", 1})));
  std::vector<uint64_t> seen;
  ASSERT_OK(ScanLeases(&seen));
  EXPECT_EQ(seen, (std::vector<uint64_t>{2, 40, 300}));
}

TEST_F(RecordScanTest, AnEmptyFamilyCallsNothing) {
  std::vector<uint64_t> seen;
  ASSERT_OK(ScanLeases(&seen));
  EXPECT_TRUE(seen.empty());
}

TEST_F(RecordScanTest, ReadsOnlyKeysOfItsTag) {
  // Payloads share the tasks' family under their own tag: a scan of the
  // task records does not see them.
  ASSERT_NO_FATAL_FAILURE(Put(storage::Family::kTasks, TaskPayloadKey(1), R"({"p":1})"));
  int calls = 0;
  ASSERT_OK(ScanRecords(*store_, kTaskRecords,
                        [&](std::string_view, std::string_view) { return ++calls, true; }));
  EXPECT_EQ(calls, 0);
}

TEST_F(RecordScanTest, TheFirstRefusedRecordEndsTheScanNamingFamilyAndKey) {
  ASSERT_NO_FATAL_FAILURE(Put(storage::Family::kLeases, LeaseKey(1), EncodeLeaseRecord({"a", 1})));
  ASSERT_NO_FATAL_FAILURE(Put(storage::Family::kLeases, LeaseKey(7), R"({"owner":)"));
  ASSERT_NO_FATAL_FAILURE(Put(storage::Family::kLeases, LeaseKey(9), EncodeLeaseRecord({"b", 1})));
  std::vector<uint64_t> seen;
  Status s = ScanLeases(&seen);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(
      s.message(),
      R"(corrupt lease record in column family 'leases' at key "0\x00\x00\x00\x00\x00\x00\x00\x07")");
  EXPECT_EQ(s.details()["family"], "leases");
  EXPECT_EQ(s.details()["key"], R"("0\x00\x00\x00\x00\x00\x00\x00\x07")");
  EXPECT_EQ(seen, (std::vector<uint64_t>{1})) << "records after the bad one are not handed over";
}

TEST(PrintableBytesTest, EscapesWhatIsNotPrintableAsciiAndCutsLongKeys) {
  EXPECT_EQ(PrintableBytes("abc"), R"("abc")");
  EXPECT_EQ(PrintableBytes(std::string("a\0\x01\xff", 4)), R"("a\x00\x01\xff")");
  EXPECT_EQ(PrintableBytes("q\"b\\"), R"("q\x22b\x5c")");
  EXPECT_EQ(PrintableBytes(""), R"("")");
  const std::string shown = PrintableBytes(std::string(300, 'k'));
  EXPECT_EQ(shown, "\"" + std::string(256, 'k') + "\"... (300 bytes)");
}

}  // namespace
}  // namespace shim::engine

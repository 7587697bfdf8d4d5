// The stored record of a queue.drain or queue.delete under way
// (Family::kQueues, tag kQueueAdmin): a queue can hold a million tasks, so
// both run in slices (TaskModule::RunAdmin), and a crash between two slices
// must not leave the job half done. The record is written with every slice
// that leaves work for later and deleted with the last one; recovery finds
// it and goes on.
//
//   key   := kQueueAdmin queue:str
//   value := {"below": u64, "force": bool, "op": "drain"|"delete",
//             "removed": i64}   (compact JSON; no tag byte)
//
// `below`: a drain removes only tasks whose seq is below it (the tasks that
// existed when it was asked for). `removed`: tasks removed so far, for the
// final event. Pure functions, any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/record_codec.h"
#include "engine/record_scan.h"

namespace shim::engine {

enum class AdminOp : uint8_t { kDrain, kDelete };
const char* AdminOpName(AdminOp op);
std::optional<AdminOp> ParseAdminOp(std::string_view s);

struct QueueAdminRecord {
  AdminOp op = AdminOp::kDrain;
  uint64_t below = 0;
  bool force = false;
  int64_t removed = 0;
};

inline constexpr RecordKind kQueueAdminRecords{
    "queue admin", storage::Family::kQueues, storage::KeyTag::kQueueAdmin, {}};

inline constexpr std::tuple kQueueAdminMembers{
    NamedField{"op", &QueueAdminRecord::op, &AdminOpName, &ParseAdminOp},
    Field{"below", &QueueAdminRecord::below}, Field{"force", &QueueAdminRecord::force},
    Field{"removed", &QueueAdminRecord::removed}};

// QueueAdminKey(queue), DecodeQueueAdminKey(key, &queue),
// EncodeQueueAdminRecord(r), DecodeQueueAdminRecord(value, &r), as
// engine/record_codec.h says.
inline constexpr IdKey<std::string> QueueAdminKey{kQueueAdminRecords.tag};
inline constexpr IdKeyDecoder<std::string> DecodeQueueAdminKey{kQueueAdminRecords.tag};
inline constexpr JsonRecordEncoder EncodeQueueAdminRecord{kQueueAdminMembers};
inline constexpr JsonRecordDecoder DecodeQueueAdminRecord{kQueueAdminMembers};

}  // namespace shim::engine

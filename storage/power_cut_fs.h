// PowerCutJournalFileSystem: a test-only RocksDB FileSystemWrapper that
// journals, as they happen, what the store makes durable — each file's
// synced length, creations, renames (keeping what a rename replaces through
// a hard link), deletions and directory syncs — so that a test can apply a
// power cut to the data directory after killing the process
// (ApplyPowerCut, storage/power_cut.h, which also gives the journal format).
//
// It changes nothing RocksDB sees: every call goes to the wrapped file
// system; a sync is journaled only after it succeeded, a creation before
// it happens (a kill in between leaves an entry the cut removes). Only
// syncs (Sync, Fsync) count as durability points; RangeSync and Close do
// not. Not for production: Store::Open installs it only when
// StoreOptions::power_cut_journal is set (`shim serve` sets it from
// SHIM_TEST_POWER_CUT_JOURNAL).
//
// Threads: as thread-safe as the wrapped file system; journal lines are
// written under one mutex, one write(2) each.
#pragma once

#include <rocksdb/file_system.h>

#include <memory>
#include <string>

#include "base/status.h"

namespace shim::storage {

// Wraps `base`, journaling into `journal_dir` (created if missing; its
// previous journal and saved files are removed). Errors: INTERNAL when the
// directory or the journal cannot be created.
Result<std::shared_ptr<rocksdb::FileSystem>> NewPowerCutJournalFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base, const std::string& journal_dir);

}  // namespace shim::storage

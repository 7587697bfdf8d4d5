// RocksDB's info log, sent to shim's log (spdlog's default logger) instead
// of the LOG file RocksDB would keep in the data directory.
//
// Why not the LOG file: it lives on the same disk as the data. When that disk
// fills up, RocksDB 7.8's file logger fails one append and then aborts the
// process on its next message (assertion `sync_without_flush_called_` in
// WritableFileWriter, kept on in Debian's package), typically from the
// SstFileManager thread that is waiting for space to return. A full disk
// must cost writes, never the server (issue 7, disk trouble).
//
// Levels: RocksDB's INFO and HEADER lines (every flush, compaction and the
// options dump at open) are shim debug lines; WARN, ERROR and FATAL keep
// their level. Messages below what the spdlog logger prints are not even
// formatted.
#pragma once

#include <memory>

namespace rocksdb {
class Logger;
}

namespace shim::storage {

std::shared_ptr<rocksdb::Logger> NewSpdlogRocksLogger();

}  // namespace shim::storage

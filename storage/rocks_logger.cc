#include "storage/rocks_logger.h"

#include <rocksdb/env.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>
#include <string>

namespace shim::storage {
namespace {

spdlog::level::level_enum ToSpdlog(rocksdb::InfoLogLevel level) {
  switch (level) {
    case rocksdb::InfoLogLevel::WARN_LEVEL:
      return spdlog::level::warn;
    case rocksdb::InfoLogLevel::ERROR_LEVEL:
      return spdlog::level::err;
    case rocksdb::InfoLogLevel::FATAL_LEVEL:
      return spdlog::level::critical;
    default:
      return spdlog::level::debug;  // DEBUG, INFO, HEADER
  }
}

// The least RocksDB level that reaches a logger printing at `level`.
rocksdb::InfoLogLevel FromSpdlog(spdlog::level::level_enum level) {
  if (level <= spdlog::level::debug) return rocksdb::InfoLogLevel::INFO_LEVEL;
  if (level <= spdlog::level::warn) return rocksdb::InfoLogLevel::WARN_LEVEL;
  if (level <= spdlog::level::err) return rocksdb::InfoLogLevel::ERROR_LEVEL;
  return rocksdb::InfoLogLevel::FATAL_LEVEL;
}

class SpdlogRocksLogger final : public rocksdb::Logger {
 public:
  SpdlogRocksLogger() : rocksdb::Logger(FromSpdlog(spdlog::default_logger_raw()->level())) {}

  // RocksDB calls this from its own threads; it must not throw (env.h).
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    const spdlog::level::level_enum to = ToSpdlog(level);
    spdlog::logger* logger = spdlog::default_logger_raw();
    if (!logger->should_log(to)) return;
    try {
      char small[512];
      va_list copy;
      va_copy(copy, ap);
      const int n = std::vsnprintf(small, sizeof small, format, copy);
      va_end(copy);
      if (n < 0) return;
      if (static_cast<size_t>(n) < sizeof small) {
        logger->log(to, "rocksdb: {}", std::string_view(small, n));
        return;
      }
      std::string big(static_cast<size_t>(n) + 1, '\0');
      std::vsnprintf(big.data(), big.size(), format, ap);
      big.resize(static_cast<size_t>(n));
      logger->log(to, "rocksdb: {}", big);
    } catch (...) {
      // A lost log line is better than an exception inside RocksDB.
    }
  }

  // Only the two-argument form above is ever meant to be called.
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
};

}  // namespace

std::shared_ptr<rocksdb::Logger> NewSpdlogRocksLogger() {
  return std::make_shared<SpdlogRocksLogger>();
}

}  // namespace shim::storage

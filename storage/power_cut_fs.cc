#include "storage/power_cut_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string_view>

#include "storage/power_cut.h"

namespace shim::storage {
namespace {

namespace fs = std::filesystem;
using rocksdb::DirFsyncOptions;
using rocksdb::FileOptions;
using rocksdb::FSDirectory;
using rocksdb::FSWritableFile;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Absolute and without "." / ".." / a trailing slash, so that the cut can
// compare a file's parent with a directory RocksDB synced.
std::string Normal(const std::string& path) {
  std::string out = fs::absolute(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

class Journal {
 public:
  Journal(std::string dir, int fd) : dir_(std::move(dir)), fd_(fd) {}
  ~Journal() { ::close(fd_); }

  // One line, one write(2): the page cache keeps it through SIGKILL.
  IOStatus Write(char kind, int64_t ns, std::string_view field, std::string_view path) {
    // A tab separates the two paths of a rename; a newline ends a record.
    if (path.find('\n') != std::string_view::npos ||
        (kind != power_cut::kRename && path.find('\t') != std::string_view::npos)) {
      return IOStatus::InvalidArgument("power-cut journal: a path with a tab or a newline",
                                       std::string(path));
    }
    std::string line;
    line.reserve(path.size() + field.size() + 32);
    line += kind;
    line += ' ';
    line += std::to_string(ns);
    line += ' ';
    if (!field.empty()) {
      line += field;
      line += ' ';
    }
    line += path;
    line += '\n';
    std::lock_guard lock(mu_);
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return IOStatus::IOError("power-cut journal: write failed", std::strerror(errno));
      p += n;
      left -= static_cast<size_t>(n);
    }
    return IOStatus::OK();
  }

  // A hard link to `path` under a fresh name in the journal directory;
  // that name, or empty when there was no file to keep.
  IOStatus Keep(const std::string& path, std::string* saved) {
    const std::string name =
        std::string(power_cut::kSavedPrefix) + std::to_string(next_saved_.fetch_add(1));
    const std::string target = dir_ + "/" + name;
    if (::link(path.c_str(), target.c_str()) != 0) {
      if (errno == ENOENT) {
        saved->clear();
        return IOStatus::OK();
      }
      return IOStatus::IOError(
          "power-cut journal: cannot keep " + path +
              " (the journal directory must be on the data directory's filesystem)",
          std::strerror(errno));
    }
    *saved = name;
    return IOStatus::OK();
  }

  const std::string& dir() const { return dir_; }

 private:
  const std::string dir_;
  const int fd_;
  std::mutex mu_;
  std::atomic<uint64_t> next_saved_{0};
};

class JournaledWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  JournaledWritableFile(std::unique_ptr<FSWritableFile> file, std::shared_ptr<Journal> journal,
                        std::string path, uint64_t size)
      : FSWritableFileOwnerWrapper(std::move(file)),
        journal_(std::move(journal)),
        path_(std::move(path)),
        size_(size) {}

  IOStatus Append(const Slice& data, const IOOptions& options, IODebugContext* dbg) override {
    IOStatus s = target()->Append(data, options, dbg);
    if (s.ok()) size_.fetch_add(data.size());
    return s;
  }
  IOStatus Append(const Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
    IOStatus s = target()->Append(data, options, info, dbg);
    if (s.ok()) size_.fetch_add(data.size());
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& options,
                            IODebugContext* dbg) override {
    IOStatus s = target()->PositionedAppend(data, offset, options, dbg);
    if (s.ok()) Grow(offset + data.size());
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& options,
                            const rocksdb::DataVerificationInfo& info,
                            IODebugContext* dbg) override {
    IOStatus s = target()->PositionedAppend(data, offset, options, info, dbg);
    if (s.ok()) Grow(offset + data.size());
    return s;
  }
  IOStatus Truncate(uint64_t size, const IOOptions& options, IODebugContext* dbg) override {
    IOStatus s = target()->Truncate(size, options, dbg);
    if (s.ok()) size_.store(size);
    return s;
  }
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    return Synced([&] { return target()->Sync(options, dbg); });
  }
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    return Synced([&] { return target()->Fsync(options, dbg); });
  }

 private:
  // What was appended before the sync began is durable once it returns;
  // bytes appended meanwhile (SyncWAL runs beside writers) may not be.
  template <typename SyncFn>
  IOStatus Synced(SyncFn sync) {
    const uint64_t length = size_.load();
    const int64_t began = NowNs();
    IOStatus s = sync();
    if (!s.ok()) return s;
    return journal_->Write(power_cut::kSync, began, std::to_string(length), path_);
  }
  void Grow(uint64_t end) {
    uint64_t now = size_.load();
    while (now < end && !size_.compare_exchange_weak(now, end)) {
    }
  }

  std::shared_ptr<Journal> journal_;
  const std::string path_;
  std::atomic<uint64_t> size_;
};

class JournaledDirectory final : public rocksdb::FSDirectoryWrapper {
 public:
  JournaledDirectory(std::unique_ptr<FSDirectory> dir, std::shared_ptr<Journal> journal,
                     std::string path)
      : FSDirectoryWrapper(std::move(dir)), journal_(std::move(journal)), path_(std::move(path)) {}

  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    return Synced(FSDirectoryWrapper::Fsync(options, dbg));
  }
  IOStatus FsyncWithDirOptions(const IOOptions& options, IODebugContext* dbg,
                               const DirFsyncOptions& dir_options) override {
    return Synced(FSDirectoryWrapper::FsyncWithDirOptions(options, dbg, dir_options));
  }

 private:
  IOStatus Synced(IOStatus s) {
    if (!s.ok()) return s;
    return journal_->Write(power_cut::kDirSync, NowNs(), {}, path_);
  }

  std::shared_ptr<Journal> journal_;
  const std::string path_;
};

class PowerCutJournalFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  PowerCutJournalFileSystem(std::shared_ptr<rocksdb::FileSystem> base,
                            std::shared_ptr<Journal> journal)
      : FileSystemWrapper(std::move(base)), journal_(std::move(journal)) {}

  static const char* kClassName() { return "ShimPowerCutJournalFileSystem"; }
  const char* Name() const override { return kClassName(); }

  IOStatus NewWritableFile(const std::string& fname, const FileOptions& options,
                           std::unique_ptr<FSWritableFile>* result, IODebugContext* dbg) override {
    const std::string path = Normal(fname);
    const bool existed = target()->FileExists(fname, options.io_options, dbg).ok();
    IOStatus s = journal_->Write(power_cut::kCreate, NowNs(), existed ? "1" : "0", path);
    if (s.ok()) s = target()->NewWritableFile(fname, options, result, dbg);
    if (s.ok())
      *result = std::make_unique<JournaledWritableFile>(std::move(*result), journal_, path, 0);
    return s;
  }

  IOStatus ReopenWritableFile(const std::string& fname, const FileOptions& options,
                              std::unique_ptr<FSWritableFile>* result,
                              IODebugContext* dbg) override {
    const std::string path = Normal(fname);
    uint64_t size = 0;
    IOStatus s;
    if (target()->GetFileSize(fname, options.io_options, &size, dbg).ok()) {
      s = journal_->Write(power_cut::kReopen, NowNs(), std::to_string(size), path);
    } else {
      s = journal_->Write(power_cut::kCreate, NowNs(), "0", path);
    }
    if (s.ok()) s = target()->ReopenWritableFile(fname, options, result, dbg);
    if (s.ok())
      *result = std::make_unique<JournaledWritableFile>(std::move(*result), journal_, path, size);
    return s;
  }

  IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                             const FileOptions& options, std::unique_ptr<FSWritableFile>* result,
                             IODebugContext* dbg) override {
    (void)journal_->Write(power_cut::kUnmodelled, NowNs(), "ReuseWritableFile", Normal(fname));
    return target()->ReuseWritableFile(fname, old_fname, options, result, dbg);
  }

  IOStatus NewRandomRWFile(const std::string& fname, const FileOptions& options,
                           std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                           IODebugContext* dbg) override {
    (void)journal_->Write(power_cut::kUnmodelled, NowNs(), "NewRandomRWFile", Normal(fname));
    return target()->NewRandomRWFile(fname, options, result, dbg);
  }

  IOStatus LinkFile(const std::string& src, const std::string& target_name,
                    const IOOptions& options, IODebugContext* dbg) override {
    (void)journal_->Write(power_cut::kUnmodelled, NowNs(), "LinkFile", Normal(target_name));
    return target()->LinkFile(src, target_name, options, dbg);
  }

  IOStatus NewDirectory(const std::string& name, const IOOptions& options,
                        std::unique_ptr<FSDirectory>* result, IODebugContext* dbg) override {
    IOStatus s = target()->NewDirectory(name, options, result, dbg);
    if (s.ok())
      *result = std::make_unique<JournaledDirectory>(std::move(*result), journal_, Normal(name));
    return s;
  }

  IOStatus RenameFile(const std::string& src, const std::string& dst, const IOOptions& options,
                      IODebugContext* dbg) override {
    std::string saved;
    IOStatus s = journal_->Keep(dst, &saved);
    if (!s.ok()) return s;
    s = target()->RenameFile(src, dst, options, dbg);
    if (!s.ok()) {
      if (!saved.empty()) ::unlink((journal_->dir() + "/" + saved).c_str());
      return s;
    }
    return journal_->Write(power_cut::kRename, NowNs(), saved.empty() ? "-" : saved,
                           Normal(src) + "\t" + Normal(dst));
  }

  IOStatus DeleteFile(const std::string& fname, const IOOptions& options,
                      IODebugContext* dbg) override {
    IOStatus s = target()->DeleteFile(fname, options, dbg);
    if (!s.ok()) return s;
    return journal_->Write(power_cut::kDelete, NowNs(), {}, Normal(fname));
  }

  IOStatus Truncate(const std::string& fname, size_t size, const IOOptions& options,
                    IODebugContext* dbg) override {
    IOStatus s = target()->Truncate(fname, size, options, dbg);
    if (!s.ok()) return s;
    return journal_->Write(power_cut::kTruncate, NowNs(), std::to_string(size), Normal(fname));
  }

 private:
  std::shared_ptr<Journal> journal_;
};

}  // namespace

Result<std::shared_ptr<rocksdb::FileSystem>> NewPowerCutJournalFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base, const std::string& journal_dir) {
  const std::string dir = Normal(journal_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  // A journal left by an earlier run was not cut: its files are durable now.
  for (const auto& entry : fs::directory_iterator(dir, ec)) fs::remove_all(entry.path(), ec);
  if (ec) return Status::Internal("power-cut journal: cannot prepare " + dir + ": " + ec.message());
  const std::string file = dir + "/" + power_cut::kJournalFile;
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    return Status::Internal("power-cut journal: cannot create " + file + ": " +
                            std::strerror(errno));
  return std::shared_ptr<rocksdb::FileSystem>(std::make_shared<PowerCutJournalFileSystem>(
      std::move(base), std::make_shared<Journal>(dir, fd)));
}

}  // namespace shim::storage

#include "storage/power_cut.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string_view>

namespace shim::storage {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kWhole = UINT64_MAX;  // a file that was durable before the run: keep all of it

// A file's contents, wherever its bytes are now (it may have been renamed,
// or kept aside through a hard link when a rename replaced it).
struct Object {
  uint64_t synced = kWhole;  // bytes that survive the cut
  std::string location;      // path of its bytes now; empty once deleted
};

std::string Parent(const std::string& path) { return fs::path(path).parent_path().string(); }

Status Errno(const std::string& what, const std::string& path) {
  return Status::Internal("power cut: " + what + " " + path + ": " + std::strerror(errno));
}

// The namespace as it is now (current_) and as the last directory syncs made
// it durable (durable_: -1 = no entry), built by replaying the journal.
class Model {
 public:
  explicit Model(std::string journal_dir) : journal_dir_(std::move(journal_dir)) {}

  Status Apply(char kind, std::string_view field, std::string_view path_text) {
    std::string path(path_text);
    switch (kind) {
      case power_cut::kCreate: {
        const bool existed = field == "1" || current_.count(path);
        if (existed) {
          const int id = At(path);
          if (id >= 0) {
            objects_[id].synced = 0;  // truncated at open
            return Status::Ok();
          }
        }
        const int id = New(0, path);
        current_[path] = id;
        if (seen_.insert(path).second) durable_[path] = -1;
        return Status::Ok();
      }
      case power_cut::kReopen: {
        const bool first = !seen_.count(path);
        const int id = At(path);
        if (first && id >= 0) objects_[id].synced = Number(field);
        return Status::Ok();
      }
      case power_cut::kSync: {
        auto it = current_.find(path);
        if (it != current_.end()) objects_[it->second].synced = Number(field);
        return Status::Ok();
      }
      case power_cut::kTruncate: {
        const int id = At(path);
        if (id >= 0) objects_[id].synced = std::min(objects_[id].synced, Number(field));
        return Status::Ok();
      }
      case power_cut::kDirSync: {
        for (const auto* names : {&current_, &durable_}) {
          for (const auto& [p, id] : *names) {
            if (Parent(p) != path) continue;
            auto now = current_.find(p);
            pending_.emplace_back(p, now == current_.end() ? -1 : now->second);
          }
        }
        for (const auto& [p, id] : pending_) durable_[p] = id;
        pending_.clear();
        return Status::Ok();
      }
      case power_cut::kRename: {
        const size_t tab = path.find('\t');
        if (tab == std::string::npos)
          return Status::Internal("power cut: rename record without a tab: " + path);
        const std::string from = path.substr(0, tab), to = path.substr(tab + 1);
        const int moved = At(from);
        if (field != "-") {
          const int victim = At(to);
          if (victim >= 0)
            objects_[victim].location = (fs::path(journal_dir_) / std::string(field)).string();
        } else if (auto it = current_.find(to); it != current_.end()) {
          objects_[it->second].location.clear();  // replaced and not kept: gone
        } else if (seen_.insert(to).second) {
          durable_[to] = -1;  // nothing was there
        }
        seen_.insert(to);
        current_.erase(from);
        if (moved >= 0) {
          current_[to] = moved;
          objects_[moved].location = to;
        } else {
          current_.erase(to);
        }
        return Status::Ok();
      }
      case power_cut::kDelete: {
        auto it = current_.find(path);
        if (it != current_.end()) {
          objects_[it->second].location.clear();
          current_.erase(it);
        }
        seen_.insert(path);
        return Status::Ok();
      }
      case power_cut::kUnmodelled:
        return Status::Internal("power cut: the journal holds an operation the cut cannot model: " +
                                std::string(field) + " " + path);
      default:
        return Status::Internal(std::string("power cut: unknown journal record '") + kind + "'");
    }
  }

  // Moves the durable files into place, removes the rest, truncates.
  Status Cut(PowerCutReport& report) {
    // Where each durable object must end up.
    std::map<int, std::vector<std::string>> wanted;
    for (const auto& [path, id] : durable_) {
      if (id >= 0 && !objects_[id].location.empty()) wanted[id].push_back(path);
    }
    // 1. Objects not already at a path they are wanted at move aside first,
    //    so that removing and renaming below never overwrite one.
    std::map<int, std::string> staged;
    for (auto& [id, paths] : wanted) {
      Object& o = objects_[id];
      if (std::find(paths.begin(), paths.end(), o.location) != paths.end()) continue;
      const std::string stage = (fs::path(journal_dir_) / ("stage." + std::to_string(id))).string();
      if (::rename(o.location.c_str(), stage.c_str()) != 0) {
        if (errno == ENOENT) continue;  // never made it to disk
        return Errno("cannot move aside", o.location);
      }
      if (o.location.rfind(journal_dir_, 0) == 0) ++report.files_restored;
      o.location = stage;
      staged[id] = stage;
    }
    // 2. Every path the run touched that must not survive goes.
    std::set<std::string> all;
    for (const auto& [p, id] : current_) all.insert(p);
    for (const auto& [p, id] : durable_) all.insert(p);
    for (const std::string& p : all) {
      auto d = durable_.find(p);
      const int want = d == durable_.end() ? -1 : d->second;
      if (want >= 0 && objects_[want].location == p) continue;
      if (::unlink(p.c_str()) == 0) {
        ++report.files_removed;
      } else if (errno != ENOENT) {
        return Errno("cannot remove", p);
      }
    }
    // 3. Staged objects into place; 4. everything wanted cut to its synced length.
    for (auto& [id, paths] : wanted) {
      Object& o = objects_[id];
      if (staged.count(id)) {
        if (::rename(o.location.c_str(), paths.front().c_str()) != 0)
          return Errno("cannot restore", paths.front());
        o.location = paths.front();
      }
      for (const std::string& p : paths) {
        if (p != o.location) {
          std::error_code ec;
          fs::copy_file(o.location, p, fs::copy_options::overwrite_existing, ec);
          if (ec)
            return Status::Internal("power cut: cannot copy " + o.location + " to " + p + ": " +
                                    ec.message());
        }
        if (o.synced == kWhole) continue;
        struct stat st;
        if (::stat(p.c_str(), &st) != 0) {
          if (errno == ENOENT) continue;
          return Errno("cannot stat", p);
        }
        if (static_cast<uint64_t>(st.st_size) <= o.synced) continue;
        if (::truncate(p.c_str(), static_cast<off_t>(o.synced)) != 0)
          return Errno("cannot truncate", p);
        ++report.files_truncated;
        report.bytes_dropped += static_cast<uint64_t>(st.st_size) - o.synced;
      }
    }
    return Status::Ok();
  }

 private:
  int New(uint64_t synced, const std::string& location) {
    objects_.push_back(Object{synced, location});
    return static_cast<int>(objects_.size() - 1);
  }
  // The object at `path` now; a path first seen here was a durable file
  // before the run began. -1 when the run removed it.
  int At(const std::string& path) {
    if (auto it = current_.find(path); it != current_.end()) return it->second;
    if (!seen_.insert(path).second) return -1;
    const int id = New(kWhole, path);
    current_[path] = id;
    durable_[path] = id;
    return id;
  }
  static uint64_t Number(std::string_view s) {
    uint64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
  }

  std::string journal_dir_;
  std::vector<Object> objects_;
  std::map<std::string, int> current_, durable_;
  std::set<std::string> seen_;
  std::vector<std::pair<std::string, int>> pending_;
};

bool IsWal(std::string_view path) {
  return path.size() > 4 && path.substr(path.size() - 4) == ".log";
}

// RocksDB numbers WAL files upwards ("000012.log"); longer names are newer.
bool OlderWal(const std::string& a, const std::string& b) {
  const std::string na = fs::path(a).filename().string(), nb = fs::path(b).filename().string();
  return na.size() != nb.size() ? na.size() < nb.size() : na < nb;
}

}  // namespace

std::string PowerCutReport::ToString() const {
  std::ostringstream out;
  out << records << " journal records; " << files_truncated << " files lost " << bytes_dropped
      << " unsynced bytes, " << files_removed << " unsynced entries removed, " << files_restored
      << " files restored by undoing renames; " << wal_syncs << " WAL syncs";
  return out.str();
}

Result<PowerCutReport> ApplyPowerCut(const std::string& journal_dir) {
  PowerCutReport report;
  const fs::path journal = fs::path(journal_dir) / power_cut::kJournalFile;
  std::ifstream in(journal, std::ios::binary);
  if (!in) return report;  // nothing was journaled: nothing to drop
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();

  Model model(fs::absolute(journal_dir).lexically_normal().string());
  std::map<std::string, int64_t> wal_synced;  // WAL file -> when its last sync began (-1: never)
  size_t pos = 0;
  while (true) {
    const size_t end = all.find('\n', pos);
    if (end == std::string::npos) break;  // a line the kill cut short never happened
    std::string_view line(all.data() + pos, end - pos);
    pos = end + 1;
    // <kind> <ns> [<field>] <path>
    const size_t a = line.find(' '), b = a == std::string_view::npos ? a : line.find(' ', a + 1);
    if (line.size() < 3 || a != 1 || b == std::string_view::npos) {
      return Status::Internal("power cut: malformed journal line: " + std::string(line));
    }
    const char kind = line[0];
    std::string_view ns = line.substr(2, b - 2), rest = line.substr(b + 1), field;
    if (kind != power_cut::kDirSync && kind != power_cut::kDelete) {
      const size_t c = rest.find(' ');
      if (c == std::string_view::npos)
        return Status::Internal("power cut: malformed journal line: " + std::string(line));
      field = rest.substr(0, c);
      rest = rest.substr(c + 1);
    }
    ++report.records;
    if ((kind == power_cut::kCreate || kind == power_cut::kReopen || kind == power_cut::kSync) &&
        IsWal(rest)) {
      int64_t& synced = wal_synced.emplace(std::string(rest), -1).first->second;
      if (kind == power_cut::kSync) {
        ++report.wal_syncs;
        std::from_chars(ns.data(), ns.data() + ns.size(), synced);
      }
    }
    if (Status s = model.Apply(kind, field, rest); !s.ok()) return s;
  }
  if (Status s = model.Cut(report); !s.ok()) return s;
  if (!wal_synced.empty()) {
    report.newest_wal_synced_ns =
        std::max_element(wal_synced.begin(), wal_synced.end(), [](const auto& a, const auto& b) {
          return OlderWal(a.first, b.first);
        })->second;
  }

  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(journal_dir, ec))
    fs::remove_all(entry.path(), ec);
  if (ec) return Status::Internal("power cut: cannot empty " + journal_dir + ": " + ec.message());
  return report;
}

}  // namespace shim::storage

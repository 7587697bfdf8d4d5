#include "cli/data_dir_owner.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/json_text.h"
#include "engine/json_parse.h"

namespace shim::cli {
namespace {

constexpr const char* kNoteName = "/shim-server.json";

std::optional<DataDirOwner> ReadNote(const std::string& data_dir) {
  std::ifstream in(data_dir + kNoteName);
  if (!in) return std::nullopt;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Result<nlohmann::json> j = ParseJson(text);
  if (!j.ok() || !j->is_object()) return std::nullopt;
  const nlohmann::json& pid = (*j)["pid"];
  const nlohmann::json& socket = (*j)["socket"];
  if (!pid.is_number_integer() || !socket.is_string()) return std::nullopt;
  return DataDirOwner{pid.get<pid_t>(), socket.get<std::string>()};
}

}  // namespace

Status WriteDataDirOwner(const std::string& data_dir, const DataDirOwner& owner) {
  const std::string path = data_dir + kNoteName;
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << DumpCompact(nlohmann::json{{"pid", owner.pid}, {"socket", owner.socket}}) << "\n";
    if (!out.flush()) return Status::Internal("cannot write " + temp);
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    return Status::Internal("cannot write " + path);
  }
  return Status::Ok();
}

std::optional<DataDirOwner> ReadLiveDataDirOwner(const std::string& data_dir) {
  auto note = ReadNote(data_dir);
  if (!note || !ProcessRunning(note->pid)) return std::nullopt;
  return note;
}

void RemoveDataDirOwner(const std::string& data_dir) {
  auto note = ReadNote(data_dir);
  if (note && note->pid == ::getpid()) std::remove((data_dir + kNoteName).c_str());
}

bool ProcessRunning(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) return false;
  // "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so the
  // state follows the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  const char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace shim::cli

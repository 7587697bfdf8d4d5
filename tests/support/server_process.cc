#include "tests/support/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace shim::testing {
namespace {
// waitpid's status as a shell would report it.
int ExitCode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
}  // namespace

ServerProcess::ServerProcess(ServerProcessOptions options) : options_(std::move(options)) {
  socket_path_ = dir_.Sub("s.sock");
  data_dir_ = dir_.Sub("data");
  log_path_ = dir_.Sub("server.log");
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Kill();
}

Status ServerProcess::Spawn() {
  if (pid_ > 0) return Status::Internal("already running");
  std::vector<std::string> args = {"--data",     data_dir_,      "--socket",
                                   socket_path_, "--durability", options_.durability};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<std::string> env = options_.env;
  if (options_.power_cut_journal)
    env.push_back(std::string(storage::kPowerCutJournalEnv) + "=" + PowerCutJournalDir());
  pid_t pid = SpawnServe(args, log_path_, env);
  if (pid < 0) return Status::Internal("fork failed");
  pid_ = pid;
  return Status::Ok();
}

Status ServerProcess::Start() {
  if (Status s = Spawn(); !s.ok()) return s;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      last_exit_status_ = ExitCode(status);
      return Status::Internal("shim serve exited during start-up; see " + log_path_);
    }
    auto client = net::LineClient::ConnectUnix(socket_path_);
    if (client.ok() && (*client)->Call("sys.ping", nlohmann::json::object(), 2000).ok())
      return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
  return Status::Internal("shim serve did not answer within 20 s; see " + log_path_);
}

std::string ServerProcess::PowerCutJournalDir() const { return dir_.Sub("power-cut"); }

Result<storage::PowerCutReport> ServerProcess::CutPower() {
  if (pid_ > 0) return Status::Internal("CutPower: the server is still running; Kill() it first");
  if (!options_.power_cut_journal)
    return Status::Internal("CutPower: the server ran without power_cut_journal");
  return storage::ApplyPowerCut(PowerCutJournalDir());
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

int ServerProcess::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return ExitCode(status);
}

int ServerProcess::WaitForExit(int timeout_ms) {
  if (pid_ <= 0) return -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      last_exit_status_ = ExitCode(status);
      return last_exit_status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Result<std::unique_ptr<net::LineClient>> ServerProcess::Connect() const {
  return net::LineClient::ConnectUnix(socket_path_);
}

pid_t SpawnServe(const std::vector<std::string>& args, const std::string& log_path,
                 const std::vector<std::string>& env) {
  // Everything the child needs is built before fork. A test process has
  // other threads (clients, history recorders), and one of them may hold
  // the allocator's or the environment's lock at the moment of fork; a
  // child that then allocates or calls setenv waits on that lock forever,
  // never reaching exec. (The likely cause of a restart under ASan that
  // "did not answer within 20 s" with an empty log, right after a SIGKILL
  // woke eight client threads.) After fork the child only opens, dup2s
  // and execs, none of which takes a lock.
  std::vector<std::string> argv_s = {SHIM_BINARY, "serve", "--log-level", "warn"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  // The environment: ours without SHIM_AUTH_TOKEN (a test's server is
  // open unless it asks otherwise), then `env` ("NAME=value" sets NAME).
  auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string_view name = name_of(entry);
    const bool replaced = std::any_of(env.begin(), env.end(),
                                      [&](const std::string& s) { return name_of(s) == name; });
    if (name != "SHIM_AUTH_TOKEN" && !replaced) env_s.emplace_back(entry);
  }
  env_s.insert(env_s.end(), env.begin(), env.end());
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* log_file = log_path.c_str();

  pid_t pid = ::fork();
  if (pid != 0) return pid;
  int log = ::open(log_file, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (log >= 0) {
    ::dup2(log, 1);
    ::dup2(log, 2);
  }
  ::execve(argv[0], argv.data(), envp.data());
  ::_exit(127);
}

int RunServeToExit(const std::vector<std::string>& args, const std::string& log_path,
                   int timeout_ms) {
  const pid_t pid = SpawnServe(args, log_path);
  if (pid < 0) return -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return ExitCode(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

int RunShim(const std::string& args, std::string* out, const std::string& env) {
  std::string cmd = env + " " + SHIM_BINARY + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  out->clear();
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out->append(buf, n);
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

namespace {

// A "Name:  N kB" field of /proc/PID/status, -1 if absent.
long StatusFieldKiB(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) return std::stol(line.substr(name.size() + 1));
  }
  return -1;
}

}  // namespace

long RssKiB(pid_t pid) { return StatusFieldKiB(pid, "VmRSS"); }
long PeakRssKiB(pid_t pid) { return StatusFieldKiB(pid, "VmHWM"); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace shim::testing

#include "cli/server_daemon.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "cli/data_dir_owner.h"
#include "net/line_client.h"

namespace shim::cli {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(20);

// The log's length now: what the new server writes comes after it.
off_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : 0;
}

std::string ReadFrom(const std::string& path, off_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(offset);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Forks twice so that the server is adopted by init (never our zombie) and
// returns its pid, read from a pipe the middle process writes. -1 on failure.
pid_t SpawnDetached(const std::vector<std::string>& argv_s, const std::string& log_file) {
  // Built before fork: the child only opens, dup2s, forks and execs.
  std::vector<char*> argv;
  for (const auto& a : argv_s) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int pid_pipe[2];
  if (::pipe2(pid_pipe, O_CLOEXEC) != 0) return -1;
  const pid_t middle = ::fork();
  if (middle < 0) {
    ::close(pid_pipe[0]);
    ::close(pid_pipe[1]);
    return -1;
  }
  if (middle == 0) {
    ::setsid();
    const pid_t server = ::fork();
    if (server != 0) {
      (void)!::write(pid_pipe[1], &server, sizeof(server));
      ::_exit(0);
    }
    const int devnull = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(devnull, 0);
    ::dup2(out < 0 ? devnull : out, 1);
    ::dup2(out < 0 ? devnull : out, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pid_pipe[1]);
  pid_t server = -1;
  if (::read(pid_pipe[0], &server, sizeof(server)) != sizeof(server)) server = -1;
  ::close(pid_pipe[0]);
  int status;
  ::waitpid(middle, &status, 0);
  return server;
}

}  // namespace

std::string FirstErrorLine(const std::string& log_text) {
  std::istringstream in(log_text);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    last = line;
    for (const char* level : {"] [error] ", "] [critical] "}) {
      if (auto at = line.find(level); at != std::string::npos)
        return line.substr(at + std::char_traits<char>::length(level));
    }
    if (line.starts_with("shim serve: ") && line.find("warning:") == std::string::npos) return line;
  }
  return last;
}

Status StartServerDaemon(const ServerDaemonOptions& options) {
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) return Status::Internal("cannot find the shim binary: " + ec.message());
  const off_t log_start = FileSize(options.log_file);
  const pid_t pid = SpawnDetached({self, "serve", "--socket", options.socket, "--data",
                                   options.data_dir, "--log-file", options.log_file},
                                  options.log_file);
  if (pid <= 0) return Status::Internal("cannot start the server (fork failed)");
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options.answer_timeout_ms);
  for (;;) {
    if (net::LineClient::ConnectUnix(options.socket).ok()) return Status::Ok();
    if (!ProcessRunning(pid)) {
      // One last look: it may have exited after another server took over
      // the socket.
      if (net::LineClient::ConnectUnix(options.socket).ok()) return Status::Ok();
      std::string why = FirstErrorLine(ReadFrom(options.log_file, log_start));
      return Status::Internal("the server did not start: " +
                              (why.empty() ? std::string("it exited without a word") : why) +
                              " (log: " + options.log_file + ")");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::Internal("the server (pid " + std::to_string(pid) + ") did not answer on " +
                              options.socket + " within " +
                              std::to_string(options.answer_timeout_ms / 1000) + " s; see " +
                              options.log_file);
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace shim::cli

// `shim worker run`: turns any command into a worker. It registers, claims
// tasks with a server-side wait, and runs COMMAND once per task: the payload
// (JSON) on stdin, SHIM_TASK_ID / SHIM_TASK_ATTEMPT / SHIM_QUEUE in the
// environment. Exit 0 completes the task with stdout as the result (JSON if
// it parses, else the text); exit 99 fails it without retry; any other exit
// fails it and the task's retry policy applies. While the command runs the
// worker heartbeats and extends the task's lease; if the task is cancelled
// the command gets SIGTERM.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/json_text.h"
#include "cli/client_util.h"
#include "cli/commands.h"
#include "engine/json_parse.h"

namespace shim::cli {
namespace {

using nlohmann::json;

constexpr int kNoRetryExit = 99;
constexpr int64_t kHeartbeatTtlMs = 15'000;
volatile std::sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

struct Outcome {
  bool ok = false;
  bool retry = true;
  json result;
  std::string error;
};

// Runs the command for one task; keeps the worker and the lease alive.
Outcome RunOne(net::LineClient& client, const std::vector<std::string>& command, const json& task,
               const std::string& worker_id) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) || ::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC)) {
    return {false, true, nullptr, "cannot create pipes"};
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::setenv("SHIM_TASK_ID", task["task_id"].get<std::string>().c_str(), 1);
    ::setenv("SHIM_TASK_ATTEMPT", std::to_string(task["attempt"].get<int64_t>()).c_str(), 1);
    ::setenv("SHIM_QUEUE", task["queue"].get<std::string>().c_str(), 1);
    ::setenv("SHIM_WORKER_ID", worker_id.c_str(), 1);
    std::vector<char*> argv;
    for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "cannot run %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  // A pidfd turns readable when the command exits, so the task is reported
  // the moment it ends, not at the next tick. Without one (old kernels) the
  // tick is short once the command has closed its output.
  const int exit_fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  const std::string payload = DumpCompact(task["payload"]) + "\n";
  // Payloads are bounded (1 MiB); a command that does not read stdin must not
  // block us, so write without blocking and give up on EPIPE/EAGAIN.
  ::fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  signal(SIGPIPE, SIG_IGN);
  size_t written = 0;
  std::string out, err;
  const std::string task_id = task["task_id"];
  const uint64_t token = task["lease_token"];
  // Renew the lease at a third of its length, so two renewals can be late
  // before it runs out; the heartbeat keeps the same pace (its TTL is 15 s).
  const int64_t lease_ms = std::max<int64_t>(task.value("timeout_ms", int64_t{60'000}), 1);
  const auto renew_every =
      std::chrono::milliseconds(std::clamp<int64_t>(lease_ms / 3, 1, kHeartbeatTtlMs / 3));
  auto last_beat = std::chrono::steady_clock::now();
  bool cancelled = false;
  bool server_gone = false;
  int status = 0;
  for (;;) {
    if (written < payload.size()) {
      ssize_t w = ::write(in_pipe[1], payload.data() + written, payload.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN) written = payload.size();
      if (written == payload.size()) {
        ::close(in_pipe[1]);
        in_pipe[1] = -1;
      }
    }
    pollfd fds[4] = {{out_pipe[0], POLLIN, 0},
                     {err_pipe[0], POLLIN, 0},
                     {server_gone ? -1 : client.fd(), POLLIN, 0},
                     {exit_fd, POLLIN, 0}};
    const auto until_renewal = std::chrono::duration_cast<std::chrono::milliseconds>(
        last_beat + renew_every - std::chrono::steady_clock::now());
    const int output_open = out_pipe[0] >= 0 || err_pipe[0] >= 0;
    const int64_t tick = exit_fd >= 0 || output_open ? 500 : 5;
    ::poll(fds, 4, static_cast<int>(std::clamp<int64_t>(until_renewal.count(), 0, tick)));
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP))) {
        ssize_t r = ::read(fds[i].fd, buf, sizeof(buf));
        if (r > 0) (i == 0 ? out : err).append(buf, static_cast<size_t>(r));
        if (r <= 0) {
          ::close(i == 0 ? out_pipe[0] : err_pipe[0]);
          (i == 0 ? out_pipe[0] : err_pipe[0]) = -1;
        }
      }
    }
    if ((fds[2].revents & POLLIN) || client.HasBufferedMessages()) {
      // Notifications: is one of them our task being cancelled?
      for (int wait_ms = (fds[2].revents & POLLIN) ? 100 : 0;; wait_ms = 0) {
        auto n = client.NextNotification(wait_ms);
        if (!n.ok()) {
          // The server went away: stop watching it (EOF would wake every
          // poll); the command finishes and its report gets the error.
          if (n.status().code() != StatusCode::kTimeout) server_gone = true;
          break;
        }
        if ((*n)["method"] == "task.cancelled" && (*n)["params"]["task_id"] == task_id &&
            !cancelled) {
          cancelled = true;
          ::kill(pid, SIGTERM);
        }
      }
    }
    if (g_stop && !cancelled) {
      ::kill(pid, SIGTERM);
      cancelled = true;
    }
    if (out_pipe[0] < 0 && err_pipe[0] < 0 && ::waitpid(pid, &status, WNOHANG) == pid) break;
    if (!server_gone && std::chrono::steady_clock::now() - last_beat >= renew_every) {
      last_beat = std::chrono::steady_clock::now();
      (void)client.Call("worker.heartbeat", {{"worker_id", worker_id}}, 10'000);
      auto extended = client.Call(
          "task.extend", {{"task_id", task_id}, {"lease_token", token}, {"extend_ms", lease_ms}},
          10'000);
      if (!extended.ok() && extended.status().code() == StatusCode::kNotOwner && !cancelled) {
        // The task was taken from us (lease lost, or cancelled): stop work
        // nobody will accept.
        std::fprintf(stderr, "shim worker %s: %s: %s; stopping the command\n", worker_id.c_str(),
                     task_id.c_str(), extended.status().message().c_str());
        ::kill(pid, SIGTERM);
        cancelled = true;
      }
    }
  }
  if (exit_fd >= 0) ::close(exit_fd);
  if (in_pipe[1] >= 0) ::close(in_pipe[1]);
  if (cancelled)
    return {false, !g_stop ? false : true, nullptr, g_stop ? "worker stopped" : "cancelled"};
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code == 0) {
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    Result<json> result = ParseJson(out);
    return {true, true, result.ok() ? std::move(result).value() : json(out), ""};
  }
  std::string tail = err.size() > 2000 ? err.substr(err.size() - 2000) : err;
  while (!tail.empty() && tail.back() == '\n') tail.pop_back();
  return {false, code != kNoRetryExit, nullptr,
          "exit code " + std::to_string(code) + (tail.empty() ? "" : ": " + tail)};
}

}  // namespace

int RunWorker(const ParsedArgs& args) {
  const std::vector<std::string> queues = args.GetList("queue");
  const std::vector<std::string> caps = args.GetList("capability");
  const std::vector<std::string>& command = args.positional();
  if (queues.empty()) {
    std::fprintf(stderr, "shim worker run: --queue is required\n(see shim worker run --help)\n");
    return kExitUsage;
  }
  long long max_tasks = -1;
  args.GetInt("max-tasks", &max_tasks);
  auto client = ConnectOrReport(args, "worker");
  if (!client) return kExitNoServer;

  json reg = {{"name", args.GetOr("name", "worker-" + std::to_string(::getpid()))},
              {"capabilities", caps},
              {"heartbeat_ttl_ms", kHeartbeatTtlMs}};
  if (auto id = args.Get("worker-id")) reg["worker_id"] = *id;
  auto registered = client->Call("worker.register", reg, TimeoutMs(args));
  if (!registered.ok()) return PrintError("worker", registered.status());
  const std::string worker_id = (*registered)["worker_id"];
  std::fprintf(stderr, "shim worker %s: serving %zu queue(s)\n", worker_id.c_str(), queues.size());

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  long long done = 0;
  int exit_code = kExitOk;
  while (!g_stop && (max_tasks < 0 || done < max_tasks)) {
    auto claimed = client->Call(
        "task.claim", {{"queues", queues}, {"worker_id", worker_id}, {"wait_ms", 5000}}, 30'000);
    if (!claimed.ok()) {
      if (g_stop) break;
      exit_code = PrintError("worker", claimed.status());
      break;
    }
    (void)client->Call("worker.heartbeat", {{"worker_id", worker_id}}, 10'000);
    for (const auto& task : (*claimed)["tasks"]) {
      const std::string id = task["task_id"];
      Outcome o = RunOne(*client, command, task, worker_id);
      Result<json> r = o.ok ? client->Call("task.complete", {{"task_id", id},
                                                             {"lease_token", task["lease_token"]},
                                                             {"result", o.result}})
                            : client->Call("task.fail", {{"task_id", id},
                                                         {"lease_token", task["lease_token"]},
                                                         {"error", o.error},
                                                         {"retry", o.retry}});
      if (r.ok()) {
        std::fprintf(stderr, "shim worker %s: %s %s\n", worker_id.c_str(), id.c_str(),
                     o.ok ? "completed" : "failed");
      } else {
        std::fprintf(stderr, "shim worker %s: %s: the server refused the %s: %s\n",
                     worker_id.c_str(), id.c_str(), o.ok ? "completion" : "failure report",
                     r.status().message().c_str());
      }
      ++done;
    }
  }
  (void)client->Call("worker.deregister", {{"worker_id", worker_id}}, 10'000);
  return exit_code;
}

}  // namespace shim::cli

#include "cli/bench_loop.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/line_client.h"

namespace shim::cli {

namespace {

Status Errno(const char* what) {
  return Status::Internal(std::string(what) + ": " + std::strerror(errno));
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Status ConnectionLoop::Run(const std::vector<std::string>& first, const OnLine& on_line,
                           int reply_timeout_ms) {
  FdCloser ep{::epoll_create1(EPOLL_CLOEXEC)};
  if (ep.fd < 0) return Errno("epoll_create1");
  std::vector<std::string> input(fds_.size());  // bytes read, not yet a whole line
  std::vector<bool> active(fds_.size(), false);
  size_t live = 0;
  auto finish = [&](size_t i) {
    active[i] = false;
    --live;
    ::epoll_ctl(ep.fd, EPOLL_CTL_DEL, fds_[i], nullptr);
  };
  for (size_t i = 0; i < fds_.size(); ++i) {
    if (first[i].empty()) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered: a partial read is simply read again
    ev.data.u64 = i;
    if (::epoll_ctl(ep.fd, EPOLL_CTL_ADD, fds_[i], &ev) != 0) return Errno("epoll_ctl");
    active[i] = true;
    ++live;
    // A blocking send: the server reads requests as they come, so a batch
    // of a few kilobytes never waits long.
    SHIM_RETURN_IF_ERROR(net::SendAll(fds_[i], first[i]));
  }

  std::vector<epoll_event> events(64);
  std::vector<char> chunk(64 * 1024);
  while (live > 0) {
    int n = ::epoll_wait(ep.fd, events.data(), static_cast<int>(events.size()), reply_timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("epoll_wait");
    }
    if (n == 0)
      return Status(StatusCode::kTimeout,
                    "no reply from the server within " + std::to_string(reply_timeout_ms) + " ms");
    for (int e = 0; e < n; ++e) {
      const size_t i = events[e].data.u64;
      if (!active[i]) continue;
      ssize_t got = ::recv(fds_[i], chunk.data(), chunk.size(), MSG_DONTWAIT);
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (got < 0) return Errno("recv");
      if (got == 0) return Status::Internal("the server closed the connection");
      std::string& in = input[i];
      in.append(chunk.data(), static_cast<size_t>(got));
      size_t start = 0;
      std::string out;
      bool done = false;
      bool end_run = false;
      for (size_t nl; !done && !end_run && (nl = in.find('\n', start)) != std::string::npos;
           start = nl + 1) {
        Next next = on_line(i, std::string_view(in).substr(start, nl - start));
        out += next.send;
        done = next.done;
        end_run = next.end_run;
      }
      in.erase(0, start);
      if (!out.empty()) SHIM_RETURN_IF_ERROR(net::SendAll(fds_[i], out));
      if (end_run) return Status::Ok();
      if (done) finish(i);
    }
  }
  return Status::Ok();
}

}  // namespace shim::cli

#include "cutover/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace fhirshift::cutover {

std::string self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("/proc/self/exe") : p.string();
}

bool process_matches(pid_t pid, const std::vector<std::string>& needles) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string cmd = ss.str();
  for (char& c : cmd)
    if (c == '\0') c = ' ';
  for (const auto& n : needles)
    if (cmd.find(n) == std::string::npos) return false;
  return true;
}

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::function<void(const std::string&)>& on_line) {
  ProcessResult result;
  if (argv.empty()) return result;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return result;
  }
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    result.err = std::string("fork: ") + std::strerror(errno);
    return result;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    // A parent killed with SIGKILL (a `cutover` killed mid-verify) takes its child along instead
    // of leaving a verify running against both stores. Checked after the call: the parent may have
    // died before it.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execv(cargv[0], cargv.data());
    ::dprintf(2, "exec %s: %s\n", cargv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true;
  std::string err_pending;
  int term_sent = 0;
  char buf[8192];
  while (out_open || err_open) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      if (term_sent == 0) {
        ::kill(-pid, SIGTERM);
        term_sent = 1;
        result.timed_out = true;
        deadline = now + std::chrono::seconds(5);
      } else if (term_sent == 1) {
        ::kill(-pid, SIGKILL);
        term_sent = 2;
        deadline = now + std::chrono::seconds(5);
      } else {
        break;
      }
    }
    pollfd fds[2];
    int n = 0;
    int out_idx = -1, err_idx = -1;
    if (out_open) {
      out_idx = n;
      fds[n++] = {out_pipe[0], POLLIN, 0};
    }
    if (err_open) {
      err_idx = n;
      fds[n++] = {err_pipe[0], POLLIN, 0};
    }
    int r = ::poll(fds, static_cast<nfds_t>(n), 100);
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    if (out_idx >= 0 && (fds[out_idx].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t k = ::read(out_pipe[0], buf, sizeof buf);
      if (k > 0)
        result.out.append(buf, static_cast<size_t>(k));
      else if (k == 0 || errno != EINTR)
        out_open = false;
    }
    if (err_idx >= 0 && (fds[err_idx].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t k = ::read(err_pipe[0], buf, sizeof buf);
      if (k > 0) {
        result.err.append(buf, static_cast<size_t>(k));
        if (on_line) {
          err_pending.append(buf, static_cast<size_t>(k));
          size_t nl;
          while ((nl = err_pending.find('\n')) != std::string::npos) {
            on_line(err_pending.substr(0, nl));
            err_pending.erase(0, nl + 1);
          }
        }
      } else if (k == 0 || errno != EINTR) {
        err_open = false;
      }
    }
  }
  if (on_line && !err_pending.empty()) on_line(err_pending);
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  int status = 0;
  // The pipes closed (or the deadline passed): reap, killing the group if it still lingers.
  for (int i = 0; i < 100; ++i) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
      else if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
      return result;
    }
    if (i == 50) ::kill(-pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(-pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  result.exit_code = 128 + SIGKILL;
  return result;
}

}  // namespace fhirshift::cutover

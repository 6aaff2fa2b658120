#include "cutover/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
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

struct ChildProcess::State {
  pid_t pid = -1;
  int in_fd = -1, out_fd = -1, err_fd = -1;
  std::function<void(const std::string&)> on_line;
  std::thread reader;
  std::mutex mu;
  std::condition_variable pipes_closed_cv;
  bool pipes_closed = false;
  std::atomic<bool> stop_reading{false};
  bool waited = false;
  ProcessResult result;  // out and err grow under `mu` while the child runs

  // Reads both pipes until the child (and anything it left holding them) closes them.
  void read_output() {
    bool out_open = out_fd >= 0, err_open = err_fd >= 0;
    std::string err_pending;
    char buf[8192];
    while ((out_open || err_open) && !stop_reading) {
      pollfd fds[2];
      int n = 0, out_idx = -1, err_idx = -1;
      if (out_open) {
        out_idx = n;
        fds[n++] = {out_fd, POLLIN, 0};
      }
      if (err_open) {
        err_idx = n;
        fds[n++] = {err_fd, POLLIN, 0};
      }
      int r = ::poll(fds, static_cast<nfds_t>(n), 100);
      if (r < 0 && errno != EINTR) break;
      if (r <= 0) continue;
      if (out_idx >= 0 && (fds[out_idx].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t k = ::read(out_fd, buf, sizeof buf);
        if (k > 0) {
          std::lock_guard lock(mu);
          result.out.append(buf, static_cast<size_t>(k));
        } else if (k == 0 || errno != EINTR) {
          out_open = false;
        }
      }
      if (err_idx >= 0 && (fds[err_idx].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t k = ::read(err_fd, buf, sizeof buf);
        if (k > 0) {
          {
            std::lock_guard lock(mu);
            result.err.append(buf, static_cast<size_t>(k));
          }
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
    std::lock_guard lock(mu);
    pipes_closed = true;
    pipes_closed_cv.notify_all();
  }
};

namespace {

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, bool pipe_stdin,
                           std::function<void(const std::string&)> on_line)
    : s_(std::make_unique<State>()) {
  s_->on_line = std::move(on_line);
  if (argv.empty()) {
    s_->result.err = "no command";
    return;
  }
  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  auto fail = [&](const char* what) {
    s_->result.err = std::string(what) + ": " + std::strerror(errno);
    for (int* p : {in_pipe, out_pipe, err_pipe})
      for (int i : {0, 1}) close_fd(p[i]);
  };
  if ((pipe_stdin && ::pipe2(in_pipe, O_CLOEXEC) != 0) || ::pipe2(out_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    fail("pipe");
    return;
  }
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    fail("fork");
    return;
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
    if (pipe_stdin) {
      ::dup2(in_pipe[0], 0);
    } else if (int devnull = ::open("/dev/null", O_RDONLY); devnull >= 0) {
      ::dup2(devnull, 0);
    }
    ::execv(cargv[0], cargv.data());
    ::dprintf(2, "exec %s: %s\n", cargv[0], std::strerror(errno));
    ::_exit(127);
  }
  s_->pid = pid;
  close_fd(in_pipe[0]);
  close_fd(out_pipe[1]);
  close_fd(err_pipe[1]);
  s_->in_fd = in_pipe[1];
  s_->out_fd = out_pipe[0];
  s_->err_fd = err_pipe[0];
  s_->reader = std::thread([state = s_.get()] { state->read_output(); });
}

ChildProcess::~ChildProcess() {
  if (!s_ || s_->pid <= 0 || s_->waited) return;
  close_stdin();
  ::kill(-s_->pid, SIGTERM);
  wait(std::chrono::seconds(3));
}

bool ChildProcess::started() const { return s_->pid > 0; }

bool ChildProcess::write_line(const std::string& line) {
  if (s_->in_fd < 0) return false;
  // A child that already exited would raise SIGPIPE, whose default ends this process: blocked
  // for the write, and a pending one consumed.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  std::string text = line + "\n";
  bool ok = true;
  for (size_t done = 0; done < text.size();) {
    ssize_t k = ::write(s_->in_fd, text.data() + done, text.size() - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      ok = false;
      break;
    }
    done += static_cast<size_t>(k);
  }
  if (!ok) {
    timespec zero{0, 0};
    ::sigtimedwait(&pipe_set, nullptr, &zero);
  }
  ::pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  if (!ok) close_stdin();
  return ok;
}

void ChildProcess::close_stdin() { close_fd(s_->in_fd); }

ProcessResult ChildProcess::wait(std::chrono::milliseconds timeout) {
  State& s = *s_;
  if (s.pid <= 0 || s.waited) return s.result;
  s.waited = true;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int term_sent = 0;
  {
    std::unique_lock lock(s.mu);
    while (!s.pipes_closed) {
      if (s.pipes_closed_cv.wait_until(lock, deadline) != std::cv_status::timeout) continue;
      if (term_sent == 2) break;  // the group ignores even SIGKILL's closing of its pipes: give up
      ::kill(-s.pid, term_sent == 0 ? SIGTERM : SIGKILL);
      if (term_sent == 0) s.result.timed_out = true;
      ++term_sent;
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    }
  }
  int status = 0;
  // The pipes closed (or the deadline passed): reap, killing the group if it still lingers.
  bool reaped = false;
  for (int i = 0; i < 100 && !reaped; ++i) {
    if (::waitpid(s.pid, &status, WNOHANG) == s.pid) {
      reaped = true;
      break;
    }
    if (i == 50) ::kill(-s.pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!reaped) {
    ::kill(-s.pid, SIGKILL);
    ::waitpid(s.pid, &status, 0);
    s.result.exit_code = 128 + SIGKILL;
  } else if (WIFEXITED(status)) {
    s.result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    s.result.exit_code = 128 + WTERMSIG(status);
  }
  s.stop_reading = true;
  if (s.reader.joinable()) s.reader.join();
  close_stdin();
  close_fd(s.out_fd);
  close_fd(s.err_fd);
  std::lock_guard lock(s.mu);
  return s.result;
}

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::function<void(const std::string&)>& on_line) {
  ChildProcess child(argv, false, on_line);
  return child.wait(timeout);
}

}  // namespace fhirshift::cutover

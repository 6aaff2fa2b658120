// Runs child processes with their output captured (used to run `fhirshift verify` and
// `fhirshift migrate --reverse` from the same binary).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace fhirshift::cutover {

struct ProcessResult {
  int exit_code = -1;  // 128+signal when killed; -1 when it could not start
  bool timed_out = false;
  std::string out;
  std::string err;
};

// A child started in its own process group, which dies with its parent (PR_SET_PDEATHSIG). Its
// stdout and stderr are read as they come (a chatty child never blocks on a full pipe); its stdin
// is a pipe the parent writes lines to, or /dev/null.
class ChildProcess {
 public:
  // argv[0] is a path (no shell). `on_line`, when set, sees every complete line of stderr as it
  // arrives, on a thread of the ChildProcess. Check started(): a child that could not start has
  // its reason in wait()'s `err`.
  ChildProcess(const std::vector<std::string>& argv, bool pipe_stdin,
               std::function<void(const std::string&)> on_line = {});
  ~ChildProcess();  // a child still running is killed (SIGTERM, then SIGKILL) and reaped
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const;
  // False when the child's stdin is closed (the child exited, or close_stdin was called).
  bool write_line(const std::string& line);
  void close_stdin();
  // Waits for the child to exit. After `timeout` its process group gets SIGTERM, then SIGKILL.
  // Call once.
  ProcessResult wait(std::chrono::milliseconds timeout);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Runs argv to completion (stdin /dev/null): ChildProcess(argv, false, on_line).wait(timeout).
ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::function<void(const std::string&)>& on_line = {});

// The running binary (/proc/self/exe resolved), to run sibling subcommands.
std::string self_exe();

// True when `pid` is alive and its command line contains every one of `needles` (so a recycled
// pid of an unrelated process is never signalled).
bool process_matches(pid_t pid, const std::vector<std::string>& needles);

}  // namespace fhirshift::cutover

// Runs a child process to completion with its output captured (used to run `fhirshift verify` and
// `fhirshift migrate --reverse` from the same binary).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace fhirshift::cutover {

struct ProcessResult {
  int exit_code = -1;  // 128+signal when killed; -1 when it could not start
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs argv (argv[0] a path, no shell). After `timeout` the child's process group gets SIGTERM,
// then SIGKILL. `on_line`, when set, sees every complete line of stderr as it arrives.
ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::function<void(const std::string&)>& on_line = {});

// The running binary (/proc/self/exe resolved), to run sibling subcommands.
std::string self_exe();

// True when `pid` is alive and its command line contains every one of `needles` (so a recycled
// pid of an unrelated process is never signalled).
bool process_matches(pid_t pid, const std::vector<std::string>& needles);

}  // namespace fhirshift::cutover

// A child process for integration tests: started with an argument vector (no shell), stdout and
// stderr captured to files, stopped with SIGTERM then SIGKILL. The child is killed by the kernel
// if the test process dies first (PR_SET_PDEATHSIG), so a crashed test leaves nothing running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fhirshift::testing {

class Subprocess {
 public:
  // Starts argv[0] (a path) with the given arguments; output goes to `log_dir`/<name>.{out,err}.
  // `working_dir`: the child's current directory (empty: this process's).
  Subprocess(std::vector<std::string> argv, const std::filesystem::path& log_dir,
             const std::string& name, const std::map<std::string, std::string>& extra_env = {},
             const std::filesystem::path& working_dir = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Exit code (or 128+signal) once the process ended, waiting at most `timeout`.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  void signal(int sig);
  // SIGTERM, then SIGKILL after `grace`; returns the exit status as wait_for does.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  void kill9();

  std::string stdout_text() const;
  std::string stderr_text() const;
  // Polls the captured stdout+stderr until `needle` appears or the process exits or time runs out.
  bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path out_path_, err_path_;
};

// Runs a command to completion and returns {exit code, stdout, stderr}.
struct RunResult {
  int exit_code;
  std::string out;
  std::string err;
};
RunResult run_command(std::vector<std::string> argv,
                      std::chrono::milliseconds timeout = std::chrono::minutes(5),
                      const std::map<std::string, std::string>& extra_env = {});

// Path of the fhirshift CLI built alongside the tests.
std::string cli_path();

}  // namespace fhirshift::testing

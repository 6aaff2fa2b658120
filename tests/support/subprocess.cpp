#include "subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "temp_dir.h"

extern char** environ;

namespace fhirshift::testing {
namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Subprocess::Subprocess(std::vector<std::string> argv, const std::filesystem::path& log_dir,
                       const std::string& name, const std::map<std::string, std::string>& extra_env,
                       const std::filesystem::path& working_dir)
    : out_path_(log_dir / (name + ".out")), err_path_(log_dir / (name + ".err")) {
  if (argv.empty()) throw std::invalid_argument("Subprocess: empty argv");
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos && extra_env.count(kv.substr(0, eq))) continue;
    env_storage.push_back(kv);
  }
  for (auto& [k, v] : extra_env) env_storage.push_back(k + "=" + v);
  std::vector<char*> cenv;
  for (auto& e : env_storage) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::setpgid(0, 0);
    int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (out < 0 || err < 0 || devnull < 0) ::_exit(127);
    ::dup2(devnull, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (!working_dir.empty() && ::chdir(working_dir.c_str()) != 0) {
      ::dprintf(2, "chdir %s failed: %s\n", working_dir.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::dprintf(2, "exec %s failed: %s\n", cargv[0], std::strerror(errno));
    ::_exit(127);
  }
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !status_) stop(std::chrono::seconds(5));
}

bool Subprocess::running() { return !wait_for(std::chrono::milliseconds(0)).has_value(); }

std::optional<int> Subprocess::wait_for(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = decode_status(status);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Subprocess::signal(int sig) {
  if (!status_) ::kill(pid_, sig);
}

int Subprocess::stop(std::chrono::milliseconds grace) {
  signal(SIGTERM);
  if (auto s = wait_for(grace)) return *s;
  kill9();
  return *wait_for(std::chrono::seconds(30));
}

void Subprocess::kill9() {
  signal(SIGKILL);
  wait_for(std::chrono::seconds(30));
}

std::string Subprocess::stdout_text() const { return read_file(out_path_); }
std::string Subprocess::stderr_text() const { return read_file(err_path_); }

bool Subprocess::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (stdout_text().find(needle) != std::string::npos ||
        stderr_text().find(needle) != std::string::npos)
      return true;
    if (!running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

RunResult run_command(std::vector<std::string> argv, std::chrono::milliseconds timeout,
                      const std::map<std::string, std::string>& extra_env) {
  TempDir logs("fhirshift-run");
  Subprocess p(std::move(argv), logs.path(), "cmd", extra_env);
  auto code = p.wait_for(timeout);
  if (!code) {
    p.kill9();
    throw std::runtime_error("command timed out; stderr: " + p.stderr_text());
  }
  return {*code, p.stdout_text(), p.stderr_text()};
}

std::string cli_path() {
  const char* env = std::getenv("FHIRSHIFT_CLI");
  return env && *env ? env : FHIRSHIFT_CLI_BIN;
}

}  // namespace fhirshift::testing

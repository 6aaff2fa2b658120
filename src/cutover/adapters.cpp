#include "cutover/adapters.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "cutover/process.h"

namespace fhirshift::cutover {
namespace {

using nlohmann::json;

std::string short_body(const std::string& body) {
  std::string b = body.size() > 300 ? body.substr(0, 300) + "..." : body;
  for (char& c : b)
    if (c == '\n' || c == '\r') c = ' ';
  return b;
}

int64_t int_field(const json& j, std::initializer_list<const char*> names, int64_t fallback) {
  for (const char* n : names) {
    auto it = j.find(n);
    if (it != j.end() && it->is_number()) return it->get<int64_t>();
  }
  return fallback;
}

}  // namespace

void SystemClock::sleep_for(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

std::string redact_connection_string(const std::string& s) {
  // scheme://user:password@hosts...  ->  scheme://user:****@hosts...
  static const std::regex re(R"(^([A-Za-z+]+://[^:/@]*):[^@/]*@)");
  return std::regex_replace(s, re, "$1:****@", std::regex_constants::format_first_only);
}

// --- HttpServerHealth -------------------------------------------------------------------------

HttpServerHealth::HttpServerHealth(const std::string& base_url, std::string path)
    : client_(base_url, std::chrono::seconds(5)), path_(std::move(path)) {
  if (path_.empty() || path_[0] != '/') path_ = "/" + path_;
}

ReadyCheck HttpServerHealth::ready() {
  ReadyCheck out;
  try {
    HttpResponse r = client_.get(path_);
    out.ok = r.status >= 200 && r.status < 300;
    // A CapabilityStatement is long: the status and the start of the body say enough.
    std::string body = short_body(r.body);
    if (body.size() > 80) body = body.substr(0, 80) + "...";
    out.detail = "HTTP " + std::to_string(r.status) + " " + body;
  } catch (const std::exception& e) {
    out.ok = false;
    out.detail = e.what();
  }
  return out;
}

// --- HttpProgressSource -----------------------------------------------------------------------

HttpProgressSource::HttpProgressSource(const std::string& url)
    : client_(url, std::chrono::seconds(5)) {}

Progress HttpProgressSource::progress() {
  HttpResponse r = client_.get("/progress");
  if (r.status != 200)
    throw std::runtime_error("GET " + url() + " answered HTTP " + std::to_string(r.status) + ": " +
                             short_body(r.body));
  try {
    return parse_progress(r.body);
  } catch (const std::exception& e) {
    throw std::runtime_error("GET " + url() + ": " + e.what());
  }
}

void HttpProgressSource::pause() { post("/pause?by=cutover"); }
void HttpProgressSource::resume() { post("/resume"); }
void HttpProgressSource::poll_now() { post("/poll"); }

void HttpProgressSource::post(const std::string& path) {
  HttpResponse r = client_.post(path);
  if (r.status != 200)
    throw std::runtime_error("POST " + client_.base_url() + path + " answered HTTP " +
                             std::to_string(r.status) + ": " + short_body(r.body));
}

Progress parse_progress(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const std::exception&) {
    throw std::runtime_error("progress is not JSON: " + short_body(body));
  }
  if (!j.is_object()) throw std::runtime_error("progress is not a JSON object");
  Progress p;
  p.raw = short_body(body);
  auto caught = j.find("caughtUp");
  if (caught == j.end() || !caught->is_boolean())
    throw std::runtime_error("progress has no boolean 'caughtUp': " + p.raw);
  p.caught_up = caught->get<bool>();
  if (auto it = j.find("paused"); it != j.end() && it->is_boolean()) p.paused = it->get<bool>();
  if (auto it = j.find("pausedBy"); it != j.end() && it->is_string())
    p.paused_by = it->get<std::string>();
  p.mode = j.value("mode", "");
  p.phase = j.value("phase", "");
  if (auto it = j.find("lagSeconds"); it != j.end() && it->is_number())
    p.lag_seconds = it->get<double>();
  p.entries_read = int_field(j, {"entriesRead"}, 0);
  p.entries_written = int_field(j, {"entriesWritten"}, 0);
  p.quarantined = int_field(j, {"quarantined"}, 0);
  p.conflicts = int_field(j, {"conflicts"}, 0);
  p.errors = int_field(j, {"errors"}, 0);
  if (auto it = j.find("lastPollAt"); it != j.end() && it->is_string())
    p.last_poll_at = parse_iso8601(it->get<std::string>());
  if (auto it = j.find("pollsStarted"); it != j.end() && it->is_number_integer())
    p.polls_started = it->get<int64_t>();
  if (auto it = j.find("pollsDone"); it != j.end() && it->is_number_integer())
    p.polls_done = it->get<int64_t>();
  if (auto it = j.find("reading"); it != j.end() && it->is_boolean()) p.reading = it->get<bool>();
  if (auto it = j.find("sourceHighWaterId"); it != j.end() && it->is_string())
    p.source_high_water_id = it->get<std::string>();
  return p;
}

// --- HaproxyProxy -----------------------------------------------------------------------------

int64_t HaproxyProxy::sessions_total(const std::string& backend, const std::string& server) {
  for (const auto& row : runtime_.show_stat()) {
    auto px = row.find("pxname");
    auto sv = row.find("svname");
    if (px != row.end() && sv != row.end() && px->second == backend && sv->second == server) {
      auto st = row.find("stot");
      if (st == row.end() || st->second.empty()) return 0;
      return std::stoll(st->second);
    }
  }
  throw HaproxyError(runtime_.socket_path(), "show stat",
                     "no row for " + backend + "/" + server);
}

// --- SubprocessVerifier -----------------------------------------------------------------------

SubprocessVerifier::SubprocessVerifier(std::string exe, std::vector<std::string> connection_args,
                                       std::chrono::milliseconds timeout)
    : exe_(std::move(exe)), connection_args_(std::move(connection_args)), timeout_(timeout) {}

std::vector<std::string> SubprocessVerifier::argv(const VerifyRequest& request,
                                                  const std::string& report, bool staged) const {
  std::vector<std::string> a{exe_, "verify"};
  a.insert(a.end(), connection_args_.begin(), connection_args_.end());
  a.insert(a.end(), {"--mode", request.mode});
  if (request.since) a.insert(a.end(), {"--since", *request.since});
  // The verifies before the fence run while clients write and the migrator trails them by its
  // poll cycle (seconds on a slow target): a difference must persist for 15 s before it counts.
  // The final verify (after the fence and the drain) keeps verify's default.
  if (request.writes_flowing) a.insert(a.end(), {"--settle", "15"});
  if (staged) a.push_back("--stdin-stages");
  if (!report.empty()) a.insert(a.end(), {"--report", report});
  return a;
}

std::string SubprocessVerifier::describe(const VerifyRequest& request) const {
  std::string out;
  for (const auto& a : argv(request, "")) {
    if (!out.empty()) out += ' ';
    std::string r = redact_connection_string(a);
    out += r.find_first_of(" \"'") == std::string::npos ? r : "'" + r + "'";
  }
  return out;
}

std::filesystem::path SubprocessVerifier::report_path(const std::string& name) {
  auto report = std::filesystem::temp_directory_path() /
                ("fhirshift-cutover-verify-" + std::to_string(::getpid()) + "-" + name + ".json");
  std::filesystem::remove(report);
  return report;
}

VerifyOutcome SubprocessVerifier::verify(const VerifyRequest& request) {
  auto report = report_path(request.mode);
  auto start = std::chrono::steady_clock::now();
  auto timeout = request.timeout.count() > 0 ? request.timeout : timeout_;
  ProcessResult r = run_process(argv(request, report.string()), timeout, [](const std::string& line) {
    spdlog::debug("verify: {}", line);
  });
  VerifyOutcome out = outcome(r, report, timeout);
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                   start);
  return out;
}

class SubprocessVerifier::Staged : public StagedVerify {
 public:
  Staged(const std::vector<std::string>& argv, std::filesystem::path report)
      : report_(std::move(report)) {
    child_.emplace(argv, true, [](const std::string& line) { spdlog::debug("verify: {}", line); });
    if (!child_->started())
      throw std::runtime_error("cannot start " + argv.front() + " verify: " +
                               child_->wait(std::chrono::milliseconds(0)).err);
  }
  ~Staged() override {
    child_.reset();  // cancelled (end of its input, then SIGTERM) unless it finished
    std::filesystem::remove(report_);
  }
  void source_final() override { child_->write_line("source"); }
  void target_final() override {
    target_said_ = std::chrono::steady_clock::now();
    child_->write_line("target");
  }
  VerifyOutcome finish(std::chrono::milliseconds timeout) override {
    ProcessResult r = child_->wait(timeout);
    VerifyOutcome out = outcome(r, report_, timeout);
    out.took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - target_said_);
    return out;
  }

 private:
  std::filesystem::path report_;
  std::optional<ChildProcess> child_;
  std::chrono::steady_clock::time_point target_said_ = std::chrono::steady_clock::now();
};

std::unique_ptr<StagedVerify> SubprocessVerifier::start(const VerifyRequest& request) {
  auto report = report_path(request.mode + "-staged");
  return std::make_unique<Staged>(argv(request, report.string(), true), report);
}

VerifyOutcome SubprocessVerifier::outcome(const ProcessResult& r,
                                          const std::filesystem::path& report,
                                          std::chrono::milliseconds timeout) {
  VerifyOutcome out;
  out.exit_code = r.exit_code;
  // The verdict is the line that starts with EQUAL or DIFFERENT, on stdout (or stderr).
  for (const std::string* text : {&r.out, &r.err}) {
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("EQUAL", 0) == 0 || line.rfind("DIFFERENT", 0) == 0) out.verdict = line;
    }
    if (!out.verdict.empty()) break;
  }
  out.equal = r.exit_code == 0 && out.verdict.rfind("EQUAL", 0) == 0;
  if (r.timed_out) {
    out.verdict = "verify did not finish within " + std::to_string(timeout.count() / 1000) + " s";
  } else if (out.verdict.empty()) {
    std::string tail = r.err.size() > 400 ? r.err.substr(r.err.size() - 400) : r.err;
    for (char& c : tail)
      if (c == '\n') c = ' ';
    out.verdict = "verify exited " + std::to_string(r.exit_code) + " without a verdict: " + tail;
  }
  if (std::ifstream in(report); in) {
    try {
      nlohmann::json j = nlohmann::json::parse(in);
      if (auto it = j.find("sourceHighWaterLu"); it != j.end() && it->is_string())
        out.source_high_water_lu = it->get<std::string>();
      if (auto it = j.find("quarantineAccounted"); it != j.end() && it->is_array())
        for (const auto& a : *it) {
          auto text = [&a](const char* key) {
            auto f = a.find(key);
            return f != a.end() && f->is_string() ? f->get<std::string>() : std::string("?");
          };
          out.quarantine_accounted.push_back(
              text("id") + " " + text("resource") + " [" + text("quarantine") + "]: " +
              (text("status") == "accepted" ? "accepted by " + text("acceptedBy") + " at " +
                                                  text("acceptedAt") + ": " + text("acceptedReason")
                                            : "superseded by " + text("supersededBy")));
        }
    } catch (const std::exception&) {
    }
  }
  std::filesystem::remove(report);
  return out;
}

}  // namespace fhirshift::cutover

#include "haproxy_fixture.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "cutover/haproxy_config.h"
#include "cutover/haproxy_runtime.h"
#include "cutover/ports.h"

namespace fhirshift::testing {

HaproxyProcess::HaproxyProcess(const std::string& old_server, const std::string& new_server,
                               const std::string& health_path,
                               const std::function<std::string(std::string)>& edit)
    : dir_("fhirshift-haproxy") {
  socket_ = (dir_.path() / "admin.sock").string();
  std::string cfg_path = (dir_.path() / "haproxy.cfg").string();
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    std::string cfg = cutover::render_template_file(
        std::string(FHIRSHIFT_SOURCE_DIR) + "/tools/haproxy/fhirshift.cfg.in",
        {{"SOCKET", socket_},
         {"FRONTEND", "127.0.0.1:" + std::to_string(port_)},
         {"OLD_SERVER", old_server},
         {"NEW_SERVER", new_server},
         {"FENCE_LUA", std::string(FHIRSHIFT_SOURCE_DIR) + "/tools/haproxy/fhirshift_fence.lua"},
         {"HEALTH_PATH", health_path}});
    if (edit) cfg = edit(cfg);
    std::ofstream(cfg_path) << cfg;
    proc_ = std::make_unique<Subprocess>(
        std::vector<std::string>{"/usr/sbin/haproxy", "-db", "-f", cfg_path}, dir_.path(),
        "haproxy");
    cutover::HaproxyRuntime rt(socket_, std::chrono::milliseconds(500));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline && proc_->running()) {
      try {
        rt.show_info();
        return;
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    // Port taken between free_port() and bind: try another.
    proc_->stop(std::chrono::seconds(2));
  }
  throw std::runtime_error("HAProxy did not start: " + proc_->stderr_text());
}

HaproxyProcess::~HaproxyProcess() {
  if (proc_) proc_->stop(std::chrono::seconds(5));
}

std::string HaproxyProcess::command(const std::string& cmd) const {
  return cutover::HaproxyRuntime(socket_).execute(cmd);
}

bool HaproxyProcess::wait_until_up(const std::string& server, std::chrono::milliseconds timeout) const {
  cutover::HaproxyRuntime rt(socket_);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (rt.server_state("fhir", server).running()) return true;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

namespace {

int start_server(httplib::Server& server, std::thread& thread) {
  server.new_task_queue = [] { return new httplib::ThreadPool(64); };
  int port = server.bind_to_any_port("127.0.0.1");
  if (port <= 0) throw std::runtime_error("cannot bind a test HTTP server");
  thread = std::thread([&server] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return port;
}

}  // namespace

TinyFhirServer::TinyFhirServer(std::string name)
    : name_(std::move(name)), server_(std::make_unique<httplib::Server>()) {
  auto& s = *server_;
  s.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    res.status = healthy_ ? 200 : 503;
    res.set_content(healthy_ ? "ok" : "down", "text/plain");
  });
  s.Get("/metadata", [this](const httplib::Request&, httplib::Response& res) {
    bool ok = ready_.load();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? R"({"resourceType":"CapabilityStatement"})" : "not ready",
                    ok ? "application/fhir+json" : "text/plain");
  });
  s.Get("/whoami", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(name_, "text/plain");
  });
  s.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
    ++received_;
    if (int64_t d = write_delay_ms_; d > 0) std::this_thread::sleep_for(std::chrono::milliseconds(d));
    {
      std::lock_guard lock(mu_);
      applied_.insert(req.body);
    }
    res.status = 201;
    res.set_content(req.body, "application/fhir+json");
  });
  port_ = start_server(s, thread_);
}

TinyFhirServer::~TinyFhirServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::set<std::string> TinyFhirServer::applied() const {
  std::lock_guard lock(mu_);
  return applied_;
}

FakeMigratorProgress::FakeMigratorProgress() : server_(std::make_unique<httplib::Server>()) {
  server_->Get("/progress", [this](const httplib::Request&, httplib::Response& res) {
    std::ostringstream o;
    o << R"({"mode":"Continuous","phase":"tailing","caughtUp":)" << (caught_up_ ? "true" : "false")
      << R"(,"lagSeconds":)" << lag_.load() << R"(,"entriesRead":10,"entriesWritten":10,)"
      << R"("quarantined":0,"conflicts":0,"errors":0,"lastPollAt":")"
      << (frozen_ ? frozen_at_ : cutover::format_iso8601(std::chrono::system_clock::now()))
      << R"(","sourceHighWaterId":null})";
    res.set_content(o.str(), "application/json");
  });
  // The cut-over pauses the drained migrator for the final verify and asks it to poll at once.
  for (const char* path : {"/pause", "/resume", "/poll"})
    server_->Post(path, [this, path](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(mu_);
      requests_.push_back(path);
      res.set_content("{}", "application/json");
    });
  port_ = start_server(*server_, thread_);
}

FakeMigratorProgress::~FakeMigratorProgress() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace fhirshift::testing

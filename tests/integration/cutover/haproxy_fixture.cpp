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

HaproxyProcess::HaproxyProcess(const std::string& old_server, const std::string& new_server)
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
         {"NEW_SERVER", new_server}});
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
  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    bool ok = ready_.load();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ready" : "not ready", "text/plain");
  });
  s.Get("/whoami", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(name_, "text/plain");
  });
  s.Post("/admin/fence", [this](const httplib::Request&, httplib::Response& res) {
    std::unique_lock lock(mu_);
    fenced_ = true;
    forward_.clear();
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return in_flight_ == 0; });
    std::ostringstream o;
    o << R"({"fenced":true,"heldWrites":)" << held_ << R"(,"inFlightWrites":)" << in_flight_ << "}";
    res.set_content(o.str(), "application/json");
  });
  s.Post("/admin/release", [this](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu_);
    int64_t held = held_;
    fenced_ = false;
    forward_ = req.has_param("forward") ? req.get_param_value("forward") : "";
    cv_.notify_all();
    res.set_content(R"({"released":)" + std::to_string(held) + "}", "application/json");
  });
  s.Get("/admin/status", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu_);
    std::string body = std::string(R"({"fenced":)") + (fenced_ ? "true" : "false") +
                       R"(,"forwardTo":")" + forward_ + R"(","heldWrites":)" +
                       std::to_string(held_) + "}";
    res.set_content(body, "application/json");
  });
  auto write = [this](const httplib::Request& req, httplib::Response& res) {
    std::unique_lock lock(mu_);
    if (fenced_) {
      ++held_;
      held_max_ = std::max<int64_t>(held_max_, held_);
      bool released = cv_.wait_for(lock, std::chrono::seconds(30), [&] { return !fenced_; });
      --held_;
      if (!released) {
        res.status = 503;
        res.set_header("Retry-After", "1");
        return;
      }
    }
    if (!forward_.empty()) {
      std::string target = forward_;
      lock.unlock();
      httplib::Client cli(target);
      cli.set_read_timeout(std::chrono::seconds(30));
      auto r = cli.Post(req.path, req.body, "application/fhir+json");
      if (!r) {
        res.status = 503;
        res.set_header("Retry-After", "1");
        return;
      }
      ++forwarded_;
      res.status = r->status;
      res.set_content(r->body, "application/fhir+json");
      res.set_header("X-Forwarded-By", name_);
      return;
    }
    ++in_flight_;
    applied_.insert(req.body);
    --in_flight_;
    cv_.notify_all();
    res.status = 201;
    res.set_content(req.body, "application/fhir+json");
  };
  s.Post(R"(/(?!admin/).*)", write);
  port_ = start_server(s, thread_);
}

TinyFhirServer::~TinyFhirServer() {
  {
    std::lock_guard lock(mu_);
    fenced_ = false;
    cv_.notify_all();
  }
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::set<std::string> TinyFhirServer::applied() const {
  std::lock_guard lock(mu_);
  return applied_;
}

bool TinyFhirServer::fenced() const {
  std::lock_guard lock(mu_);
  return fenced_;
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
  port_ = start_server(*server_, thread_);
}

FakeMigratorProgress::~FakeMigratorProgress() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace fhirshift::testing

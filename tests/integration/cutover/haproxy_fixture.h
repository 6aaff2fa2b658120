// Test fixtures for the cut-over: a real HAProxy (Debian's /usr/sbin/haproxy) started from
// tools/haproxy/fhirshift.cfg.in (with its write fence, fhirshift_fence.lua) on free loopback ports
// with its runtime API socket in a temp dir, and small in-process HTTP servers (cpp-httplib) that
// play plain FHIR servers (they store writes, nothing else) when the real `fhirshift serve` is not
// the subject of the test. Used by tests/integration/cutover and tests/integration/e2e.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "ports.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace httplib {
class Server;
}

namespace fhirshift::testing {

class HaproxyProcess {
 public:
  // Servers are "host:port". HAProxy runs in the foreground (-db) as a child of the test.
  // `health_path`: what HAProxy's health check GETs. `edit` may change the rendered configuration
  // (a test of the fence's maximum hold shortens it).
  HaproxyProcess(const std::string& old_server, const std::string& new_server,
                 const std::string& health_path = "/healthz",
                 const std::function<std::string(std::string)>& edit = nullptr);
  ~HaproxyProcess();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string socket() const { return socket_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  // Sends one runtime API command (for assertions independent of the code under test).
  std::string command(const std::string& cmd) const;
  // Waits until `show servers state` shows `server` UP (op state 2) or time runs out.
  bool wait_until_up(const std::string& server, std::chrono::milliseconds timeout) const;

 private:
  TempDir dir_;
  std::string socket_;
  int port_ = 0;
  std::unique_ptr<Subprocess> proc_;
};

// An in-process plain FHIR server: nothing but what any FHIR server has.
//   GET /healthz (200 unless set_healthy(false)), GET /metadata (200 unless set_ready(false)),
//   GET /whoami -> name; POST anything = a write, stored (201, body = the request body), after
//   set_write_delay() if one is set (a write in flight when the fence goes up).
class TinyFhirServer {
 public:
  explicit TinyFhirServer(std::string name);
  ~TinyFhirServer();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
  void set_healthy(bool healthy) { healthy_ = healthy; }
  void set_ready(bool ready) { ready_ = ready; }
  void set_write_delay(std::chrono::milliseconds d) { write_delay_ms_ = d.count(); }
  // Bodies of the writes stored here.
  std::set<std::string> applied() const;
  // Writes that arrived here (stored or still being stored).
  int64_t received() const { return received_; }

 private:
  std::string name_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> healthy_{true};
  std::atomic<bool> ready_{true};
  std::atomic<int64_t> write_delay_ms_{0};
  std::atomic<int64_t> received_{0};
  mutable std::mutex mu_;
  std::set<std::string> applied_;
};

// A stand-in for the migrator's GET /progress: caught up, polling "now", unless told otherwise.
class FakeMigratorProgress {
 public:
  FakeMigratorProgress();
  ~FakeMigratorProgress();
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void set_caught_up(bool v) { caught_up_ = v; }
  void set_lag(double v) { lag_ = v; }
  // A migrator that stopped polling: lastPollAt no longer moves (the drain cannot finish).
  void set_frozen(bool v) { frozen_ = v; }
  // The control requests received (POST /pause, /resume, /poll), in order.
  std::vector<std::string> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> caught_up_{true};
  std::atomic<double> lag_{0.1};
  std::atomic<bool> frozen_{false};
  std::string frozen_at_ = "2020-01-01T00:00:00.000Z";
};

}  // namespace fhirshift::testing

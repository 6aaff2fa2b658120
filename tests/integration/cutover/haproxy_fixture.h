// Test fixtures for the cut-over: a real HAProxy (Debian's /usr/sbin/haproxy) started from
// tools/haproxy/fhirshift.cfg.in on free loopback ports with its runtime API socket in a temp dir,
// and small in-process HTTP servers (cpp-httplib) that play the FHIR servers' health and admin
// contract (fence holds writes, release forwards them) when the real `fhirshift serve` is not the
// subject of the test. Used by tests/integration/cutover and tests/integration/e2e.
#pragma once

#include <atomic>
#include <condition_variable>
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
  HaproxyProcess(const std::string& old_server, const std::string& new_server);
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

// An in-process stand-in for `fhirshift serve`'s health and admin contract:
//   GET /healthz, /readyz (200 unless set_healthy(false)), GET /whoami -> name
//   POST|PUT|DELETE anything else = a write: applied locally (201, body = id), or HELD while fenced,
//   or forwarded (after release?forward=URL) and the forward's answer relayed
//   POST /admin/fence, /admin/release[?forward=URL], GET /admin/status as documented in issue #7
class TinyFhirServer {
 public:
  explicit TinyFhirServer(std::string name);
  ~TinyFhirServer();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
  void set_healthy(bool healthy) { healthy_ = healthy; }
  void set_ready(bool ready) { ready_ = ready; }
  // Ids of writes applied here (not forwarded).
  std::set<std::string> applied() const;
  int64_t forwarded() const { return forwarded_; }
  int64_t held_max() const { return held_max_; }
  bool fenced() const;

 private:
  std::string name_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> healthy_{true};
  std::atomic<bool> ready_{true};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool fenced_ = false;
  std::string forward_;
  int64_t held_ = 0;
  int64_t in_flight_ = 0;
  std::set<std::string> applied_;
  std::atomic<int64_t> forwarded_{0};
  std::atomic<int64_t> held_max_{0};
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

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> caught_up_{true};
  std::atomic<double> lag_{0.1};
  std::atomic<bool> frozen_{false};
  std::string frozen_at_ = "2020-01-01T00:00:00.000Z";
};

}  // namespace fhirshift::testing

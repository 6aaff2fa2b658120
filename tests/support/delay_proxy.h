// A TCP proxy on a free loopback port in front of a server, adding an adjustable delay to every
// request: each chunk of bytes from a client waits `delay` before it is forwarded (answers go back
// at once). Put in front of FerretDB it is a source that answers slowly without being busy, for
// the migrator's --max-source-latency.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace fhirshift::testing {

class DelayProxy {
 public:
  explicit DelayProxy(int target_port);
  ~DelayProxy();
  DelayProxy(const DelayProxy&) = delete;
  DelayProxy& operator=(const DelayProxy&) = delete;

  int port() const { return port_; }
  void set_delay(std::chrono::milliseconds d) { delay_ms_ = d.count(); }

 private:
  void accept_loop();
  void pump(int from, int to, bool delayed);

  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int64_t> delay_ms_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;  // guards the connections' sockets and threads
  std::vector<int> fds_;
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

}  // namespace fhirshift::testing

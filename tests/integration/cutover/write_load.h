// A small write load through HAProxy for cut-over tests: a few threads POST unique bodies, record
// every acknowledged write, every failure, and which server answered (X-Fhirshift-Served-By).
#pragma once

#include <httplib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fhirshift::testing {

class WriteLoad {
 public:
  WriteLoad(std::string url, int threads) : url_(std::move(url)) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t] {
        httplib::Client cli(url_);
        cli.set_read_timeout(std::chrono::seconds(60));
        cli.set_keep_alive(true);
        for (int n = 0; !stop_; ++n) {
          std::string id = "w-" + std::to_string(t) + "-" + std::to_string(n);
          auto r = cli.Post("/Patient", id, "application/fhir+json");
          std::lock_guard lock(mu_);
          if (r && r->status >= 200 && r->status < 300) {
            acked_.insert(id);
            ++served_by_[r->get_header_value("X-Fhirshift-Served-By")];
          } else {
            failures_.push_back(id + ": " +
                                (r ? "HTTP " + std::to_string(r->status)
                                   : httplib::to_string(r.error())));
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      });
    }
  }
  ~WriteLoad() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::set<std::string> acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  std::vector<std::string> failures() {
    std::lock_guard lock(mu_);
    return failures_;
  }
  std::map<std::string, int> served_by() {
    std::lock_guard lock(mu_);
    return served_by_;
  }
  size_t acked_count() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }

 private:
  std::string url_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::set<std::string> acked_;
  std::vector<std::string> failures_;
  std::map<std::string, int> served_by_;
};

}  // namespace fhirshift::testing

// Retrying a step that failed because MongoDB was unreachable or refused it as a whole.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "mongo/error.h"

namespace fhirshift::migrate {

// Sleeps `d`, or less when `stop` is set meanwhile (checked every 50 ms).
inline void sleep_unless_stopped(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  for (auto until = std::chrono::steady_clock::now() + d; !stop && std::chrono::steady_clock::now() < until;)
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(std::chrono::milliseconds(50), d));
}

// Runs `attempt` until it succeeds, retrying mongo::MongoError with backoff (250 ms doubling up to
// 10 s) for up to `budget`; rethrows when the budget is spent or `stop` is set.
template <class F>
auto retry_mongo(const std::string& what, std::chrono::milliseconds budget, const std::atomic<bool>& stop,
                 F attempt) {
  using std::chrono::milliseconds;
  auto deadline = std::chrono::steady_clock::now() + budget;
  milliseconds backoff(250);
  for (int n = 1;; ++n) {
    try {
      return attempt();
    } catch (const mongo::MongoError& e) {
      if (stop || std::chrono::steady_clock::now() + backoff > deadline) throw;
      spdlog::warn("{} failed (attempt {}): {}; retrying in {} ms", what, n, e.what(), backoff.count());
      sleep_unless_stopped(backoff, stop);
      backoff = std::min<milliseconds>(backoff * 2, milliseconds(10000));
    }
  }
}

}  // namespace fhirshift::migrate

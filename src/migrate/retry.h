// Retrying a step that failed because MongoDB was unreachable or refused it as a whole.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "mongo/client.h"
#include "mongo/error.h"

namespace fhirshift::migrate {

// Sleeps `d`, or less when `stop` is set meanwhile (checked every 50 ms).
inline void sleep_unless_stopped(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  for (auto until = std::chrono::steady_clock::now() + d; !stop && std::chrono::steady_clock::now() < until;)
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(std::chrono::milliseconds(50), d));
}

// "5s", "1500 ms": a --retryTimeout as the operator may have written it.
inline std::string budget_text(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s" : std::to_string(d.count()) + " ms";
}

// Runs `attempt` until it succeeds, retrying mongo::MongoError with backoff (250 ms doubling up to
// 10 s) for up to `budget` from the moment the deployment at `endpoint` stopped serving; rethrows
// when `stop` is set, and throws "<what>: gave up after ..." naming the hosts when the budget is
// spent.
//
// The budget is kept, not overrun by the driver's own waits: before each retry the deployment is
// pinged with tries bounded by the time left (mongo::wait_until_reachable), so an attempt starts
// only once the server answers again; and the pools' serverSelectionTimeoutMS is capped at the
// budget (mongo::Uri::cap_server_selection_timeout), which bounds the first attempt. The moment
// of the outage is the failure, or, when the attempt waited for a server to select, the start
// of the attempt. (A server that accepts connections but never answers is bounded by the socket
// timeout, which is not capped: long scans need it.)
template <class F>
auto retry_mongo(const std::string& what, const mongo::Uri& endpoint, std::chrono::milliseconds budget,
                 const std::atomic<bool>& stop, F attempt) {
  using std::chrono::milliseconds;
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> deadline;  // set by the first failure
  milliseconds backoff(250);
  auto give_up = [&](int attempts, const mongo::MongoError& last) {
    return mongo::MongoError(what + ": gave up after " + std::to_string(attempts) + (attempts == 1 ? " attempt" : " attempts") + " over --retryTimeout " +
                                 budget_text(budget) + " (MongoDB at " + endpoint.hosts() + ")",
                             last);
  };
  for (int n = 1;; ++n) {
    const auto started = Clock::now();
    try {
      return attempt();
    } catch (const mongo::MongoError& e) {
      if (stop) throw;
      const auto now = Clock::now();
      if (!deadline) deadline = (e.domain() == MONGOC_ERROR_SERVER_SELECTION ? started : now) + budget;
      if (now >= *deadline) throw give_up(n, e);
      auto pause = std::min(backoff, std::chrono::duration_cast<milliseconds>(*deadline - now));
      spdlog::warn("{} failed (attempt {}): {}; retrying in {} ms", what, n, e.what(), pause.count());
      sleep_unless_stopped(pause, stop);
      if (stop) throw;
      try {
        mongo::wait_until_reachable(endpoint, *deadline);
      } catch (const mongo::MongoError& unreachable) {
        throw give_up(n, unreachable);
      }
      backoff = std::min<milliseconds>(backoff * 2, milliseconds(10000));
    }
  }
}

}  // namespace fhirshift::migrate

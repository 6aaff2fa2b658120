// The write gate behind POST /admin/fence and /admin/release (docs/cutover.md): while fenced, new
// writes are held (the request waits, it does not fail) and the fence call returns once the writes
// already in progress finished. A release lets held writes proceed locally, or forwards them, and
// every later write, to another server.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

namespace fhirshift::server {

class WriteGate {
 public:
  // `hold_limit`: at most this many writes are held at once (each holds a server thread; beyond
  // it a write is answered 503 + Retry-After so that reads keep a thread). `hold_timeout`: a write
  // held longer is answered 503 + Retry-After.
  WriteGate(int64_t hold_limit, std::chrono::milliseconds hold_timeout)
      : hold_limit_(hold_limit), hold_timeout_(hold_timeout) {}

  enum class Route { kLocal, kForward, kUnavailable };
  struct Admission {
    Route route = Route::kLocal;
    std::string forward_to;  // kForward
    std::string reason;      // kUnavailable
  };

  // Called before a write; waits while fenced. Every admission but kUnavailable must be followed
  // by exactly one leave().
  Admission enter();
  void leave();

  struct FenceState {
    int64_t held = 0;
    int64_t in_flight = 0;
  };
  // Holds new writes, then waits (at most `wait`) until no write is in progress.
  FenceState fence(std::chrono::milliseconds wait);
  // Lifts the fence; `forward_to` empty: writes are applied locally from now on. Returns the
  // number of writes that were held.
  int64_t release(const std::string& forward_to);

  struct Status {
    bool fenced = false;
    std::string forward_to;
    int64_t held = 0;
    int64_t in_flight = 0;
  };
  Status status() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable released_cv_;
  std::condition_variable idle_cv_;
  int64_t hold_limit_;
  std::chrono::milliseconds hold_timeout_;
  bool fenced_ = false;
  uint64_t generation_ = 0;  // bumped by each release: a held write proceeds on a release, even
                             // if a new fence came right after it
  std::string forward_to_;
  int64_t held_ = 0;
  int64_t in_flight_ = 0;
};

}  // namespace fhirshift::server

#include "server/write_gate.h"

namespace fhirshift::server {

WriteGate::Admission WriteGate::enter() {
  std::unique_lock lock(mu_);
  if (fenced_) {
    if (held_ >= hold_limit_)
      return {Route::kUnavailable, "", "too many writes are held by the fence"};
    ++held_;
    uint64_t gen = generation_;
    bool released =
        released_cv_.wait_for(lock, hold_timeout_, [&] { return generation_ != gen; });
    --held_;
    if (!released)
      return {Route::kUnavailable, "",
              "writes are paused for a cut-over and this one was held for " +
                  std::to_string(hold_timeout_.count() / 1000) + " s"};
  }
  ++in_flight_;
  if (forward_to_.empty()) return {Route::kLocal, "", ""};
  return {Route::kForward, forward_to_, ""};
}

void WriteGate::leave() {
  std::lock_guard lock(mu_);
  if (--in_flight_ == 0) idle_cv_.notify_all();
}

WriteGate::FenceState WriteGate::fence(std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  fenced_ = true;
  forward_to_.clear();
  idle_cv_.wait_for(lock, wait, [&] { return in_flight_ == 0; });
  return {held_, in_flight_};
}

int64_t WriteGate::release(const std::string& forward_to) {
  std::lock_guard lock(mu_);
  int64_t held = held_;
  fenced_ = false;
  forward_to_ = forward_to;
  ++generation_;
  released_cv_.notify_all();
  return held;
}

WriteGate::Status WriteGate::status() const {
  std::lock_guard lock(mu_);
  return {fenced_, forward_to_, held_, in_flight_};
}

}  // namespace fhirshift::server

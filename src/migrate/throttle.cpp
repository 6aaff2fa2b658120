#include "migrate/throttle.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

namespace fhirshift::migrate {
namespace {

using Seconds = std::chrono::duration<double>;

// Entries read at once after an idle spell: a tenth of a second's worth, so a limit holds over
// any window longer than that.
constexpr Seconds kBurst{0.1};

}  // namespace

Throttle::Throttle(Now now) : now_(std::move(now)) {}

void Throttle::set_max_rate(double entries_per_second) {
  std::lock_guard lock(mutex_);
  max_rate_ = std::max(0.0, entries_per_second);
  next_free_ = {};  // a new limit starts without the old one's debt
  generation_++;
}

void Throttle::set_max_source_latency(std::chrono::milliseconds d) {
  std::lock_guard lock(mutex_);
  max_latency_ms_ = std::max<int64_t>(0, d.count());
  if (max_latency_ms_ == 0) latency_rate_ = 0;
  generation_++;
}

void Throttle::pause(const std::string& by) {
  {
    std::lock_guard lock(mutex_);
    paused_by_ = by;
  }
  paused_ = true;
  generation_++;
}

void Throttle::resume() {
  std::lock_guard lock(mutex_);
  paused_ = false;
  next_free_ = {};
  generation_++;
}

double Throttle::effective_rate_locked() const {
  double r = max_rate_;
  if (latency_rate_ > 0) r = r > 0 ? std::min(r, latency_rate_) : latency_rate_;
  return r;
}

double Throttle::rate_limit() const {
  std::lock_guard lock(mutex_);
  return effective_rate_locked();
}

Throttle::Clock::duration Throttle::reserve(int64_t n, Clock::duration busy) {
  std::lock_guard lock(mutex_);
  Clock::time_point now = now_();
  adjust_locked(now);
  admitted_since_adjust_ += n;
  double rate = effective_rate_locked();
  if (rate <= 0) {
    next_free_ = now;
    return Clock::duration::zero();
  }
  auto burst = std::chrono::duration_cast<Clock::duration>(kBurst) +
               std::max(busy, Clock::duration::zero());
  Clock::time_point start = std::max(next_free_, now - burst);
  next_free_ =
      start + std::chrono::duration_cast<Clock::duration>(Seconds(static_cast<double>(n) / rate));
  if (start <= now) return Clock::duration::zero();
  last_wait_at_ = now;
  return start - now;
}

bool Throttle::admit(const std::function<bool()>& stop, Clock::duration busy) {
  if (paused_ || stop()) return false;
  auto until = Clock::now() + reserve(1, busy);
  for (auto now = Clock::now(); now < until; now = Clock::now()) {
    if (paused_ || stop()) return false;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(until - now, std::chrono::milliseconds(50)));
  }
  return true;
}

void Throttle::record_latency(std::chrono::microseconds d) {
  std::lock_guard lock(mutex_);
  Clock::time_point now = now_();
  samples_.emplace_back(now, static_cast<double>(d.count()) / 1000.0);
  // Bounded whatever the read rate: the window's p90 needs only the recent ones.
  while (samples_.size() > 2000) samples_.pop_front();
  adjust_locked(now);
}

double Throttle::p90_locked(Clock::time_point since) const {
  std::vector<double> v;
  for (const auto& [at, ms] : samples_)
    if (at > since) v.push_back(ms);
  if (v.empty()) return -1;
  size_t k = static_cast<size_t>(std::ceil(0.9 * static_cast<double>(v.size()))) - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

void Throttle::adjust_locked(Clock::time_point now) {
  if (last_adjust_ == Clock::time_point{}) {
    last_adjust_ = now;
    return;
  }
  auto elapsed = now - last_adjust_;
  if (elapsed < kAdjustEvery) return;
  rates_.emplace_back(now, static_cast<double>(admitted_since_adjust_) / Seconds(elapsed).count());
  admitted_since_adjust_ = 0;
  last_adjust_ = now;
  while (!samples_.empty() && samples_.front().first < now - kSampleWindow) samples_.pop_front();
  while (!rates_.empty() && rates_.front().first < now - kSampleWindow) rates_.pop_front();

  const int64_t limit_ms = max_latency_ms_;
  if (limit_ms <= 0) {
    latency_rate_ = 0;
    return;
  }
  // Only samples taken since the last cut decide: the older ones show the load the cut answered.
  Clock::time_point since = std::max(now - kSampleWindow, last_cut_);
  size_t fresh = static_cast<size_t>(std::count_if(samples_.begin(), samples_.end(),
                                                   [&](const auto& s) { return s.first > since; }));
  if (fresh < kMinSamples) return;
  double p90 = p90_locked(since);
  if (p90 > static_cast<double>(limit_ms)) {
    if (latency_rate_ == 0) {
      // The goal of the recovery: the best the reader did lately (the last second alone may
      // already be slowed down by the source).
      rate_before_cut_ = 10 * kMinRate;
      for (const auto& [at, rate] : rates_) rate_before_cut_ = std::max(rate_before_cut_, rate);
    }
    double base = latency_rate_ > 0 ? latency_rate_ : rate_before_cut_;
    if (max_rate_ > 0) base = std::min(base, max_rate_);
    latency_rate_ = std::max(kMinRate, base / 2);
    last_cut_ = now;
    spdlog::info(
        "throttle: source latency p90 {:.0f} ms is above --max-source-latency {} ms: reading at "
        "most {:.0f} entries/s",
        p90, limit_ms, latency_rate_);
  } else if (latency_rate_ > 0) {
    double goal = max_rate_ > 0 ? std::min(rate_before_cut_, max_rate_) : rate_before_cut_;
    latency_rate_ += std::max(kMinRate, rate_before_cut_ / 10);
    if (latency_rate_ >= goal) {
      latency_rate_ = 0;
      spdlog::info(
          "throttle: source latency p90 {:.0f} ms is within {} ms again: latency limit lifted", p90,
          limit_ms);
    }
  }
}

Throttle::State Throttle::state_locked(Clock::time_point now) const {
  State s;
  s.paused = paused_;
  if (s.paused) s.paused_by = paused_by_;
  s.max_rate = max_rate_;
  s.max_source_latency_ms = max_latency_ms_;
  s.rate_limit = effective_rate_locked();
  s.latency_p90_ms = p90_locked(now - kSampleWindow);
  if (s.paused) {
    s.throttled = true;
    s.reason_kind = "paused";
    s.reason = "paused by the " + paused_by_ +
               ": nothing is read until POST /resume (fhirshift ctl resume)";
  } else if (latency_rate_ > 0 && (max_rate_ == 0 || latency_rate_ < max_rate_)) {
    s.throttled = true;
    s.reason_kind = "source latency";
    s.reason =
        fmt::format("source latency p90 {:.0f} ms (limit {} ms): reading at most {:.0f} entries/s",
                    std::max(0.0, s.latency_p90_ms), s.max_source_latency_ms, latency_rate_);
  } else if (max_rate_ > 0 && last_wait_at_ != Clock::time_point{} &&
             now - last_wait_at_ < kThrottledFor) {
    s.throttled = true;
    s.reason_kind = "max rate";
    s.reason = fmt::format("max rate {:g} entries/s", max_rate_);
  }
  return s;
}

Throttle::State Throttle::state() const {
  std::lock_guard lock(mutex_);
  return state_locked(now_());
}

}  // namespace fhirshift::migrate

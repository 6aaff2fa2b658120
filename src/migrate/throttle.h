// How fast the migrator may read its source: the operator's limits (--max-rate,
// --max-source-latency, pause), changeable while it runs, and the adaptive limit that follows the
// source's response time.
//
// The reader asks `reserve(n)` before taking n more entries and waits what it is told (a token
// bucket at the effective rate, with a burst of a tenth of a second). The effective rate is the
// lower of --max-rate and the latency limit: when the p90 of the source's recent response times
// (the migrator's own reads and a probe, `record_latency`) exceeds --max-source-latency, the rate
// is halved (at most once per fresh set of samples); while it stays below, the rate grows by a
// tenth of the rate seen before the first cut each second, and the latency limit is lifted once
// it is back there (AIMD, as TCP backs off a congested link).
//
// The clock is injectable so that the arithmetic is tested without sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

namespace fhirshift::migrate {

class Throttle {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;

  struct State {
    bool paused = false;
    std::string paused_by;              // "operator" or "cutover" (a cut-over's final verify)
    double max_rate = 0;                // entries/s; 0: none
    int64_t max_source_latency_ms = 0;  // 0: none
    double rate_limit = 0;              // the rate in force now (0: none)
    double latency_p90_ms = -1;         // of the recent samples; -1: none
    bool throttled = false;             // paused, or a limit held the reader back just now
    std::string reason;                 // why it is throttled, for the log and the progress line
    std::string reason_kind;            // "paused", "max rate", "source latency" or ""
  };

  explicit Throttle(Now now = Clock::now);

  // --- the operator (any thread) ---
  void set_max_rate(double entries_per_second);              // 0: no limit
  void set_max_source_latency(std::chrono::milliseconds d);  // 0: no limit
  // `by`: who paused, shown in the state ("operator", or "cutover" for a cut-over's final verify,
  // which the next cut-over may resume when the one that paused was interrupted).
  void pause(const std::string& by = "operator");
  void resume();
  bool paused() const { return paused_.load(); }
  // Continuous: the reader polls now instead of finishing its wait between polls (the cut-over's
  // drain asks, while writes are held, so that one poll proves the target complete).
  void request_poll() { poll_requested_ = true; }
  // Changes with every operator action, so the reader can start a fresh read under the new limits.
  uint64_t generation() const { return generation_.load(); }
  bool limits_latency() const { return max_latency_ms_.load() > 0; }

  // --- the reader ---
  // Takes `n` entries and returns how long to wait before reading them (zero when unlimited).
  // `busy`: how long a reader that reads and writes in turn (the file import) has been writing
  // since it last read. Turns missed meanwhile may be taken at once, on top of the burst, so that
  // such a reader reaches the limit however long its writes take; the limit then holds over any
  // window longer than one write. Idle time (waiting for a poll, a pause) is no such licence.
  Clock::duration reserve(int64_t n, Clock::duration busy = Clock::duration::zero());
  // Waits for one entry's turn, in slices of at most 50 ms. False when paused or `stop()` holds
  // meanwhile (the turn is then left unused). `busy` as for reserve().
  bool admit(const std::function<bool()>& stop, Clock::duration busy = Clock::duration::zero());
  // The rate in force now (0: none), for readers that cut their chunks finer under a limit.
  double rate_limit() const;
  // A source response time: one of the reader's own reads, or a probe.
  void record_latency(std::chrono::microseconds d);
  // True once per request_poll().
  bool take_poll_request() { return poll_requested_.exchange(false); }

  State state() const;

  // Tuning, public for the tests.
  static constexpr double kMinRate = 1.0;  // the latency limit never stops the copy
  static constexpr auto kAdjustEvery = std::chrono::seconds(1);
  static constexpr auto kSampleWindow = std::chrono::seconds(5);
  static constexpr size_t kMinSamples = 3;  // fresh samples needed for a decision
  static constexpr auto kThrottledFor = std::chrono::seconds(2);  // "throttled" after a wait
  // Under a rate limit readers hand on what they read in this time (a smaller chunk than
  // unlimited): the target then follows the limited reads closely, and a pause waits for no more.
  static constexpr auto kLimitedChunkAge = std::chrono::milliseconds(250);

 private:
  void adjust_locked(Clock::time_point now);
  double effective_rate_locked() const;
  double p90_locked(Clock::time_point since) const;
  State state_locked(Clock::time_point now) const;

  Now now_;
  mutable std::mutex mutex_;
  std::atomic<bool> poll_requested_{false};
  std::string paused_by_ = "operator";  // guarded by mutex_
  std::atomic<bool> paused_{false};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> max_latency_ms_{0};
  double max_rate_ = 0;
  // The token bucket: the moment the next entry may be read.
  Clock::time_point next_free_{};
  Clock::time_point last_wait_at_{};
  // The adaptive limit: 0 while the source answers within the latency limit.
  double latency_rate_ = 0;
  double rate_before_cut_ =
      0;  // what the reader achieved before the first cut: the goal of recovery
  Clock::time_point last_adjust_{};
  Clock::time_point last_cut_{};
  int64_t admitted_since_adjust_ = 0;
  std::deque<std::pair<Clock::time_point, double>> rates_;    // entries/s of each recent interval
  std::deque<std::pair<Clock::time_point, double>> samples_;  // (when, ms)
};

}  // namespace fhirshift::migrate

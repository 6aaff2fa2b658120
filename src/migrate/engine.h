// The migration engine: reader -> transform/write partitions -> journal checkpoint.
//
// A reader thread polls the source in `_id` order into a bounded queue of chunks (memory stays
// flat whatever the source size); each chunk is applied by the Applier in parallel partitions and
// then checkpointed in the recovery journal. AdHoc stops at the source's high-water mark seen at
// start; Continuous keeps polling, each poll one read from the late-entry window below the
// checkpoint, so that new and late entries come from the same pass over the source.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "migrate/apply.h"
#include "migrate/options.h"
#include "migrate/throttle.h"

namespace fhirshift::migrate {

// Live figures, read by the progress log, /progress and /metrics while the engine runs.
class Progress {
 public:
  void set_phase(const std::string& phase);
  void set_mode(const std::string& mode);
  void add(const Tally& chunk, std::chrono::microseconds batch_latency);
  void set_total_estimate(int64_t n) { total_estimate_ = n; }
  // A poll of the source begins; returns its number (1, 2, ...). The reader is `reading` from here
  // until reading_ended().
  int64_t poll_begun() {
    reading_ = true;
    return ++polls_started_;
  }
  // The reader has no query on the source: its poll is read and handed on, or was abandoned (a
  // pause, a changed limit), or the reader stopped. A cut-over pauses the migrator before its
  // fence and waits for this, so that the poll that proves the drain starts at once after it.
  void reading_ended() { reading_ = false; }
  // Every chunk of poll `number`, which started at `poll_started`, is applied: the target holds
  // everything committed in the source before that moment (late entries aside).
  void poll_done(std::chrono::system_clock::time_point poll_started, int64_t number);
  void chunk_read(const std::string& last_id);
  void checkpoint(const std::string& id);
  void late_entries(int64_t n) { late_entries_ += n; }
  void set_error(const std::string& message);
  // The run's throttle, whose state /progress, /metrics and the progress line show.
  void attach(const Throttle* throttle) { throttle_ = throttle; }

  Tally tally() const;
  // The initial copy is done (a whole poll was applied) and the target follows the source within
  // max(5 s, 3 poll intervals): under steady writes a poll rarely finds nothing, so "the last poll
  // was empty" would almost never hold. Never while paused: a cut-over must not start on a
  // migrator that the operator stopped from following the source.
  bool caught_up() const { return caught_up_at(lag_seconds()); }
  void set_poll_interval(std::chrono::milliseconds d) { poll_interval_ms_ = d.count(); }
  double lag_seconds() const;
  // The /progress document: mode, phase, caughtUp, lagSeconds, entriesRead, entriesWritten,
  // quarantined, conflicts, errors, recentProblems, lastPollAt, pollsStarted, pollsDone (a poll
  // numbered above a pollsStarted read at some moment began after it), reading (a poll is reading
  // the source), sourceHighWaterId, checkpointId,
  // paused, maxRate, maxSourceLatencyMs, throttled, throttleReason, ...
  std::string to_json() const;
  std::string to_prometheus() const;
  // "12,345 / ~100,000 entries (12%), 4,321 entries/s, ETA 00:00:21, lag 0.4 s"
  std::string summary_line() const;

 private:
  mutable std::mutex mutex_;
  std::string phase_ = "starting";
  std::string mode_;
  Tally tally_;
  std::string high_water_id_;
  std::string checkpoint_id_;
  std::string last_error_;
  std::chrono::system_clock::time_point started_ = std::chrono::system_clock::now();
  std::chrono::system_clock::time_point last_poll_at_{};
  std::chrono::system_clock::time_point copied_up_to_{};  // everything committed before it is in
  bool caught_up_at(double lag) const {
    return polled_ && lag <= caught_up_lag_seconds() && !(throttle_ && throttle_->paused());
  }
  const Throttle* throttle_ = nullptr;
  double caught_up_lag_seconds() const { return std::max(5.0, 3 * poll_interval_ms_.load() / 1000.0); }
  std::atomic<bool> polled_{false};
  std::atomic<int64_t> polls_started_{0};
  std::atomic<bool> reading_{false};
  int64_t polls_done_ = 0;
  std::atomic<int64_t> poll_interval_ms_{5000};
  std::atomic<int64_t> total_estimate_{0};
  std::atomic<int64_t> late_entries_{0};
  // The newest problem messages (quarantine reasons, conflicts, refused writes), newest last: the
  // report keeps the first ones, an operator watching a live run wants the latest.
  std::deque<std::string> recent_problems_;
  int64_t batches_ = 0;
  double batch_seconds_sum_ = 0;
  double last_batch_seconds_ = 0;
};

struct RunResult {
  int exit_code = 0;
  Tally tally;
  std::chrono::milliseconds duration{0};
  std::string report;  // the summary report text
};

class Engine {
 public:
  // `stop` is set by a signal handler: in-flight chunks finish, the journal is saved, run returns.
  Engine(Options options, const std::atomic<bool>& stop);
  RunResult run();
  const Progress& progress() const { return progress_; }
  // Paused, limited and released while the run goes on (the metrics port's POST /pause, ...).
  Throttle& throttle() { return throttle_; }

 private:
  Options options_;
  const std::atomic<bool>& stop_;
  Throttle throttle_;
  Progress progress_;
};

}  // namespace fhirshift::migrate

// What the migrator's dashboard charts: the progress counters sampled every second and kept in the
// process for the last minutes, so that a page opened late (or reloaded) still shows the trend.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fhirshift::dashboard {

struct Sample {
  int64_t at_ms = 0;  // Unix time in milliseconds, set by the recorder
  int64_t read = 0;
  int64_t written = 0;
  double lag_seconds = 0;
  int64_t quarantined = 0;
  int64_t conflicts = 0;
};

// A fixed-size ring: memory stays flat however long the migration runs.
class ProgressHistory {
 public:
  explicit ProgressHistory(size_t capacity = 600);
  void record(const Sample& s);
  // Oldest first; only samples taken after `since_ms` (0: all).
  std::vector<Sample> samples(int64_t since_ms = 0) const;
  // {"capacity":N,"samples":[{"t":ms,"read":..,"written":..,"lag":..,"quarantined":..,"conflicts":..}]}
  std::string to_json(int64_t since_ms = 0) const;
  size_t capacity() const { return ring_.size(); }

 private:
  mutable std::mutex mutex_;
  std::vector<Sample> ring_;
  size_t next_ = 0;
  size_t count_ = 0;
};

// Records `sample()` into `history` every `every` on its own thread, from construction until
// destruction (which wakes and joins the thread at once).
class HistoryRecorder {
 public:
  HistoryRecorder(ProgressHistory& history, std::function<Sample()> sample,
                  std::chrono::milliseconds every = std::chrono::seconds(1));
  ~HistoryRecorder();
  HistoryRecorder(const HistoryRecorder&) = delete;
  HistoryRecorder& operator=(const HistoryRecorder&) = delete;

 private:
  void loop();

  ProgressHistory& history_;
  std::function<Sample()> sample_;
  std::chrono::milliseconds every_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace fhirshift::dashboard

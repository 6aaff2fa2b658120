#include "dashboard/history.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace fhirshift::dashboard {

ProgressHistory::ProgressHistory(size_t capacity) : ring_(capacity) {
  if (capacity == 0)
    throw std::invalid_argument("ProgressHistory needs a capacity of at least 1 sample");
}

void ProgressHistory::record(const Sample& s) {
  std::lock_guard lock(mutex_);
  ring_[next_] = s;
  next_ = (next_ + 1) % ring_.size();
  if (count_ < ring_.size()) ++count_;
}

std::vector<Sample> ProgressHistory::samples(int64_t since_ms) const {
  std::lock_guard lock(mutex_);
  std::vector<Sample> out;
  out.reserve(count_);
  size_t oldest = (next_ + ring_.size() - count_) % ring_.size();
  for (size_t i = 0; i < count_; ++i) {
    const Sample& s = ring_[(oldest + i) % ring_.size()];
    if (s.at_ms > since_ms) out.push_back(s);
  }
  return out;
}

std::string ProgressHistory::to_json(int64_t since_ms) const {
  nlohmann::json list = nlohmann::json::array();
  for (const Sample& s : samples(since_ms))
    list.push_back({{"t", s.at_ms},
                    {"read", s.read},
                    {"written", s.written},
                    {"lag", s.lag_seconds},
                    {"quarantined", s.quarantined},
                    {"conflicts", s.conflicts}});
  return nlohmann::json{{"capacity", ring_.size()}, {"samples", list}}.dump();
}

HistoryRecorder::HistoryRecorder(ProgressHistory& history, std::function<Sample()> sample,
                                 std::chrono::milliseconds every)
    : history_(history), sample_(std::move(sample)), every_(every), thread_([this] { loop(); }) {}

HistoryRecorder::~HistoryRecorder() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void HistoryRecorder::loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    Sample s = sample_();
    s.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    history_.record(s);
    wake_.wait_for(lock, every_, [this] { return stop_; });
  }
}

}  // namespace fhirshift::dashboard

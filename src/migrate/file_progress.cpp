#include "migrate/file_progress.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "migrate/report.h"

namespace fhirshift::migrate {
namespace {

std::string format_hms(int64_t seconds) {
  return fmt::format("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
}

}  // namespace

std::string format_bytes(int64_t n) {
  if (n >= (int64_t{1} << 30)) return fmt::format("{:.2f} GB", static_cast<double>(n) / (1 << 30));
  if (n >= (int64_t{1} << 20)) return fmt::format("{:.1f} MB", static_cast<double>(n) / (1 << 20));
  return fmt::format("{} KB", (n + 1023) / 1024);
}

double FileProgress::entries_per_second() const { return seconds > 0 ? static_cast<double>(entries) / seconds : 0; }

std::optional<int64_t> FileProgress::eta_seconds() const {
  int64_t done = bytes_read - bytes_at_start;
  if (done <= 0 || seconds <= 0) return std::nullopt;
  return std::llround(static_cast<double>(bytes_total - bytes_read) * seconds / static_cast<double>(done));
}

std::string FileProgress::line() const {
  int64_t percent = bytes_total > 0 ? 100 * bytes_read / bytes_total : 100;
  auto eta = eta_seconds();
  std::string line = fmt::format("{} of {} read ({}%), {} file entries, {} entries/s, ETA {}",
                                 format_bytes(bytes_read), format_bytes(bytes_total), percent,
                                 with_commas(entries), with_commas(std::llround(entries_per_second())),
                                 eta ? format_hms(*eta) : "unknown");
  if (!throttled.empty()) line += ", THROTTLED: " + throttled;
  return line;
}

std::string FileProgress::json(const std::string& progress_json) const {
  nlohmann::json j = nlohmann::json::parse(progress_json);
  j["bytesRead"] = bytes_read;
  j["bytesTotal"] = bytes_total;
  j["fileEntries"] = entries;
  j["entriesPerSecond"] = std::llround(entries_per_second());
  if (auto eta = eta_seconds()) j["etaSeconds"] = *eta;
  return j.dump();
}

}  // namespace fhirshift::migrate

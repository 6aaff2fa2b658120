#include "migrate/options.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace fhirshift::migrate {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

ConflictPolicy parse_conflict_policy(const std::string& text) {
  std::string t = lower(text);
  if (t == "true") return ConflictPolicy::kOverwrite;
  if (t == "false") return ConflictPolicy::kKeep;
  if (t == "erroronconflict") return ConflictPolicy::kErrorOnConflict;
  if (t == "onlyifnewer") return ConflictPolicy::kOnlyIfNewer;
  throw std::invalid_argument("--update-existing-resources: '" + text +
                              "' is not one of true, false, ErrorOnConflict, OnlyIfNewer");
}

std::string to_string(ConflictPolicy policy) {
  switch (policy) {
    case ConflictPolicy::kOverwrite: return "true";
    case ConflictPolicy::kKeep: return "false";
    case ConflictPolicy::kErrorOnConflict: return "ErrorOnConflict";
    case ConflictPolicy::kOnlyIfNewer: return "OnlyIfNewer";
  }
  return "?";
}

RunningMode parse_running_mode(const std::string& text) {
  std::string t = lower(text);
  if (t == "adhoc") return RunningMode::kAdHoc;
  if (t == "continuous") return RunningMode::kContinuous;
  throw std::invalid_argument("--srcMongoRunningMode: '" + text + "' is not AdHoc or Continuous");
}

std::chrono::milliseconds parse_interval(const std::string& text) {
  auto fail = [&] {
    return std::invalid_argument("interval '" + text +
                                 "': expected e.g. 5s, 200ms, 2m, 1h or 00:00:05");
  };
  if (text.empty()) throw fail();
  if (text.find(':') != std::string::npos) {
    int h = 0, m = 0;
    double s = 0;
    char tail = 0;
    if (std::sscanf(text.c_str(), "%d:%d:%lf%c", &h, &m, &s, &tail) != 3 || h < 0 || m < 0 || s < 0)
      throw fail();
    return std::chrono::milliseconds(static_cast<int64_t>((h * 3600.0 + m * 60.0 + s) * 1000 + 0.5));
  }
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    throw fail();
  }
  std::string unit = lower(text.substr(used));
  double factor = 0;
  if (unit.empty() || unit == "s") factor = 1000;
  else if (unit == "ms") factor = 1;
  else if (unit == "m" || unit == "min") factor = 60000;
  else if (unit == "h") factor = 3600000;
  else throw fail();
  if (value < 0) throw fail();
  return std::chrono::milliseconds(static_cast<int64_t>(value * factor + 0.5));
}

std::string format_interval(std::chrono::milliseconds interval) {
  int64_t ms = interval.count();
  char buf[64];
  int64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
  if (frac == 0)
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(s));
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld.%03lld0000", static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(s), static_cast<long long>(frac));
  return buf;
}

}  // namespace fhirshift::migrate

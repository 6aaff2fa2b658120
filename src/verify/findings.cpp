#include "verify/findings.h"

#include <cstdio>
#include <ctime>

namespace fhirshift::verify {

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kMissing: return "missing";
    case Kind::kExtra: return "extra";
    case Kind::kChanged: return "changed";
    case Kind::kBadState: return "bad state";
  }
  return "?";
}

void Findings::add(Difference d) {
  const bool target_side = d.kind == Kind::kExtra || d.kind == Kind::kBadState;
  const std::optional<int64_t>& hw = target_side ? target_hw_ : source_hw_;
  d.in_flight = d.lu_ms && (!hw || *d.lu_ms > *hw);
  if (d.in_flight)
    in_flight_ += d.count;
  else
    counts_[static_cast<int>(d.kind)] += d.count;
  if (kept_.size() < kMaxKept)
    kept_.push_back(std::move(d));
  else
    ++dropped_;
}

void Findings::merge(Findings&& other) {
  for (int i = 0; i < 4; ++i) counts_[i] += other.counts_[i];
  in_flight_ += other.in_flight_;
  quarantined_ += other.quarantined_;
  dropped_ += other.dropped_;
  for (auto& d : other.kept_) {
    if (kept_.size() < kMaxKept)
      kept_.push_back(std::move(d));
    else
      ++dropped_;
  }
  other.kept_.clear();
}

int64_t Findings::total() const { return counts_[0] + counts_[1] + counts_[2] + counts_[3]; }

void Findings::set_quarantine(Difference& d, std::string why) {
  if (d.quarantine.empty() && !d.in_flight) ++quarantined_;
  d.quarantine = std::move(why);
}

std::string Findings::verdict(int64_t entries_compared) const {
  std::string notes = std::to_string(entries_compared) + " entries compared";
  if (quarantined_ > 0) notes += "; " + std::to_string(quarantined_) + " quarantined";
  if (in_flight_ > 0)
    notes += "; " + std::to_string(in_flight_) +
             " in flight (newer than the start point: verify again once writes are fenced)";
  if (equal()) return "EQUAL (" + notes + ")";
  return "DIFFERENT: " + std::to_string(count(Kind::kMissing)) + " missing, " +
         std::to_string(count(Kind::kExtra)) + " extra, " + std::to_string(count(Kind::kChanged)) +
         " changed, " + std::to_string(count(Kind::kBadState)) + " bad state (" + notes + ")";
}

nlohmann::json to_json(const Difference& d) {
  nlohmann::json j;
  j["kind"] = kind_name(d.kind);
  j["id"] = d.id;
  if (!d.resource.empty()) j["resource"] = d.resource;
  if (d.lu_ms) j["lu"] = format_iso8601(*d.lu_ms);
  j["detail"] = d.detail;
  j["inFlight"] = d.in_flight;
  if (d.count != 1) j["count"] = d.count;
  if (!d.quarantine.empty()) j["quarantine"] = d.quarantine;
  return j;
}

std::string format_iso8601(int64_t ms) {
  int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  int frac = static_cast<int>(ms - secs * 1000);
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

std::optional<int64_t> parse_iso8601(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  int consumed = 0;
  size_t pos = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) ==
      6) {
    pos = static_cast<size_t>(consumed);
  } else if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &consumed) == 3 &&
             static_cast<size_t>(consumed) == text.size()) {
    pos = text.size();
  } else {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  int64_t millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 3) {
        millis = millis * 10 + (text[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    while (digits++ < 3) millis *= 10;
  }
  int64_t offset = 0;
  if (pos < text.size()) {
    char c = text[pos];
    if ((c == 'Z' || c == 'z') && pos + 1 == text.size()) {
      pos = text.size();
    } else if (c == '+' || c == '-') {
      int oh = 0, om = 0;
      if (std::sscanf(text.c_str() + pos + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
      offset = (oh * 3600LL + om * 60LL) * (c == '+' ? 1 : -1);
    } else {
      return std::nullopt;
    }
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  int64_t secs = static_cast<int64_t>(::timegm(&tm)) - offset;
  return secs * 1000 + millis;
}

}  // namespace fhirshift::verify

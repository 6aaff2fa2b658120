#include "verify/findings.h"

#include <algorithm>

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
  auto newer = [](const std::optional<int64_t>& lu, const std::optional<int64_t>& start) {
    return lu && (!start || *lu > *start);
  };
  d.in_flight = newer(d.lu_ms, hw);
  if (d.kind == Kind::kBadState)
    d.in_flight = d.in_flight || newer(d.newest_source_lu_ms, source_hw_) || newer(d.newest_target_lu_ms, target_hw_);
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
  for (auto& a : other.accounted_) add_accounted(std::move(a));
  other.accounted_.clear();
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

void Findings::account_quarantined(
    const std::function<std::optional<AccountedEntry>(const Difference&)>& decide) {
  std::erase_if(kept_, [&](const Difference& d) {
    if (d.kind != Kind::kMissing || d.in_flight || d.quarantine.empty()) return false;
    std::optional<AccountedEntry> account = decide(d);
    if (!account) return false;
    counts_[static_cast<int>(Kind::kMissing)] -= d.count;
    --quarantined_;
    add_accounted(std::move(*account));
    return true;
  });
}

void Findings::add_accounted(AccountedEntry entry) {
  for (const auto& a : accounted_)
    if (a.id == entry.id) return;
  accounted_.push_back(std::move(entry));
}

int64_t Findings::accounted(AccountedEntry::How how) const {
  return std::count_if(accounted_.begin(), accounted_.end(),
                       [how](const AccountedEntry& a) { return a.how == how; });
}

std::string Findings::verdict(int64_t entries_compared) const {
  std::string notes = std::to_string(entries_compared) + " entries compared";
  if (quarantined_ > 0) notes += "; " + std::to_string(quarantined_) + " quarantined";
  auto entries = [](int64_t n) {
    return std::to_string(n) + (n == 1 ? " quarantined entry " : " quarantined entries ");
  };
  if (int64_t n = accounted(AccountedEntry::How::kAccepted))
    notes += "; " + entries(n) + "accepted";
  if (int64_t n = accounted(AccountedEntry::How::kSuperseded))
    notes += "; " + entries(n) + "superseded";
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

}  // namespace fhirshift::verify

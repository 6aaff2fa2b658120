// What a verify found, and how it is told: the verdict line the cut-over parses, the text for the
// operator and the JSON report (docs/verify.md lists every key).
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common/iso8601.h"

namespace fhirshift::verify {

enum class Kind { kMissing, kExtra, kChanged, kBadState };
const char* kind_name(Kind kind);  // "missing", "extra", "changed", "bad state"

// A resource: (im, type, res_id). Contained ids are unique only inside their container, so for a
// contained entry the key can name several resources; callers treat it as a lookup key only.
struct ResourceKey {
  std::string im, type, res_id;
  auto operator<=>(const ResourceKey&) const = default;
};

struct Difference {
  Kind kind = Kind::kChanged;
  std::string id;                // the entry's _id; for bad state, the resource's newest entry
  std::optional<bson_oid_t> oid;  // when `id` is an ObjectId
  std::optional<ResourceKey> key;
  std::string resource;  // "Fhir4.0 Patient/123 v2" when known
  std::optional<int64_t> lu_ms;  // decides "in flight"
  // Bad state only: the newest `lu` of the resource whose versions decide the state (for a
  // contained entry, its container's resource) on each side, when looked up. A version newer than
  // that side's start point is being copied, so the state is in flight.
  std::optional<int64_t> newest_source_lu_ms, newest_target_lu_ms;
  std::string detail;
  bool in_flight = false;
  std::string quarantine;  // "<reason>: <message>" when the target's quarantine collection has it
  int64_t count = 1;       // entries it stands for (counts mode: a whole cell)
};

// A source entry the target does not have, accounted for by the target's quarantine: the
// operator accepted its absence (`fhirshift quarantine accept`), or a newer version of its
// resource is in the target (superseded; quarantine/store.h has the rule). Not a difference.
struct AccountedEntry {
  enum class How { kAccepted, kSuperseded };
  How how = How::kAccepted;
  std::string id;
  std::string resource;
  std::string quarantine;        // "<reason>: <message>"
  std::string by;                // accepted: who; superseded: the newer target entry's _id
  std::optional<int64_t> at_ms;  // accepted: when
  std::string note;              // accepted: why
};

// Counts every difference, keeps the first ones for the report and for --repair. Memory stays
// bounded: beyond `kMaxKept` differences only the counts grow.
class Findings {
 public:
  static constexpr size_t kMaxKept = 100000;

  // Entries newer than the start point are "in flight": source-side differences are judged by the
  // source's high-water `lu`, target-only ones (extra, bad state) by the target's. nullopt: the
  // side was empty at the start, so everything on it is new. A bad state is also in flight when
  // its resource (or its container's resource) has a version newer than either start point.
  Findings(std::optional<int64_t> source_high_water_ms, std::optional<int64_t> target_high_water_ms)
      : source_hw_(source_high_water_ms), target_hw_(target_high_water_ms) {}

  void add(Difference d);
  // Entries newer than the start point that were only counted (counts mode).
  void add_in_flight(int64_t n) { in_flight_ += n; }
  // No differences, the same start points.
  Findings empty_copy() const { return Findings(source_hw_, target_hw_); }
  // Moves `other`'s differences and counters in (results of a parallel pass).
  void merge(Findings&& other);

  int64_t count(Kind kind) const { return counts_[static_cast<int>(kind)]; }
  int64_t in_flight() const { return in_flight_; }
  int64_t quarantined() const { return quarantined_; }
  int64_t total() const;  // differences that are not in flight
  bool equal() const { return total() == 0; }
  // Every difference is kept (so --repair can handle them all).
  bool complete() const { return dropped_ == 0; }
  std::vector<Difference>& kept() { return kept_; }
  const std::vector<Difference>& kept() const { return kept_; }
  // Marks a kept difference as quarantined (counted once).
  void set_quarantine(Difference& d, std::string why);
  // Kept quarantined missing entries (not in flight) for which `decide` returns an account stop
  // being differences. An entry already accounted for (by `_id`) is not added twice.
  void account_quarantined(
      const std::function<std::optional<AccountedEntry>(const Difference&)>& decide);
  // An entry that no pass counted as a difference (counts mode) but the quarantine accounts for.
  void add_accounted(AccountedEntry entry);
  const std::vector<AccountedEntry>& accounted() const { return accounted_; }
  int64_t accounted(AccountedEntry::How how) const;

  // "EQUAL (...)" or "DIFFERENT: 1 missing, 0 extra, 2 changed, 0 bad state (...)".
  std::string verdict(int64_t entries_compared) const;

 private:
  std::optional<int64_t> source_hw_, target_hw_;
  int64_t counts_[4] = {0, 0, 0, 0};
  int64_t in_flight_ = 0;
  int64_t quarantined_ = 0;
  int64_t dropped_ = 0;
  std::vector<Difference> kept_;
  std::vector<AccountedEntry> accounted_;
};

nlohmann::json to_json(const Difference& d);
nlohmann::json to_json(const AccountedEntry& a);
// One line for the operator: the entry, its quarantine reason and who accepted it why (or which
// newer version supersedes it).
std::string accounted_text(const AccountedEntry& a);

}  // namespace fhirshift::verify

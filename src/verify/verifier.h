// `fhirshift verify`: proves a current-schema target equal to its legacy source, or names what
// differs, and (with repair) re-copies what differs through the migrator's own transform.
//
// Modes (docs/verify.md):
//   full    both collections streamed once in `_id` order and merge-joined (flat memory), every
//           entry deep-compared, `idx` recomputed; a second stream over the target in resource
//           order checks the version state (exactly one `cur`, on the newest). With `since`, only
//           the resources touched since then, all their versions.
//   sample  N random source entries: their resources, all versions, deep-compared.
//   counts  entries per (im, type, change) and per `cur`, side by side.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "index/indexer.h"
#include "verify/findings.h"

namespace fhirshift::verify {

enum class Mode { kCounts, kSample, kFull };
Mode parse_mode(const std::string& text);  // throws std::invalid_argument
const char* mode_name(Mode mode);

struct Options {
  std::string source_uri;
  std::string source_collection = "vonkentries";
  std::string target_uri;
  std::string target_collection = "vonkentries";
  Mode mode = Mode::kFull;
  std::optional<int64_t> since_ms;  // only resources with an entry this new or newer
  int64_t sample = 1000;
  uint64_t sample_seed = 0;  // 0: a random seed (printed in the report, to replay a sample)
  bool repair = false;
  bool delete_extra = false;
  int parallelism = 4;  // repair's write workers
  // Differences are looked at again after this long (counts: recounted until then), so that a
  // migrator still copying entries from just before the start point is not reported.
  int64_t settle_ms = 5000;
  // With `since` (mode full): called on the source's reading thread before it reads the source,
  // and on the target's before it reads the target, after each side's connection is checked; each
  // call returns once that store is final. The cut-over starts its final verify before the fence
  // this way and says when writes are held (source) and when the migrator has drained (target).
  // Throws to cancel the verify.
  std::function<void(bool source)> wait_until_final;
};

struct SideInfo {
  std::string ns;     // database.collection
  std::string hosts;  // for messages, no credentials
  int64_t entries = 0;           // resource entries seen (compared, or counted)
  int64_t system_documents = 0;  // documents without `type`: reported apart, never compared
  int64_t quarantine = 0;        // documents in <collection>_quarantine
  std::optional<int64_t> high_water_ms;  // highest `lu` at the start
};

// counts mode: one (im, type) row. Cells: entries, cur: true, and per change c/u/d.
struct CountCells {
  int64_t total = 0, cur = 0, created = 0, updated = 0, deleted = 0;
  bool operator==(const CountCells&) const = default;
};
struct CountRow {
  std::string im, type;
  CountCells source, target;
  // Source entries that are in the target's quarantine and not in the target: judged one by one
  // (accepted, superseded, or a missing entry naming the fix), not in the cells' comparison.
  CountCells quarantined;
  // Entries per change differ: missing or extra entries. `cur` alone may differ legitimately
  // (in-flight updates, legacy version state the migrator repaired): shown, not judged.
  bool entries_differ() const;
  bool cur_differs() const { return source.cur != target.cur; }
};

struct RepairSummary {
  int64_t deleted = 0;     // extra target entries removed (--delete-extra)
  int64_t rewritten = 0;   // changed entries replaced by the transform of their source entry
  int64_t applied = 0;     // entries written by the migrator's applier (missing, version state)
  int64_t unchanged = 0;   // entries the applier found right
  int64_t quarantined = 0;  // source entries that cannot be migrated (again)
  int64_t resources = 0;   // resources whose versions were re-applied
  int64_t not_repairable = 0;  // e.g. extra entries without --delete-extra, invalid source entries
  std::vector<std::string> problems;
  std::string verdict_before;  // the verdict before the repair
};

struct Result {
  Mode mode = Mode::kFull;
  std::optional<int64_t> since_ms;
  uint64_t sample_seed = 0;
  int64_t started_at_ms = 0;
  int64_t took_ms = 0;
  int64_t peak_rss_kb = 0;  // of the whole process, at the end
  SideInfo source, target;
  int64_t entries_compared = 0;
  Findings findings{std::nullopt, std::nullopt};
  std::vector<CountRow> counts;
  std::optional<RepairSummary> repair;

  bool equal() const { return findings.equal(); }
  std::string verdict() const { return findings.verdict(entries_compared); }
  // The operator's text: what was compared, the first `max_listed` differences, the verdict last.
  std::string text(size_t max_listed = 20) const;
  nlohmann::json to_json(size_t max_listed = 1000) const;
};

// Runs the verify (and the repair, when asked). Throws mongo::MongoError when a store fails as a
// whole; per-entry problems are findings, never exceptions.
Result run_verify(const Options& options, std::shared_ptr<const index::Indexer> indexer);

}  // namespace fhirshift::verify

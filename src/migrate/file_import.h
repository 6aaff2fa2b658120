// `fhirshift migrate --sourceType Filesystem`: imports FHIR R4 resources from ndjson files and
// Bundles (FileSource) into a current-schema store, each resource as a new version of its id, as a
// FHIR server's update would make it.
//
// Chunks of file entries are read in file order. For each chunk the target's current version of
// every resource in it is looked up (one query), versions are assigned (v + 1, or "1" with change
// "c" for a new resource; lu = max(now, previous lu + 1), so version order is (lu, _id) order
// whatever the clocks), meta.versionId/meta.lastUpdated are rewritten as the server does, and the
// Applier writes the entries and makes the replaced versions history. Unreadable entries are
// quarantined with their file and line.
//
// Crash safety: entry `_id`s are derived from the run id and the entry's ordinal, and the chunk's
// version assignments are committed to the recovery journal before the chunk is written, the file
// position after it. A rerun after kill -9 replays the planned chunk with the same `_id`s, versions
// and bodies (the Applier finds what is already there unchanged) and goes on from its end.
#pragma once

#include <bson/bson.h>

#include <atomic>
#include <cstdint>

#include "migrate/engine.h"
#include "migrate/options.h"

namespace fhirshift::migrate {

// The `_id` of the `k`-th target entry (0: the resource, 1..: its contained resources) of the file
// entry with ordinal `ordinal` in run `run`: the run's time and two of its random bytes, the
// ordinal (32 bits) and k (16 bits), so ids sort in file order and a replay rebuilds the same ids.
bson_oid_t import_entry_id(const bson_oid_t& run, uint32_t ordinal, uint16_t k);

// The version id after `previous`: its number + 1 when it is a number, else `versions + 1` (the
// count of the resource's versions, as the server does for non-numeric legacy ids).
std::string next_version_id(const std::string& previous, int64_t versions);

class FileImport {
 public:
  // `stop` is set by a signal handler: the chunk in flight finishes, the journal is saved.
  FileImport(Options options, const std::atomic<bool>& stop);
  RunResult run();
  const Progress& progress() const { return progress_; }
  // Paused, limited and released while the run goes on (the metrics port's POST /pause, ...).
  Throttle& throttle() { return throttle_; }

 private:
  // The run of a source without files: the target was provisioned (if asked), nothing else is
  // written (no journal, no import marker), exit 0 with a report that says so.
  RunResult nothing_to_import(const std::filesystem::path& source_path,
                              std::chrono::steady_clock::time_point started);

  Options options_;
  const std::atomic<bool>& stop_;
  Throttle throttle_;
  Progress progress_;
};

}  // namespace fhirshift::migrate

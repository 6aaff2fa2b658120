// What `fhirshift migrate` is asked to do: the runbook's options, parsed and checked.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace fhirshift::migrate {

// --update-existing-resources: what to do when the target already has the version an entry brings.
enum class ConflictPolicy {
  kOverwrite,        // true: the source wins
  kKeep,             // false: the target's entry stays
  kErrorOnConflict,  // a different body or _id is recorded as a conflict; identical is a no-op
  kOnlyIfNewer,      // the source wins only when its (lu, _id) is newer
};
ConflictPolicy parse_conflict_policy(const std::string& text);  // throws std::invalid_argument
std::string to_string(ConflictPolicy policy);

enum class RunningMode { kAdHoc, kContinuous };
RunningMode parse_running_mode(const std::string& text);  // throws std::invalid_argument

// "5s", "200ms", "2m", "00:00:05" (the legacy tool's .NET TimeSpan) or plain seconds.
std::chrono::milliseconds parse_interval(const std::string& text);  // throws std::invalid_argument
// .NET TimeSpan style, as the legacy tool printed it: "00:00:05", "00:00:00.2000000".
std::string format_interval(std::chrono::milliseconds interval);

struct Options {
  std::string source_uri;
  std::string source_collection = "vonkentries";
  std::string target_uri;
  std::string target_collection = "vonkentries";
  // --sourceType Filesystem: ndjson / Bundle files instead of a source database.
  std::optional<std::string> source_path;
  RunningMode mode = RunningMode::kAdHoc;
  ConflictPolicy policy = ConflictPolicy::kErrorOnConflict;
  bool provision_target = false;
  bool reverse = false;  // current schema -> legacy schema (rollback after the cut-over)
  std::optional<std::string> journal_dir;
  int batch_size = 1000;
  int parallelism = 4;
  std::chrono::milliseconds poll_interval{5000};
  // Entries committed to the source this long after later `_id`s were already copied are still
  // found (concurrent writers, clock skew): the recent `_id` range is rescanned.
  std::chrono::milliseconds late_entry_window{30000};
  std::chrono::milliseconds retry_timeout{600000};
  std::chrono::milliseconds progress_interval{5000};
  int64_t limit = 0;  // 0: no limit
  // --max-rate (source entries/s) and --max-source-latency; 0: none. Changeable at run time.
  double max_rate = 0;
  std::chrono::milliseconds max_source_latency{0};
  bool halt_on_error = false;
  bool dry_run = false;
  std::string search_parameters;  // empty: the indexer's default
};

}  // namespace fhirshift::migrate

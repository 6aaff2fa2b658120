// The progress of a file import, by the bytes of its files: their total is known before the first
// entry is read (unlike the number of entries), so the progress line has a percentage and an ETA
// from the start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace fhirshift::migrate {

// "1.5 MB", "1.00 GB", "12 KB".
std::string format_bytes(int64_t n);

struct FileProgress {
  int64_t bytes_read = 0;
  int64_t bytes_total = 0;
  int64_t bytes_at_start = 0;  // read by an earlier run (a resume)
  int64_t entries = 0;         // file entries handled by this run
  double seconds = 0;          // since this run started reading
  std::string throttled;       // why reading is held back (Throttle::State::reason), or empty

  double entries_per_second() const;
  // The remaining bytes at this run's bytes/s; nullopt before this run has read anything.
  std::optional<int64_t> eta_seconds() const;
  // "123.4 MB of 1.00 GB read (12%), 45,678 file entries, 4,321 entries/s, ETA 00:01:23", and
  // ", THROTTLED: <why>" while a limit or a pause holds it back (as the database copy's line).
  std::string line() const;
  // `progress_json` (the engine's /progress document) with bytesRead, bytesTotal, fileEntries,
  // entriesPerSecond and etaSeconds added.
  std::string json(const std::string& progress_json) const;
};

}  // namespace fhirshift::migrate

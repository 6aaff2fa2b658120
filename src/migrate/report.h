// The report a migration or a file import prints at the end: every counter, the check that they
// add up to what was read, what was written by type, the time taken.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "migrate/apply.h"

namespace fhirshift::migrate {

// What the counters mean in the run that prints them.
struct ReportNotes {
  std::string read;  // empty: no note
  std::string unchanged = "already in the target";
  std::string kept = "target's version kept by the policy";
};

// The counter lines through the duration line and the first problems ("  read ... \n").
std::string format_tally(const Tally& t, const std::string& quarantine_collection,
                         std::chrono::milliseconds duration, const ReportNotes& notes);
// 0, or 1 when the run failed, the counters do not add up, or anything was not written.
int report_exit_code(const Tally& t, bool failed);

// 1234567 -> "1,234,567".
std::string with_commas(int64_t n);
// This process's peak resident memory.
int64_t peak_rss_mb();

}  // namespace fhirshift::migrate

#include "migrate/report.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>

#include "common/log.h"

namespace fhirshift::migrate {

std::string with_commas(int64_t n) {
  const std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out = n < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

int64_t peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

std::string format_tally(const Tally& t, const std::string& quarantine_collection,
                         std::chrono::milliseconds duration, const ReportNotes& notes) {
  auto note = [](const std::string& text) { return text.empty() ? std::string() : "  (" + text + ")"; };
  double secs = std::max(0.001, duration.count() / 1000.0);
  std::string r;
  r += fmt::format("  read          {:>12}{}\n", with_commas(t.read), note(notes.read));
  r += fmt::format("  written       {:>12}\n", with_commas(t.written));
  r += fmt::format("  unchanged     {:>12}{}\n", with_commas(t.unchanged), note(notes.unchanged));
  r += fmt::format("  kept          {:>12}{}\n", with_commas(t.kept), note(notes.kept));
  r += fmt::format("  skipped       {:>12}  (system documents)\n", with_commas(t.system));
  r += fmt::format("  quarantined   {:>12}  (see {})\n", with_commas(t.quarantined), quarantine_collection);
  r += fmt::format("  conflicts     {:>12}\n", with_commas(t.conflicts));
  r += fmt::format("  errors        {:>12}\n", with_commas(t.errors));
  r += fmt::format("  check: read = written + unchanged + kept + skipped + quarantined + conflicts + errors: {}\n",
                   t.read == t.accounted() ? "OK"
                                           : fmt::format("MISMATCH ({} unaccounted)", t.read - t.accounted()));
  if (t.skipped_params || t.index_problems)
    r += fmt::format("  search index: {} composite/special parameter evaluations skipped, {} evaluation problems\n",
                     with_commas(t.skipped_params), with_commas(t.index_problems));
  if (!t.written_by_type.empty()) {
    r += "  written by type:";
    for (const auto& [type, n] : t.written_by_type) r += fmt::format(" {} {},", type, with_commas(n));
    r.pop_back();
    r += "\n";
  }
  r += fmt::format("  duration {} ({:.1f} s), {:.0f} entries/s, peak RSS {} MB\n",
                   format_hms(std::chrono::duration_cast<std::chrono::seconds>(duration)), secs, t.read / secs,
                   peak_rss_mb());
  for (const auto& p : t.first_problems) r += "  problem: " + p + "\n";
  return r;
}

int report_exit_code(const Tally& t, bool failed) {
  return (failed || t.read != t.accounted() || t.errors || t.conflicts || t.quarantined) ? 1 : 0;
}

}  // namespace fhirshift::migrate

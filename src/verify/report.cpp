// The operator's text and the JSON report of a verify (keys documented in docs/verify.md).
#include <cstdio>
#include <sstream>

#include "verify/verifier.h"

namespace fhirshift::verify {
namespace {

std::string optional_time(const std::optional<int64_t>& ms) {
  return ms ? format_iso8601(*ms) : std::string("none (empty)");
}

nlohmann::json side_json(const SideInfo& s) {
  nlohmann::json j;
  j["ns"] = s.ns;
  j["hosts"] = s.hosts;
  j["entries"] = s.entries;
  j["systemDocuments"] = s.system_documents;
  j["quarantine"] = s.quarantine;
  j["highWaterLu"] = s.high_water_ms ? nlohmann::json(format_iso8601(*s.high_water_ms)) : nullptr;
  return j;
}

nlohmann::json cells_json(const CountCells& c) {
  return {{"entries", c.total}, {"cur", c.cur}, {"c", c.created}, {"u", c.updated}, {"d", c.deleted}};
}

std::string cell(int64_t s, int64_t t) {
  return s == t ? std::to_string(s) : std::to_string(s) + "/" + std::to_string(t);
}

}  // namespace

std::string accounted_text(const AccountedEntry& a) {
  if (a.how == AccountedEntry::How::kAccepted)
    return "accepted quarantined entry " + a.id + " " + a.resource + " [" + a.quarantine +
           "]: accepted by " + a.by + (a.at_ms ? " at " + format_iso8601(*a.at_ms) : "") + ": " +
           a.note;
  return "superseded quarantined entry " + a.id + " " + a.resource + " [" + a.quarantine +
         "]: the target has the newer version " + a.by;
}

nlohmann::json to_json(const AccountedEntry& a) {
  nlohmann::json j{{"id", a.id},
                   {"resource", a.resource},
                   {"quarantine", a.quarantine},
                   {"status", a.how == AccountedEntry::How::kAccepted ? "accepted" : "superseded"}};
  if (a.how == AccountedEntry::How::kAccepted) {
    j["acceptedBy"] = a.by;
    j["acceptedAt"] = a.at_ms ? nlohmann::json(format_iso8601(*a.at_ms)) : nlohmann::json();
    j["acceptedReason"] = a.note;
  } else {
    j["supersededBy"] = a.by;
  }
  return j;
}

std::string Result::text(size_t max_listed) const {
  std::ostringstream o;
  o << "source " << source.ns << " on " << source.hosts << ": " << source.entries << " entries, "
    << source.system_documents << " system documents, highest lu " << optional_time(source.high_water_ms)
    << "\n";
  o << "target " << target.ns << " on " << target.hosts << ": " << target.entries << " entries, "
    << target.system_documents << " system documents, " << target.quarantine
    << " in the quarantine collection, highest lu " << optional_time(target.high_water_ms) << "\n";
  if (since_ms) o << "scope: resources with an entry since " << format_iso8601(*since_ms) << "\n";
  if (mode == Mode::kSample) o << "sample seed: " << sample_seed << "\n";
  if (!counts.empty()) {
    char line[256];
    std::snprintf(line, sizeof line, "%-8s %-28s %17s %15s %15s %15s %15s\n", "im", "type",
                  "entries src/tgt", "cur", "c", "u", "d");
    o << line;
    for (const auto& r : counts) {
      std::snprintf(line, sizeof line, "%-8s %-28s %17s %15s %15s %15s %15s%s\n", r.im.c_str(),
                    r.type.c_str(), cell(r.source.total, r.target.total).c_str(),
                    cell(r.source.cur, r.target.cur).c_str(),
                    cell(r.source.created, r.target.created).c_str(),
                    cell(r.source.updated, r.target.updated).c_str(),
                    cell(r.source.deleted, r.target.deleted).c_str(),
                    r.entries_differ() ? "  <-- entries differ"
                    : r.cur_differs()  ? "  (cur differs: see full mode)"
                                       : "");
      o << line;
      if (r.quarantined.total > 0)
        o << "         (" << r.quarantined.total << " of the source's " << r.type
          << " entries are quarantined and judged one by one below)\n";
    }
  }
  size_t listed = 0;
  size_t in_flight_listed = 0;
  for (const auto& d : findings.kept()) {
    if (d.in_flight) {
      if (in_flight_listed++ < 5)
        o << "  in flight: " << kind_name(d.kind) << " " << d.id << " " << d.resource << ": "
          << d.detail << "\n";
      continue;
    }
    if (listed++ >= max_listed) continue;
    o << "  " << kind_name(d.kind) << " " << (d.id.empty() ? "-" : d.id) << " " << d.resource
      << ": " << d.detail;
    if (d.count != 1) o << " (" << d.count << " entries)";
    if (!d.quarantine.empty()) o << " [quarantined: " << d.quarantine << "]";
    o << "\n";
  }
  if (listed > max_listed)
    o << "  ... and " << (listed - max_listed) << " more (see --report)\n";
  size_t accounted_listed = 0;
  for (const auto& a : findings.accounted()) {
    if (accounted_listed++ >= max_listed) {
      o << "  ... and " << (findings.accounted().size() - max_listed)
        << " more accounted for by the quarantine (see --report)\n";
      break;
    }
    o << "  " << accounted_text(a) << "\n";
  }
  if (findings.in_flight() > 0)
    o << "entries newer than the start point are in flight (the migrator is still copying): "
         "for a final answer, verify again once writes are fenced (the cut-over does this with "
         "--since)\n";
  if (repair) {
    o << "before repair: " << repair->verdict_before << "\n";
    o << "repair: " << repair->deleted << " extra deleted, " << repair->rewritten
      << " changed rewritten, " << repair->resources << " resources re-applied ("
      << repair->applied << " written, " << repair->unchanged << " already right, "
      << repair->quarantined << " quarantined), " << repair->not_repairable
      << " not repairable\n";
    for (const auto& p : repair->problems) o << "  repair: " << p << "\n";
  }
  o << "took " << took_ms / 1000.0 << " s";
  if (took_ms > 0 && entries_compared > 0)
    o << ", " << static_cast<int64_t>(static_cast<double>(entries_compared) * 1000.0 /
                                      static_cast<double>(took_ms))
      << " entries/s";
  o << ", peak RSS " << peak_rss_kb / 1024 << " MB\n";
  o << verdict() << "\n";
  return o.str();
}

nlohmann::json Result::to_json(size_t max_listed) const {
  nlohmann::json j;
  j["verdict"] = verdict();
  j["equal"] = equal();
  j["mode"] = mode_name(mode);
  j["since"] = since_ms ? nlohmann::json(format_iso8601(*since_ms)) : nullptr;
  j["startedAt"] = format_iso8601(started_at_ms);
  j["tookMs"] = took_ms;
  // The start point: entries newer than this are in flight. The cut-over reads this key.
  j["sourceHighWaterLu"] =
      source.high_water_ms ? nlohmann::json(format_iso8601(*source.high_water_ms)) : nullptr;
  j["targetHighWaterLu"] =
      target.high_water_ms ? nlohmann::json(format_iso8601(*target.high_water_ms)) : nullptr;
  j["entriesCompared"] = entries_compared;
  j["peakRssKb"] = peak_rss_kb;
  j["entriesPerSecond"] =
      took_ms > 0 ? static_cast<double>(entries_compared) * 1000.0 / static_cast<double>(took_ms)
                  : 0.0;
  j["missing"] = findings.count(Kind::kMissing);
  j["extra"] = findings.count(Kind::kExtra);
  j["changed"] = findings.count(Kind::kChanged);
  j["badState"] = findings.count(Kind::kBadState);
  j["inFlight"] = findings.in_flight();
  j["quarantined"] = findings.quarantined();
  if (mode == Mode::kSample) j["sampleSeed"] = sample_seed;
  j["source"] = side_json(source);
  j["target"] = side_json(target);
  nlohmann::json diffs = nlohmann::json::array();
  nlohmann::json quarantined = nlohmann::json::array();
  for (const auto& d : findings.kept()) {
    if (diffs.size() < max_listed) diffs.push_back(verify::to_json(d));
    if (!d.quarantine.empty() && quarantined.size() < max_listed)
      quarantined.push_back({{"id", d.id}, {"reason", d.quarantine}});
  }
  j["differences"] = diffs;
  j["differencesListed"] = diffs.size();
  j["quarantinedEntries"] = quarantined;
  j["quarantineAccepted"] = findings.accounted(AccountedEntry::How::kAccepted);
  j["quarantineSuperseded"] = findings.accounted(AccountedEntry::How::kSuperseded);
  nlohmann::json accounted = nlohmann::json::array();
  for (const auto& a : findings.accounted()) accounted.push_back(verify::to_json(a));
  j["quarantineAccounted"] = accounted;
  if (!counts.empty()) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : counts)
      rows.push_back({{"im", r.im},
                      {"type", r.type},
                      {"source", cells_json(r.source)},
                      {"target", cells_json(r.target)},
                      {"entriesDiffer", r.entries_differ()},
                      {"curDiffers", r.cur_differs()}});
    j["counts"] = rows;
  }
  if (repair) {
    j["repair"] = {{"verdictBefore", repair->verdict_before},
                   {"deleted", repair->deleted},
                   {"rewritten", repair->rewritten},
                   {"applied", repair->applied},
                   {"unchanged", repair->unchanged},
                   {"quarantined", repair->quarantined},
                   {"resources", repair->resources},
                   {"notRepairable", repair->not_repairable},
                   {"problems", repair->problems}};
  }
  return j;
}

}  // namespace fhirshift::verify

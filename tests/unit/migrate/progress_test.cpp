// What the migrator's metrics server reports: /progress's latest problems, and that the Grafana
// dashboard shipped in docs/grafana only queries metrics /metrics exposes.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "migrate/engine.h"

namespace fhirshift::migrate {
namespace {

TEST(Progress, ListsTheLatestFiveProblemsNewestLast) {
  Progress p;
  for (int chunk = 0; chunk < 3; ++chunk) {
    Tally t;
    t.read = 3;
    t.quarantined = 3;
    for (int i = 0; i < 3; ++i)
      t.first_problems.push_back("problem " + std::to_string(chunk * 3 + i));
    p.add(t, std::chrono::microseconds(1000));
  }
  auto j = nlohmann::json::parse(p.to_json());
  ASSERT_EQ(j["recentProblems"].size(), 5u) << j.dump();
  EXPECT_EQ(j["recentProblems"][0], "problem 4");
  EXPECT_EQ(j["recentProblems"][4], "problem 8");
  EXPECT_EQ(j["quarantined"], 9);
}

TEST(Progress, AFreshRunHasNoProblemsListed) {
  Progress p;
  auto j = nlohmann::json::parse(p.to_json());
  ASSERT_TRUE(j["recentProblems"].is_array());
  EXPECT_TRUE(j["recentProblems"].empty());
}

TEST(GrafanaDashboard, QueriesOnlyMetricsTheMigratorExposes) {
  std::ifstream in(std::string(FHIRSHIFT_SOURCE_DIR) + "/docs/grafana/fhirshift.json");
  ASSERT_TRUE(in) << "docs/grafana/fhirshift.json is missing";
  nlohmann::json d = nlohmann::json::parse(in);
  EXPECT_FALSE(d["uid"].get<std::string>().empty());
  std::set<std::string> exposed;
  std::string metrics = Progress().to_prometheus();
  std::regex type_line("# TYPE (\\S+) ");
  for (std::sregex_iterator it(metrics.begin(), metrics.end(), type_line), end; it != end; ++it)
    exposed.insert((*it)[1].str());
  ASSERT_GE(exposed.size(), 10u) << metrics;

  std::set<std::string> used;
  std::regex metric_name("fhirshift_[a-z_]+");
  ASSERT_FALSE(d["panels"].empty());
  for (const auto& panel : d["panels"]) {
    ASSERT_FALSE(panel["targets"].empty()) << panel["title"];
    for (const auto& target : panel["targets"]) {
      std::string expr = target["expr"];
      for (std::sregex_iterator it(expr.begin(), expr.end(), metric_name), end; it != end; ++it) {
        used.insert(it->str());
        EXPECT_TRUE(exposed.count(it->str()))
            << panel["title"] << ": " << it->str() << " is not in /metrics";
      }
    }
  }
  // What the runbook promises the dashboard shows.
  for (const char* m :
       {"fhirshift_migrate_entries_written_total", "fhirshift_migrate_lag_seconds",
        "fhirshift_migrate_batch_latency_seconds_sum",
        "fhirshift_migrate_entries_quarantined_total", "fhirshift_migrate_conflicts_total",
        "fhirshift_migrate_journal_position_timestamp_seconds"})
    EXPECT_TRUE(used.count(m)) << m << " is not charted";
}

}  // namespace
}  // namespace fhirshift::migrate

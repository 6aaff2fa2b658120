// `fhirshift migrate` against what goes wrong or gets in the way, on a live FerretDB pair: a target
// that already holds some of the versions (every `--update-existing-resources` policy), a source
// or target that goes away mid-run or is not there at all, a store of 10,000 entries, and a
// Continuous run following an old server that clients write to until they stop.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "ferretdb_server.h"
#include "migrate_fixture.h"
#include "mongo/client.h"
#include "mongo/collection.h"
#include "ports.h"
#include "schema/entry.h"
#include "schema/layout.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift {
namespace {

using testing::RunResult;
using testing::run_command;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kIdleLine =
    "No new items found in the database. Waiting for 00:00:00.5000000 before retrying...";
constexpr int64_t kBaseLu = 1700000000000;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// A legacy Patient entry with a fresh, increasing `_id`; `active` makes bodies differ.
schema::Entry patient(const std::string& res_id, const std::string& v, int64_t lu_ms, bool cur, bool active) {
  schema::Entry e;
  bson_oid_init(&e.id, nullptr);
  e.im = schema::kInfoModelR4;
  e.type = "Patient";
  e.res_id = res_id;
  e.v = v;
  e.lu_ms = lu_ms;
  e.cur = cur;
  e.change = v == "1" ? schema::Change::kCreated : schema::Change::kUpdated;
  e.json = R"({"resourceType":"Patient","id":")" + res_id + R"(","meta":{"versionId":")" + v +
           R"("},"active":)" + (active ? "true" : "false") + "}";
  return e;
}

void insert_legacy(const std::string& uri, const std::vector<schema::Entry>& entries) {
  mongo::ClientPool pool(mongo::Uri::parse(uri));
  mongo::Client c = pool.acquire();
  mongo::Collection coll = c.collection(pool.database(), "vonkentries");
  for (const auto& e : entries) coll.insert_one(schema::encode_legacy(e).get());
}

// The report's "written by type: A 1, B 2" line.
std::map<std::string, int64_t> written_by_type(const std::string& report) {
  std::map<std::string, int64_t> out;
  auto at = report.find("written by type:");
  if (at == std::string::npos) return out;
  std::string line = report.substr(at + 16, report.find('\n', at) - at - 16);
  std::istringstream in(line);
  std::string type, count;
  while (in >> type >> count) {
    std::string digits;
    for (char ch : count)
      if (std::isdigit(static_cast<unsigned char>(ch))) digits += ch;
    out[type] = std::stoll(digits);
  }
  return out;
}

std::map<std::string, int64_t> count_by_type(const std::vector<schema::Entry>& entries) {
  std::map<std::string, int64_t> out;
  for (const auto& e : entries) out[e.type]++;
  return out;
}

class MigratePolicyFaultTest : public MigrateFixture {
 protected:
  // A target entry as the test checks it.
  struct Held {
    schema::Entry entry;
    bool indexed = false;
  };
  std::map<std::string, Held> target_entries() const {
    mongo::ClientPool pool(mongo::Uri::parse(dst_uri()));
    mongo::Client c = pool.acquire();
    mongo::Collection coll = c.collection(pool.database(), "vonkentries");
    mongo::Builder f;
    f.document("_id", [](mongo::Builder& d) { d.append("$type", "objectId"); });
    mongo::Bson fd = f.extract();
    mongo::Cursor cur = coll.find(fd.get());
    std::map<std::string, Held> out;
    while (const bson_t* d = cur.next()) {
      schema::Entry e = schema::decode_entry(d);
      out[e.id_string()] = {e, mongo::View(d).has("idx")};
    }
    return out;
  }

  // The target holds exactly `expected` (entry, whether current): same `_id`s, bodies, version
  // state, and `idx` on the current entries only.
  void expect_target(const std::vector<std::pair<const schema::Entry*, bool>>& expected) const {
    std::map<std::string, Held> held = target_entries();
    std::set<std::string> want, got;
    for (const auto& [e, cur] : expected) want.insert(e->res_id + " " + e->id_string());
    for (const auto& [id, h] : held) got.insert(h.entry.res_id + " " + id);
    EXPECT_EQ(got, want) << "the target's entries (res_id _id)";
    for (const auto& [e, cur] : expected) {
      auto it = held.find(e->id_string());
      if (it == held.end()) continue;
      const schema::Entry& t = it->second.entry;
      EXPECT_EQ(t.json, e->json) << "body of Patient/" << e->res_id << " " << e->id_string();
      EXPECT_EQ(t.lu_ms, e->lu_ms) << "lu of Patient/" << e->res_id;
      EXPECT_EQ(t.cur, cur) << "version state of Patient/" << e->res_id << " v" << e->v;
      EXPECT_EQ(it->second.indexed, cur) << "idx on Patient/" << e->res_id << " v" << e->v;
    }
  }

  // The shared-target scenario of every policy. The target already holds, from an earlier
  // migration of another store:
  //   a   v1: the very entry the source has (identical)
  //   b   v1: the source's `_id`, another body, older `lu` than the source's
  //   c   v1: another `_id`, another body, newer `lu` than the source's
  //   e   v1: the source's entry, still current (the source has v2 since)
  // The source adds d v1 (new) and e v2.
  struct Scenario {
    schema::Entry a = patient("a", "1", kBaseLu + 1000, true, true);
    schema::Entry b = patient("b", "1", kBaseLu + 2000, true, true);
    schema::Entry c = patient("c", "1", kBaseLu + 1000, true, true);
    schema::Entry d = patient("d", "1", kBaseLu + 1000, true, true);
    schema::Entry e1 = patient("e", "1", kBaseLu + 1000, false, true);
    schema::Entry e2 = patient("e", "2", kBaseLu + 2000, true, false);
    schema::Entry b_target = [this] {
      schema::Entry t = b;
      t.lu_ms = kBaseLu + 1000;
      t.json = R"({"resourceType":"Patient","id":"b","meta":{"versionId":"1"},"active":false})";
      return t;
    }();
    schema::Entry c_target = patient("c", "1", kBaseLu + 3000, true, false);
  };

  // Fills the target with the scenario's earlier migration, then migrates the source into it with
  // `policy` and returns that run.
  RunResult run_policy(const Scenario& s, const std::string& policy) {
    schema::Entry e1_then_current = s.e1;
    e1_then_current.cur = true;
    std::string earlier = source_->uri(db_ + "_earlier");
    insert_legacy(earlier, {s.a, s.b_target, s.c_target, e1_then_current});
    testing::TempDir earlier_journal;
    RunResult first = run_command(migrate_command(earlier, dst_uri(), earlier_journal.path()));
    EXPECT_EQ(first.exit_code, 0) << first.out << first.err;
    EXPECT_EQ(report_figure(first.out, "written"), 4) << first.out;

    insert_legacy(src_uri(), {s.a, s.b, s.c, s.d, s.e1, s.e2});
    RunResult r = run_command(migrate_command(src_uri(), dst_uri(), journal_.path(), "AdHoc", policy));
    EXPECT_EQ(report_figure(r.out, "read"), 6) << r.out;
    EXPECT_EQ(report_figure(r.out, "unchanged"), 1) << "a is identical\n" << r.out;
    EXPECT_NE(r.out.find("check: read = written + unchanged + kept + skipped + quarantined + conflicts + errors: OK"),
              std::string::npos)
        << r.out;
    return r;
  }

  // An AdHoc copy of a seeded store during which `server` crashes (SIGKILL) for 4 s and is then
  // restarted on the same port and data directory: the run waits, logs `retry_log` (unless empty),
  // finishes with exit 0 and the target is a faithful copy.
  void copy_through_outage(testing::FerretDbServer& server, const std::string& retry_log) {
    constexpr int kEntries = 3000;
    seed(kEntries);
    // Whatever happens below, the suite's later tests need the server back.
    struct Revive {
      testing::FerretDbServer& server;
      ~Revive() {
        if (!server.running()) server.restart();
      }
    } revive{server};
    int port = testing::free_port();
    // Chunks of 10 keep the run going for about 2 s on an idle machine: the crash comes after
    // 200 entries, well before the end.
    testing::Subprocess p(migrate_args("AdHoc", {"--mongoBatch", "10", "--mongoPar", "1", "--metrics-port",
                                                 std::to_string(port)}),
                          logs_.path(), "outage");
    httplib::Client metrics("127.0.0.1", port);
    int64_t read = 0;
    auto deadline = Clock::now() + 120s;
    while (p.running() && read < 200 && Clock::now() < deadline) {
      if (auto res = metrics.Get("/progress"); res && res->status == 200)
        read = nlohmann::json::parse(res->body).value("entriesRead", int64_t{0});
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_TRUE(p.running()) << "the run ended before the outage\n" << p.stderr_text();
    server.crash();
    ASSERT_TRUE(p.running()) << "the copy finished before FerretDB went away: slow it down\n" << p.stdout_text();
    std::this_thread::sleep_for(4s);
    EXPECT_TRUE(p.running()) << "the run gave up during the outage\n" << p.stderr_text();
    server.restart();
    std::optional<int> rc = p.wait_for(300s);
    ASSERT_TRUE(rc.has_value()) << "the run did not finish after the outage\n" << p.stderr_text();
    EXPECT_EQ(*rc, 0) << p.stdout_text() << p.stderr_text();
    if (!retry_log.empty()) {
      EXPECT_NE(p.stderr_text().find(retry_log), std::string::npos) << "the retry is not logged\n" << p.stderr_text();
    }
    EXPECT_EQ(report_figure(p.stdout_text(), "read"), kEntries) << p.stdout_text();
    EXPECT_EQ(report_figure(p.stdout_text(), "written"), kEntries) << p.stdout_text();
    expect_faithful_copy();
    RunResult v = verify();
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    EXPECT_NE(v.out.find("EQUAL"), std::string::npos) << v.out;
  }

  // `(sourceId, targetId)` of each conflict in the quarantine.
  std::set<std::pair<std::string, std::string>> quarantined_conflicts() const {
    mongo::ClientPool pool(mongo::Uri::parse(dst_uri()));
    mongo::Client c = pool.acquire();
    mongo::Collection q = c.collection(pool.database(), schema::quarantine_collection("vonkentries"));
    mongo::Builder all;
    mongo::Bson fd = all.extract();
    mongo::Cursor cur = q.find(fd.get());
    std::set<std::pair<std::string, std::string>> out;
    while (const bson_t* d = cur.next()) {
      mongo::View v(d);
      EXPECT_EQ(v.string("reason").value_or(""), "conflict");
      auto source_id = v.oid("sourceId");
      auto target_id = v.oid("targetId");
      out.emplace(source_id ? mongo::oid_to_string(*source_id) : "(none)",
                  target_id ? mongo::oid_to_string(*target_id) : "(none)");
    }
    return out;
  }
};

TEST_F(MigratePolicyFaultTest, PolicyTrueOverwritesTheTargetsVersions) {
  Scenario s;
  RunResult r = run_policy(s, "true");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(report_figure(r.out, "written"), 5) << "b, c (replacing the other _id), d, e1 (now history), e2\n" << r.out;
  EXPECT_EQ(report_figure(r.out, "kept"), 0) << r.out;
  EXPECT_EQ(report_figure(r.out, "conflicts"), 0) << r.out;
  expect_target({{&s.a, true}, {&s.b, true}, {&s.c, true}, {&s.d, true}, {&s.e1, false}, {&s.e2, true}});
  EXPECT_TRUE(quarantined_conflicts().empty());
}

TEST_F(MigratePolicyFaultTest, PolicyFalseKeepsTheTargetsVersions) {
  Scenario s;
  RunResult r = run_policy(s, "false");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(report_figure(r.out, "written"), 3) << "d, e1 (now history), e2\n" << r.out;
  EXPECT_EQ(report_figure(r.out, "kept"), 2) << "b and c\n" << r.out;
  EXPECT_EQ(report_figure(r.out, "conflicts"), 0) << r.out;
  expect_target({{&s.a, true}, {&s.b_target, true}, {&s.c_target, true}, {&s.d, true}, {&s.e1, false}, {&s.e2, true}});
  EXPECT_TRUE(quarantined_conflicts().empty());
}

TEST_F(MigratePolicyFaultTest, ErrorOnConflictRecordsBothIdsAndGoesOn) {
  Scenario s;
  RunResult r = run_policy(s, "ErrorOnConflict");
  EXPECT_EQ(r.exit_code, 1) << "conflicts make the exit code 1\n" << r.out << r.err;
  EXPECT_EQ(report_figure(r.out, "written"), 3) << "d, e1 (now history), e2\n" << r.out;
  EXPECT_EQ(report_figure(r.out, "kept"), 0) << r.out;
  EXPECT_EQ(report_figure(r.out, "conflicts"), 2) << "b and c\n" << r.out;
  expect_target({{&s.a, true}, {&s.b_target, true}, {&s.c_target, true}, {&s.d, true}, {&s.e1, false}, {&s.e2, true}});
  EXPECT_EQ(quarantined_conflicts(), (std::set<std::pair<std::string, std::string>>{
                                         {s.b.id_string(), s.b_target.id_string()},
                                         {s.c.id_string(), s.c_target.id_string()}}));
  // A rerun from scratch (another journal) finds the identical entries unchanged, meets the same
  // two conflicts and records them once.
  testing::TempDir fresh_journal;
  RunResult again = run_command(migrate_command(src_uri(), dst_uri(), fresh_journal.path(), "AdHoc", "ErrorOnConflict"));
  EXPECT_EQ(again.exit_code, 1) << again.out << again.err;
  EXPECT_EQ(report_figure(again.out, "written"), 0) << again.out;
  EXPECT_EQ(report_figure(again.out, "unchanged"), 4) << "a, d, e1, e2\n" << again.out;
  EXPECT_EQ(report_figure(again.out, "conflicts"), 2) << again.out;
  expect_target({{&s.a, true}, {&s.b_target, true}, {&s.c_target, true}, {&s.d, true}, {&s.e1, false}, {&s.e2, true}});
  EXPECT_EQ(quarantined_conflicts().size(), 2u);
}

TEST_F(MigratePolicyFaultTest, OnlyIfNewerOverwritesOnlyOlderTargetVersions) {
  Scenario s;
  RunResult r = run_policy(s, "OnlyIfNewer");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(report_figure(r.out, "written"), 4) << "b (newer in the source), d, e1 (now history), e2\n" << r.out;
  EXPECT_EQ(report_figure(r.out, "kept"), 1) << "c (newer in the target)\n" << r.out;
  EXPECT_EQ(report_figure(r.out, "conflicts"), 0) << r.out;
  expect_target({{&s.a, true}, {&s.b, true}, {&s.c_target, true}, {&s.d, true}, {&s.e1, false}, {&s.e2, true}});
  EXPECT_TRUE(quarantined_conflicts().empty());
}

TEST_F(MigratePolicyFaultTest, AnUnreachableSourceOrTargetFailsFastNamingTheHost) {
  const std::string host = "127.0.0.1:" + std::to_string(testing::free_port());  // nothing listens
  const std::string dead = "mongodb://" + host + "/" + db_;
  for (bool source_down : {true, false}) {
    SCOPED_TRACE(source_down ? "source unreachable" : "target unreachable");
    testing::TempDir journal;
    auto t0 = Clock::now();
    RunResult r = run_command(source_down ? migrate_command(dead, dst_uri(), journal.path())
                                          : migrate_command(src_uri(), dead, journal.path()),
                              2min);
    double took = seconds_since(t0);
    EXPECT_NE(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE((r.out + r.err).find(host), std::string::npos) << r.out << r.err;
    EXPECT_LT(took, 20.0) << "not fast";
    std::cout << (source_down ? "source" : "target") << " unreachable: refused in " << took << " s\n";
  }
  // Nothing was written, not even the migration marker.
  mongo::ClientPool pool(mongo::Uri::parse(dst_uri()));
  mongo::Client c = pool.acquire();
  mongo::Builder all;
  mongo::Bson fd = all.extract();
  EXPECT_FALSE(c.collection(pool.database(), "vonkentries").find_one(fd.get()).has_value());
}

TEST_F(MigratePolicyFaultTest, ASourceOutageMidRunIsRetriedAndLosesNothing) {
  copy_through_outage(*source_, "reading the source failed (attempt 1)");
}

TEST_F(MigratePolicyFaultTest, ATargetOutageMidRunIsRetriedAndLosesNothing) {
  // No retry log required: the driver's own retryable write may absorb a short target outage.
  copy_through_outage(*target_, "");
}

TEST_F(MigratePolicyFaultTest, AnOutageLongerThanTheRetryTimeoutEndsTheRunWithinIt) {
  // Before the fix the run gave up only after --retryTimeout plus the driver's
  // serverSelectionTimeoutMS (10 s here): an attempt under way when the budget ran out waited for
  // a server first. (A source outage could also end the run at once, without a retry: the budget
  // was counted from the start of the source read, which in AdHoc is the start of the copy.)
  constexpr int kEntries = 3000;
  constexpr double kBudget = 2.0, kMargin = 3.0;
  seed(kEntries);
  for (testing::FerretDbServer* down : {target_, source_}) {
    const bool target_down = down == target_;
    SCOPED_TRACE(target_down ? "target down" : "source down");
    struct Revive {
      testing::FerretDbServer& server;
      ~Revive() {
        if (!server.running()) server.restart();
      }
    } revive{*down};
    testing::TempDir journal;
    const std::string target = target_->uri(db_ + (target_down ? "_t" : "_s"));
    int port = testing::free_port();
    testing::Subprocess p(migrate_command(src_uri(), target, journal.path(), "AdHoc", "ErrorOnConflict",
                                          {"--mongoBatch", "10", "--mongoPar", "1", "--retryTimeout", "2s",
                                           "--metrics-port", std::to_string(port)}),
                          logs_.path(), target_down ? "past-budget-target" : "past-budget-source");
    httplib::Client metrics("127.0.0.1", port);
    int64_t read = 0;
    for (auto deadline = Clock::now() + 120s; p.running() && read < 200 && Clock::now() < deadline;) {
      if (auto res = metrics.Get("/progress"); res && res->status == 200)
        read = nlohmann::json::parse(res->body).value("entriesRead", int64_t{0});
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_TRUE(p.running()) << "the run ended before the outage\n" << p.stderr_text();
    auto t0 = Clock::now();
    down->crash();
    std::optional<int> rc = p.wait_for(120s);
    double took = seconds_since(t0);
    ASSERT_TRUE(rc.has_value()) << "the run did not end\n" << p.stderr_text();
    std::string all = p.stdout_text() + p.stderr_text();
    EXPECT_EQ(*rc, 1) << all;
    EXPECT_NE(p.stderr_text().find("retrying in"), std::string::npos) << "no retry logged\n" << all;
    EXPECT_NE(all.find("gave up after"), std::string::npos) << all;
    EXPECT_NE(all.find("over --retryTimeout 2s (MongoDB at 127.0.0.1:" + std::to_string(down->port()) + ")"),
              std::string::npos)
        << all;
    // From the first failed attempt to giving up, by the log's timestamps: when the outage hits
    // an operation depends on what the run was doing (on a busy machine seconds after the crash).
    auto ts_of = [&](const std::string& needle) {
      auto at = p.stderr_text().find(needle);
      if (at == std::string::npos) return -1.0;
      auto line = p.stderr_text().rfind("ts=", at);
      std::tm tm{};
      double frac = 0;
      if (line == std::string::npos ||
          std::sscanf(p.stderr_text().c_str() + line, "ts=%d-%d-%dT%d:%d:%lfZ", &tm.tm_year, &tm.tm_mon,
                      &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &frac) != 6)
        return -1.0;
      return tm.tm_hour * 3600.0 + tm.tm_min * 60.0 + frac;
    };
    double waited = ts_of("gave up after") - ts_of("failed (attempt 1)");
    EXPECT_GT(waited, kBudget - 0.5) << "gave up before --retryTimeout\n" << all;
    EXPECT_LT(waited, kBudget + kMargin) << "overran --retryTimeout\n" << all;
    std::cout << (target_down ? "target" : "source") << " down past --retryTimeout 2s: gave up " << waited
              << " s after the first failure, exit " << took << " s after the crash\n";
  }
}

TEST_F(MigratePolicyFaultTest, AdHocCopyOfTenThousandEntries) {
  constexpr int kEntries = 10000;
  seed(kEntries);
  auto t0 = Clock::now();
  RunResult r = run_command(migrate_args("AdHoc"), 10min);
  double migrate_s = seconds_since(t0);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(report_figure(r.out, "read"), kEntries) << r.out;
  EXPECT_EQ(report_figure(r.out, "written"), kEntries) << r.out;

  std::map<std::string, int64_t> source_types = count_by_type(entries(src_uri(), "vonkentries"));
  EXPECT_GE(source_types.size(), 3u) << "the seeded store should mix resource types";
  EXPECT_EQ(count_by_type(entries(dst_uri(), "vonkentries")), source_types);
  EXPECT_EQ(written_by_type(r.out), source_types) << r.out;

  t0 = Clock::now();
  RunResult v = verify();
  double verify_s = seconds_since(t0);
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("EQUAL"), std::string::npos) << v.out;
  expect_faithful_copy();
  std::cout << kEntries << " entries: migrate " << migrate_s << " s, verify --mode full " << verify_s << " s\n";
}

TEST_F(MigratePolicyFaultTest, ContinuousPollsAgainAtOnceAfterAFullBatch) {
  seed(400);
  // An hour between polls: the idle line can only come from a second poll started at once after
  // the first brought 400 entries, more than one --mongoBatch of 100.
  testing::Subprocess migrator(
      migrate_args("Continuous", {"--pollInterval", "1h", "--mongoBatch", "100", "-v"}),
      logs_.path(), "adaptive");
  ASSERT_TRUE(migrator.wait_for_output(
      "No new items found in the database. Waiting for 01:00:00 before retrying...", 120s))
      << migrator.stdout_text() << migrator.stderr_text();
  // That second poll was short: the reader now sleeps the interval instead of polling again.
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(occurrences(migrator.stderr_text() + migrator.stdout_text(), "entries read in "), 2u)
      << migrator.stderr_text();
  expect_faithful_copy();
  EXPECT_EQ(migrator.stop(30s), 0) << migrator.stdout_text() << migrator.stderr_text();
}

TEST_F(MigratePolicyFaultTest, ContinuousFollowsAWriterUntilItStopsThenStopsCleanly) {
  seed(300);
  testing::Subprocess migrator(migrate_args("Continuous", {"--pollInterval", "500ms"}), logs_.path(), "follow");
  ASSERT_TRUE(migrator.wait_for_output(kIdleLine, 120s)) << migrator.stdout_text() << migrator.stderr_text();

  // The old server on the legacy store (it writes a new version, then flips the previous one to
  // cur:false), with clients creating, updating and deleting through it at 5 requests/s.
  int port = testing::free_port();
  testing::Subprocess server({testing::cli_path(), "serve", "--schema", "legacy", "--mongoConnectionstring", src_uri(),
                              "--mongoCollection", "vonkentries", "--port", std::to_string(port)},
                             logs_.path(), "old-server");
  httplib::Client http("127.0.0.1", port);
  auto deadline = Clock::now() + 60s;
  while (!http.Get("/healthz") && Clock::now() < deadline) std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(http.Get("/healthz")) << server.stderr_text();
  int64_t writes_from = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  RunResult load = run_command({testing::cli_path(), "load", "--url", "http://127.0.0.1:" + std::to_string(port),
                                "--rate", "5", "--duration", "20s", "--mix", "40:35:0:25", "--seed", "7"},
                               2min);
  ASSERT_EQ(load.exit_code, 0) << load.out << load.err;
  std::map<schema::Change, int> written;
  for (const auto& e : entries(src_uri(), "vonkentries"))
    if (e.lu_ms >= writes_from) written[e.change]++;
  EXPECT_GT(written[schema::Change::kCreated], 0) << load.out;
  EXPECT_GT(written[schema::Change::kUpdated], 0) << load.out;
  EXPECT_GT(written[schema::Change::kDeleted], 0) << load.out;

  // The writer has stopped: the migrator's next idle poll says it has everything.
  size_t idle_before = occurrences(migrator.stderr_text() + migrator.stdout_text(), kIdleLine);
  deadline = Clock::now() + 60s;
  while (occurrences(migrator.stderr_text() + migrator.stdout_text(), kIdleLine) == idle_before &&
         Clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  ASSERT_GT(occurrences(migrator.stderr_text() + migrator.stdout_text(), kIdleLine), idle_before)
      << migrator.stderr_text();
  EXPECT_EQ(migrator.stop(30s), 0) << migrator.stdout_text() << migrator.stderr_text();

  RunResult v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("EQUAL"), std::string::npos) << v.out;
  expect_faithful_copy();
}

}  // namespace
}  // namespace fhirshift

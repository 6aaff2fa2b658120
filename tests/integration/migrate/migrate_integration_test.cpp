// `fhirshift migrate` as an operator runs it, on a live FerretDB pair: a legacy store made by
// `fhirshift seed` is copied, checked entry by entry and by `fhirshift verify`, re-run, killed and
// resumed, fed bad input, and followed in Continuous mode while new and late entries arrive.
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <nlohmann/json.hpp>
#include <set>
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

constexpr int kEntries = 2500;

// The fixture (live FerretDB pair, command lines, the faithful-copy check) is shared with
// migrate_policy_fault_test.cpp.
class MigrateTest : public MigrateFixture {};

TEST_F(MigrateTest, AdHocCopiesEveryVersionAndARerunChangesNothing) {
  seed(kEntries);
  // Small chunks: versions of one resource land in different chunks and workers.
  RunResult r = run_command(migrate_args("AdHoc", {"--mongoBatch", "150", "--mongoPar", "2"}));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(report_figure(r.out, "read"), kEntries) << r.out;
  EXPECT_EQ(report_figure(r.out, "written"), kEntries) << r.out;
  EXPECT_NE(r.out.find("check: read = written + unchanged + kept + skipped + quarantined + conflicts + errors: OK"),
            std::string::npos);
  expect_faithful_copy();
  RunResult v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;

  RunResult again = run_command(migrate_args("AdHoc"));
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(report_figure(again.out, "read"), 0) << again.out;
  expect_faithful_copy();
}

TEST_F(MigrateTest, KillNineAtAnyMomentThenResumeGivesTheSameStore) {
  seed(kEntries);
  // Each run is killed mid-run, once it has applied some chunks (its /progress says so), at
  // whatever point of the next chunk (insert, journal commit) the 5 ms poll happens to land.
  for (int64_t read_at_least : {300, 500, 700}) {
    int port = testing::free_port();
    testing::Subprocess p(migrate_args("AdHoc", {"--mongoBatch", "100", "--mongoPar", "1", "--metrics-port",
                                                 std::to_string(port)}),
                          logs_.path(), "killed");
    ASSERT_TRUE(kill9_after_reading(p, port, read_at_least))
        << "the run ended before it could be killed after " << read_at_least << " entries\n" << p.stderr_text();
  }
  RunResult r = run_command(migrate_args("AdHoc", {"--mongoBatch", "100", "--mongoPar", "1"}));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("resuming run"), std::string::npos) << r.err;
  EXPECT_GT(report_figure(r.out, "read"), 0) << r.out;
  EXPECT_LT(report_figure(r.out, "read"), kEntries) << "the killed runs copied nothing durably\n" << r.out;
  expect_faithful_copy();
  RunResult v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

TEST_F(MigrateTest, BadEntriesAreQuarantinedWithTheReasonAndTheRunGoesOn) {
  seed(200);
  {
    mongo::ClientPool pool(mongo::Uri::parse(src_uri()));
    mongo::Client c = pool.acquire();
    mongo::Collection coll = c.collection(pool.database(), "vonkentries");
    mongo::Builder no_res_id;  // missing res_id
    no_res_id.append("im", schema::kInfoModelR4).append("type", "Patient").append("v", "1");
    no_res_id.append("json", R"({"resourceType":"Patient","id":"x"})");
    coll.insert_one(no_res_id.extract().get());
    schema::Entry wrong_type;  // json says Observation, the entry says Patient
    bson_oid_init(&wrong_type.id, nullptr);
    wrong_type.im = schema::kInfoModelR4;
    wrong_type.type = "Patient";
    wrong_type.res_id = "bad1";
    wrong_type.v = "1";
    wrong_type.lu_ms = 1700000000000;
    wrong_type.cur = true;
    wrong_type.change = schema::Change::kCreated;
    wrong_type.json = R"({"resourceType":"Observation","id":"bad1"})";
    coll.insert_one(schema::encode_legacy(wrong_type).get());
  }
  RunResult r = run_command(migrate_args("AdHoc"));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(report_figure(r.out, "read"), 202) << r.out;
  EXPECT_EQ(report_figure(r.out, "written"), 200) << r.out;
  EXPECT_EQ(report_figure(r.out, "quarantined"), 2) << r.out;
  mongo::ClientPool pool(mongo::Uri::parse(dst_uri()));
  mongo::Client c = pool.acquire();
  mongo::Collection q = c.collection(pool.database(), schema::quarantine_collection("vonkentries"));
  mongo::Builder all;
  mongo::Bson fd = all.extract();
  mongo::Cursor cur = q.find(fd.get());
  std::set<std::string> reasons;
  while (const bson_t* d = cur.next()) reasons.insert(std::string(mongo::View(d).string("reason").value_or("")));
  EXPECT_EQ(reasons, (std::set<std::string>{"bad-field", "type-mismatch"}));
}

TEST_F(MigrateTest, AJournalOfAnotherTargetIsRefusedWithTheFix) {
  seed(100);
  ASSERT_EQ(run_command(migrate_args("AdHoc")).exit_code, 0);
  std::vector<std::string> other = migrate_args("AdHoc");
  for (auto& a : other)
    if (a == dst_uri()) a = target_->uri(db_ + "_other");
  RunResult r = run_command(other);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("delete the journal directory"), std::string::npos) << r.out << r.err;
}

TEST_F(MigrateTest, ContinuousAppliesNewAndLateEntriesAndStopsCleanly) {
  seed(400);
  testing::Subprocess p(migrate_args("Continuous", {"--pollInterval", "500ms"}), logs_.path(), "continuous");
  ASSERT_TRUE(p.wait_for_output("No new items found in the database. Waiting for 00:00:00.5000000 before retrying...", 120s))
      << p.stdout_text() << p.stderr_text();

  // A new version of a seeded resource, and a late entry: committed now, with an `_id` older than
  // entries the poller has already passed (as a concurrent writer with a slow clock would).
  std::vector<schema::Entry> src = entries(src_uri(), "vonkentries");
  const schema::Entry* patient = nullptr;
  bson_oid_t newest = src.front().id;
  for (const auto& e : src) {
    if (bson_oid_compare(&e.id, &newest) > 0) newest = e.id;
    if (!patient && e.type == "Patient" && e.cur && e.json && !e.cnt) patient = &e;
  }
  ASSERT_NE(patient, nullptr);
  uint32_t newest_s = static_cast<uint32_t>(bson_oid_get_time_t(&newest));
  auto entry_at = [&](uint32_t secs, const std::string& res_id, const std::string& v) {
    schema::Entry e;
    uint8_t b[12] = {static_cast<uint8_t>(secs >> 24), static_cast<uint8_t>(secs >> 16),
                     static_cast<uint8_t>(secs >> 8), static_cast<uint8_t>(secs), 0xfe, 0xfe, 0xfe, 0xfe, 0xfe,
                     0, 0, static_cast<uint8_t>(v.size() + res_id.size())};
    bson_oid_init_from_data(&e.id, b);
    e.im = schema::kInfoModelR4;
    e.type = "Patient";
    e.res_id = res_id;
    e.v = v;
    e.lu_ms = static_cast<int64_t>(secs) * 1000 + 999;
    e.cur = true;
    e.change = v == "1" ? schema::Change::kCreated : schema::Change::kUpdated;
    e.json = R"({"resourceType":"Patient","id":")" + res_id + R"(","meta":{"versionId":")" + v +
             R"("},"active":false})";
    return e;
  };
  schema::Entry update = entry_at(newest_s + 10, patient->res_id, std::to_string(std::stoi(patient->v) + 1));
  schema::Entry late = entry_at(newest_s - 3, "late1", "1");
  {
    mongo::ClientPool pool(mongo::Uri::parse(src_uri()));
    mongo::Client c = pool.acquire();
    mongo::Collection coll = c.collection(pool.database(), "vonkentries");
    coll.insert_one(schema::encode_legacy(update).get());
    // The old server flips the previous version in the legacy store as well.
    mongo::Builder f;
    f.append("_id", patient->id);
    mongo::Builder u;
    u.document("$set", [](mongo::Builder& s) { s.append("cur", false); });
    mongo::BulkWriter w = coll.bulk(true);
    w.update_one(f.extract().get(), u.extract().get(), false);
    w.execute();
    std::this_thread::sleep_for(1500ms);  // the poller passes `update` before `late` exists
    coll.insert_one(schema::encode_legacy(late).get());
  }
  auto target_has = [&](const bson_oid_t& id) {
    for (const auto& e : entries(dst_uri(), "vonkentries"))
      if (bson_oid_equal(&e.id, &id)) return true;
    return false;
  };
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!(target_has(update.id) && target_has(late.id)) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(target_has(update.id));
  EXPECT_TRUE(target_has(late.id)) << "the late entry was not picked up\n" << p.stderr_text();
  ASSERT_TRUE(p.wait_for_output("No new items found", 30s));
  std::this_thread::sleep_for(1s);  // a poll boundary after both: flips flushed
  EXPECT_EQ(p.stop(30s), 0) << p.stdout_text() << p.stderr_text();
  expect_faithful_copy();
}

}  // namespace
}  // namespace fhirshift

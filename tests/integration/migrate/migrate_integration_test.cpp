// `fhirshift migrate` as an operator runs it, on a live FerretDB pair: a legacy store made by
// `fhirshift seed` is copied, checked entry by entry and by `fhirshift verify`, re-run, killed and
// resumed, fed bad input, and followed in Continuous mode while new and late entries arrive.
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <functional>
#include <map>
#include <optional>
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

// A legacy Patient entry with a fresh, increasing `_id`; `active` makes bodies differ.
schema::Entry legacy_patient(const std::string& res_id, const std::string& v, int64_t lu_ms, bool cur,
                             bool active) {
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

TEST_F(MigrateTest, DuplicateVersionsKeepTheFirstAndQuarantineTheOthers) {
  // Two source entries of one version of a resource, with different bodies: the target keeps the
  // first in `_id` order, the other is quarantined as duplicate-version naming it, and the
  // version state is right. Once in one chunk, once with every entry in a chunk of its own (the
  // duplicate then meets the kept entry in the target). Before the fix the duplicate was
  // reported as a "conflict" and, when newer, made the kept version history: no current version.
  constexpr int64_t lu = 1700000000000;
  for (const std::string batch : {"100", "1"}) {
    SCOPED_TRACE("--mongoBatch " + batch);
    const bool one_chunk = batch == "100";
    // a: the lost-update race, both v2 current; the duplicate is newer.
    schema::Entry a1 = legacy_patient("a", "1", lu + 1000, false, true);
    schema::Entry a2 = legacy_patient("a", "2", lu + 2000, true, true);
    schema::Entry a2_dup = legacy_patient("a", "2", lu + 3000, true, false);
    // b: the duplicate is older and history.
    schema::Entry b1 = legacy_patient("b", "1", lu + 2000, true, true);
    schema::Entry b1_dup = legacy_patient("b", "1", lu + 1000, false, false);
    // c (in one chunk only): the kept entry is history, its duplicate current; the kept one
    // takes the current state.
    schema::Entry c1 = legacy_patient("c", "1", lu + 1000, false, true);
    schema::Entry c1_dup = legacy_patient("c", "1", lu + 1500, true, false);
    std::vector<schema::Entry> source = {a1, a2, a2_dup, b1, b1_dup};
    if (one_chunk) source.insert(source.end(), {c1, c1_dup});
    const std::string src = source_->uri(db_ + "_" + batch), dst = target_->uri(db_ + "_" + batch);
    {
      mongo::ClientPool pool(mongo::Uri::parse(src));
      mongo::Client c = pool.acquire();
      mongo::Collection coll = c.collection(pool.database(), "vonkentries");
      for (const auto& e : source) coll.insert_one(schema::encode_legacy(e).get());
    }
    testing::TempDir journal;
    RunResult r = run_command(migrate_command(src, dst, journal.path(), "AdHoc", "ErrorOnConflict",
                                              {"--mongoBatch", batch, "--mongoPar", "1"}));
    const int64_t dups = one_chunk ? 3 : 2;
    EXPECT_EQ(r.exit_code, 1) << "quarantined entries make the exit code 1\n" << r.out << r.err;
    EXPECT_EQ(report_figure(r.out, "read"), static_cast<int64_t>(source.size())) << r.out;
    EXPECT_EQ(report_figure(r.out, "written"), static_cast<int64_t>(source.size()) - dups) << r.out;
    EXPECT_EQ(report_figure(r.out, "quarantined"), dups) << r.out;
    EXPECT_EQ(report_figure(r.out, "conflicts"), 0) << r.out;
    EXPECT_NE(r.out.find("check: read = written + unchanged + kept + skipped + quarantined + conflicts + errors: OK"),
              std::string::npos)
        << r.out;

    // The quarantine: the duplicates, with the reason and the entry kept.
    std::map<std::string, std::pair<std::string, std::string>> records;  // _id -> reason, targetId
    {
      mongo::ClientPool pool(mongo::Uri::parse(dst));
      mongo::Client c = pool.acquire();
      mongo::Collection q = c.collection(pool.database(), schema::quarantine_collection("vonkentries"));
      mongo::Builder all;
      mongo::Bson fd = all.extract();
      mongo::Cursor cur = q.find(fd.get());
      while (const bson_t* d = cur.next()) {
        mongo::View v(d);
        auto target_id = v.oid("targetId");
        records[mongo::oid_to_string(*v.oid("_id"))] = {std::string(v.string("reason").value_or("")),
                                                         target_id ? mongo::oid_to_string(*target_id) : ""};
      }
    }
    std::map<std::string, std::pair<std::string, std::string>> expected = {
        {a2_dup.id_string(), {"duplicate-version", a2.id_string()}},
        {b1_dup.id_string(), {"duplicate-version", b1.id_string()}}};
    if (one_chunk) expected[c1_dup.id_string()] = {"duplicate-version", c1.id_string()};
    EXPECT_EQ(records, expected);

    // The target: the kept entries, each resource with its newest kept version current.
    std::map<std::string, bool> state;  // _id -> cur
    for (const auto& e : entries(dst, "vonkentries")) state[e.id_string()] = e.cur;
    std::map<std::string, bool> want = {{a1.id_string(), false}, {a2.id_string(), true}, {b1.id_string(), true}};
    if (one_chunk) want[c1.id_string()] = true;
    EXPECT_EQ(state, want);

    // Accepted, the duplicates are accounted for: verify finds the copy equal.
    RunResult accept = run_command({testing::cli_path(), "quarantine", "accept", "--all", "--reason",
                                    "duplicate versions: the first is kept", "--mongoConnectionstring", dst});
    EXPECT_EQ(accept.exit_code, 0) << accept.out << accept.err;
    RunResult v = verify_full(src, dst);
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    EXPECT_NE(v.out.find("EQUAL"), std::string::npos) << v.out;
  }
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

// Issue 14's interleaving: a contained entry is copied as current before its container is in the
// target (writers may commit out of `_id` order); the container then arrives as a late entry, read
// after its next version was committed, so it is written as history. Its contained entry must
// become history with it. A second container arrives current: its early contained entry follows
// it into history when its next version comes.
TEST_F(MigrateTest, AContainedEntryCopiedBeforeItsContainerTakesTheContainersState) {
  const int64_t t0 = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  auto report = [](const std::string& id, const std::string& v, const std::string& obs) {
    return R"({"resourceType":"DiagnosticReport","id":")" + id + R"(","meta":{"versionId":")" + v +
           R"("},"status":"final","code":{"text":"panel"},"contained":[{"resourceType":"Observation","id":")" + obs +
           R"(","status":"final","code":{"text":"glucose"}}],"result":[{"reference":"#)" + obs + R"("}]})";
  };
  auto container = [&](const std::string& res_id, const std::string& v, int64_t lu, bool cur) {
    schema::Entry e;
    bson_oid_init(&e.id, nullptr);
    e.im = schema::kInfoModelR4;
    e.type = "DiagnosticReport";
    e.res_id = res_id;
    e.v = v;
    e.lu_ms = lu;
    e.cur = cur;
    e.change = v == "1" ? schema::Change::kCreated : schema::Change::kUpdated;
    e.json = report(res_id, v, "obs1");
    return e;
  };
  auto contained = [](const schema::Entry& c, bool cur) {
    schema::Entry e;
    bson_oid_init(&e.id, nullptr);
    e.im = c.im;
    e.type = "Observation";
    e.res_id = "obs1";
    e.v = c.v;
    e.lu_ms = c.lu_ms;
    e.cur = cur;
    e.change = c.change;
    e.cnt = true;
    e.container = c.id;
    e.json = R"({"resourceType":"Observation","id":"obs1","status":"final","code":{"text":"glucose"}})";
    return e;
  };
  // The containers' `_id`s are taken first (as the old server does), their contained entries'
  // after them, but the contained entries are committed first.
  schema::Entry a1 = container("dra", "1", t0, true), b1 = container("drb", "1", t0, true);
  schema::Entry a1_obs = contained(a1, true), b1_obs = contained(b1, true);

  mongo::ClientPool src_pool(mongo::Uri::parse(src_uri()));
  mongo::Client src_client = src_pool.acquire();
  mongo::Collection src = src_client.collection(src_pool.database(), "vonkentries");
  mongo::ClientPool dst_pool(mongo::Uri::parse(dst_uri()));
  mongo::Client dst_client = dst_pool.acquire();
  mongo::Collection dst = dst_client.collection(dst_pool.database(), "vonkentries");
  // The target's `cur` of one entry, by `_id`; nullopt while it is not there.
  auto target_cur = [&](const bson_oid_t& id) -> std::optional<bool> {
    mongo::Builder f;
    f.append("_id", id);
    mongo::Bson fd = f.extract();
    auto doc = dst.find_one(fd.get());
    if (!doc) return std::nullopt;
    return mongo::View(doc->get()).boolean("cur");
  };
  auto wait_until = [&](const std::function<bool()>& done, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(200ms);
    return done();
  };
  auto set_cur_false = [&](const bson_oid_t& id) {
    mongo::Builder f;
    f.append("_id", id);
    mongo::Builder u;
    u.document("$set", [](mongo::Builder& s) { s.append("cur", false); });
    mongo::BulkWriter w = src.bulk(true);
    w.update_one(f.extract().get(), u.extract().get(), false);
    w.execute();
  };

  src.insert_one(schema::encode_legacy(a1_obs).get());
  src.insert_one(schema::encode_legacy(b1_obs).get());
  testing::Subprocess p(migrate_args("Continuous", {"--pollInterval", "500ms"}), logs_.path(), "orphans");
  ASSERT_TRUE(wait_until([&] { return target_cur(a1_obs.id) && target_cur(b1_obs.id); }, 180s))
      << p.stderr_text();
  EXPECT_EQ(target_cur(a1_obs.id), std::optional<bool>(true)) << "copied before its container, as current";

  // DiagnosticReport/dra v2 is committed, then v1 (already history) arrives late; drb v1 arrives late
  // and current.
  schema::Entry a2 = container("dra", "2", t0 + 1000, true);
  schema::Entry a2_obs = contained(a2, true);
  src.insert_one(schema::encode_legacy(a2).get());
  src.insert_one(schema::encode_legacy(a2_obs).get());
  a1.cur = false;
  a1_obs.cur = false;
  src.insert_one(schema::encode_legacy(a1).get());
  set_cur_false(a1_obs.id);
  src.insert_one(schema::encode_legacy(b1).get());
  ASSERT_TRUE(wait_until([&] { return target_cur(a1.id) && target_cur(a2_obs.id) && target_cur(b1.id); }, 180s))
      << "the late containers were not picked up\n" << p.stderr_text();
  // The container's state and its contained entry's are written in the same chunk.
  EXPECT_EQ(target_cur(a1.id), std::optional<bool>(false));
  EXPECT_EQ(target_cur(a1_obs.id), std::optional<bool>(false)) << "follows its container into history";
  EXPECT_EQ(target_cur(b1.id), std::optional<bool>(true));
  EXPECT_EQ(target_cur(b1_obs.id), std::optional<bool>(true));

  // drb v2, written as the old server writes it: the new version, then the old one and its
  // contained entry flipped. The early contained entry must follow its container into history.
  schema::Entry b2 = container("drb", "2", t0 + 2000, true);
  src.insert_one(schema::encode_legacy(b2).get());
  set_cur_false(b1.id);
  set_cur_false(b1_obs.id);
  EXPECT_TRUE(wait_until([&] { return target_cur(b1_obs.id) == std::optional<bool>(false); }, 180s))
      << "the contained entry of drb v1 stayed current after v2 arrived\n" << p.stderr_text();
  EXPECT_EQ(p.stop(60s), 0) << p.stdout_text() << p.stderr_text();
  expect_faithful_copy();
  RunResult v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

}  // namespace
}  // namespace fhirshift

// `fhirshift verify` as an operator (and the cut-over) runs it, on a live FerretDB pair: a legacy
// store made by `fhirshift seed`, copied by `fhirshift migrate`, then differences injected by hand.
#include <gtest/gtest.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cutover/adapters.h"
#include "ferretdb_server.h"
#include "mongo/client.h"
#include "mongo/collection.h"
#include "schema/entry.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift {
namespace {

using mongo::Bson;
using mongo::Builder;
using mongo::View;
using testing::RunResult;
using testing::run_command;

constexpr int kEntries = 300;

std::string last_line(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  auto pos = s.rfind('\n');
  return pos == std::string::npos ? s : s.substr(pos + 1);
}

class VerifyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    source_ = new testing::FerretDbServer();
    target_ = new testing::FerretDbServer();
  }
  static void TearDownTestSuite() {
    delete source_;
    delete target_;
  }

  // Each test has its own database on both servers: a seeded legacy store and its migrated copy.
  void SetUp() override {
    db_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    RunResult seed = run_command({testing::cli_path(), "seed", "--mongoConnectionstring", src_uri(),
                                  "--mongoCollection", "vonkentries", "--entries",
                                  std::to_string(kEntries), "--seed", "11"});
    ASSERT_EQ(seed.exit_code, 0) << seed.out << seed.err;
    RunResult migrate = run_command(
        {testing::cli_path(), "migrate", "--srcMongoConnectionString", src_uri(),
         "--srcMongoCollection", "vonkentries", "--srcMongoRunningMode", "AdHoc",
         "--mongoConnectionstring", dst_uri(), "--mongoCollection", "vonkentries",
         "--provisionTargetDatabase", "true"});
    ASSERT_EQ(migrate.exit_code, 0) << migrate.out << migrate.err;
    src_pool_ = std::make_unique<mongo::ClientPool>(mongo::Uri::parse(src_uri()));
    dst_pool_ = std::make_unique<mongo::ClientPool>(mongo::Uri::parse(dst_uri()));
  }

  std::string src_uri() const { return source_->uri(db_); }
  std::string dst_uri() const { return target_->uri(db_); }

  std::vector<std::string> connection_args() const {
    return {"--srcMongoConnectionString", src_uri(), "--srcMongoCollection", "vonkentries",
            "--mongoConnectionstring", dst_uri(), "--mongoCollection", "vonkentries"};
  }

  RunResult verify(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{testing::cli_path(), "verify", "--settle", "0.5"};
    for (const auto& a : connection_args()) argv.push_back(a);
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_command(argv, std::chrono::minutes(3));
  }

  nlohmann::json report(std::vector<std::string> extra, RunResult* out = nullptr) {
    std::string path = (dir_.path() / "report.json").string();
    extra.insert(extra.end(), {"--report", path});
    RunResult r = verify(extra);
    if (out) *out = r;
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << r.out << r.err;
    return nlohmann::json::parse(in);
  }

  mongo::Collection target(mongo::Client& c) { return c.collection(db_, "vonkentries"); }
  mongo::Collection source(mongo::Client& c) { return c.collection(db_, "vonkentries"); }

  // The first target entry matching `filter`.
  Bson find_target(const std::string& filter_json) {
    auto c = dst_pool_->acquire();
    auto doc = target(c).find_one(Bson::from_json(filter_json).get());
    EXPECT_TRUE(doc.has_value()) << "no target entry matches " << filter_json;
    return doc ? std::move(*doc) : Bson();
  }
  void update_target(const bson_oid_t& id, const std::string& update_json) {
    auto c = dst_pool_->acquire();
    Builder f;
    f.append("_id", id);
    auto bulk = target(c).bulk();
    bulk.update_one(f.get(), Bson::from_json(update_json).get(), false);
    auto r = bulk.execute();
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r.matched, 1);
  }
  void delete_target(const bson_oid_t& id) {
    auto c = dst_pool_->acquire();
    Builder f;
    f.append("_id", id);
    auto bulk = target(c).bulk();
    bulk.delete_one(f.get());
    ASSERT_EQ(bulk.execute().deleted, 1);
  }
  static std::string id(const Bson& doc) { return mongo::oid_to_string(*View(doc.get()).oid("_id")); }
  static bson_oid_t oid(const Bson& doc) { return *View(doc.get()).oid("_id"); }
  // A history (not current) ordinary entry with a body, of a resource that has a current one.
  Bson history_entry(int skip = 0) {
    auto c = dst_pool_->acquire();
    auto cursor = target(c).find(
        Bson::from_json(R"({"cur":false,"cnt":false,"change":{"$ne":"d"}})").get(),
        Bson::from_json(R"({"sort":{"_id":1}})").get());
    while (const bson_t* doc = cursor.next())
      if (skip-- == 0) return Bson::copy_of(doc);
    ADD_FAILURE() << "not enough history entries";
    return Bson();
  }
  Bson current_entry(int skip = 0) {
    auto c = dst_pool_->acquire();
    auto cursor = target(c).find(
        Bson::from_json(R"({"cur":true,"cnt":false,"change":{"$ne":"d"}})").get(),
        Bson::from_json(R"({"sort":{"_id":1}})").get());
    while (const bson_t* doc = cursor.next())
      if (skip-- == 0) return Bson::copy_of(doc);
    ADD_FAILURE() << "not enough current entries";
    return Bson();
  }
  bool names(const nlohmann::json& j, const std::string& kind, const std::string& id,
             const std::string& detail_part = "") {
    for (const auto& d : j["differences"])
      if (d["kind"] == kind && d["id"] == id &&
          d["detail"].get<std::string>().find(detail_part) != std::string::npos)
        return true;
    return false;
  }

  struct Injected {
    std::string missing, extra, changed_body, changed_idx, contained_unindexed, two_cur, two_cur_id;
  };
  // One of each difference the issue names; returns the `_id`s to look for.
  Injected inject_each_kind() {
    Injected in;
    // Picked before any change (each change moves entries in or out of these lists). Distinct
    // resources, so that each difference is counted once.
    std::vector<Bson> picked;
    std::set<std::string> resources;
    for (int i = 0; picked.size() < 4; ++i) {
      Bson h = history_entry(i);
      if (h.empty()) break;
      if (resources.insert(std::string(*View(h.get()).string("type")) + "/" +
                           std::string(*View(h.get()).string("res_id"))).second)
        picked.push_back(std::move(h));
    }
    Bson gone = std::move(picked.at(0));
    in.missing = id(gone);
    delete_target(oid(gone));

    Bson body = std::move(picked.at(1));
    in.changed_body = id(body);
    update_target(oid(body), R"({"$set":{"json":"{\"resourceType\":\"tampered\"}"}})");

    Bson cur = current_entry(0);
    in.changed_idx = id(cur);
    update_target(oid(cur), R"({"$set":{"idx":{"_id":[{"s":null,"c":"wrong"}]}}})");

    // A current contained entry stripped of its idx (it is indexed like any current entry).
    {
      auto c = dst_pool_->acquire();
      auto cursor = target(c).find(Bson::from_json(R"({"cur":true,"cnt":true})").get(),
                                   Bson::from_json(R"({"sort":{"_id":1},"limit":1})").get());
      const bson_t* doc = cursor.next();
      EXPECT_TRUE(doc) << "the seeded store has no current contained entry";
      if (doc) in.contained_unindexed = mongo::oid_to_string(*View(doc).oid("_id"));
    }
    if (!in.contained_unindexed.empty())
      update_target(*mongo::oid_from_string(in.contained_unindexed), R"({"$unset":{"idx":""}})");

    // A second current version: an older version flagged current again. (It has no idx, which
    // a current entry must have: that is reported as a change of the entry as well.)
    Bson older = std::move(picked.at(2));
    in.two_cur = std::string(*View(older.get()).string("res_id"));
    in.two_cur_id = id(older);
    update_target(oid(older), R"({"$set":{"cur":true}})");

    // An extra entry: a copy of a history entry under a new _id and version, older than all.
    Bson copy = std::move(picked.at(3));
    Builder b;
    bson_oid_t new_id;
    bson_oid_init(&new_id, nullptr);
    bson_iter_t it;
    bson_iter_init(&it, copy.get());
    while (bson_iter_next(&it)) {
      std::string key = bson_iter_key(&it);
      if (key == "_id") b.append("_id", new_id);
      else if (key == "v") b.append("v", "extra-1");
      else if (key == "lu") b.append_date("lu", 1000);
      else b.append_iter(key, it);
    }
    in.extra = mongo::oid_to_string(new_id);
    auto c = dst_pool_->acquire();
    target(c).insert_one(b.extract().get());
    return in;
  }

  static testing::FerretDbServer* source_;
  static testing::FerretDbServer* target_;
  std::string db_;
  std::unique_ptr<mongo::ClientPool> src_pool_, dst_pool_;
  testing::TempDir dir_{"fhirshift-verify-test"};
};
testing::FerretDbServer* VerifyTest::source_ = nullptr;
testing::FerretDbServer* VerifyTest::target_ = nullptr;

TEST_F(VerifyTest, AMigratedStoreIsEqualInEveryMode) {
  RunResult r;
  auto j = report({"--mode", "full"}, &r);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(last_line(r.out).rfind("EQUAL (", 0), 0u) << r.out;
  EXPECT_EQ(j["equal"], true);
  EXPECT_EQ(j["source"]["entries"], kEntries);
  EXPECT_EQ(j["target"]["entries"], kEntries);
  EXPECT_EQ(j["source"]["systemDocuments"], 1);
  // The target's schema document and the migrator's run marker.
  EXPECT_GE(j["target"]["systemDocuments"].get<int>(), 1);
  EXPECT_EQ(j["entriesCompared"], kEntries);
  // The start point is the source's highest lu.
  auto c = src_pool_->acquire();
  auto newest = source(c).find_one(Bson::from_json(R"({"type":{"$exists":true}})").get(),
                                   Bson::from_json(R"({"sort":{"lu":-1},"limit":1})").get());
  ASSERT_TRUE(newest);
  int64_t lu = *View(newest->get()).date("lu");
  char buf[64];
  time_t secs = lu / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(lu % 1000));
  EXPECT_EQ(j["sourceHighWaterLu"], buf);

  for (const char* mode : {"counts", "sample"}) {
    RunResult m = verify({"--mode", mode, "--sample", "50"});
    EXPECT_EQ(m.exit_code, 0) << mode << ": " << m.out << m.err;
    EXPECT_EQ(last_line(m.out).rfind("EQUAL (", 0), 0u) << m.out;
  }
}

// The cut-over runs verify through SubprocessVerifier: its parsing must accept what verify prints.
TEST_F(VerifyTest, TheCutOversVerifierReadsTheVerdictAndTheStartPoint) {
  cutover::SubprocessVerifier verifier(testing::cli_path(), connection_args(), std::chrono::minutes(2));
  cutover::VerifyOutcome equal = verifier.verify({"full", std::nullopt, {}});
  EXPECT_TRUE(equal.equal) << equal.verdict;
  EXPECT_EQ(equal.exit_code, 0);
  ASSERT_TRUE(equal.source_high_water_lu.has_value());
  EXPECT_EQ(equal.source_high_water_lu->size(), 24u) << *equal.source_high_water_lu;
  cutover::VerifyOutcome counts = verifier.verify({"counts", std::nullopt, {}});
  EXPECT_TRUE(counts.equal) << counts.verdict;

  delete_target(oid(history_entry(0)));
  cutover::VerifyOutcome different = verifier.verify({"full", std::string("2000-01-01T00:00:00.000Z"), {}});
  EXPECT_FALSE(different.equal);
  EXPECT_EQ(different.exit_code, 1);
  EXPECT_EQ(different.verdict.rfind("DIFFERENT: 1 missing, 0 extra, 0 changed, 0 bad state", 0), 0u)
      << different.verdict;
}

// The cut-over's staged final verify: the process starts and connects before the fence, reads the
// source only after `source` and the target only after `target`. An entry written to the source
// just before `source` (and never copied) is found missing; an entry that reaches the target just
// before `target` (the drain) is not. A verify that read the source early would miss the first
// (both stores lacked it then); one that read the target early, the second.
TEST_F(VerifyTest, TheStagedFinalVerifyReadsEachStoreOnlyOnceItIsSaidFinal) {
  cutover::SubprocessVerifier verifier(testing::cli_path(), connection_args(), std::chrono::minutes(2));
  Bson late_in_target = history_entry(1);
  Bson late_in_source;
  {
    auto c = src_pool_->acquire();
    Builder f;
    f.append("_id", oid(history_entry(0)));
    auto doc = source(c).find_one(f.get());
    ASSERT_TRUE(doc.has_value());
    late_in_source = std::move(*doc);
    auto bulk = source(c).bulk();
    bulk.delete_one(f.get());
    ASSERT_EQ(bulk.execute().deleted, 1);
  }
  delete_target(oid(late_in_source));
  delete_target(oid(late_in_target));

  auto staged = verifier.start({"full", std::string("2000-01-01T00:00:00.000Z"), {}});
  // Time for a verify that ignored its stages to read a store early and to look again at what
  // differs after its 5 s --settle (the correct one waits): neither wait decides a correct run.
  const auto longer_than_settle = std::chrono::seconds(7);
  std::this_thread::sleep_for(longer_than_settle);
  {
    auto c = src_pool_->acquire();
    source(c).insert_one(late_in_source.get());
  }
  staged->source_final();
  std::this_thread::sleep_for(longer_than_settle);
  {
    auto c = dst_pool_->acquire();
    target(c).insert_one(late_in_target.get());
  }
  staged->target_final();
  cutover::VerifyOutcome v = staged->finish(std::chrono::minutes(2));
  EXPECT_FALSE(v.equal);
  EXPECT_EQ(v.verdict.rfind("DIFFERENT: 1 missing, 0 extra, 0 changed, 0 bad state", 0), 0u)
      << v.verdict;
  // `took` counts from `target`: the verify's own share of the write pause, not its wait.
  EXPECT_LT(v.took, std::chrono::seconds(60)) << v.took.count();
}

// An aborted cut-over drops its staged verify: the process ends at once, without a verdict.
TEST_F(VerifyTest, ADroppedStagedVerifyEndsItsProcess) {
  cutover::SubprocessVerifier verifier(testing::cli_path(), connection_args(), std::chrono::minutes(2));
  auto staged = verifier.start({"full", std::string("2000-01-01T00:00:00.000Z"), {}});
  staged->source_final();
  auto before = std::chrono::steady_clock::now();
  staged.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(5));
  // No verify process of this test's databases is left.
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_FALSE(cmd.find("--stdin-stages") != std::string::npos &&
                 cmd.find(db_) != std::string::npos)
        << "left running: pid " << entry.path().filename();
  }
}

TEST_F(VerifyTest, EachKindOfDifferenceIsFoundAndNamed) {
  Injected in = inject_each_kind();
  RunResult r;
  auto j = report({"--mode", "full"}, &r);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(j["missing"], 1) << j.dump(2);
  EXPECT_EQ(j["extra"], 1) << j.dump(2);
  EXPECT_EQ(j["changed"], 4) << j.dump(2);
  EXPECT_EQ(j["badState"], 1) << j.dump(2);
  EXPECT_EQ(last_line(r.out), j["verdict"].get<std::string>());
  EXPECT_EQ(last_line(r.out).rfind("DIFFERENT: 1 missing, 1 extra, 4 changed, 1 bad state", 0), 0u)
      << r.out;
  EXPECT_TRUE(names(j, "missing", in.missing, "not in the target")) << j.dump(2);
  EXPECT_TRUE(names(j, "extra", in.extra)) << j.dump(2);
  EXPECT_TRUE(names(j, "changed", in.changed_body, "field 'json'")) << j.dump(2);
  EXPECT_TRUE(names(j, "changed", in.changed_idx, "field 'idx': parameter")) << j.dump(2);
  EXPECT_TRUE(names(j, "changed", in.contained_unindexed,
                    "'idx' missing on the current version (a contained entry)"))
      << j.dump(2);
  bool two_cur = false;
  for (const auto& d : j["differences"])
    if (d["kind"] == "bad state" &&
        d["resource"].get<std::string>().find("/" + in.two_cur) != std::string::npos &&
        d["detail"].get<std::string>().find("2 current versions") != std::string::npos)
      two_cur = true;
  EXPECT_TRUE(two_cur) << j.dump(2);
  EXPECT_TRUE(names(j, "changed", in.two_cur_id, "'idx' missing on the current version")) << j.dump(2);
  // The operator's text names them too.
  EXPECT_NE(r.out.find("missing " + in.missing), std::string::npos) << r.out;

  // counts mode sees the missing and the extra entry (not what changed in place).
  RunResult counts = verify({"--mode", "counts"});
  EXPECT_EQ(counts.exit_code, 1);
  EXPECT_NE(counts.out.find("<-- entries differ"), std::string::npos) << counts.out;
}

TEST_F(VerifyTest, RepairMakesTheStoresEqual) {
  inject_each_kind();
  RunResult keep = verify({"--repair"});
  // Without --delete-extra the extra entry stays (and is reported).
  EXPECT_EQ(keep.exit_code, 1) << keep.out << keep.err;
  EXPECT_EQ(last_line(keep.out).rfind("DIFFERENT: 0 missing, 1 extra, 0 changed, 0 bad state", 0), 0u)
      << keep.out;
  EXPECT_NE(keep.out.find("before repair: DIFFERENT: 1 missing, 1 extra, 4 changed, 1 bad state"),
            std::string::npos)
      << keep.out;

  RunResult fix = verify({"--repair", "--delete-extra"});
  EXPECT_EQ(fix.exit_code, 0) << fix.out << fix.err;
  EXPECT_EQ(last_line(fix.out).rfind("EQUAL (", 0), 0u) << fix.out;
  // An independent full verify agrees.
  RunResult again = verify();
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
}

TEST_F(VerifyTest, BadDocumentsOnEitherSideAreReportedNotCrashes) {
  auto sc = src_pool_->acquire();
  auto dc = dst_pool_->acquire();
  // Source: a body whose resourceType does not match (the migrator quarantines it), and an entry
  // without res_id. Old lu: not in flight.
  source(sc).insert_one(Bson::from_json(
      R"({"_id":{"$oid":"5f0000000000000000000001"},"im":"Fhir4.0","type":"Patient","res_id":"bad1",)"
      R"("v":"1","lu":{"$date":1000},"cur":true,"change":"c","cnt":false,)"
      R"("json":"{\"resourceType\":\"Observation\",\"id\":\"bad1\"}"})").get());
  source(sc).insert_one(Bson::from_json(
      R"({"_id":{"$oid":"5f0000000000000000000002"},"im":"Fhir4.0","type":"Patient",)"
      R"("v":"1","lu":{"$date":1000},"cur":true,"change":"c"})").get());
  // Target: an entry with a string _id and one with a broken lu.
  target(dc).insert_one(Bson::from_json(
      R"({"_id":"not-an-objectid","im":"Fhir4.0","type":"Patient","res_id":"x","v":"1"})").get());
  target(dc).insert_one(Bson::from_json(
      R"({"_id":{"$oid":"5f0000000000000000000003"},"im":"Fhir4.0","type":"Patient","res_id":"y",)"
      R"("v":"1","lu":"yesterday","cur":false,"change":"c","cnt":false,"json":"{}"})").get());
  // Run the migrator again: it quarantines the source's bad entries.
  RunResult migrate = run_command(
      {testing::cli_path(), "migrate", "--srcMongoConnectionString", src_uri(),
       "--srcMongoCollection", "vonkentries", "--srcMongoRunningMode", "AdHoc",
       "--mongoConnectionstring", dst_uri(), "--mongoCollection", "vonkentries"});
  EXPECT_EQ(migrate.exit_code == 0 || migrate.exit_code == 1, true) << migrate.err;

  RunResult r;
  auto j = report({}, &r);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(j["missing"], 2) << j.dump(2);
  EXPECT_EQ(j["extra"], 2) << j.dump(2);
  EXPECT_EQ(j["changed"], 0) << j.dump(2);
  EXPECT_TRUE(names(j, "missing", "5f0000000000000000000001", "type-mismatch")) << j.dump(2);
  EXPECT_TRUE(names(j, "missing", "5f0000000000000000000002", "res_id")) << j.dump(2);
  EXPECT_TRUE(names(j, "extra", "5f0000000000000000000003", "invalid")) << j.dump(2);
  EXPECT_TRUE(names(j, "extra", R"({ "_id" : "not-an-objectid" })")) << j.dump(2);
  // The quarantined ones are listed as such, never counted as equal.
  EXPECT_GE(j["quarantined"].get<int>(), 1) << j.dump(2);
  bool listed = false;
  for (const auto& q : j["quarantinedEntries"])
    if (q["id"] == "5f0000000000000000000001") listed = true;
  EXPECT_TRUE(listed) << j.dump(2);
}

// A continuous migrator may copy an entry just after the stream passed it: a difference is looked
// at again, every second within --settle, and reported only if it is still there at its end. The
// verify ends as soon as it is gone, not after the whole --settle.
TEST_F(VerifyTest, ADifferenceThatDisappearsWhileSettlingIsNotReported) {
  Bson gone = history_entry(0);
  delete_target(oid(gone));
  std::vector<std::string> argv{testing::cli_path(), "verify", "--settle", "120"};
  for (const auto& a : connection_args()) argv.push_back(a);
  testing::Subprocess settling(argv, dir_.path(), "verify-settle");
  ASSERT_TRUE(settling.wait_for_output("looking at them again", std::chrono::seconds(60)))
      << settling.stderr_text();
  {
    auto c = dst_pool_->acquire();
    target(c).insert_one(gone.get());  // what the migrator would do
  }
  auto rc = settling.wait_for(std::chrono::seconds(60));  // half the --settle
  ASSERT_TRUE(rc.has_value()) << "still settling 60 s after the difference was gone";
  EXPECT_EQ(*rc, 0) << settling.stdout_text() << settling.stderr_text();
  EXPECT_EQ(last_line(settling.stdout_text()).rfind("EQUAL (", 0), 0u) << settling.stdout_text();

  // Still missing after the wait: reported.
  delete_target(oid(gone));
  RunResult r = verify();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(last_line(r.out).rfind("DIFFERENT: 1 missing", 0), 0u) << r.out;
}

TEST_F(VerifyTest, SinceLimitsTheCheckToResourcesTouchedSinceThen) {
  // Tamper with the oldest history entry: a verify --since a recent time does not look at it.
  Bson old = history_entry(0);
  update_target(oid(old), R"({"$set":{"json":"{}"}})");
  RunResult recent = verify({"--since", "2100-01-01T00:00:00Z"});
  EXPECT_EQ(recent.exit_code, 0) << recent.out << recent.err;
  EXPECT_NE(recent.out.find("EQUAL (0 entries compared)"), std::string::npos) << recent.out;
  RunResult all = verify({"--since", "2000-01-01T00:00:00Z"});
  EXPECT_EQ(all.exit_code, 1) << all.out;
  EXPECT_EQ(last_line(all.out).rfind("DIFFERENT: 0 missing, 0 extra, 1 changed, 0 bad state", 0), 0u)
      << all.out;
  RunResult usage = verify({"--since", "last week"});
  EXPECT_EQ(usage.exit_code, 2) << usage.err;
}

// The cut-over's final verify: the scope is what was written since T (by `_id` time), but every
// version of those resources is compared, and the target's own recent entries are looked at too.
TEST_F(VerifyTest, SinceSeesAllVersionsOfRecentWritesAndTargetOnlyOnes) {
  // The seeded store's `_id`s carry the seconds of their lu, spread over a few seconds.
  struct Version {
    bson_oid_t oid;
    uint32_t second;
  };
  std::map<std::string, std::vector<Version>> versions;  // type/res_id -> versions in _id order
  std::vector<uint32_t> seconds;
  {
    auto c = dst_pool_->acquire();
    auto cursor = target(c).find(Bson::from_json(R"({"cnt":false})").get(),
                                 Bson::from_json(R"({"sort":{"_id":1}})").get());
    while (const bson_t* doc = cursor.next()) {
      View v(doc);
      auto id = v.oid("_id");
      if (!id) continue;
      uint32_t sec = static_cast<uint32_t>(bson_oid_get_time_t(&*id));
      versions[std::string(*v.string("type")) + "/" + std::string(*v.string("res_id"))].push_back(
          {*id, sec});
      seconds.push_back(sec);
    }
  }
  ASSERT_GT(seconds.size(), 100u);
  const uint32_t since = seconds[seconds.size() * 2 / 3];
  ASSERT_GT(since, seconds.front()) << "the seeded _ids span less than a second";
  // A resource written again since T whose older version is from before T; an entry written
  // since T of another resource; a resource untouched since T.
  std::string spanning, recent, untouched;
  bson_oid_t older{}, recent_id{}, untouched_id{};
  for (const auto& [key, vs] : versions) {
    if (spanning.empty() && vs.size() >= 2 && vs.back().second >= since && vs.front().second < since) {
      spanning = key;
      older = vs.front().oid;
    } else if (recent.empty() && vs.back().second >= since) {
      recent = key;
      recent_id = vs.back().oid;
    } else if (untouched.empty() && vs.back().second < since) {
      untouched = key;
      untouched_id = vs.front().oid;
    }
  }
  ASSERT_FALSE(spanning.empty() || recent.empty() || untouched.empty())
      << spanning << " " << recent << " " << untouched;
  update_target(older, R"({"$set":{"cur":true}})");  // the flip before T undone
  update_target(recent_id, R"({"$set":{"json":"{\"resourceType\":\"tampered\"}"}})");
  update_target(untouched_id, R"({"$set":{"json":"{\"resourceType\":\"tampered\"}"}})");
  // An entry only the target has, written now, of a resource the source never had.
  Bson copy = find_target(R"({"cur":true,"cnt":false,"change":"c"})");
  Builder b;
  bson_oid_t extra_id;
  bson_oid_init(&extra_id, nullptr);
  bson_iter_t it;
  bson_iter_init(&it, copy.get());
  while (bson_iter_next(&it)) {
    std::string key = bson_iter_key(&it);
    if (key == "_id") b.append("_id", extra_id);
    else if (key == "res_id") b.append("res_id", "only-in-the-target");
    else b.append_iter(key, it);
  }
  {
    auto c = dst_pool_->acquire();
    target(c).insert_one(b.extract().get());
  }

  std::time_t t = static_cast<std::time_t>(since);
  char iso[32];
  std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  RunResult r;
  auto j = report({"--mode", "full", "--since", iso}, &r);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(j["missing"], 0) << j.dump(2);
  EXPECT_EQ(j["extra"], 1) << j.dump(2);
  EXPECT_EQ(j["badState"], 1) << j.dump(2);
  EXPECT_TRUE(names(j, "extra", mongo::oid_to_string(extra_id))) << j.dump(2);
  EXPECT_TRUE(names(j, "changed", mongo::oid_to_string(recent_id), "field 'json'")) << j.dump(2);
  bool two_cur = false;
  for (const auto& d : j["differences"]) {
    EXPECT_NE(d["id"], mongo::oid_to_string(untouched_id)) << "untouched since T: " << d.dump();
    if (d["kind"] == "bad state" && d["resource"].get<std::string>().find(spanning) != std::string::npos &&
        d["detail"].get<std::string>().find("2 current versions") != std::string::npos)
      two_cur = true;
  }
  EXPECT_TRUE(two_cur) << spanning << "\n" << j.dump(2);
}

}  // namespace
}  // namespace fhirshift

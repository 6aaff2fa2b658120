// The quarantine review on a live FerretDB pair, as an operator runs it (docs/runbook.md,
// "Reviewing the quarantine"): a legacy store with three entries that cannot be migrated (invalid
// JSON, resourceType not matching type, no res_id) is migrated; verify says DIFFERENT and names
// the fix; one entry is fixed in the source and retried, the other two accepted; then verify (every
// mode) and the cut-over's verifier say EQUAL and list the accepted entries. A newer version of a
// quarantined resource supersedes the quarantined entry while a Continuous migrator runs.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cutover/adapters.h"
#include "ferretdb_server.h"
#include "mongo/client.h"
#include "mongo/collection.h"
#include "schema/entry.h"
#include "schema/layout.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift {
namespace {

using namespace std::chrono_literals;
using mongo::Bson;
using mongo::Builder;
using mongo::View;
using testing::run_command;
using testing::RunResult;

constexpr int kSeeded = 300;

std::string last_line(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  auto pos = s.rfind('\n');
  return pos == std::string::npos ? s : s.substr(pos + 1);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class QuarantineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    source_ = new testing::FerretDbServer();
    target_ = new testing::FerretDbServer();
  }
  static void TearDownTestSuite() {
    delete source_;
    delete target_;
  }

  void SetUp() override {
    db_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    RunResult seed = run_command({testing::cli_path(), "seed", "--mongoConnectionstring", src_uri(),
                                  "--mongoCollection", "vonkentries", "--entries",
                                  std::to_string(kSeeded), "--seed", "7"});
    ASSERT_EQ(seed.exit_code, 0) << seed.out << seed.err;
    src_pool_ = std::make_unique<mongo::ClientPool>(mongo::Uri::parse(src_uri()));
    dst_pool_ = std::make_unique<mongo::ClientPool>(mongo::Uri::parse(dst_uri()));
  }

  std::string src_uri() const { return source_->uri(db_); }
  std::string dst_uri() const { return target_->uri(db_); }

  // A legacy entry of Patient/`res_id` version `v` with body `json`; `res_id` empty: no field.
  bson_oid_t insert_source(const std::string& res_id, const std::string& v,
                           const std::string& change, const std::string& json, int64_t lu_ms,
                           bool cur = true) {
    bson_oid_t id;
    bson_oid_init(&id, nullptr);
    Builder b;
    b.append("_id", id).append("im", schema::kInfoModelR4).append("type", "Patient");
    if (!res_id.empty()) b.append("res_id", res_id);
    b.append("v", v).append_date("lu", lu_ms).append("cur", cur).append("change", change);
    b.append("cnt", false).append("json", json);
    auto c = src_pool_->acquire();
    c.collection(db_, "vonkentries").insert_one(b.extract().get());
    return id;
  }
  void update_source(const bson_oid_t& id, const std::string& update_json) {
    auto c = src_pool_->acquire();
    Builder f;
    f.append("_id", id);
    auto bulk = c.collection(db_, "vonkentries").bulk();
    bulk.update_one(f.get(), Bson::from_json(update_json).get(), false);
    ASSERT_EQ(bulk.execute().matched, 1);
  }
  bool in_target(const bson_oid_t& id) {
    auto c = dst_pool_->acquire();
    Builder f;
    f.append("_id", id);
    return c.collection(db_, "vonkentries").find_one(f.get()).has_value();
  }
  std::optional<Bson> quarantine_record(const bson_oid_t& id) {
    auto c = dst_pool_->acquire();
    Builder f;
    f.append("_id", id);
    return c.collection(db_, schema::quarantine_collection("vonkentries")).find_one(f.get());
  }

  std::vector<std::string> connection_args() const {
    return {"--srcMongoConnectionString", src_uri(), "--srcMongoCollection", "vonkentries",
            "--mongoConnectionstring",    dst_uri(), "--mongoCollection",    "vonkentries"};
  }
  std::vector<std::string> migrate_args(const std::string& mode,
                                        std::vector<std::string> extra = {}) {
    std::vector<std::string> a{testing::cli_path(),         "migrate",
                               "--srcMongoRunningMode",     mode,
                               "--provisionTargetDatabase", "true"};
    for (const auto& c : connection_args()) a.push_back(c);
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  RunResult quarantine(const std::string& action, std::vector<std::string> extra = {}) {
    std::vector<std::string> a{
        testing::cli_path(), "quarantine",        action,       "--mongoConnectionstring",
        dst_uri(),           "--mongoCollection", "vonkentries"};
    if (action == "retry") a.insert(a.end(), {"--srcMongoConnectionString", src_uri()});
    a.insert(a.end(), extra.begin(), extra.end());
    return run_command(a, 3min);
  }
  RunResult verify(const std::string& mode, std::vector<std::string> extra = {}) {
    std::vector<std::string> a{testing::cli_path(), "verify", "--settle", "0.5", "--mode", mode};
    for (const auto& c : connection_args()) a.push_back(c);
    a.insert(a.end(), extra.begin(), extra.end());
    return run_command(a, 3min);
  }

  static testing::FerretDbServer* source_;
  static testing::FerretDbServer* target_;
  std::string db_;
  std::unique_ptr<mongo::ClientPool> src_pool_, dst_pool_;
  testing::TempDir dir_;
};

testing::FerretDbServer* QuarantineTest::source_ = nullptr;
testing::FerretDbServer* QuarantineTest::target_ = nullptr;

TEST_F(QuarantineTest, ReviewedBadEntriesLetVerifyAndTheCutOverPass) {
  const int64_t lu = now_ms() - 60000;
  const bson_oid_t bad_json = insert_source(
      "broken1", "1", "c", R"({"resourceType":"Patient","id":"broken1","name":[)", lu);
  const bson_oid_t wrong_type =
      insert_source("wrong1", "1", "c", R"({"resourceType":"Observation","id":"wrong1"})", lu);
  const bson_oid_t no_res_id =
      insert_source("", "1", "c", R"({"resourceType":"Patient","id":"x"})", lu);
  const std::string bad_json_id = mongo::oid_to_string(bad_json);
  const std::string wrong_type_id = mongo::oid_to_string(wrong_type);
  const std::string no_res_id_id = mongo::oid_to_string(no_res_id);

  RunResult m = run_command(migrate_args("AdHoc"));
  ASSERT_EQ(m.exit_code, 1) << m.out << m.err;  // quarantined entries make migrate exit 1

  // Every verify mode: DIFFERENT, each quarantined entry named with the fix.
  for (const char* mode : {"counts", "full"}) {
    RunResult v = verify(mode);
    EXPECT_EQ(v.exit_code, 1) << mode << "\n" << v.out << v.err;
    EXPECT_EQ(last_line(v.out).rfind("DIFFERENT: 3 missing, 0 extra, 0 changed, 0 bad state", 0),
              0u)
        << mode << "\n"
        << v.out;
    for (const auto& id : {bad_json_id, wrong_type_id, no_res_id_id})
      EXPECT_NE(v.out.find("fhirshift quarantine show " + id), std::string::npos)
          << mode << " " << id << "\n"
          << v.out;
  }

  RunResult list = quarantine("list");
  ASSERT_EQ(list.exit_code, 0) << list.out << list.err;
  EXPECT_NE(
      list.out.find("3 quarantined in " + db_ + ".vonkentries_quarantine: 3 open, 0 accepted"),
      std::string::npos)
      << list.out;
  EXPECT_NE(list.out.find(wrong_type_id + "  Fhir4.0 Patient/wrong1 v1  type-mismatch"),
            std::string::npos)
      << list.out;
  RunResult show = quarantine("show", {bad_json_id});
  ASSERT_EQ(show.exit_code, 0) << show.out << show.err;
  EXPECT_NE(show.out.find("invalid-json"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("broken1"), std::string::npos) << show.out;
  EXPECT_EQ(quarantine("show", {"0123456789abcdef01234567"}).exit_code, 2);

  // Fixed in the source, retried: migrated, out of the quarantine. The others still fail.
  update_source(
      bad_json,
      R"({"$set":{"json":"{\"resourceType\":\"Patient\",\"id\":\"broken1\",\"name\":[{\"family\":\"Fixed\"}]}"}})");
  RunResult retry = quarantine("retry", {"--all"});
  EXPECT_EQ(retry.exit_code, 1) << retry.out << retry.err;
  EXPECT_NE(retry.out.find(bad_json_id + "  Fhir4.0 Patient/broken1 v1  migrated"),
            std::string::npos)
      << retry.out;
  EXPECT_NE(retry.out.find(wrong_type_id +
                           "  Fhir4.0 Patient/wrong1 v1  still quarantined: type-mismatch"),
            std::string::npos)
      << retry.out;
  EXPECT_TRUE(in_target(bad_json));
  EXPECT_FALSE(quarantine_record(bad_json).has_value());
  EXPECT_FALSE(in_target(wrong_type));

  // Accept the other two; the review is recorded in the quarantine record.
  EXPECT_EQ(quarantine("accept", {wrong_type_id, no_res_id_id}).exit_code, 2)
      << "--reason is required";
  RunResult accept = quarantine("accept", {wrong_type_id, no_res_id_id, "--reason",
                                           "test data from 2014, never read", "--by", "reviewer"});
  ASSERT_EQ(accept.exit_code, 0) << accept.out << accept.err;
  auto record = quarantine_record(wrong_type);
  ASSERT_TRUE(record.has_value());
  auto accepted = View(record->get()).document("accepted");
  ASSERT_TRUE(accepted.has_value()) << record->to_json();
  EXPECT_EQ(accepted->string("by").value_or(""), "reviewer");
  EXPECT_EQ(accepted->string("reason").value_or(""), "test data from 2014, never read");
  EXPECT_TRUE(accepted->date("at").has_value());

  // A rerun of the migration (journal gone) quarantines them again and keeps the review.
  RunResult rerun = run_command(migrate_args("AdHoc"));
  EXPECT_EQ(rerun.exit_code, 1) << rerun.out << rerun.err;
  record = quarantine_record(wrong_type);
  ASSERT_TRUE(record.has_value());
  EXPECT_TRUE(View(record->get()).document("accepted").has_value()) << record->to_json();

  for (const char* mode : {"counts", "sample", "full"}) {
    RunResult v = verify(mode);
    EXPECT_EQ(v.exit_code, 0) << mode << "\n" << v.out << v.err;
    EXPECT_EQ(last_line(v.out).rfind("EQUAL (", 0), 0u) << mode << "\n" << v.out;
    EXPECT_NE(last_line(v.out).find("; 2 quarantined entries accepted)"), std::string::npos)
        << mode << "\n"
        << v.out;
    EXPECT_NE(v.out.find("accepted quarantined entry " + wrong_type_id), std::string::npos)
        << mode << "\n"
        << v.out;
  }
  {
    std::string path = (dir_.path() / "full.json").string();
    RunResult v = verify("full", {"--report", path});
    ASSERT_EQ(v.exit_code, 0) << v.out;
    std::ifstream in(path);
    nlohmann::json j = nlohmann::json::parse(in);
    EXPECT_EQ(j["quarantineAccepted"], 2);
    ASSERT_EQ(j["quarantineAccounted"].size(), 2u) << j.dump(2);
    EXPECT_EQ(j["quarantineAccounted"][0]["acceptedBy"], "reviewer");
  }

  // The cut-over's verify steps: the same verdict rule, and the accepted entries for its report.
  cutover::SubprocessVerifier verifier(testing::cli_path(), connection_args(), 3min);
  for (const std::string mode : {"counts", "full"}) {
    cutover::VerifyOutcome v = verifier.verify({mode, std::nullopt, 0ms});
    EXPECT_TRUE(v.equal) << mode << ": " << v.verdict;
    ASSERT_EQ(v.quarantine_accounted.size(), 2u) << mode << ": " << v.verdict;
    EXPECT_NE(v.quarantine_accounted[0].find("accepted by reviewer"), std::string::npos)
        << v.quarantine_accounted[0];
  }

  // Taking an acceptance back makes the entry a blocker again.
  ASSERT_EQ(quarantine("unaccept", {no_res_id_id}).exit_code, 0);
  RunResult v = verify("counts");
  EXPECT_EQ(v.exit_code, 1) << v.out;
  EXPECT_EQ(last_line(v.out).rfind("DIFFERENT: 1 missing", 0), 0u) << v.out;
  EXPECT_NE(last_line(v.out).find("1 quarantined entry accepted"), std::string::npos) << v.out;
}

TEST_F(QuarantineTest, ANewerVersionInTheSourceSupersedesAQuarantinedEntry) {
  const int64_t lu = now_ms() - 60000;
  const bson_oid_t bad =
      insert_source("sup1", "1", "c", R"({"resourceType":"Patient","id":"sup1",)", lu);
  testing::Subprocess migrator(migrate_args("Continuous", {"--pollInterval", "500ms"}), dir_.path(),
                               "continuous");
  ASSERT_TRUE(migrator.wait_for_output("No new items found in the database", 180s))
      << migrator.stderr_text();
  ASSERT_TRUE(quarantine_record(bad).has_value());
  RunResult before = verify("full");
  EXPECT_EQ(before.exit_code, 1) << before.out;

  // The old server writes version 2 (a valid body) and makes version 1 history.
  const bson_oid_t fixed = insert_source(
      "sup1", "2", "u",
      R"({"resourceType":"Patient","id":"sup1","meta":{"versionId":"2"},"name":[{"family":"Two"}]})",
      now_ms());
  update_source(bad, R"({"$set":{"cur":false}})");

  // The migrator marks the quarantined entry superseded.
  auto deadline = std::chrono::steady_clock::now() + 180s;
  std::optional<bson_oid_t> superseded_by;
  while (!superseded_by && std::chrono::steady_clock::now() < deadline) {
    if (auto r = quarantine_record(bad)) superseded_by = View(r->get()).oid("supersededBy");
    if (!superseded_by) std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(superseded_by.has_value()) << migrator.stderr_text();
  EXPECT_EQ(mongo::oid_to_string(*superseded_by), mongo::oid_to_string(fixed));
  EXPECT_TRUE(migrator.wait_for_output("is superseded by the newer version", 10s));
  EXPECT_EQ(migrator.stop(), 1) << "SIGTERM stops it; a run that quarantined anything exits 1\n"
                                << migrator.stderr_text();

  RunResult list = quarantine("list", {"--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  nlohmann::json j = nlohmann::json::parse(list.out);
  ASSERT_EQ(j.size(), 1u) << list.out;
  EXPECT_EQ(j[0]["status"], "superseded");
  for (const char* mode : {"counts", "full"}) {
    RunResult v = verify(mode);
    EXPECT_EQ(v.exit_code, 0) << mode << "\n" << v.out << v.err;
    EXPECT_NE(last_line(v.out).find("; 1 quarantined entry superseded)"), std::string::npos)
        << mode << "\n"
        << v.out;
  }
}

}  // namespace
}  // namespace fhirshift

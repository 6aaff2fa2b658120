// `fhirshift rollback` before the switch, against a live FerretDB: target and journal go together
// or not at all, and the source can never be dropped by mistake.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ferretdb_server.h"
#include "mongo/bson.h"
#include "mongo/client.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift::testing {
namespace {

namespace fs = std::filesystem;

class RollbackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { db_ = new FerretDbServer(); }
  static void TearDownTestSuite() {
    delete db_;
    db_ = nullptr;
  }
  RollbackTest() : dir_("fhirshift-rollback") {
    journal_ = dir_.path() / "journal";
    fs::create_directories(journal_);
    std::ofstream(journal_ / "position") << "anything the migrator keeps\n";
  }
  std::string uri(const std::string& db) const { return db_->uri(db); }
  int64_t count(const std::string& db, const std::string& coll = "vonkentries") {
    mongo::ClientPool pool(mongo::Uri::parse(uri(db)));
    auto client = pool.acquire();
    auto c = client.collection(db, coll);
    return c.count(mongo::Bson().get());
  }
  void insert(const std::string& db, const std::string& json) {
    mongo::ClientPool pool(mongo::Uri::parse(uri(db)));
    auto client = pool.acquire();
    auto c = client.collection(db, "vonkentries");
    auto doc = mongo::Bson::from_json(json);
    c.insert_one(doc.get());
  }
  void provision(const std::string& db) {
    RunResult r = run_command({cli_path(), "provision", "--mongoConnectionstring", uri(db)});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  static FerretDbServer* db_;
  TempDir dir_;
  fs::path journal_;
};
FerretDbServer* RollbackTest::db_ = nullptr;

TEST_F(RollbackTest, DropsTargetAndJournalTogether) {
  provision("target1");
  insert("target1", R"({"type":"Patient","res_id":"a","v":"1"})");
  ASSERT_GT(count("target1"), 0);
  RunResult r = run_command({cli_path(), "rollback", "--drop-target", "--delete-journal",
                             journal_.string(), "--mongoConnectionstring", uri("target1"),
                             "--migrator-stopped"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(count("target1"), 0);
  EXPECT_FALSE(fs::exists(journal_));
  EXPECT_NE(r.out.find("next migrate starts from zero"), std::string::npos) << r.out;
  // Nothing parked is left behind.
  for (const auto& e : fs::directory_iterator(dir_.path()))
    EXPECT_EQ(e.path().filename().string().find("journal"), std::string::npos) << e.path();
}

TEST_F(RollbackTest, OneWithoutTheOtherIsAUsageError) {
  provision("target2");
  RunResult only_target = run_command({cli_path(), "rollback", "--drop-target",
                                       "--mongoConnectionstring", uri("target2"),
                                       "--migrator-stopped"});
  EXPECT_EQ(only_target.exit_code, 2);
  EXPECT_NE(only_target.err.find("never one alone"), std::string::npos) << only_target.err;
  RunResult only_journal = run_command({cli_path(), "rollback", "--delete-journal",
                                        journal_.string(), "--migrator-stopped"});
  EXPECT_EQ(only_journal.exit_code, 2);
  EXPECT_TRUE(fs::exists(journal_));
  EXPECT_GT(count("target2"), 0);  // the system document is still there
}

TEST_F(RollbackTest, RefusesToDropALegacyStore) {
  insert("legacy", R"({"_id":"system","schemaVersion":1})");
  insert("legacy", R"({"type":"Patient","res_id":"a","v":"1","json":"{}"})");
  RunResult r = run_command({cli_path(), "rollback", "--drop-target", "--delete-journal",
                             journal_.string(), "--mongoConnectionstring", uri("legacy"),
                             "--migrator-stopped"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("schemaVersion 1"), std::string::npos) << r.err;
  EXPECT_EQ(count("legacy"), 2);
  EXPECT_TRUE(fs::exists(journal_ / "position"));
}

TEST_F(RollbackTest, RefusesToDropTheSource) {
  provision("same");
  RunResult r = run_command({cli_path(), "rollback", "--drop-target", "--delete-journal",
                             journal_.string(), "--mongoConnectionstring", uri("same"),
                             "--srcMongoConnectionString", uri("same"), "--migrator-stopped"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("SOURCE"), std::string::npos) << r.err;
  EXPECT_GT(count("same"), 0);
  EXPECT_TRUE(fs::exists(journal_));
}

TEST_F(RollbackTest, RefusesAMissingJournal) {
  provision("target3");
  RunResult r = run_command({cli_path(), "rollback", "--drop-target", "--delete-journal",
                             (dir_.path() / "nojournal").string(), "--mongoConnectionstring",
                             uri("target3"), "--migrator-stopped"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_GT(count("target3"), 0);
}

TEST_F(RollbackTest, DropNeedsTheMigratorStopped) {
  provision("target4");
  RunResult r = run_command({cli_path(), "rollback", "--drop-target", "--delete-journal",
                             journal_.string(), "--mongoConnectionstring", uri("target4")});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_GT(count("target4"), 0);
}

TEST_F(RollbackTest, NeverSignalsAPidThatIsNotAMigrator) {
  Subprocess sleeper({"/bin/sleep", "60"}, dir_.path(), "sleeper");
  fs::path pid_file = dir_.path() / "migrate.pid";
  std::ofstream(pid_file) << sleeper.pid() << "\n";
  RunResult r = run_command({cli_path(), "rollback", "--migrator-pid-file", pid_file.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("not a `fhirshift migrate` process"), std::string::npos) << r.err;
  EXPECT_TRUE(sleeper.running());
}

}  // namespace
}  // namespace fhirshift::testing

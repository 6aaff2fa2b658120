// `fhirshift load` and `fhirshift load check`, the real binary against in-process servers on live
// FerretDB: the ledger records every acknowledged write, check reads each back and catches lost
// and wrong versions, 503 + Retry-After is retried through a cut-over's write pause, Ctrl-C stops.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "../server/server_fixture.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class Load : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { db_ = new FerretDbServer(); }
  static void TearDownTestSuite() { delete db_; }
  void SetUp() override {
    static int n = 0;
    uri = db_->uri("load" + std::to_string(n++));
  }
  std::vector<json> ledger_records(const std::string& path) {
    std::vector<json> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }
  RunResult check(const std::string& ledger, const std::string& url) {
    return run_command({cli_path(), "load", "check", "--ledger", ledger, "--url", url}, 2min);
  }

  static FerretDbServer* db_;
  std::string uri;
  TempDir dir{"fhirshift-load-test"};
};
FerretDbServer* Load::db_ = nullptr;

TEST_F(Load, EveryAcknowledgedWriteIsInTheLedgerAndReadsBack) {
  for (auto schema : {server::Schema::kLegacy, server::Schema::kCurrent}) {
    SetUp();
    if (schema == server::Schema::kCurrent) provision_current(uri);
    RunningServer srv(server_options(schema, uri));
    std::string ledger = (dir.path() / (std::string(server::schema_name(schema)) + ".jsonl")).string();
    RunResult r = run_command({cli_path(), "load", "--url", srv.url(), "--rate", "60", "--duration",
                               "3s", "--mix", "30:20:45:5", "--ledger", ledger, "--seed", "3"},
                              1min);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find(" 0 failed"), std::string::npos) << r.out;
    for (const char* op : {"create ", "update ", "read ", "delete "})
      EXPECT_NE(r.out.find(op), std::string::npos) << r.out;
    auto records = ledger_records(ledger);
    ASSERT_GT(records.size(), 40u);
    std::set<std::string> ops, types;
    for (const auto& rec : records) {
      ops.insert(rec["op"].get<std::string>());
      types.insert(rec["type"].get<std::string>());
      EXPECT_FALSE(rec["v"].get<std::string>().empty());
    }
    EXPECT_EQ(ops, (std::set<std::string>{"create", "update", "delete"}));
    EXPECT_GT(types.size(), 5u) << "realistic resources of many types";
    RunResult c = check(ledger, srv.url());
    EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
    EXPECT_NE(c.out.find("0 lost, 0 wrong, 0 unchecked: OK"), std::string::npos) << c.out;
  }
}

TEST_F(Load, CheckReportsLostAndWrongVersions) {
  RunningServer srv(server_options(server::Schema::kLegacy, uri));
  std::string ledger = (dir.path() / "tamper.jsonl").string();
  RunResult r = run_command({cli_path(), "load", "--url", srv.url(), "--rate", "50", "--duration",
                             "1s", "--mix", "100:0:0:0", "--ledger", ledger},
                            1min);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto records = ledger_records(ledger);
  ASSERT_GE(records.size(), 3u);
  ASSERT_EQ(check(ledger, srv.url()).exit_code, 0);

  // A write the server never saw (lost), and a version whose content differs (wrong).
  std::string tampered = (dir.path() / "tampered.jsonl").string();
  {
    std::ofstream out(tampered);
    json lost = records[0];
    lost["id"] = "never-written";
    json wrong = records[1];
    wrong["hash"] = "0000000000000000";
    json newer = records[2];
    newer["v"] = "7";  // acknowledged version 7, but the server has 1
    out << lost.dump() << "\n" << wrong.dump() << "\n" << newer.dump() << "\n";
  }
  RunResult c = check(tampered, srv.url());
  EXPECT_EQ(c.exit_code, 1) << c.out;
  EXPECT_NE(c.out.find("/never-written version 1 (ledger line 1): HTTP 404"), std::string::npos)
      << c.out;
  EXPECT_NE(c.out.find("WRONG"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("the current version is 1 but version 7 was acknowledged"), std::string::npos)
      << c.out;
  EXPECT_NE(c.out.find("FAILED"), std::string::npos) << c.out;
  // An unreachable server: nothing can be checked, which is not a pass.
  EXPECT_EQ(check(ledger, "http://127.0.0.1:1").exit_code, 1);
}

TEST_F(Load, WritesPausedByAFenceAreRetriedAfter503AndNothingFails) {
  auto o = server_options(server::Schema::kLegacy, uri);
  o.hold_timeout = 400ms;  // held writes give up quickly with 503 + Retry-After
  RunningServer srv(o);
  std::string ledger = (dir.path() / "fence.jsonl").string();
  Subprocess load({cli_path(), "load", "--url", srv.url(), "--rate", "40", "--duration", "4s",
                   "--mix", "50:30:10:10", "--ledger", ledger},
                  dir.path(), "load-fence");
  std::this_thread::sleep_for(1s);
  auto c = srv.client();
  ASSERT_EQ(c.Post("/admin/fence", "", "text/plain")->status, 200);
  std::this_thread::sleep_for(1500ms);
  ASSERT_EQ(c.Post("/admin/release", "", "text/plain")->status, 200);
  auto rc = load.wait_for(60s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 0) << load.stdout_text() << load.stderr_text();
  std::string out = load.stdout_text();
  EXPECT_NE(out.find(" 0 failed"), std::string::npos) << out;
  EXPECT_EQ(out.find(" 0 retried after 503"), std::string::npos) << "the fence made it retry: " << out;
  EXPECT_EQ(check(ledger, srv.url()).exit_code, 0);
}

TEST_F(Load, CtrlCStopsAnOpenEndedLoadWithItsReport) {
  RunningServer srv(server_options(server::Schema::kLegacy, uri));
  Subprocess load({cli_path(), "load", "--url", srv.url(), "--rate", "20", "--duration", "0"},
                  dir.path(), "load-sigint");
  std::this_thread::sleep_for(1500ms);
  load.signal(SIGINT);
  auto rc = load.wait_for(30s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 0) << load.stderr_text();
  EXPECT_NE(load.stdout_text().find("load: "), std::string::npos) << load.stdout_text();
}

TEST_F(Load, FailedRequestsMakeTheExitCodeOne) {
  RunResult r = run_command({cli_path(), "load", "--url", "http://127.0.0.1:1", "--rate", "20",
                             "--duration", "500ms"},
                            1min);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("FAILED create"), std::string::npos) << r.out;
  RunResult usage = run_command({cli_path(), "load", "--url", "http://x", "--mix", "1:2:3"});
  EXPECT_EQ(usage.exit_code, 2);
}

}  // namespace
}  // namespace fhirshift::testing

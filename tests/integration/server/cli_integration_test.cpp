// `fhirshift serve` as the operator and the e2e test start it: the real binary, real signals.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include "haproxy_fixture.h"
#include "server_fixture.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift::testing {
namespace {

using namespace std::chrono_literals;

bool wait_healthy(const std::string& url, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    httplib::Client c(url);
    if (auto r = c.Get("/healthz"); r && r->status == 200) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

class ServeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { db_ = new FerretDbServer(); }
  static void TearDownTestSuite() { delete db_; }
  static FerretDbServer* db_;
  TempDir dir{"fhirshift-serve-cli"};
};
FerretDbServer* ServeCli::db_ = nullptr;

TEST_F(ServeCli, ServesBothSchemasAndStopsCleanlyOnSigterm) {
  provision_current(db_->uri("clicur"));
  for (auto [schema, db] : {std::pair{"legacy", "clileg"}, std::pair{"current", "clicur"}}) {
    int port = free_port();
    std::string url = "http://127.0.0.1:" + std::to_string(port);
    Subprocess p({cli_path(), "serve", "--schema", schema, "--mongoConnectionstring", db_->uri(db),
                  "--mongoCollection", "vonkentries", "--port", std::to_string(port)},
                 dir.path(), std::string("serve-") + schema);
    ASSERT_TRUE(wait_healthy(url, 30s)) << p.stderr_text();
    httplib::Client c(url);
    EXPECT_EQ(c.Get("/readyz")->status, 200);
    auto r = c.Post("/Patient", R"({"resourceType":"Patient"})", "application/fhir+json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 201) << r->body;
    EXPECT_NE(p.stderr_text().find(std::string("over the ") + schema + " schema"), std::string::npos)
        << p.stderr_text();
    p.signal(SIGTERM);
    auto rc = p.wait_for(20s);
    ASSERT_TRUE(rc.has_value()) << "did not stop on SIGTERM";
    EXPECT_EQ(*rc, 0) << p.stderr_text();
  }
}

TEST_F(ServeCli, ReadOnlyFlag) {
  int port = free_port();
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  Subprocess p({cli_path(), "serve", "--schema", "legacy", "--mongoConnectionstring",
                db_->uri("cliro"), "--port", std::to_string(port), "--read-only"},
               dir.path(), "serve-ro");
  ASSERT_TRUE(wait_healthy(url, 30s)) << p.stderr_text();
  httplib::Client c(url);
  auto r = c.Post("/Patient", R"({"resourceType":"Patient"})", "application/fhir+json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("OperationOutcome"), std::string::npos);
  EXPECT_EQ(c.Get("/Patient/x")->status, 404);
}

TEST_F(ServeCli, RefusesAStoreOfTheOtherSchemaAndBadArguments) {
  // A current-schema server over an unprovisioned database: exit 1, saying what to run.
  RunResult r = run_command({cli_path(), "serve", "--schema", "current", "--mongoConnectionstring",
                             db_->uri("cliempty"), "--port", std::to_string(free_port())},
                            60s);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("fhirshift provision"), std::string::npos) << r.err;
  // A legacy server over a current-schema store.
  provision_current(db_->uri("cliprov"));
  r = run_command({cli_path(), "serve", "--schema", "legacy", "--mongoConnectionstring",
                   db_->uri("cliprov"), "--port", std::to_string(free_port())},
                  60s);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("schemaVersion 2"), std::string::npos) << r.err;
  r = run_command({cli_path(), "serve", "--schema", "sideways", "--mongoConnectionstring", "mongodb://x"});
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace fhirshift::testing

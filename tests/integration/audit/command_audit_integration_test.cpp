// The command audit on live FerretDB servers and a real HAProxy: every step of a migration runs as
// the real `fhirshift` binary with FHIRSHIFT_COMMAND_LOG set, and the recorded commands must obey
// every rule of tests/support/command_audit.h. FHIRSHIFT_SHARD_KEY_FILTER=full makes the processes
// send the filters they send to MongoDB (FerretDB, which cannot shard, otherwise gets `_id` alone),
// and the verify runs prove that those filters matched: a flip whose key was wrong would leave two
// current versions, which verify reports.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command_audit.h"
#include "ferretdb_server.h"
#include "haproxy_fixture.h"
#include "mongo/client.h"
#include "mongo/collection.h"
#include "ports.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kEntries = 300;

bool wait_progress(const std::string& metrics_url, std::chrono::seconds timeout,
                   const std::function<bool(const nlohmann::json&)>& pred, std::string* last) {
  httplib::Client cli(metrics_url);
  cli.set_read_timeout(5s);
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (auto r = cli.Get("/progress"); r && r->status == 200) {
      *last = r->body;
      try {
        if (pred(nlohmann::json::parse(r->body))) return true;
      } catch (const std::exception&) {
      }
    }
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

bool wait_http_ok(const std::string& url, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    httplib::Client cli(url);
    cli.set_connection_timeout(1s);
    if (auto r = cli.Get("/healthz"); r && r->status == 200) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// A Patient with a contained Organization: a new version flips the previous one and its contained
// entry (the server's two kinds of `cur` update).
std::string patient(const std::string& id, int n) {
  return R"({"resourceType":"Patient","id":")" + id +
         R"(","contained":[{"resourceType":"Organization","id":"org1","name":"Audit )" + std::to_string(n) +
         R"("}],"managingOrganization":{"reference":"#org1"},"name":[{"family":"Audit","given":["N)" +
         std::to_string(n) + R"("]}]})";
}

class CommandAuditTest : public ::testing::Test {
 protected:
  std::map<std::string, std::string> env() const {
    return {{"FHIRSHIFT_COMMAND_LOG", log.string()}, {"FHIRSHIFT_SHARD_KEY_FILTER", "full"}};
  }
  std::unique_ptr<Subprocess> start(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), cli_path());
    return std::make_unique<Subprocess>(args, dir.path(), name, env());
  }
  RunResult run(std::vector<std::string> args, std::chrono::seconds timeout = 120s) {
    args.insert(args.begin(), cli_path());
    return run_command(args, timeout, env());
  }
  std::unique_ptr<Subprocess> start_server(const std::string& name, const std::string& schema,
                                           const std::string& uri, int port) {
    auto p = start(name, {"serve", "--schema", schema, "--mongoConnectionstring", uri, "--mongoCollection",
                          "vonkentries", "--port", std::to_string(port), "--no-admin"});
    EXPECT_TRUE(wait_http_ok("http://127.0.0.1:" + std::to_string(port), 60s)) << name << ": " << p->stderr_text();
    return p;
  }
  // PUTs through HAProxy: `versions` versions of Patient/<id>, each with a contained resource.
  void write_versions(const std::string& id, int versions) {
    httplib::Client cli(proxy->url());
    cli.set_read_timeout(30s);
    for (int n = 0; n < versions; ++n) {
      auto r = cli.Put("/Patient/" + id, patient(id, n), "application/fhir+json");
      ASSERT_TRUE(r) << "PUT Patient/" << id;
      ASSERT_TRUE(r->status == 200 || r->status == 201) << r->status << " " << r->body;
    }
    auto d = cli.Delete("/Patient/" + id + "-gone");
    ASSERT_TRUE(d);
  }
  std::vector<std::string> verify_args(const std::string& source_uri, const std::string& target_uri) const {
    return {"--srcMongoConnectionString", source_uri, "--srcMongoCollection", "vonkentries",
            "--mongoConnectionstring", target_uri, "--mongoCollection", "vonkentries"};
  }

  TempDir dir{"fhirshift-audit"};
  std::filesystem::path log = dir.path() / "commands.jsonl";
  FerretDbServer source, target;
  int old_port = free_port(), new_port = free_port();
  std::string old_url = "http://127.0.0.1:" + std::to_string(old_port);
  std::string new_url = "http://127.0.0.1:" + std::to_string(new_port);
  std::unique_ptr<HaproxyProcess> proxy;
};

TEST_F(CommandAuditTest, EveryCommandOfAMigrationCutOverAndRollbackObeysTheRules) {
  auto t0 = Clock::now();
  // 1. The legacy store, the old server behind HAProxy, writes through it.
  RunResult seed = run({"seed", "--mongoConnectionstring", source.uri(), "--mongoCollection", "vonkentries",
                        "--entries", std::to_string(kEntries), "--seed", "7"});
  ASSERT_EQ(seed.exit_code, 0) << seed.out << seed.err;
  auto old_server = start_server("old-server", "legacy", source.uri(), old_port);
  proxy = std::make_unique<HaproxyProcess>("127.0.0.1:" + std::to_string(old_port),
                                           "127.0.0.1:" + std::to_string(new_port), "/metadata");
  ASSERT_TRUE(proxy->wait_until_up("old", 20s));
  write_versions("audit-old", 3);

  // 2. migrate Continuous into an empty target (the journal's heads decide the version state).
  int metrics_port = free_port();
  std::string metrics = "http://127.0.0.1:" + std::to_string(metrics_port);
  auto migrate = start("migrate", {"migrate", "--srcMongoConnectionString", source.uri(), "--srcMongoCollection",
                                   "vonkentries", "--srcMongoRunningMode", "Continuous", "--mongoConnectionstring",
                                   target.uri(), "--mongoCollection", "vonkentries", "--useRecoveryJournal",
                                   (dir.path() / "journal").string(), "--provisionTargetDatabase", "true",
                                   "--pollInterval", "200ms", "--metrics-port", std::to_string(metrics_port)});
  std::string last;
  ASSERT_TRUE(wait_progress(metrics, 120s, [](const nlohmann::json& j) { return j.value("caughtUp", false); }, &last))
      << last << "\n" << migrate->stderr_text();
  // New versions of resources already copied: the migrator flips their current entries.
  write_versions("audit-old", 2);
  auto new_server = start_server("new-server", "current", target.uri(), new_port);

  // 3. Cut over (its verify runs prove the flips matched what they meant to flip).
  std::string report = (dir.path() / "cutover.json").string();
  std::vector<std::string> cut{"cutover", "--proxy-socket", proxy->socket(), "--backend", "fhir", "--from", "old",
                               "--to", "new", "--new-url", new_url, "--metrics", metrics, "--report", report};
  for (const auto& a : verify_args(source.uri(), target.uri())) cut.push_back(a);
  RunResult co = run(cut, 180s);
  ASSERT_EQ(co.exit_code, 0) << co.out << co.err;

  // 4. The new server's writes (current schema): versions with contained resources.
  write_versions("audit-old", 2);
  write_versions("audit-new", 3);
  migrate->signal(SIGTERM);
  ASSERT_TRUE(migrate->wait_for(60s).has_value());

  // 5. Reverse replication into the legacy store that holds entries (looked up in the target).
  int reverse_port = free_port();
  std::string reverse_metrics = "http://127.0.0.1:" + std::to_string(reverse_port);
  auto reverse = start("migrate-reverse",
                       {"migrate", "--reverse", "--srcMongoConnectionString", target.uri(), "--srcMongoCollection",
                        "vonkentries", "--srcMongoRunningMode", "Continuous", "--mongoConnectionstring",
                        source.uri(), "--mongoCollection", "vonkentries", "--useRecoveryJournal",
                        (dir.path() / "journal-reverse").string(), "--pollInterval", "200ms", "--metrics-port",
                        std::to_string(reverse_port)});
  ASSERT_TRUE(wait_progress(reverse_metrics, 120s, [](const nlohmann::json& j) { return j.value("caughtUp", false); },
                            &last))
      << last << reverse->stderr_text();
  write_versions("audit-new", 2);  // replicated back by the running reverse migration

  // 6. Roll back after the cut-over.
  std::string report2 = (dir.path() / "rollback.json").string();
  std::vector<std::string> back{"rollback", "--after-cutover", "--proxy-socket", proxy->socket(), "--from", "new",
                                "--to", "old", "--old-url", old_url, "--metrics", reverse_metrics, "--report",
                                report2};
  for (const auto& a : verify_args(source.uri(), target.uri())) back.push_back(a);
  RunResult rb = run(back, 180s);
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  reverse->signal(SIGTERM);
  ASSERT_TRUE(reverse->wait_for(60s).has_value());

  // 7. AdHoc into a second target, damaged behind fhirshift's back, then verify --repair.
  const std::string adhoc = target.uri("adhoc");
  RunResult copy = run({"migrate", "--srcMongoConnectionString", source.uri(), "--srcMongoCollection", "vonkentries",
                        "--srcMongoRunningMode", "AdHoc", "--mongoConnectionstring", adhoc, "--mongoCollection",
                        "vonkentries", "--useRecoveryJournal", (dir.path() / "journal-adhoc").string(),
                        "--provisionTargetDatabase", "true"});
  ASSERT_EQ(copy.exit_code, 0) << copy.out << copy.err;
  {
    // Not logged: this process has no FHIRSHIFT_COMMAND_LOG. Two versions made current, one body changed.
    mongo::ClientPool pool(mongo::Uri::parse(adhoc));
    mongo::Client c = pool.acquire();
    mongo::Collection coll = c.collection("adhoc", "vonkentries");
    mongo::Builder f;
    f.append("cur", false).append("cnt", false).append("change", "u");
    mongo::Builder o;
    o.append("limit", int64_t{2});
    mongo::Bson fd = f.extract(), od = o.extract();
    std::vector<bson_oid_t> ids;
    mongo::Cursor cursor = coll.find(fd.get(), od.get());
    while (const bson_t* d = cursor.next()) ids.push_back(*mongo::View(d).oid("_id"));
    ASSERT_EQ(ids.size(), 2u);
    mongo::BulkWriter w = coll.bulk(false);
    mongo::Builder id0, id1, cur, body;
    id0.append("_id", ids[0]);
    id1.append("_id", ids[1]);
    cur.document("$set", [](mongo::Builder& s) { s.append("cur", true); });
    body.document("$set", [](mongo::Builder& s) { s.append("json", "{\"resourceType\":\"Patient\",\"id\":\"x\"}"); });
    w.update_one(id0.get(), cur.get(), false);
    w.update_one(id1.get(), body.get(), false);
    ASSERT_TRUE(w.execute().ok());
  }
  std::vector<std::string> repair{"verify", "--repair"};
  for (const auto& a : verify_args(source.uri(), adhoc)) repair.push_back(a);
  RunResult fixed = run(repair);
  EXPECT_EQ(fixed.exit_code, 0) << fixed.out << fixed.err;
  std::vector<std::string> counts{"verify", "--mode", "counts"};
  for (const auto& a : verify_args(source.uri(), adhoc)) counts.push_back(a);
  RunResult counted = run(counts);
  EXPECT_EQ(counted.exit_code, 0) << counted.out << counted.err;

  // 8. Filesystem import of new versions of resources the target holds.
  std::filesystem::path files = dir.path() / "import";
  std::filesystem::create_directories(files);
  {
    std::ofstream out(files / "patients.ndjson");
    out << patient("audit-old", 10) << "\n" << patient("audit-file", 1) << "\n";
  }
  RunResult imported = run({"migrate", "--sourceType", "Filesystem", "-s", files.string(), "--mongoConnectionstring",
                            adhoc, "--mongoCollection", "vonkentries", "--useRecoveryJournal",
                            (dir.path() / "journal-import").string(), "--provisionTargetDatabase", "true"});
  ASSERT_EQ(imported.exit_code, 0) << imported.out << imported.err;

  // 9. The audit.
  CommandAudit audit = CommandAudit::from_file(log);
  std::vector<AuditViolation> violations = audit.check();
  EXPECT_TRUE(violations.empty()) << violations.size() << " violations:\n" << describe(violations);
  // What was meant to be checked was recorded.
  EXPECT_GT(audit.cur_updates(), 10u);
  EXPECT_GT(audit.count("insert"), 0u);
  for (const char* pool : {"fhirshift-migrate-source", "fhirshift-migrate-target", "fhirshift-serve",
                           "fhirshift-verify-source", "fhirshift-verify-target"})
    EXPECT_GT(audit.commands_of(pool), 0u) << pool;
  std::cout << "command audit: " << audit.commands() << " commands, " << audit.cur_updates()
            << " updates of `cur`, 0 violations expected; " << std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - t0).count()
            << " s\n";
}

}  // namespace
}  // namespace fhirshift::testing

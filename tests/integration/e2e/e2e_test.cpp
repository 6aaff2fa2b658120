// End to end, the way an operator runs it (docs/runbook.md), on a small store: every step is the
// real `fhirshift` binary against live FerretDB servers and a real HAProxy; nothing is mocked.
//
//   seed (legacy) -> old server -> HAProxy -> load with a ledger -> provision -> migrate Continuous
//   -> new server -> cutover under load -> traffic on new -> load check: 0 lost writes
//   -> migrate --reverse -> rollback --after-cutover under load -> traffic on old -> load check
//
// Both servers are plain FHIR servers to the cut-over (`serve --no-admin`): HAProxy checks their
// health with GET /metadata and fences writes itself (fhirshift_fence.lua).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cutover/haproxy_runtime.h"
#include "ferretdb_server.h"
#include "haproxy_fixture.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kEntries = 3000;

bool implemented(const std::string& subcommand) {
  RunResult r = run_command({cli_path(), "--help"}, 30s);
  for (std::string::size_type pos = 0; (pos = r.out.find(subcommand, pos)) != std::string::npos;
       pos += subcommand.size()) {
    auto eol = r.out.find('\n', pos);
    std::string line = r.out.substr(pos, eol - pos);
    if (line.rfind(subcommand + " ", 0) == 0)
      return line.find("not implemented yet") == std::string::npos;
  }
  return false;
}

std::string served_by(const std::string& url) {
  httplib::Client cli(url);
  cli.set_read_timeout(10s);
  auto r = cli.Get("/metadata");
  if (!r) return "(no answer)";
  return r->get_header_value("X-Fhirshift-Served-By");
}

// Polls GET <metrics>/progress until `pred` holds; fails the test after `timeout`.
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

class EndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* c : {"seed", "migrate", "verify", "serve", "load"})
      if (!implemented(c)) GTEST_SKIP() << "fhirshift " << c << " is not implemented yet";
  }

  std::unique_ptr<Subprocess> start(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), cli_path());
    return std::make_unique<Subprocess>(args, dir.path(), name);
  }
  std::unique_ptr<Subprocess> start_server(const std::string& name, const std::string& schema,
                                           const std::string& uri, int port) {
    auto p = start(name, {"serve", "--schema", schema, "--mongoConnectionstring", uri,
                          "--mongoCollection", "vonkentries", "--port", std::to_string(port),
                          "--no-admin"});
    EXPECT_TRUE(wait_http_ok("http://127.0.0.1:" + std::to_string(port), 60s))
        << name << ": " << p->stderr_text();
    return p;
  }
  // 10 requests/s: on FerretDB's SQLite backend every query but an `_id` match scans the
  // collection, so the old server's reads and the migrator share two cores; faster loads make
  // the migrator's poll cycle (and so its lag) longer than the cut-over's limits (docs/testing.md).
  std::unique_ptr<Subprocess> start_load(const std::string& name, const std::string& ledger) {
    return start(name, {"load", "--url", proxy->url(), "--rate", "10", "--duration", "10m", "--mix",
                        "30:20:45:5", "--ledger", ledger});
  }
  // Stops a load generator the way an operator does (Ctrl-C) and returns its exit code.
  int stop_load(Subprocess& load) {
    load.signal(SIGINT);
    auto rc = load.wait_for(60s);
    if (!rc) return load.stop();
    return *rc;
  }
  std::vector<std::string> verify_args() const {
    return {"--srcMongoConnectionString", source.uri(), "--srcMongoCollection", "vonkentries",
            "--mongoConnectionstring", target.uri(), "--mongoCollection", "vonkentries"};
  }
  cutover::ServerState state(const std::string& server) const {
    return cutover::HaproxyRuntime(proxy->socket()).server_state("fhir", server);
  }
  nlohmann::json read_json(const std::string& path) const {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
  }

  TempDir dir{"fhirshift-e2e"};
  FerretDbServer source, target;
  int old_port = free_port(), new_port = free_port();
  std::string old_url = "http://127.0.0.1:" + std::to_string(old_port);
  std::string new_url = "http://127.0.0.1:" + std::to_string(new_port);
  std::unique_ptr<HaproxyProcess> proxy;
};

TEST_F(EndToEnd, CutOverUnderLoadLosesNothingAndRollsBack) {
  auto t0 = Clock::now();
  // 1. The legacy store and the old server behind HAProxy, with clients writing through it.
  RunResult seed = run_command({cli_path(), "seed", "--mongoConnectionstring", source.uri(),
                                "--mongoCollection", "vonkentries", "--entries",
                                std::to_string(kEntries), "--seed", "7"}, 2min);
  ASSERT_EQ(seed.exit_code, 0) << seed.out << seed.err;
  auto old_server = start_server("old-server", "legacy", source.uri(), old_port);
  proxy = std::make_unique<HaproxyProcess>("127.0.0.1:" + std::to_string(old_port),
                                           "127.0.0.1:" + std::to_string(new_port), "/metadata");
  ASSERT_TRUE(proxy->wait_until_up("old", 20s));
  ASSERT_EQ(served_by(proxy->url()), "old");
  std::string ledger = (dir.path() / "ledger.jsonl").string();
  auto load = start_load("load", ledger);

  // 2. Provision, migrate Continuous, wait for the end of the initial copy.
  RunResult prov = run_command({cli_path(), "provision", "--mongoConnectionstring", target.uri(),
                                "--mongoCollection", "vonkentries"});
  ASSERT_EQ(prov.exit_code, 0) << prov.err;
  int metrics_port = free_port();
  std::string metrics = "http://127.0.0.1:" + std::to_string(metrics_port);
  auto migrate = start("migrate", {"migrate", "--srcMongoConnectionString", source.uri(),
                                   "--srcMongoCollection", "vonkentries", "--srcMongoRunningMode",
                                   "Continuous", "--mongoConnectionstring", target.uri(),
                                   "--mongoCollection", "vonkentries", "--useRecoveryJournal",
                                   (dir.path() / "journal").string(), "--provisionTargetDatabase",
                                   "true", "--pollInterval", "200ms", "--metrics-port",
                                   std::to_string(metrics_port)});
  // Under load a 200 ms poll rarely finds nothing, so the "No new items found" line may not come;
  // the end of the initial copy is what /progress reports as caughtUp.
  std::string last;
  ASSERT_TRUE(wait_progress(metrics, 150s, [](const nlohmann::json& j) { return j.value("caughtUp", false); }, &last))
      << last << "\n" << migrate->stderr_text();

  // 3. The new server, in maintenance behind HAProxy.
  auto new_server = start_server("new-server", "current", target.uri(), new_port);
  EXPECT_TRUE(state("new").in_maintenance());

  // 4. Cut over under load. Steps 4 and 7 prove the target equal to the source before the switch.
  std::string report = (dir.path() / "cutover.json").string();
  std::vector<std::string> cut{cli_path(), "cutover", "--proxy-socket", proxy->socket(),
                               "--backend", "fhir", "--from", "old", "--to", "new", "--new-url",
                               new_url, "--metrics", metrics, "--report", report};
  for (const auto& a : verify_args()) cut.push_back(a);
  RunResult co = run_command(cut, 3min);
  ASSERT_EQ(co.exit_code, 0) << co.out << co.err;
  auto j = read_json(report);
  EXPECT_EQ(j["outcome"], "SWITCHED");
  for (int step : {3, 6}) {
    EXPECT_TRUE(j["steps"][step]["ok"].get<bool>()) << j["steps"][step].dump();
    EXPECT_FALSE(j["steps"][step]["skipped"].get<bool>()) << "verify must run";
    EXPECT_NE(j["steps"][step]["detail"].get<std::string>().find("EQUAL"), std::string::npos);
  }
  ASSERT_TRUE(j["writePauseMs"].is_number());
  EXPECT_LT(j["writePauseMs"].get<int64_t>(), 20000);  // the default --max-pause

  // 5. Traffic is on the new server: HAProxy says so and so does the response header.
  EXPECT_TRUE(state("new").serving());
  EXPECT_TRUE(state("old").in_maintenance());
  EXPECT_EQ(served_by(proxy->url()), "new");

  // 6. Let clients write to the new server for a while, then stop the load: no failed request.
  std::this_thread::sleep_for(3s);
  int load_rc = stop_load(*load);
  EXPECT_EQ(load_rc, 0) << load->stdout_text() << load->stderr_text();

  // 7. Every acknowledged write is readable through HAProxy (i.e. on the new server).
  RunResult check = run_command({cli_path(), "load", "check", "--ledger", ledger, "--url", proxy->url()}, 3min);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  // 8. The source is frozen (the old server gets no requests): the migrator can stop cleanly.
  migrate->signal(SIGTERM);
  auto migrate_rc = migrate->wait_for(60s);
  ASSERT_TRUE(migrate_rc.has_value());
  EXPECT_EQ(*migrate_rc, 0) << migrate->stderr_text();

  // 9. Rollback after the cut-over: reverse replication (current -> legacy), then the switch back,
  //    under a fresh load; every write acknowledged by either server must be readable on the old.
  int reverse_port = free_port();
  std::string reverse_metrics = "http://127.0.0.1:" + std::to_string(reverse_port);
  auto reverse = start("migrate-reverse",
                       {"migrate", "--reverse", "--srcMongoConnectionString", target.uri(),
                        "--srcMongoCollection", "vonkentries", "--srcMongoRunningMode", "Continuous",
                        "--mongoConnectionstring", source.uri(), "--mongoCollection", "vonkentries",
                        "--useRecoveryJournal", (dir.path() / "journal-reverse").string(),
                        "--pollInterval", "200ms", "--metrics-port", std::to_string(reverse_port)});
  ASSERT_TRUE(wait_progress(reverse_metrics, 150s, [](const nlohmann::json& j) { return j.value("caughtUp", false); }, &last))
      << last << reverse->stderr_text();
  std::string ledger2 = (dir.path() / "ledger-rollback.jsonl").string();
  auto load2 = start_load("load-rollback", ledger2);
  std::this_thread::sleep_for(2s);
  std::string report2 = (dir.path() / "rollback.json").string();
  std::vector<std::string> back{cli_path(), "rollback", "--after-cutover", "--proxy-socket",
                                proxy->socket(), "--from", "new", "--to", "old", "--old-url",
                                old_url, "--metrics", reverse_metrics,
                                "--report", report2};
  for (const auto& a : verify_args()) back.push_back(a);
  RunResult rb = run_command(back, 3min);
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  EXPECT_TRUE(state("old").serving());
  EXPECT_TRUE(state("new").in_maintenance());
  EXPECT_EQ(served_by(proxy->url()), "old");
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(stop_load(*load2), 0) << load2->stdout_text() << load2->stderr_text();
  // Both ledgers: what was written before, during and after the cut-over and the rollback.
  for (const auto& l : {ledger, ledger2}) {
    RunResult c = run_command({cli_path(), "load", "check", "--ledger", l, "--url", proxy->url()}, 3min);
    EXPECT_EQ(c.exit_code, 0) << l << ": " << c.out << c.err;
  }
  reverse->signal(SIGTERM);
  EXPECT_TRUE(reverse->wait_for(60s).has_value());
  EXPECT_LT(Clock::now() - t0, 4min);
}

}  // namespace
}  // namespace fhirshift::testing

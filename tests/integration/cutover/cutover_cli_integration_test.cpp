// `fhirshift cutover` and `fhirshift rollback --after-cutover` (the real CLI) against a real HAProxy
// and its write fence (fhirshift_fence.lua), under a continuous write load, with plain stand-in
// FHIR servers and a stand-in for the migrator's /progress (the end-to-end test in
// tests/integration/e2e runs the real ones).
#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "cutover/haproxy_runtime.h"
#include "haproxy_fixture.h"
#include "write_load.h"

namespace fhirshift::testing {
namespace {

using namespace std::chrono_literals;

class CutoverCliTest : public ::testing::Test {
 protected:
  CutoverCliTest()
      : old_server("old"), new_server("new"), proxy(old_server.addr(), new_server.addr()), dir("fhirshift-cutover-cli") {
    EXPECT_TRUE(proxy.wait_until_up("old", 10s));
  }

  std::vector<std::string> switch_args(const std::string& command, bool back = false) {
    std::vector<std::string> a{cli_path(), command};
    if (back) a.insert(a.end(), {"--after-cutover", "--old-url", old_server.url()});
    else a.insert(a.end(), {"--new-url", new_server.url()});
    a.insert(a.end(), {"--proxy-socket", proxy.socket(), "--metrics", migrator.url(), "--no-verify",
                       "--report", report_path()});
    return a;
  }
  cutover::FenceStatus fence() {
    return cutover::HaproxyRuntime(proxy.socket()).fence_status("fhir");
  }
  std::string report_path() const { return (dir.path() / "report.json").string(); }
  nlohmann::json report() const {
    std::ifstream in(report_path());
    return nlohmann::json::parse(in);
  }
  cutover::ServerState state(const std::string& server) {
    return cutover::HaproxyRuntime(proxy.socket()).server_state("fhir", server);
  }
  // Every acknowledged write exists on exactly one of the two stand-in stores.
  void expect_every_ack_stored(WriteLoad& load) {
    auto on_old = old_server.applied();
    auto on_new = new_server.applied();
    size_t missing = 0, twice = 0;
    for (const auto& id : load.acked()) {
      if (!on_old.count(id) && !on_new.count(id)) ++missing;
      if (on_old.count(id) && on_new.count(id)) ++twice;
    }
    EXPECT_EQ(missing, 0u);
    EXPECT_EQ(twice, 0u);
  }
  static std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size() && i < 10; ++i) out += v[i] + "\n";
    return out;
  }

  TinyFhirServer old_server, new_server;
  FakeMigratorProgress migrator;
  HaproxyProcess proxy;
  TempDir dir;
};

TEST_F(CutoverCliTest, CutoverUnderLoadHasNoFailedRequestAndMovesTraffic) {
  WriteLoad load(proxy.url(), 4);
  while (load.acked_count() < 50) std::this_thread::sleep_for(10ms);

  RunResult r = run_command(switch_args("cutover"), 2min);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("cutover: SWITCHED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("write pause"), std::string::npos) << r.out;
  for (int step = 1; step <= 9; ++step)
    EXPECT_NE(r.err.find("cutover step " + std::to_string(step) + "/9"), std::string::npos) << r.err;

  // Nothing reaches the old server once the cut-over is done.
  int64_t old_received = old_server.received();
  size_t at_switch = load.acked_count();
  while (load.acked_count() < at_switch + 50) std::this_thread::sleep_for(10ms);
  load.stop();

  EXPECT_TRUE(load.failures().empty()) << join(load.failures());
  expect_every_ack_stored(load);
  EXPECT_TRUE(state("new").serving());
  EXPECT_TRUE(state("old").in_maintenance());
  EXPECT_GT(load.served_by()["new"], 0);
  EXPECT_EQ(old_server.received(), old_received);
  EXPECT_FALSE(fence().fenced);

  auto j = report();
  EXPECT_EQ(j["outcome"], "SWITCHED");
  EXPECT_EQ(j["trafficOn"], "new");
  ASSERT_TRUE(j["writePauseMs"].is_number());
  EXPECT_LT(j["writePauseMs"].get<int64_t>(), 20000);
  EXPECT_EQ(j["steps"].size(), 9u);
  EXPECT_GE(j["releasedWrites"].get<int64_t>(), 0);
  // Over HTTP: the migrator paused just before the fence and resumed once no write is in flight,
  // a poll asked for, the drained migrator paused for the final verify and resumed at the end.
  EXPECT_EQ(migrator.requests(),
            (std::vector<std::string>{"/pause", "/resume", "/poll", "/pause", "/resume"}));

  // A second run finds the work done.
  RunResult again = run_command(switch_args("cutover"), 1min);
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("ALREADY SWITCHED"), std::string::npos) << again.out;
}

TEST_F(CutoverCliTest, RollbackAfterCutoverBringsTrafficBackUnderLoad) {
  WriteLoad load(proxy.url(), 3);
  RunResult r = run_command(switch_args("cutover"), 2min);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  size_t mark = load.acked_count();
  while (load.acked_count() < mark + 30) std::this_thread::sleep_for(10ms);

  RunResult back = run_command(switch_args("rollback", /*back=*/true), 2min);
  EXPECT_EQ(back.exit_code, 0) << back.out << back.err;
  EXPECT_NE(back.out.find("rollback: SWITCHED"), std::string::npos) << back.out;
  mark = load.acked_count();
  while (load.acked_count() < mark + 30) std::this_thread::sleep_for(10ms);
  load.stop();

  EXPECT_TRUE(load.failures().empty()) << join(load.failures());
  expect_every_ack_stored(load);
  EXPECT_TRUE(state("old").serving());
  EXPECT_TRUE(state("new").in_maintenance());
  EXPECT_FALSE(fence().fenced);
  auto j = report();
  EXPECT_EQ(j["trafficOn"], "old");
}

TEST_F(CutoverCliTest, NewServerNotReadyAbortsWithoutChangingAnything) {
  new_server.set_ready(false);
  WriteLoad load(proxy.url(), 2);
  RunResult r = run_command(switch_args("cutover"), 1min);
  load.stop();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("ABORTED SAFELY"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(new_server.url() + "/metadata"), std::string::npos) << r.out;
  EXPECT_TRUE(load.failures().empty()) << join(load.failures());
  EXPECT_TRUE(state("old").serving());
  EXPECT_TRUE(state("new").in_maintenance());
  EXPECT_FALSE(fence().fenced);
  EXPECT_EQ(new_server.applied().size(), 0u);
}

TEST_F(CutoverCliTest, MigratorBehindAbortsBeforeTheFence) {
  migrator.set_caught_up(false);
  auto args = switch_args("cutover");
  args.insert(args.end(), {"--catch-up-wait", "2s"});
  RunResult r = run_command(args, 1min);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("not caught up after 2"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("step 5/9"), std::string::npos) << r.err;
  EXPECT_FALSE(fence().fenced);
  EXPECT_TRUE(state("old").serving());
}

TEST_F(CutoverCliTest, NewServerFailingHealthChecksAbortsAfterTheFenceAndReleasesLocally) {
  // /readyz says yes but HAProxy's /healthz check says no: HAProxy must never report it UP.
  new_server.set_healthy(false);
  WriteLoad load(proxy.url(), 2);
  while (load.acked_count() < 20) std::this_thread::sleep_for(10ms);
  auto args = switch_args("cutover");
  args.insert(args.end(), {"--switch-timeout", "3s"});
  RunResult r = run_command(args, 1min);
  load.stop();
  // Leaving maintenance HAProxy counts a server UP until a check fails; the cut-over gives it
  // weight 0 until a check passed, so it never took a request and the abort goes back safely.
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("ABORTED SAFELY"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("health check"), std::string::npos) << r.out;
  EXPECT_TRUE(load.failures().empty()) << join(load.failures());
  expect_every_ack_stored(load);
  EXPECT_FALSE(fence().fenced);
  EXPECT_TRUE(state("new").in_maintenance());
  EXPECT_EQ(state("new").weight, 1);
  EXPECT_TRUE(state("old").serving());
  EXPECT_EQ(new_server.applied().size(), 0u);
}

TEST_F(CutoverCliTest, CtrlCDuringTheDrainLiftsTheFence) {
  migrator.set_frozen(true);  // the drain waits (up to --drain-timeout) for polls that never come
  WriteLoad load(proxy.url(), 2);
  while (load.acked_count() < 10) std::this_thread::sleep_for(10ms);
  Subprocess cut(switch_args("cutover"), dir.path(), "cutover-interrupted");
  ASSERT_TRUE(cut.wait_for_output("step 6/9", 30s)) << cut.stderr_text();
  ASSERT_TRUE(fence().fenced);
  cut.signal(SIGINT);
  auto rc = cut.wait_for(30s);
  load.stop();
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 1) << cut.stdout_text() << cut.stderr_text();
  EXPECT_NE(cut.stdout_text().find("ABORTED SAFELY"), std::string::npos) << cut.stdout_text();
  EXPECT_NE(cut.stdout_text().find("interrupted"), std::string::npos) << cut.stdout_text();
  EXPECT_FALSE(fence().fenced);
  EXPECT_TRUE(state("old").serving());
  EXPECT_TRUE(state("new").in_maintenance());
  EXPECT_TRUE(load.failures().empty()) << join(load.failures());
  expect_every_ack_stored(load);
}

TEST_F(CutoverCliTest, DryRunPrintsThePlanAndChangesNothing) {
  RunResult r = run_command(switch_args("cutover"), 1min);  // warm: nothing; then a dry run on a fresh state
  ASSERT_EQ(r.exit_code, 0);
  // Back to the initial state by the runtime API, then dry-run.
  cutover::HaproxyRuntime rt(proxy.socket());
  rt.set_server_state("fhir", "old", cutover::AdminState::kReady);
  ASSERT_TRUE(proxy.wait_until_up("old", 10s));
  rt.set_server_state("fhir", "new", cutover::AdminState::kMaint);
  auto args = switch_args("cutover");
  args.push_back("--dry-run");
  RunResult dry = run_command(args, 1min);
  EXPECT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  EXPECT_NE(dry.out.find("DRY RUN OK"), std::string::npos) << dry.out;
  EXPECT_NE(dry.err.find("set server fhir/new state ready"), std::string::npos) << dry.err;
  EXPECT_NE(dry.err.find("`fhirshift fence off fhir`"), std::string::npos) << dry.err;
  EXPECT_EQ(dry.err.find("step 5/9"), std::string::npos) << dry.err;
  EXPECT_TRUE(state("old").serving());
  EXPECT_TRUE(state("new").in_maintenance());
  EXPECT_FALSE(fence().fenced);
}

TEST_F(CutoverCliTest, UsageErrors) {
  RunResult no_verify_args = run_command({cli_path(), "cutover", "--proxy-socket", proxy.socket(),
                                          "--new-url", new_server.url(), "--metrics",
                                          migrator.url()});
  EXPECT_EQ(no_verify_args.exit_code, 2) << no_verify_args.err;
  EXPECT_NE(no_verify_args.err.find("--no-verify"), std::string::npos);
  RunResult bad_duration = run_command({cli_path(), "cutover", "--proxy-socket", proxy.socket(),
                                        "--new-url", new_server.url(), "--metrics", migrator.url(),
                                        "--max-lag", "soon"});
  EXPECT_EQ(bad_duration.exit_code, 2);
  RunResult bad_socket = run_command({cli_path(), "cutover", "--proxy-socket", "/nonexistent.sock",
                                      "--new-url", new_server.url(), "--metrics", migrator.url(),
                                      "--no-verify"});
  EXPECT_EQ(bad_socket.exit_code, 1);
  EXPECT_NE(bad_socket.out.find("/nonexistent.sock"), std::string::npos) << bad_socket.out;
}

TEST_F(CutoverCliTest, RollbackBeforeTheSwitchRefusesOnceTrafficMoved) {
  // Before any switch: confirms traffic on old, nothing else to do.
  RunResult before = run_command({cli_path(), "rollback", "--proxy-socket", proxy.socket(),
                                  "--migrator-stopped"});
  EXPECT_EQ(before.exit_code, 0) << before.out << before.err;
  EXPECT_NE(before.out.find("traffic on fhir/old"), std::string::npos) << before.out;

  ASSERT_EQ(run_command(switch_args("cutover"), 1min).exit_code, 0);
  {
    // The new server has now served requests.
    WriteLoad load(proxy.url(), 1);
    while (load.acked_count() < 3) std::this_thread::sleep_for(10ms);
  }
  RunResult after = run_command({cli_path(), "rollback", "--proxy-socket", proxy.socket()});
  EXPECT_EQ(after.exit_code, 1) << after.out << after.err;
  EXPECT_NE(after.err.find("--after-cutover"), std::string::npos) << after.err;
  EXPECT_TRUE(state("new").serving());
}

TEST_F(CutoverCliTest, RollbackLiftsAFenceLeftByAnInterruptedCutover) {
  proxy.command("fhirshift fence on fhir");
  ASSERT_TRUE(fence().fenced);
  // A write arriving now is held in HAProxy; the rollback lets it through to the old server.
  std::future<int> held = std::async(std::launch::async, [&] {
    httplib::Client cli(proxy.url());
    cli.set_read_timeout(60s);
    auto r = cli.Post("/Patient", "held-by-a-dead-cutover", "application/fhir+json");
    return r ? r->status : -1;
  });
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (fence().held == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_EQ(fence().held, 1);
  RunResult r = run_command({cli_path(), "rollback", "--proxy-socket", proxy.socket(),
                             "--migrator-stopped"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_FALSE(fence().fenced);
  EXPECT_EQ(held.get(), 201);
  EXPECT_EQ(old_server.applied().count("held-by-a-dead-cutover"), 1u);
}

TEST_F(CutoverCliTest, WritesInFlightToTheOldServerCompleteBeforeTheDrain) {
  // Every write takes 1.5 s on the old server: when the fence goes up some are always on their way.
  old_server.set_write_delay(1500ms);
  WriteLoad load(proxy.url(), 4);
  while (load.acked_count() < 8) std::this_thread::sleep_for(10ms);
  RunResult r = run_command(switch_args("cutover"), 2min);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  size_t mark = load.acked_count();
  while (load.acked_count() < mark + 20) std::this_thread::sleep_for(10ms);
  load.stop();
  auto j = report();
  EXPECT_GT(j["inFlightAtFence"].get<int64_t>(), 0) << j.dump();
  // Step 5 waited for them: a write that takes 1.5 s was still running when the fence went up.
  EXPECT_GE(j["steps"][4]["ms"].get<int64_t>(), 100) << j["steps"][4].dump();
  EXPECT_TRUE(load.failures().empty()) << join(load.failures());
  expect_every_ack_stored(load);
  EXPECT_TRUE(state("new").serving());
}

// kill -9 of `cutover` (no cleanup at all) while it holds writes, then the next run: it puts back
// what the dead run left (new ready at weight 0, writes held), lifts the fence toward old, and cuts
// over; not one acknowledged write missing or stored twice, no failed request.
TEST_F(CutoverCliTest, KilledInTheDrainTheNextRunPutsItBackAndSwitches) {
  migrator.set_frozen(true);  // the first run waits in step 6 (drain) with writes held
  WriteLoad load(proxy.url(), 3);
  while (load.acked_count() < 20) std::this_thread::sleep_for(10ms);
  Subprocess cut(switch_args("cutover"), dir.path(), "cutover-killed");
  ASSERT_TRUE(cut.wait_for_output("step 6/9", 60s)) << cut.stderr_text();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fence().held == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_GT(fence().held, 0) << "no write was held while the first run drained";
  cut.signal(SIGKILL);
  ASSERT_TRUE(cut.wait_for(30s).has_value());

  // What the dead run left behind.
  EXPECT_TRUE(fence().fenced);
  EXPECT_FALSE(state("new").in_maintenance());
  EXPECT_EQ(state("new").weight, 0);
  EXPECT_TRUE(state("old").serving());

  migrator.set_frozen(false);
  RunResult r = run_command(switch_args("cutover"), 2min);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("cutover: SWITCHED"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("died in steps 5-8"), std::string::npos) << r.err;
  size_t mark = load.acked_count();
  while (load.acked_count() < mark + 20) std::this_thread::sleep_for(10ms);
  load.stop();

  EXPECT_TRUE(load.failures().empty()) << join(load.failures());
  expect_every_ack_stored(load);
  EXPECT_TRUE(state("new").serving());
  EXPECT_TRUE(state("old").in_maintenance());
  EXPECT_FALSE(fence().fenced);
}

// A run killed inside step 8, between giving new its weight and putting old in maintenance (a
// window of one runtime API call, so the state is set up here by hand): the next run finishes the
// switch forward and the held writes go to new.
TEST_F(CutoverCliTest, KilledInsideTheSwitchTheNextRunFinishesForward) {
  WriteLoad load(proxy.url(), 3);
  while (load.acked_count() < 20) std::this_thread::sleep_for(10ms);
  proxy.command("fhirshift fence on fhir");
  proxy.command("set server fhir/new state ready");
  ASSERT_TRUE(proxy.wait_until_up("new", 10s));
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fence().held == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_GT(fence().held, 0);
  ASSERT_TRUE(state("new").serving());
  ASSERT_TRUE(state("old").serving());

  RunResult r = run_command(switch_args("cutover"), 2min);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("cutover: SWITCHED"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("died inside step 8"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("step 5/9"), std::string::npos) << r.err;
  size_t mark = load.acked_count();
  while (load.acked_count() < mark + 20) std::this_thread::sleep_for(10ms);
  load.stop();

  EXPECT_TRUE(load.failures().empty()) << join(load.failures());
  expect_every_ack_stored(load);
  EXPECT_TRUE(state("new").serving());
  EXPECT_TRUE(state("old").in_maintenance());
  EXPECT_FALSE(fence().fenced);
}

// The fence through a real HAProxy: which requests it holds, and the answer to a write held longer
// than the maximum (shortened here from 30 s to 2 s).
TEST(WriteFence, HoldsWritesOnlyAndAnswers503AfterTheMaximumHold) {
  TinyFhirServer old_server("old"), new_server("new");
  HaproxyProcess proxy(old_server.addr(), new_server.addr(), "/metadata", [](std::string cfg) {
    const std::string line = "lua.fhirshift_fence fhir 30 ";
    auto at = cfg.find(line);
    if (at != std::string::npos) cfg.replace(at, line.size(), "lua.fhirshift_fence fhir 2 ");
    return cfg;
  });
  ASSERT_TRUE(proxy.wait_until_up("old", 10s));
  httplib::Client cli(proxy.url());
  cli.set_read_timeout(60s);
  ASSERT_EQ(cli.Post("/Patient", "before", "application/fhir+json")->status, 201);
  EXPECT_NE(proxy.command("fhirshift fence on fhir").find("fenced=1"), std::string::npos);

  // Reads and searches by POST pass at once.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(cli.Get("/whoami")->status, 200);
  auto search = cli.Post("/Patient/_search", "search", "application/x-www-form-urlencoded");
  ASSERT_TRUE(search);
  EXPECT_EQ(search->status, 201);  // the stand-in answers every POST 201: it reached the server
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);

  // A transaction Bundle (POST /) is held, then answered 503 + Retry-After, and not applied.
  t0 = std::chrono::steady_clock::now();
  auto held = cli.Post("/", "bundle", "application/fhir+json");
  auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(held);
  EXPECT_EQ(held->status, 503);
  EXPECT_EQ(held->get_header_value("Retry-After"), "1");
  EXPECT_NE(held->body.find("\"resourceType\":\"OperationOutcome\""), std::string::npos) << held->body;
  // HAProxy counts the 2 s maximum hold on its own clock, which it reads once per loop of its
  // event loop (milliseconds): seen from here the hold may end a few milliseconds early.
  EXPECT_GE(waited, 2s - 50ms);
  EXPECT_EQ(old_server.applied().count("bundle"), 0u);
  EXPECT_EQ(new_server.applied().count("bundle"), 0u);

  // Lifted: the next write goes through.
  EXPECT_NE(proxy.command("fhirshift fence off fhir").find("fenced=0"), std::string::npos);
  EXPECT_EQ(cli.Post("/", "bundle-again", "application/fhir+json")->status, 201);
  EXPECT_EQ(old_server.applied().count("bundle-again"), 1u);
}

}  // namespace
}  // namespace fhirshift::testing

// Throttling and runtime control of `fhirshift migrate` against live FerretDB servers: --max-rate
// holds over a 20 s window, `fhirshift ctl pause` stops writing within a chunk and `resume` goes
// on exactly where it stopped, and --max-source-latency slows down behind a source made slow by a
// delaying TCP proxy and speeds up again once the delay is gone; the limits and the pause also in
// a file import and in reverse replication; the control port listens on 127.0.0.1 unless
// --metrics-bind says otherwise.
//
// Rates are compared within one run, each measured between two moments at which /progress's
// entriesRead changed (chunk boundaries), so that the chunking does not blur them.
#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "delay_proxy.h"
#include "migrate_fixture.h"
#include "ports.h"

namespace fhirshift {
namespace {

using namespace std::chrono_literals;
using testing::run_command;
using testing::RunResult;
using Steady = std::chrono::steady_clock;

class MigrateThrottleTest : public MigrateFixture {
 protected:
  // The operator's migrate command from the legacy source into the target, in small chunks.
  void start(const std::vector<std::string>& extra, const std::string& mode = "AdHoc",
             const std::string& source_uri = "") {
    std::vector<std::string> argv =
        migrate_command(source_uri.empty() ? src_uri() : source_uri, dst_uri(), journal_.path(),
                        mode, "ErrorOnConflict", {"--mongoBatch", "25", "--mongoPar", "1"});
    argv.insert(argv.end(), extra.begin(), extra.end());
    start_command(std::move(argv));
  }
  // Any `fhirshift migrate` command line, with a --metrics-port added; /progress is read on
  // `metrics_host`.
  void start_command(std::vector<std::string> argv, const std::string& metrics_host = "127.0.0.1") {
    port_ = testing::free_port();
    metrics_host_ = metrics_host;
    argv.insert(argv.end(), {"--metrics-port", std::to_string(port_)});
    run_ = std::make_unique<testing::Subprocess>(argv, logs_.path(), "migrate-" + std::to_string(++runs_));
    metrics_ = std::make_unique<httplib::Client>(metrics_host_, port_);
    metrics_->set_read_timeout(10, 0);
    ASSERT_TRUE(wait_until([&] { return progress().is_object(); }, 60s)) << logs();
  }
  std::string logs() const { return run_ ? run_->stdout_text() + run_->stderr_text() : ""; }
  std::string metrics_url() const { return "http://" + metrics_host_ + ":" + std::to_string(port_); }

  // /progress, or null while it does not answer.
  nlohmann::json progress() {
    if (auto r = metrics_->Get("/progress"); r && r->status == 200)
      return nlohmann::json::parse(r->body);
    return nullptr;
  }
  int64_t figure(const char* name) {
    nlohmann::json p = progress();
    return p.is_object() ? p.value(name, int64_t{-1}) : -1;
  }
  static bool wait_until(const std::function<bool()>& done, std::chrono::seconds timeout) {
    for (auto deadline = Steady::now() + timeout; Steady::now() < deadline;
         std::this_thread::sleep_for(50ms))
      if (done()) return true;
    return done();
  }
  RunResult ctl(const std::vector<std::string>& verb) {
    std::vector<std::string> argv = {testing::cli_path(), "ctl", "--metrics", metrics_url()};
    argv.insert(argv.end(), verb.begin(), verb.end());
    return run_command(argv, 3min);
  }

  struct Sample {
    Steady::time_point at;
    int64_t read = 0;
  };
  // The moment entriesRead next changes (polled every 10 ms).
  Sample next_change() {
    int64_t before = figure("entriesRead");
    for (auto deadline = Steady::now() + 60s; Steady::now() < deadline;
         std::this_thread::sleep_for(10ms)) {
      int64_t now = figure("entriesRead");
      if (now != before) return {Steady::now(), now};
    }
    ADD_FAILURE() << "entriesRead stayed at " << before << " for 60 s\n" << logs();
    return {Steady::now(), before};
  }
  // Entries read per second over at least `window`, from one chunk boundary to another.
  double rate_over(std::chrono::seconds window) {
    Sample a = next_change();
    std::this_thread::sleep_for(window);
    Sample b = next_change();
    return static_cast<double>(b.read - a.read) /
           std::chrono::duration<double>(b.at - a.at).count();
  }
  // The entries (ObjectId `_id`s) of the vonkentries collection at `uri` (default: the target).
  int64_t target_count(const std::string& uri = "") {
    mongo::ClientPool pool(mongo::Uri::parse(uri.empty() ? dst_uri() : uri));
    mongo::Client c = pool.acquire();
    mongo::Builder f;
    f.document("_id", [](mongo::Builder& d) { d.append("$type", "objectId"); });
    return c.collection(pool.database(), "vonkentries").count(f.extract().get());
  }
  std::string metrics_text() {
    auto m = metrics_->Get("/metrics");
    return m && m->status == 200 ? m->body : "GET /metrics failed";
  }
  // Measures --max-rate 25 over 20 s on the running migrator (read between two chunk boundaries)
  // and checks that /progress, /metrics and the JSON progress log say it is throttled and why.
  void expect_max_rate_25_holds(const std::string& mode) {
    constexpr double kRate = 25;
    ASSERT_TRUE(wait_until([&] { return figure("entriesRead") >= 25; }, 120s)) << logs();
    double rate = rate_over(20s);
    std::printf("%s --max-rate 25: measured %.1f entries/s over 20 s\n", mode.c_str(), rate);
    EXPECT_NEAR(rate, kRate, kRate / 10) << mode << "\n" << logs();
    nlohmann::json p = progress();
    EXPECT_EQ(p.value("mode", ""), mode) << p.dump();
    EXPECT_EQ(p.value("maxRate", 0.0), kRate) << p.dump();
    EXPECT_EQ(p.value("rateLimit", 0.0), kRate) << p.dump();
    EXPECT_TRUE(p.value("throttled", false)) << p.dump();
    EXPECT_EQ(p.value("throttleReason", ""), "max rate 25 entries/s") << p.dump();
    std::string m = metrics_text();
    EXPECT_NE(m.find("\nfhirshift_migrate_max_rate 25\n"), std::string::npos) << m;
    EXPECT_NE(m.find("fhirshift_migrate_throttled{reason=\"max rate\"} 1"), std::string::npos) << m;
    // The progress log (JSON when not on a terminal, every 5 s) says why.
    EXPECT_TRUE(run_->wait_for_output(R"("throttleReason":"max rate 25 entries/s")", 30s)) << logs();
  }
  // Pauses the running migrator with `fhirshift ctl pause` and checks that it stops within a
  // chunk and stays stopped; `uri` is where it writes.
  void expect_pause_holds(const std::string& uri) {
    int64_t written_before = figure("entriesWritten");
    RunResult r = ctl({"pause"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << logs();
    EXPECT_NE(r.out.find("paused at checkpoint"), std::string::npos) << r.out;
    nlohmann::json p = progress();
    int64_t written_paused = p.value("entriesWritten", int64_t{-1});
    std::printf("pause: %lld entries written after the request (chunk in flight)\n",
                static_cast<long long>(written_paused - written_before));
    EXPECT_LE(written_paused - written_before, 100) << "at most the chunk in flight";
    EXPECT_EQ(p.value("phase", ""), "paused");
    EXPECT_TRUE(p.value("paused", false));
    EXPECT_NE(p.value("throttleReason", "").find("paused by the operator"), std::string::npos)
        << p.dump();
    EXPECT_EQ(target_count(uri), written_paused);
    // Nothing moves while paused (this is the absence of writes, so it is watched for a while).
    std::this_thread::sleep_for(3s);
    EXPECT_EQ(target_count(uri), written_paused);
    EXPECT_EQ(figure("entriesWritten"), written_paused);
    EXPECT_NE(metrics_text().find("fhirshift_migrate_throttled{reason=\"paused\"} 1"),
              std::string::npos);
    r = ctl({"resume"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  void expect_equal() {
    RunResult v = verify();
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    EXPECT_NE(v.out.find("EQUAL"), std::string::npos) << v.out;
    expect_faithful_copy();
  }

  int port_ = 0;
  std::string metrics_host_ = "127.0.0.1";
  int runs_ = 0;
  std::unique_ptr<testing::Subprocess> run_;
  std::unique_ptr<httplib::Client> metrics_;
};

TEST_F(MigrateThrottleTest, MaxRateHoldsWithinTenPercentOverTwentySeconds) {
  // Far below what a loaded 2-core machine sustains unthrottled (~50 entries/s measured with
  // the whole suite and other builds beside it), so the figure measures the limit, not the machine.
  constexpr double kRate = 25;
  seed(2000);
  start({"--max-rate", "25"});
  ASSERT_TRUE(wait_until([&] { return figure("entriesRead") >= 25; }, 120s)) << logs();
  double rate = rate_over(20s);
  std::printf("--max-rate 25: measured %.1f entries/s over 20 s\n", rate);
  EXPECT_NEAR(rate, kRate, kRate / 10) << logs();
  nlohmann::json p = progress();
  EXPECT_EQ(p.value("maxRate", 0.0), kRate);
  EXPECT_TRUE(p.value("throttled", false)) << p.dump();
  EXPECT_EQ(p.value("throttleReason", ""), "max rate 25 entries/s") << p.dump();
  // The progress log (JSON when not on a terminal, every 5 s) says why.
  ASSERT_TRUE(run_->wait_for_output(R"("throttleReason":"max rate 25 entries/s")", 30s)) << logs();

  // Lifted live: the rest is copied at full speed.
  RunResult r = ctl({"throttle", "--max-rate", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("max rate none"), std::string::npos) << r.out;
  ASSERT_EQ(run_->wait_for(120s), std::optional<int>(0)) << logs();
  EXPECT_EQ(report_figure(run_->stdout_text(), "written"), 2000) << run_->stdout_text();
  expect_equal();
}

TEST_F(MigrateThrottleTest, PauseStopsWritingWithinAChunkAndResumeCopiesEverythingOnce) {
  constexpr int kEntries = 1500;
  seed(kEntries);
  // A rate limit keeps the copy going long enough to pause it midway; its chunks hold a quarter
  // of a second of reading (~38 entries).
  start({"--max-rate", "150", "--pollInterval", "200ms"}, "Continuous");
  ASSERT_TRUE(wait_until([&] { return figure("entriesWritten") >= 300; }, 120s)) << logs();
  int64_t written_before = figure("entriesWritten");
  RunResult r = ctl({"pause"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("paused at checkpoint"), std::string::npos) << r.out;

  nlohmann::json p = progress();
  int64_t written_paused = p.value("entriesWritten", int64_t{-1});
  EXPECT_LT(written_paused, kEntries) << "paused before the end";
  std::printf("pause: %lld entries written after the request (chunk in flight)\n",
              static_cast<long long>(written_paused - written_before));
  EXPECT_LE(written_paused - written_before, 100)
      << "at most the chunk in flight (and one applied while asking)";
  EXPECT_EQ(p.value("phase", ""), "paused");
  EXPECT_TRUE(p.value("paused", false));
  EXPECT_FALSE(p.value("caughtUp", true));
  EXPECT_TRUE(p.value("throttled", false));
  EXPECT_NE(p.value("throttleReason", "").find("paused by the operator"), std::string::npos)
      << p.dump();
  EXPECT_EQ(target_count(), written_paused);
  // Nothing moves while paused (this is the absence of writes, so it is watched for a while).
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(target_count(), written_paused);
  p = progress();
  EXPECT_EQ(p.value("entriesWritten", int64_t{-1}), written_paused);
  EXPECT_EQ(p.value("entriesRead", int64_t{-1}), written_paused);
  EXPECT_FALSE(p.value("caughtUp", true));
  if (auto m = metrics_->Get("/metrics"); m && m->status == 200) {
    EXPECT_NE(m->body.find("fhirshift_migrate_paused 1"), std::string::npos) << m->body;
    EXPECT_NE(m->body.find("fhirshift_migrate_throttled{reason=\"paused\"} 1"), std::string::npos)
        << m->body;
  } else {
    ADD_FAILURE() << "GET /metrics failed";
  }

  r = ctl({"resume"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(wait_until([&] { return figure("entriesWritten") == kEntries; }, 180s)) << logs();
  // Each Continuous poll re-reads the late-entry window, which here (a seeded store, all written
  // within seconds) is the whole store: at 150/s a poll takes longer than the caught-up lag.
  ASSERT_EQ(ctl({"throttle", "--max-rate", "0"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return progress().value("caughtUp", false); }, 180s)) << logs();
  EXPECT_EQ(target_count(), kEntries);

  // The contract the cut-over relies on: a paused migrator is not caught up, at once.
  ASSERT_EQ(ctl({"pause"}).exit_code, 0);
  EXPECT_FALSE(progress().value("caughtUp", true));
  ASSERT_EQ(ctl({"resume"}).exit_code, 0);
  EXPECT_EQ(run_->stop(30s), 0) << logs();
  EXPECT_EQ(report_figure(run_->stdout_text(), "written"), kEntries) << "each entry written once\n"
                                                                     << run_->stdout_text();
  expect_equal();
}

TEST_F(MigrateThrottleTest, LatencyLimitSlowsDownBehindASlowSourceAndRecovers) {
  seed(6000);
  testing::DelayProxy proxy(source_->port());
  const std::string via_proxy = "mongodb://127.0.0.1:" + std::to_string(proxy.port()) + "/" + db_;
  // The max rate caps the healthy speed so that the store lasts the whole test.
  start({"--max-rate", "200", "--max-source-latency", "300ms"}, "AdHoc", via_proxy);
  ASSERT_TRUE(wait_until([&] { return figure("entriesRead") >= 200; }, 120s)) << logs();
  auto latency_limited = [&] {
    nlohmann::json p = progress();
    return p.is_object() &&
           p.value("throttleReason", "").find("source latency") != std::string::npos;
  };
  double healthy = rate_over(4s);
  EXPECT_FALSE(latency_limited()) << progress().dump() << logs();

  proxy.set_delay(800ms);
  ASSERT_TRUE(wait_until(latency_limited, 60s)) << progress().dump() << logs();
  EXPECT_NE(logs().find("is above --max-source-latency 300 ms"), std::string::npos) << logs();
  // Measured once the rate was cut at least twice (halved from at most 200/s).
  ASSERT_TRUE(wait_until(
      [&] {
        double limit = progress().value("rateLimit", 0.0);
        return limit > 0 && limit <= 50;
      },
      60s))
      << progress().dump() << logs();
  double slow = rate_over(4s);
  EXPECT_LT(slow, healthy / 2) << "healthy " << healthy << "/s, behind the slow source " << slow
                               << "/s";

  proxy.set_delay(0ms);
  ASSERT_TRUE(wait_until([&] { return !latency_limited(); }, 120s)) << progress().dump() << logs();
  EXPECT_NE(logs().find("latency limit lifted"), std::string::npos) << logs();
  double recovered = rate_over(4s);
  EXPECT_GT(recovered, 2 * slow) << "slow " << slow << "/s, recovered " << recovered << "/s";
  EXPECT_GT(recovered, healthy / 2)
      << "healthy " << healthy << "/s, recovered " << recovered << "/s";

  std::printf(
      "--max-source-latency 300ms: healthy %.1f, behind +800 ms %.1f, recovered %.1f entries/s\n",
      healthy, slow, recovered);
  RunResult r = ctl({"throttle", "--max-rate", "0", "--max-source-latency", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(run_->wait_for(180s), std::optional<int>(0)) << logs();
  expect_equal();
}

// An ndjson file of `n` distinct Patients without contained resources (one target entry per file
// entry, so entriesRead counts file entries) in `dir`, and the file import of it into `target`.
std::vector<std::string> import_patients(const std::filesystem::path& dir, int n,
                                         const std::string& target,
                                         const std::filesystem::path& journal,
                                         const std::vector<std::string>& extra) {
  std::ofstream out(dir / "patients.ndjson");
  for (int i = 0; i < n; ++i)
    out << R"({"resourceType":"Patient","id":"t)" << i << R"(","name":[{"family":"Rate"}]})"
        << "\n";
  std::vector<std::string> argv = {
      testing::cli_path(), "migrate", "--provisionTargetDatabase", "true", "--useRecoveryJournal",
      journal.string(), "--sourceType", "Filesystem", "-s", (dir / "patients.ndjson").string(),
      "--mongoConnectionstring", target, "--mongoCollection", "vonkentries"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

TEST_F(MigrateThrottleTest, MaxRateAndPauseHoldInAFileImport) {
  // More than the limit lets through during the test, so a run that ignored the limit would end
  // before the window does (and fail).
  constexpr int kPatients = 1500;
  testing::TempDir files;
  start_command(import_patients(files.path(), kPatients, dst_uri(), journal_.path(),
                                {"--mongoBatch", "25", "--mongoPar", "1", "--max-rate", "25"}));
  expect_max_rate_25_holds("Filesystem");
  expect_pause_holds(dst_uri());

  RunResult r = ctl({"throttle", "--max-rate", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(run_->wait_for(180s), std::optional<int>(0)) << logs();
  EXPECT_EQ(report_figure(run_->stdout_text(), "file entries"), kPatients) << run_->stdout_text();
  EXPECT_EQ(target_count(), kPatients) << "each file entry written once";
}

TEST_F(MigrateThrottleTest, LatencyLimitSlowsAFileImportBehindASlowTargetAndRecovers) {
  // A file import's only database is its target: --max-source-latency watches that.
  constexpr int kPatients = 4000;
  testing::TempDir files;
  testing::DelayProxy proxy(target_->port());
  const std::string via_proxy = "mongodb://127.0.0.1:" + std::to_string(proxy.port()) + "/" + db_;
  start_command(import_patients(files.path(), kPatients, via_proxy, journal_.path(),
                                {"--mongoBatch", "100", "--mongoPar", "1", "--max-rate", "100",
                                 "--max-source-latency", "300ms"}));
  ASSERT_TRUE(wait_until([&] { return figure("entriesRead") >= 100; }, 120s)) << logs();
  auto latency_limited = [&] {
    nlohmann::json p = progress();
    return p.is_object() &&
           p.value("throttleReason", "").find("source latency") != std::string::npos;
  };
  EXPECT_FALSE(latency_limited()) << progress().dump() << logs();

  proxy.set_delay(800ms);
  ASSERT_TRUE(wait_until(latency_limited, 90s)) << progress().dump() << logs();
  EXPECT_NE(logs().find("is above --max-source-latency 300 ms"), std::string::npos) << logs();
  ASSERT_TRUE(wait_until(
      [&] {
        double limit = progress().value("rateLimit", 0.0);
        return limit > 0 && limit <= 25;
      },
      90s))
      << "cut at least twice from at most 100/s\n"
      << progress().dump() << logs();

  proxy.set_delay(0ms);
  ASSERT_TRUE(wait_until([&] { return !latency_limited(); }, 120s)) << progress().dump() << logs();
  EXPECT_TRUE(run_->wait_for_output("latency limit lifted", 30s)) << logs();
  EXPECT_LT(figure("entriesRead"), kPatients) << "the file lasted the whole test";
  RunResult r = ctl({"throttle", "--max-rate", "0", "--max-source-latency", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(run_->wait_for(180s), std::optional<int>(0)) << logs();
  EXPECT_EQ(target_count(), kPatients);
}

TEST_F(MigrateThrottleTest, MaxRateAndPauseHoldInReverseReplication) {
  // After a cut-over the reverse migrator copies the current-schema store back into a legacy one
  // (docs/runbook.md, step 6): here the target of a forward copy, into an empty legacy store.
  constexpr int kEntries = 1500;
  seed(kEntries);
  RunResult forward = run_command(migrate_args("AdHoc"), 5min);
  ASSERT_EQ(forward.exit_code, 0) << forward.out << forward.err;
  const std::string back = source_->uri(db_ + "Back");
  testing::TempDir reverse_journal;
  start_command({testing::cli_path(), "migrate", "--reverse", "--srcMongoConnectionString",
                 dst_uri(), "--srcMongoCollection", "vonkentries", "--srcMongoRunningMode",
                 "Continuous", "--mongoConnectionstring", back, "--mongoCollection",
                 "vonkentries", "--useRecoveryJournal", reverse_journal.path().string(),
                 "--pollInterval", "200ms", "--mongoBatch", "25", "--mongoPar", "1",
                 "--max-rate", "25"});
  expect_max_rate_25_holds("Continuous");
  expect_pause_holds(back);

  RunResult r = ctl({"throttle", "--max-rate", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(wait_until([&] { return progress().value("caughtUp", false); }, 180s)) << logs();
  EXPECT_EQ(run_->stop(30s), 0) << logs();
  EXPECT_EQ(report_figure(run_->stdout_text(), "written"), kEntries) << "each entry written once\n"
                                                                     << run_->stdout_text();
  // The legacy store written back equals the current one it was copied from.
  RunResult v = verify_full(back, dst_uri());
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("EQUAL"), std::string::npos) << v.out;
}

// The first IPv4 address of an interface that is up and not loopback, if the machine has one.
std::optional<std::string> non_loopback_ipv4() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (ifaddrs* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
        (i->ifa_flags & IFF_LOOPBACK))
      continue;
    char text[INET_ADDRSTRLEN];
    const auto* a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &a->sin_addr, text, sizeof text)) found = text;
  }
  freeifaddrs(list);
  return found;
}

// Whether GET /progress on host:port answers with the migrator's JSON.
bool answers(const std::string& host, int port) {
  httplib::Client c(host, port);
  c.set_connection_timeout(5, 0);
  c.set_read_timeout(10, 0);
  auto r = c.Get("/progress");
  return r && r->status == 200 && nlohmann::json::parse(r->body, nullptr, false).is_object();
}

TEST_F(MigrateThrottleTest, MetricsBindDecidesWhereTheControlPortListens) {
  // Linux answers every 127.0.0.0/8 address on the loopback interface: a socket bound to
  // 127.0.0.1 alone is not reachable on 127.0.0.2, one bound to 0.0.0.0 is. The machine's own
  // non-loopback address, when it has one, is what another host would connect to.
  const std::optional<std::string> lan = non_loopback_ipv4();
  std::printf("non-loopback address of this machine: %s\n", lan ? lan->c_str() : "none");
  seed(20);
  // A Continuous run keeps running (and listening) until stopped.
  auto run = [&](const std::string& bind) {
    std::vector<std::string> argv = migrate_args("Continuous", {"--pollInterval", "200ms"});
    if (!bind.empty()) argv.insert(argv.end(), {"--metrics-bind", bind});
    start_command(argv, bind.empty() || bind == "0.0.0.0" ? "127.0.0.1" : bind);
    EXPECT_TRUE(run_->wait_for_output("metrics on http://" + (bind.empty() ? "127.0.0.1" : bind) +
                                          ":" + std::to_string(port_) + "/metrics",
                                      30s))
        << "the log says where it listens\n"
        << logs();
  };

  // The default: 127.0.0.1 only, and no warning.
  run("");
  EXPECT_TRUE(answers("127.0.0.1", port_));
  EXPECT_FALSE(answers("127.0.0.2", port_)) << "bound to 127.0.0.1 only";
  if (lan) {
    EXPECT_FALSE(answers(*lan, port_)) << "not reachable on " << *lan;
  }
  EXPECT_EQ(run_->stop(30s), 0) << logs();
  EXPECT_EQ(logs().find("whoever reaches this address"), std::string::npos) << logs();

  // 0.0.0.0: every address of the machine, with a warning in the log; ctl works through it.
  run("0.0.0.0");
  EXPECT_TRUE(answers("127.0.0.1", port_));
  EXPECT_TRUE(answers("127.0.0.2", port_));
  if (lan) {
    EXPECT_TRUE(answers(*lan, port_)) << "reachable on " << *lan << "\n" << logs();
    RunResult r = run_command({testing::cli_path(), "ctl", "--metrics",
                               "http://" + *lan + ":" + std::to_string(port_), "status"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Continuous migration"), std::string::npos) << r.out;
  }
  EXPECT_TRUE(run_->wait_for_output(
      "--metrics-bind 0.0.0.0: whoever reaches this address can pause and throttle the migration",
      30s))
      << logs();
  EXPECT_EQ(run_->stop(30s), 0) << logs();

  // One given address: there and nowhere else.
  run("127.0.0.2");
  EXPECT_TRUE(answers("127.0.0.2", port_));
  EXPECT_FALSE(answers("127.0.0.1", port_)) << "bound to 127.0.0.2 only";
  EXPECT_EQ(run_->stop(30s), 0) << logs();
}

// The cut-over's drain asks for a poll while writes are held: it must not wait for the
// migrator's --pollInterval (here far longer than the test's deadline).
TEST_F(MigrateThrottleTest, ARequestedPollStartsAsSoonAsTheCurrentOneEnds) {
  seed(50);
  start({"--pollInterval", "10min"}, "Continuous");
  ASSERT_TRUE(wait_until([&] { return figure("pollsDone") >= 1; }, 120s)) << logs();
  // The first poll's wait of 10 minutes has begun once its entries are applied.
  int64_t started = figure("pollsStarted");
  EXPECT_EQ(figure("pollsDone"), started);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(figure("pollsStarted"), started) << "no poll before the interval without a request";
  auto r = metrics_->Post("/poll");
  ASSERT_TRUE(r) << "POST /poll failed";
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(wait_until([&] { return figure("pollsDone") > started; }, 60s))
      << "the requested poll did not come\n" << logs();
  EXPECT_EQ(run_->stop(30s), 0) << logs();
}

// A cut-over pauses the migrator just before its fence and waits for `reading: false`: the poll in
// progress is abandoned (not finished) at once, and a fresh one begins after the resume.
TEST_F(MigrateThrottleTest, APauseAbandonsThePollInProgressAndSaysSo) {
  seed(60);
  // 5 entries/s: the first poll reads for about 12 s.
  start({"--max-rate", "5", "--pollInterval", "10min"}, "Continuous");
  auto reading = [&] {
    nlohmann::json p = progress();
    return p.is_object() && p.value("reading", false);
  };
  ASSERT_TRUE(wait_until([&] { return reading() && figure("entriesRead") > 0; }, 60s)) << logs();
  const int64_t started = figure("pollsStarted");
  ASSERT_EQ(figure("pollsDone"), 0);
  ASSERT_EQ(ctl({"pause"}).exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return !reading() && progress().is_object(); }, 10s))
      << "still reading while paused\n" << logs();
  EXPECT_EQ(figure("pollsDone"), 0) << "the poll was finished, not abandoned";
  ASSERT_EQ(ctl({"resume"}).exit_code, 0);
  ASSERT_EQ(ctl({"throttle", "--max-rate", "0"}).exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return figure("pollsDone") > started; }, 60s))
      << "no fresh poll after the resume\n" << logs();
  EXPECT_FALSE(reading()) << "the interval is being waited: nothing is read";
  EXPECT_EQ(figure("entriesWritten"), 60) << logs();
  EXPECT_EQ(run_->stop(30s), 0) << logs();
}

// When the writers lag, the reader waits for room in the chunk queue, which a paused consumer never
// makes: a pause abandons that wait too, or the cut-over would wait for `reading: false` in vain.
TEST_F(MigrateThrottleTest, APauseAlsoEndsAReaderWaitingForLaggingWriters) {
  seed(3000);
  start({"--pollInterval", "10min"}, "Continuous");  // 25-entry batches, one writer: it lags
  ASSERT_TRUE(wait_until([&] { return figure("entriesWritten") >= 100; }, 120s)) << logs();
  ASSERT_EQ(ctl({"pause"}).exit_code, 0);
  auto reading = [&] {
    nlohmann::json p = progress();
    return !p.is_object() || p.value("reading", true);
  };
  EXPECT_TRUE(wait_until([&] { return !reading(); }, 10s)) << "still reading while paused\n"
                                                            << logs();
  const int64_t written = figure("entriesWritten");
  EXPECT_LT(written, 3000) << "paused before the end";
  ASSERT_EQ(ctl({"resume"}).exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return figure("entriesWritten") == 3000 && !reading(); }, 180s))
      << logs();
  EXPECT_EQ(target_count(), 3000);
  EXPECT_EQ(run_->stop(30s), 0) << logs();
}

TEST_F(MigrateThrottleTest, CtlSaysClearlyWhenNoMigratorListens) {
  port_ = testing::free_port();
  RunResult r = ctl({"status"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("Is the migrator running with --metrics-port"), std::string::npos) << r.err;
  r = run_command({testing::cli_path(), "ctl", "--metrics", "127.0.0.1", "status"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

}  // namespace
}  // namespace fhirshift

// The cut-over state machine against fakes: every abort path must leave traffic and writes where
// they are safe, and the happy path must do its steps in the one safe order.
#include "cutover/switchover.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cutover/live_report.h"

namespace fhirshift::cutover {
namespace {

using namespace std::chrono_literals;

class FakeClock : public Clock {
 public:
  WallTime wall_now() override { return wall_; }
  SteadyTime steady_now() override { return steady_; }
  void sleep_for(std::chrono::milliseconds d) override { advance(d); }
  void advance(std::chrono::milliseconds d) {
    wall_ += d;
    steady_ += d;
  }

 private:
  WallTime wall_ = *parse_iso8601("2024-05-01T12:00:00.000Z");
  SteadyTime steady_{};
};

// Every call of every fake lands in one journal, so tests can assert the order across components.
using Journal = std::vector<std::string>;

// Models what HAProxy does (checked against Debian's 2.6 in the integration tests): leaving
// maintenance a server is UP at once with check health = rise, and a passed check raises it to
// rise + fall - 1; a failing check takes it DOWN.
class FakeProxy : public Proxy {
 public:
  explicit FakeProxy(Journal& j) : journal_(j) {
    servers_["old"] = {ServerState::kOpRunning, 0, 1, 3};
    servers_["new"] = {ServerState::kOpStopped,
                       ServerState::kAdmForcedMaint | ServerState::kAdmConfigMaint, 1, 0};
  }
  std::string describe() const override { return "fake HAProxy"; }
  ServerState state(const std::string& backend, const std::string& server) override {
    if (fail_reads) throw std::runtime_error("socket gone");
    if (on_state_read) on_state_read(server);
    auto& s = servers_.at(server);
    ServerState out;
    out.backend = backend;
    out.server = server;
    out.op_state = s.op;
    out.admin_state = s.admin;
    out.weight = s.weight;
    out.check_health = s.health;
    out.check_rise = 2;
    out.check_fall = 2;
    // The next health check runs between two reads.
    if (!(s.admin & ServerState::kAdmForcedMaint)) {
      if (unhealthy.count(server)) {
        s.op = ServerState::kOpStopped;
        s.health = 0;
      } else {
        s.health = 3;
      }
    }
    return out;
  }
  void set_state(const std::string& backend, const std::string& server, AdminState st) override {
    journal_.push_back("proxy " + backend + "/" + server + " " + std::string(to_string(st)));
    if (refuse_set.count(server + ":" + std::string(to_string(st))))
      throw std::runtime_error("HAProxy refused");
    auto& s = servers_.at(server);
    if (st == AdminState::kMaint) {
      s.admin |= ServerState::kAdmForcedMaint;
      s.op = ServerState::kOpStopped;
    } else if (st == AdminState::kReady) {
      s.admin &= ~(ServerState::kAdmForcedMaint | ServerState::kAdmForcedDrain);
      s.op = ServerState::kOpRunning;
      s.health = 2;
      if (s.weight > 0) sessions[server] += sessions_when_serving;
    }
  }
  void set_weight(const std::string& backend, const std::string& server,
                  const std::string& weight) override {
    journal_.push_back("proxy " + backend + "/" + server + " weight " + weight);
    auto& s = servers_.at(server);
    s.weight = weight == "0" ? 0 : 1;
    if (s.weight > 0 && s.op == ServerState::kOpRunning &&
        !(s.admin & ServerState::kAdmForcedMaint))
      sessions[server] += sessions_when_serving;
  }
  int64_t sessions_total(const std::string&, const std::string& server) override {
    return sessions[server];
  }
  // The write fence: reads are not journaled (like state()), raising and lifting are.
  FenceStatus fence_status(const std::string& backend) override {
    if (fail_reads || no_fence) throw std::runtime_error("HAProxy has no write fence");
    FenceStatus f;
    f.name = backend;
    f.fenced = fenced;
    f.held = fenced ? held_when_fenced : 0;
    if (has_table) {
      f.in_flight = 0;
      if (fenced && !in_flight.empty()) {
        f.in_flight = in_flight.front();
        if (in_flight.size() > 1) in_flight.pop_front();
      }
    }
    return f;
  }
  FenceStatus set_fence(const std::string& backend, bool on) override {
    journal_.push_back("proxy fence " + std::string(on ? "on " : "off ") + backend);
    if (on && fence_on_throws) {
      fenced = true;  // the answer was lost, the fence went up anyway
      throw std::runtime_error("HAProxy runtime API: no complete answer within 5000 ms");
    }
    if (!on && fence_off_failures > 0) {
      --fence_off_failures;
      throw std::runtime_error("HAProxy runtime API: cannot connect");
    }
    if (on) {
      fenced = true;
      return fence_status(backend);
    }
    FenceStatus f = fence_status(backend);  // held writes are still counted just after the lift
    fenced = false;
    f.fenced = false;
    return f;
  }
  bool serving(const std::string& server) { return state("fhir", server).serving(); }
  bool in_maint(const std::string& server) { return state("fhir", server).in_maintenance(); }
  int weight(const std::string& server) { return servers_.at(server).weight; }
  void put(const std::string& server, int op, int admin, int weight = 1) {
    servers_[server] = {op, admin, weight, op == ServerState::kOpRunning ? 3 : 0};
  }

  std::set<std::string> refuse_set;  // "server:state"
  std::set<std::string> unhealthy;
  std::function<void(const std::string&)> on_state_read;
  std::map<std::string, int64_t> sessions;
  int64_t sessions_when_serving = 5;
  bool fail_reads = false;
  bool fenced = false;
  bool no_fence = false;   // no fhirshift_fence.lua in HAProxy
  bool has_table = true;   // the fhirshift_writes stick table
  bool fence_on_throws = false;
  int fence_off_failures = 0;
  int64_t held_when_fenced = 3;
  std::deque<int64_t> in_flight;  // successive readings while fenced; the last one repeats

 private:
  struct S {
    int op;
    int admin;
    int weight;
    int health;
  };
  Journal& journal_;
  std::map<std::string, S> servers_;
};

class FakeServer : public ServerHealth {
 public:
  FakeServer(Journal& j, std::string name, std::string url)
      : journal_(j), name_(std::move(name)), url_(std::move(url)) {}
  std::string url() const override { return url_ + "/metadata"; }
  ReadyCheck ready() override {
    journal_.push_back(name_ + " ready?");
    return {ready_ok, ready_ok ? "HTTP 200" : "HTTP 503 not ready"};
  }
  bool ready_ok = true;

 private:
  Journal& journal_;
  std::string name_, url_;
};

// A migrator that polls continuously: each /progress shows a poll that happened "just now".
class FakeProgress : public ProgressSource {
 public:
  FakeProgress(Journal& j, FakeClock& c) : journal_(j), clock_(c) {}
  std::string url() const override { return "http://migrator:9100/progress"; }
  Progress progress() override {
    journal_.push_back("progress");
    if (script) return script();
    Progress p;
    p.mode = "Continuous";
    p.caught_up = caught_up;
    p.lag_seconds = lag;
    p.entries_read = p.entries_written = 1000;
    if (!stuck_poll) p.last_poll_at = clock_.wall_now() - 10ms;
    else p.last_poll_at = *parse_iso8601("2024-05-01T11:00:00Z");
    return p;
  }
  void pause() override {
    journal_.push_back("pause migrator");
    if (pause_fails) throw std::runtime_error("POST /pause: connection refused");
    if (on_pause) on_pause();
  }
  void resume() override {
    journal_.push_back("resume migrator");
    if (resume_fails) throw std::runtime_error("POST /resume: connection refused");
    if (on_resume) on_resume();
  }
  std::function<void()> on_pause, on_resume;
  bool resume_fails = false;
  void poll_now() override { journal_.push_back("poll now"); }
  bool pause_fails = false;
  bool caught_up = true;
  double lag = 0.2;
  bool stuck_poll = false;  // the migrator stopped polling
  std::function<Progress()> script;

 private:
  Journal& journal_;
  FakeClock& clock_;
};

class FakeVerifier : public Verifier {
 public:
  FakeVerifier(Journal& j, FakeClock& c) : journal_(j), clock_(c) {}
  std::string describe(const VerifyRequest& r) const override {
    return "fhirshift verify --mode " + r.mode + (r.since ? " --since " + *r.since : "");
  }
  VerifyOutcome verify(const VerifyRequest& r) override {
    journal_.push_back("verify " + r.mode + (r.since ? " since=" + *r.since : "") +
                       (r.writes_flowing ? " (writes flowing)" : ""));
    clock_.advance(takes);
    VerifyOutcome o;
    bool eq = r.mode == "counts" ? counts_equal : r.writes_flowing ? before_equal : full_equal;
    o.equal = eq;
    o.exit_code = eq ? 0 : 1;
    o.verdict = eq ? "EQUAL" : "DIFFERENT: 2 entries missing in the target";
    o.took = takes;
    if (eq) o.quarantine_accounted = accounted;
    if (r.mode != "counts") o.source_high_water_lu = high_water_lu;
    return o;
  }
  // The final verify: started before the fence, told when each store is final, its verdict the
  // one verify() would give then.
  class Staged : public StagedVerify {
   public:
    Staged(FakeVerifier& v, VerifyRequest r) : v_(v), r_(std::move(r)) {}
    ~Staged() override {
      if (!finished_) v_.journal_.push_back("verify cancelled");
    }
    void source_final() override {
      v_.journal_.push_back("verify: source final");
      if (v_.on_source_final) v_.on_source_final();
    }
    void target_final() override { v_.journal_.push_back("verify: target final"); }
    VerifyOutcome finish(std::chrono::milliseconds timeout) override {
      finished_ = true;
      v_.final_timeout = timeout;
      return v_.verify(r_);
    }

   private:
    FakeVerifier& v_;
    VerifyRequest r_;
    bool finished_ = false;
  };
  std::unique_ptr<StagedVerify> start(const VerifyRequest& r) override {
    journal_.push_back("verify start " + r.mode + (r.since ? " since=" + *r.since : ""));
    return std::make_unique<Staged>(*this, r);
  }
  std::optional<std::chrono::milliseconds> final_timeout;  // what finish() was given
  std::function<void()> on_source_final;

  bool counts_equal = true;
  bool before_equal = true;  // the full verify before the fence
  bool full_equal = true;    // the final verify, writes fenced
  std::optional<std::string> high_water_lu = "2024-05-01T12:00:00.100Z";  // its start point
  std::vector<std::string> accounted;  // what an EQUAL verdict counted as accounted for
  std::chrono::milliseconds takes = 300ms;

 private:
  Journal& journal_;
  FakeClock& clock_;
};

class SwitchoverTest : public ::testing::Test {
 protected:
  SwitchoverTest()
      : proxy(journal),
        old_server(journal, "old", "http://old:8080"),
        new_server(journal, "new", "http://new:8081"),
        progress(journal, clock),
        verifier(journal, clock) {}

  SwitchResult run(Verifier* v = nullptr, bool use_verifier = true) {
    Switchover sw(cfg, proxy, new_server, progress, use_verifier ? (v ? v : &verifier) : nullptr,
                  clock,
                  [this](LogLevel, const std::string& line) { log.push_back(line); });
    sw.set_observer(observer);
    return sw.run();
  }
  size_t index_of(const std::string& entry, size_t from = 0) {
    for (size_t i = from; i < journal.size(); ++i)
      if (journal[i] == entry) return i;
    return std::string::npos;
  }
  size_t last_index_of(const std::string& entry) {
    for (size_t i = journal.size(); i-- > 0;)
      if (journal[i] == entry) return i;
    return std::string::npos;
  }
  bool called(const std::string& prefix) {
    for (const auto& e : journal)
      if (e.rfind(prefix, 0) == 0) return true;
    return false;
  }
  std::string dump() {
    std::string out;
    for (const auto& e : journal) out += "  " + e + "\n";
    for (const auto& l : log) out += "  log: " + l + "\n";
    return out;
  }
  // Traffic on old, new in maintenance, and the fence lifted while old still serves (held writes
  // go to old).
  void expect_untouched_and_released_locally() {
    expect_traffic_untouched();
    EXPECT_TRUE(called("proxy fence off fhir")) << dump();
  }
  // Traffic on old, new back in maintenance at full weight, no fence up.
  void expect_traffic_untouched() {
    EXPECT_TRUE(proxy.serving("old")) << dump();
    EXPECT_EQ(proxy.weight("new"), 1) << dump();
    EXPECT_TRUE(proxy.in_maint("new")) << dump();
    EXPECT_FALSE(proxy.fenced) << dump();
    EXPECT_FALSE(called("proxy fhir/old maint")) << dump();
  }

  SwitchConfig cfg;
  SwitchObserver* observer = nullptr;
  Journal journal;
  std::vector<std::string> log;
  FakeClock clock;
  FakeProxy proxy;
  FakeServer old_server, new_server;
  FakeProgress progress;
  FakeVerifier verifier;
};

TEST_F(SwitchoverTest, HappyPathSwitchesInTheSafeOrderAndMeasuresThePause) {
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_EQ(exit_code(r.outcome), 0);
  EXPECT_TRUE(proxy.serving("new"));
  EXPECT_TRUE(proxy.in_maint("old"));
  EXPECT_TRUE(r.traffic_on_to);
  EXPECT_TRUE(r.manual_actions.empty());

  size_t counts = index_of("verify counts (writes flowing)");
  // Before the fence, while clients write: everything since the start (12:00:00.300) - 60 s.
  size_t before = index_of("verify full since=2024-05-01T11:59:00.300Z (writes flowing)");
  size_t weight0 = index_of("proxy fhir/new weight 0");
  size_t ready = index_of("proxy fhir/new ready");
  size_t fence = index_of("proxy fence on fhir");
  // Under the fence: only since the mark the verify before reached (12:00:00.100) - 10 s.
  size_t final_verify = index_of("verify full since=2024-05-01T11:59:50.100Z");
  size_t weight100 = index_of("proxy fhir/new weight 100%");
  size_t maint = index_of("proxy fhir/old maint");
  size_t release = index_of("proxy fence off fhir");
  ASSERT_NE(counts, std::string::npos) << dump();
  ASSERT_NE(before, std::string::npos) << dump();
  ASSERT_NE(final_verify, std::string::npos) << dump();
  ASSERT_NE(release, std::string::npos) << dump();
  EXPECT_LT(counts, before);
  EXPECT_LT(before, weight0);
  EXPECT_LT(weight0, ready);
  EXPECT_LT(ready, fence);  // the wait for new's health check is not part of the write pause
  EXPECT_LT(fence, final_verify);
  EXPECT_LT(final_verify, weight100);
  EXPECT_LT(weight100, maint);
  EXPECT_LT(maint, release);
  EXPECT_EQ(r.verified_up_to, "2024-05-01T12:00:00.100Z");
  EXPECT_EQ(r.verify_since, "2024-05-01T11:59:50.100Z");
  ASSERT_TRUE(r.write_pause.has_value());
  // The fake pause: drain poll (no wait: the migrator polled after the fence) + 300 ms verify.
  EXPECT_GE(*r.write_pause, 300ms);
  EXPECT_LT(*r.write_pause, 2s);
  EXPECT_EQ(r.released_writes, 3);
  ASSERT_EQ(r.steps.size(), 9u);
  for (const auto& s : r.steps) EXPECT_TRUE(s.ok) << s.name;
  std::string summary = summarize(cfg, r);
  EXPECT_NE(summary.find("write pause"), std::string::npos) << summary;
  EXPECT_NE(summary.find("SWITCHED"), std::string::npos) << summary;
}

// After the drain nothing is left for the migrator to read until the release; its polls would
// only compete with the final verify for the source.
TEST_F(SwitchoverTest, TheDrainedMigratorIsPausedForTheFinalVerifyAndResumedAfterTheRelease) {
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kSwitched) << dump();
  size_t fence = index_of("proxy fence on fhir");
  size_t pause = index_of("pause migrator", fence);
  size_t final_verify = index_of("verify full since=2024-05-01T11:59:50.100Z");
  size_t release = index_of("proxy fence off fhir");
  size_t resume = last_index_of("resume migrator");
  ASSERT_NE(pause, std::string::npos) << dump();
  ASSERT_NE(resume, std::string::npos) << dump();
  EXPECT_LT(fence, pause);
  EXPECT_LT(pause, final_verify);
  EXPECT_LT(release, resume);
  EXPECT_NE(r.steps[5].detail.find("migrator paused for the final verify"), std::string::npos)
      << r.steps[5].detail;
}

// The final verify's start-up (process, definitions, connections) happens before the fence; it
// reads the source once writes are held and none is in flight (while the migrator drains), and the
// target only after the drain.
TEST_F(SwitchoverTest, TheFinalVerifyStartsBeforeTheFenceAndReadsEachStoreOnceItIsFinal) {
  proxy.in_flight = {2, 1, 0};
  bool in_flight_done_at_source_final = false;
  verifier.on_source_final = [&] {
    in_flight_done_at_source_final = proxy.in_flight.size() == 1 && proxy.in_flight.front() == 0;
  };
  cfg.max_pause = 20s;
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kSwitched) << dump();
  size_t start = index_of("verify start full since=2024-05-01T11:59:50.100Z");
  size_t fence = index_of("proxy fence on fhir");
  size_t source_final = index_of("verify: source final");
  size_t pause = index_of("pause migrator", fence);
  size_t target_final = index_of("verify: target final");
  size_t verdict = index_of("verify full since=2024-05-01T11:59:50.100Z");
  size_t weight100 = index_of("proxy fhir/new weight 100%");
  ASSERT_NE(start, std::string::npos) << dump();
  ASSERT_NE(source_final, std::string::npos) << dump();
  ASSERT_NE(target_final, std::string::npos) << dump();
  EXPECT_LT(start, index_of("proxy fhir/new weight 0")) << dump();
  EXPECT_LT(start, fence);
  EXPECT_LT(fence, source_final);
  EXPECT_TRUE(in_flight_done_at_source_final) << dump();
  EXPECT_LT(source_final, pause);
  EXPECT_LT(pause, target_final);
  EXPECT_LT(target_final, verdict);
  EXPECT_LT(verdict, weight100);
  EXPECT_FALSE(called("verify cancelled")) << dump();
  // Its deadline is what is left of the pause budget when the target is final.
  ASSERT_TRUE(verifier.final_timeout.has_value());
  EXPECT_GT(*verifier.final_timeout, 19s);
  EXPECT_LE(*verifier.final_timeout, 20s - r.drain_time.value_or(0ms));
}

// The poll in progress at the fence would delay the proving poll by its rest: the migrator is
// paused just before the fence, which waits until it reads nothing; it is resumed once no write is
// in flight, and the proving poll is asked for.
TEST_F(SwitchoverTest, TheMigratorStopsReadingBeforeTheFenceAndResumesOnceNoWriteIsInFlight) {
  bool paused = false;
  int looks_while_paused = 0;
  progress.on_pause = [&] { paused = true; };
  progress.on_resume = [&] { paused = false; };
  progress.script = [&] {
    Progress p;
    p.caught_up = true;
    p.last_poll_at = clock.wall_now();
    if (paused && !proxy.fenced) ++looks_while_paused;
    p.reading = !(paused && looks_while_paused >= 3);  // its poll is abandoned by the 3rd look
    return p;
  };
  proxy.in_flight = {1, 0};
  bool in_flight_done_at_resume = false;
  progress.on_resume = [&] {
    paused = false;
    in_flight_done_at_resume = proxy.in_flight.size() == 1 && proxy.in_flight.front() == 0;
  };
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kSwitched) << dump();
  size_t pause = index_of("pause migrator");
  size_t fence = index_of("proxy fence on fhir");
  size_t resume = index_of("resume migrator");
  size_t poll_now = index_of("poll now");
  ASSERT_NE(pause, std::string::npos) << dump();
  ASSERT_NE(resume, std::string::npos) << dump();
  EXPECT_LT(index_of("proxy fhir/new ready"), pause) << dump();
  EXPECT_LT(pause, fence);
  EXPECT_EQ(looks_while_paused, 3) << dump();
  EXPECT_LT(fence, resume);
  EXPECT_TRUE(in_flight_done_at_resume) << dump();
  EXPECT_LT(resume, poll_now);
  EXPECT_LT(poll_now, index_of("pause migrator", fence));  // paused again once drained
  EXPECT_EQ(last_index_of("resume migrator"), journal.size() - 1) << dump();
}

TEST_F(SwitchoverTest, APollThatDoesNotEndWithinTheDrainTimeoutIsFencedAnyway) {
  progress.script = [&] {
    Progress p;
    p.caught_up = true;
    p.last_poll_at = clock.wall_now();
    p.reading = true;  // a poll stuck on a slow source
    return p;
  };
  cfg.drain_timeout = 3s;
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kSwitched) << dump();
  bool warned = false;
  for (const auto& l : log)
    if (l.find("did not end within 3.00 s") != std::string::npos) warned = true;
  EXPECT_TRUE(warned) << dump();
  EXPECT_LT(index_of("resume migrator"), index_of("poll now")) << dump();
}

TEST_F(SwitchoverTest, AMigratorThatCannotBeResumedAfterTheFenceAbortsAndLiftsTheFence) {
  progress.resume_fails = true;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  EXPECT_NE(r.reason.find("could not be resumed"), std::string::npos) << r.reason;
  expect_untouched_and_released_locally();
  // Tried again when the run ends (it fails again: the operator is told how).
  EXPECT_GT(last_index_of("resume migrator"), index_of("proxy fence off fhir")) << dump();
}

TEST_F(SwitchoverTest, AnAbortedDrainCancelsTheWaitingFinalVerifyBeforeTheRelease) {
  int calls = 0;
  progress.script = [&] {
    Progress p;
    p.caught_up = calls++ == 0;  // caught up for the preflight, then never again
    p.last_poll_at = clock.wall_now();
    return p;
  };
  cfg.drain_timeout = 3s;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  size_t cancelled = index_of("verify cancelled");
  ASSERT_NE(cancelled, std::string::npos) << dump();
  EXPECT_LT(index_of("verify: source final"), cancelled);
  EXPECT_LT(cancelled, index_of("proxy fence off fhir"));
  EXPECT_FALSE(called("verify: target final")) << dump();
  expect_untouched_and_released_locally();
}

TEST_F(SwitchoverTest, AMigratorPausedForTheFinalVerifyIsResumedWhenTheCutoverAborts) {
  verifier.full_equal = false;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  size_t pause = index_of("pause migrator", index_of("proxy fence on fhir"));
  size_t release = index_of("proxy fence off fhir");
  size_t resume = last_index_of("resume migrator");
  ASSERT_NE(pause, std::string::npos) << dump();
  ASSERT_NE(resume, std::string::npos) << dump();
  EXPECT_LT(pause, release);
  EXPECT_LT(release, resume);
}

TEST_F(SwitchoverTest, AMigratorThatCannotBePausedDoesNotStopTheCutover) {
  progress.pause_fails = true;
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_FALSE(called("resume migrator")) << dump();
  EXPECT_NE(r.steps[5].detail.find("could not be paused"), std::string::npos) << r.steps[5].detail;
}

TEST_F(SwitchoverTest, ChecksThatFailBeforeTheFenceNeverPauseTheMigrator) {
  verifier.counts_equal = false;
  run();
  EXPECT_FALSE(called("pause migrator")) << dump();
  EXPECT_FALSE(called("resume migrator")) << dump();
}

TEST_F(SwitchoverTest, QuarantinedEntriesTheVerifiesAcceptedAreListedOnceInTheReport) {
  verifier.accounted = {
      "65f0c0ffee0000000000002b Fhir4.0 Patient/wrong1 v1 [type-mismatch: x]: "
      "accepted by reviewer at 2024-05-01T10:00:00.000Z: test data"};
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kSwitched) << dump();
  ASSERT_EQ(r.quarantine_accounted, verifier.accounted);  // both verify steps, listed once
  std::string summary = summarize(cfg, r);
  EXPECT_NE(summary.find("quarantine:   1 entries the target does not have, accounted for"),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("accepted by reviewer"), std::string::npos) << summary;
}

TEST_F(SwitchoverTest, StepLinesAreNumbered) {
  run();
  bool found = false;
  for (const auto& l : log)
    if (l.find("cutover step 5/9") != std::string::npos) found = true;
  EXPECT_TRUE(found) << dump();
}

TEST_F(SwitchoverTest, NewServerNotReadyChangesNothing) {
  new_server.ready_ok = false;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  EXPECT_EQ(exit_code(r.outcome), 1);
  EXPECT_FALSE(called("proxy fence on"));
  EXPECT_FALSE(called("proxy"));
  EXPECT_NE(r.failed_step.find("target ready"), std::string::npos);
  EXPECT_NE(r.reason.find("http://new:8081/metadata"), std::string::npos) << r.reason;
}

TEST_F(SwitchoverTest, MigratorBehindChangesNothing) {
  progress.caught_up = false;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely);
  EXPECT_FALSE(called("proxy fence on"));
  EXPECT_NE(r.reason.find("not caught up"), std::string::npos) << r.reason;
}

TEST_F(SwitchoverTest, APausedMigratorIsNamedWithTheWayToResumeIt) {
  progress.script = [&] {
    Progress p;
    p.paused = true;
    p.last_poll_at = clock.wall_now();
    return p;
  };
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  EXPECT_FALSE(called("resume migrator")) << "an operator's pause is theirs to end\n" << dump();
  EXPECT_NE(r.reason.find("the migrator is paused"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("fhirshift ctl --metrics"), std::string::npos) << r.reason;
  EXPECT_FALSE(called("proxy fence on")) << dump();
}

// A cut-over killed between its drain and its end left the migrator paused for its final verify.
TEST_F(SwitchoverTest, AMigratorAnInterruptedCutoverPausedIsResumedAndFollowed) {
  bool paused = true;
  progress.script = [&] {
    Progress p;
    p.paused = paused;
    p.paused_by = paused ? "cutover" : "";
    p.caught_up = !paused;
    p.last_poll_at = clock.wall_now();
    return p;
  };
  progress.on_resume = [&] { paused = false; };
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_LT(index_of("resume migrator"), index_of("proxy fence on fhir")) << dump();
}

TEST_F(SwitchoverTest, AMigratorThatCatchesUpWithinTheWaitIsFollowed) {
  int calls = 0;
  progress.script = [&] {
    Progress p;
    p.mode = "Continuous";
    p.caught_up = ++calls > 5;
    p.lag_seconds = p.caught_up ? 0.3 : 7.0;
    p.entries_read = p.entries_written = 1000;
    p.last_poll_at = clock.wall_now() - 10ms;
    return p;
  };
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_GT(calls, 5);
}

TEST_F(SwitchoverTest, LagOverMaxLagChangesNothing) {
  progress.lag = 12.0;
  cfg.max_lag = 5s;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely);
  EXPECT_FALSE(called("proxy fence on"));
  EXPECT_NE(r.reason.find("--max-lag"), std::string::npos) << r.reason;
}

TEST_F(SwitchoverTest, CountsDifferentChangesNothing) {
  verifier.counts_equal = false;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely);
  EXPECT_FALSE(called("proxy fence on"));
  EXPECT_NE(r.reason.find("DIFFERENT"), std::string::npos);
}

TEST_F(SwitchoverTest, TrafficNotWhereExpectedChangesNothing) {
  proxy.put("new", ServerState::kOpRunning, 0);  // both serving: someone half-switched by hand
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely);
  EXPECT_FALSE(called("proxy fence on"));
  EXPECT_FALSE(called("proxy"));
  EXPECT_NE(r.reason.find("must be in maintenance"), std::string::npos) << r.reason;
  // No run leaves both serving with writes flowing: they may have reached both stores.
  EXPECT_NE(r.reason.find("decide which store is complete"), std::string::npos) << r.reason;
}

TEST_F(SwitchoverTest, ProxyUnreachableChangesNothing) {
  proxy.fail_reads = true;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely);
  EXPECT_FALSE(called("proxy fence on"));
}

TEST_F(SwitchoverTest, AProxyWithoutTheFenceChangesNothing) {
  proxy.no_fence = true;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  EXPECT_NE(r.failed_step.find("proxy state"), std::string::npos) << r.failed_step;
  EXPECT_NE(r.reason.find("no write fence"), std::string::npos) << r.reason;
  EXPECT_FALSE(called("proxy"));
}

TEST_F(SwitchoverTest, AFenceThatCannotCountWritesInFlightChangesNothing) {
  proxy.has_table = false;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  EXPECT_NE(r.reason.find("fhirshift_writes"), std::string::npos) << r.reason;
  EXPECT_FALSE(called("proxy"));
}

TEST_F(SwitchoverTest, FenceAnswerLostIsLiftedAgain) {
  proxy.fence_on_throws = true;  // it may have gone up anyway: lift it to be sure
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  expect_untouched_and_released_locally();
}

TEST_F(SwitchoverTest, WritesInFlightAtTheFenceCompleteBeforeTheDrainStarts) {
  proxy.in_flight = {2, 2, 1, 0};
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_EQ(r.in_flight_at_fence, 2);
  // 3 readings 20 ms apart until none is in flight.
  EXPECT_GE(r.steps[4].took, 60ms) << r.steps[4].detail;
  EXPECT_NE(r.steps[4].detail.find("2 in flight"), std::string::npos) << r.steps[4].detail;
}

TEST_F(SwitchoverTest, WritesThatNeverCompleteExhaustThePauseBudgetAndLiftTheFence) {
  proxy.in_flight = {1};  // a write stuck on the old server
  cfg.max_pause = 2s;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  EXPECT_NE(r.reason.find("1 still in flight"), std::string::npos) << r.reason;
  expect_untouched_and_released_locally();
}

TEST_F(SwitchoverTest, DrainTimeoutReleasesLocallyAndKeepsTrafficOnOld) {
  progress.caught_up = false;
  int calls = 0;
  progress.script = [&] {
    // Caught up for the preflight, then never again.
    Progress p;
    p.caught_up = calls++ == 0;
    p.lag_seconds = 1;
    p.last_poll_at = clock.wall_now();
    return p;
  };
  cfg.drain_timeout = 3s;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  EXPECT_NE(r.reason.find("did not drain"), std::string::npos) << r.reason;
  expect_untouched_and_released_locally();
  ASSERT_TRUE(r.write_pause.has_value());
  EXPECT_GE(*r.write_pause, 3s);
}

TEST_F(SwitchoverTest, DrainWaitsForAPollAfterTheFence) {
  // The migrator's last poll predates the fence for 1 s; only a later poll proves the drain.
  WallTime poll_at = clock.wall_now();
  int calls = 0;
  progress.script = [&] {
    Progress p;
    p.caught_up = true;
    if (++calls > 6) poll_at = clock.wall_now();
    p.last_poll_at = poll_at;
    return p;
  };
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kSwitched) << dump();
  ASSERT_TRUE(r.drain_time.has_value());
  // Reads of /progress after the fence until the 7th call, 50 ms apart while writes are held.
  EXPECT_GE(*r.drain_time, 200ms);
  EXPECT_LT(*r.drain_time, 800ms);
}

// A migrator that numbers its polls: the poll in progress at the fence (6) began before it and
// proves nothing; poll 7, begun after the pollsStarted read at the fence, does.
TEST_F(SwitchoverTest, DrainCountsOnlyAPollNumberedAfterTheFence) {
  int64_t started = 6, done = 5;
  bool fenced_read = false;  // the read after the fence was acknowledged happened
  int reads_after_fence = 0;
  int finished_at = -1;
  progress.script = [&] {
    if (proxy.fenced) {
      if (fenced_read) ++reads_after_fence;
      fenced_read = true;
    }
    if (reads_after_fence == 2) done = 6;                    // the old poll ends
    if (reads_after_fence == 3) started = 7;                 // the requested poll begins
    if (reads_after_fence == 5) done = 7;                    // and ends
    Progress p;
    p.caught_up = true;
    p.last_poll_at = clock.wall_now();  // would satisfy the two-poll rule long before poll 7
    p.polls_started = started;
    p.polls_done = done;
    if (done == 7 && finished_at < 0) finished_at = reads_after_fence;
    return p;
  };
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_EQ(finished_at, 5) << dump();
  EXPECT_NE(r.steps[5].detail.find("poll 7 began after it"), std::string::npos) << r.steps[5].detail;
  size_t fence = index_of("proxy fence on fhir");
  size_t poll_now = index_of("poll now");
  ASSERT_NE(poll_now, std::string::npos) << dump();
  EXPECT_LT(fence, poll_now);
  EXPECT_LT(poll_now, index_of("pause migrator", fence));
}

TEST_F(SwitchoverTest, MigratorWithoutPollTimestampCannotProveTheDrain) {
  progress.script = [&] {
    Progress p;
    p.caught_up = true;
    return p;
  };
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  expect_untouched_and_released_locally();
}

TEST_F(SwitchoverTest, ProgressBlipDuringDrainIsRetried) {
  int calls = 0;
  progress.script = [&]() -> Progress {
    ++calls;
    if (calls == 2 || calls == 3) throw std::runtime_error("GET /progress: Connection refused");
    Progress p;
    p.caught_up = true;
    p.last_poll_at = clock.wall_now();
    return p;
  };
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kSwitched) << dump();
}

TEST_F(SwitchoverTest, FinalVerifyDifferentReleasesLocallyWithoutSwitching) {
  verifier.full_equal = false;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  expect_untouched_and_released_locally();
}

TEST_F(SwitchoverTest, VerifyBeforeTheFenceDifferentChangesNothing) {
  verifier.before_equal = false;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  EXPECT_NE(r.failed_step.find("4 "), std::string::npos) << r.failed_step;
  EXPECT_FALSE(called("proxy fhir/")) << dump();  // no server touched
  EXPECT_FALSE(called("proxy fence on")) << dump();
}

TEST_F(SwitchoverTest, WithoutAMarkTheFinalVerifyCoversTheMarginBeforeTheFence) {
  verifier.high_water_lu.reset();  // an empty source, or a verify without a report
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_EQ(r.verified_up_to, "");
  // The final verify starts at 12:00:00.600 (after counts and the verify before, 300 ms each),
  // just before new's health check and the fence: minus the 60 s margin.
  EXPECT_EQ(r.verify_since, "2024-05-01T11:59:00.600Z");
}

TEST_F(SwitchoverTest, PauseBudgetExceededAbortsBeforeTheSwitch) {
  verifier.takes = 12s;  // counts 12 s (before the fence: fine), final 12 s: over the 10 s budget
  cfg.max_pause = 10s;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  EXPECT_NE(r.reason.find("--max-pause"), std::string::npos) << r.reason;
  expect_untouched_and_released_locally();
}

TEST_F(SwitchoverTest, CtrlCDuringTheDrainReleasesLocally) {
  bool interrupted = false;
  int reads = 0;
  progress.script = [&] {
    if (++reads == 4) interrupted = true;  // the operator presses Ctrl-C while the drain waits
    Progress p;
    p.caught_up = reads < 3;  // caught up for the preflight, then not
    p.last_poll_at = clock.wall_now();
    return p;
  };
  Switchover sw(cfg, proxy, new_server, progress, &verifier, clock,
                [this](LogLevel, const std::string& l) { log.push_back(l); });
  sw.set_interrupt_check([&] { return interrupted; });
  SwitchResult r = sw.run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  EXPECT_NE(r.reason.find("interrupted"), std::string::npos) << r.reason;
  expect_untouched_and_released_locally();
}

TEST_F(SwitchoverTest, CtrlCAfterTheSwitchFinishesForward) {
  bool interrupted = false;
  proxy.on_state_read = [&](const std::string& server) {
    if (server == "old" && called("proxy fhir/old maint")) interrupted = true;
  };
  Switchover sw(cfg, proxy, new_server, progress, &verifier, clock,
                [this](LogLevel, const std::string& l) { log.push_back(l); });
  sw.set_interrupt_check([&] { return interrupted; });
  SwitchResult r = sw.run();
  EXPECT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_LT(index_of("proxy fhir/old maint"), index_of("proxy fence off fhir")) << dump();
  EXPECT_FALSE(proxy.fenced);
}

TEST_F(SwitchoverTest, NewServerDoesNotComeUpGoesBackToMaintenance) {
  proxy.unhealthy.insert("new");
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  EXPECT_NE(r.reason.find("did not pass HAProxy's health check"), std::string::npos) << r.reason;
  expect_traffic_untouched();
  EXPECT_FALSE(called("proxy fence on")) << dump();  // it is checked before writes are held
}

TEST_F(SwitchoverTest, NewServerThatServedIsNeverAbandoned) {
  // The health check wait times out, but HAProxy's counter says `new` took requests meanwhile (an
  // operator raised its weight by hand, say): going back would lose its writes, so go forward.
  proxy.unhealthy.insert("new");
  cfg.switch_timeout = 1s;
  proxy.on_state_read = [&](const std::string& server) {
    if (server == "new" && called("proxy fhir/new ready")) proxy.sessions["new"] = 7;
  };
  SwitchResult r = run();
  EXPECT_TRUE(r.traffic_on_to) << dump();
  // The fence is lifted only once old is out, so held writes go to new.
  ASSERT_NE(index_of("proxy fence off fhir"), std::string::npos) << dump();
  EXPECT_LT(index_of("proxy fhir/old maint"), index_of("proxy fence off fhir")) << dump();
}

TEST_F(SwitchoverTest, OldRefusingMaintenanceKeepsTheFenceUpAndNeverGoesBack) {
  // New is UP (may have taken writes); HAProxy refuses to put old in maintenance. Going back would
  // lose new's writes; lifting the fence would send held writes to old too. So the fence stays up
  // and the operator is told the two commands that finish it.
  proxy.refuse_set.insert("old:maint");
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kNeedsOperator) << dump();
  EXPECT_EQ(exit_code(r.outcome), 1);
  EXPECT_TRUE(proxy.serving("new"));
  EXPECT_FALSE(called("proxy fence off")) << dump();
  EXPECT_TRUE(proxy.fenced);
  EXPECT_FALSE(called("proxy fhir/new maint")) << dump();
  ASSERT_FALSE(r.manual_actions.empty());
  EXPECT_NE(r.manual_actions[0].find("set server fhir/old state maint"), std::string::npos);
  EXPECT_NE(r.manual_actions[0].find("fhirshift fence off fhir"), std::string::npos);
}

TEST_F(SwitchoverTest, LiftingTheFenceRetriesThenSucceeds) {
  proxy.fence_off_failures = 2;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_TRUE(proxy.serving("new"));
  EXPECT_FALSE(proxy.fenced);
}

TEST_F(SwitchoverTest, AFenceThatCannotBeLiftedNeedsTheOperator) {
  proxy.fence_off_failures = 1000;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kNeedsOperator) << dump();
  EXPECT_TRUE(proxy.serving("new"));
  EXPECT_TRUE(proxy.in_maint("old"));
  ASSERT_FALSE(r.manual_actions.empty());
  EXPECT_NE(r.manual_actions.back().find("fhirshift fence off fhir"), std::string::npos);
  EXPECT_NE(r.manual_actions.back().find("503 + Retry-After"), std::string::npos);
  // It gave up before held writes time out in HAProxy (30 s).
  EXPECT_LT(clock.steady_now().time_since_epoch(), 35s);
}

TEST_F(SwitchoverTest, AlreadySwitchedIsANoOp) {
  proxy.put("old", ServerState::kOpStopped, ServerState::kAdmForcedMaint);
  proxy.put("new", ServerState::kOpRunning, 0);
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kAlreadySwitched) << dump();
  EXPECT_EQ(exit_code(r.outcome), 0);
  EXPECT_FALSE(called("proxy fence on"));
  EXPECT_FALSE(called("proxy"));
}

TEST_F(SwitchoverTest, ResumesAReleaseAPreviousRunDidNotFinish) {
  proxy.put("old", ServerState::kOpStopped, ServerState::kAdmForcedMaint);
  proxy.put("new", ServerState::kOpRunning, 0);
  proxy.fenced = true;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_TRUE(called("proxy fence off fhir")) << dump();
  EXPECT_FALSE(proxy.fenced);
}

// What a cut-over killed with kill -9 leaves behind, and what the next run makes of it.

TEST_F(SwitchoverTest, KilledBeforeTheSwitchIsPutBackThenEveryStepRuns) {
  // Killed in steps 5-8 before the switch: new ready at weight 0 (it received nothing), writes held.
  proxy.put("new", ServerState::kOpRunning, 0, /*weight=*/0);
  proxy.fenced = true;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kSwitched) << dump();
  // Back to the starting state before anything else: new in maintenance at full weight, the fence
  // lifted (held writes go to old) before the checks of steps 2-4, which may outlast a 30 s hold.
  EXPECT_EQ(index_of("proxy fhir/new maint"), 0u) << dump();
  EXPECT_EQ(index_of("proxy fhir/new weight 100%"), 1u) << dump();
  EXPECT_EQ(index_of("proxy fence off fhir"), 2u) << dump();
  EXPECT_LT(index_of("proxy fence off fhir"), index_of("verify counts (writes flowing)")) << dump();
  // Then the whole sequence, fence included.
  EXPECT_LT(index_of("verify counts (writes flowing)"), index_of("proxy fence on fhir")) << dump();
  EXPECT_EQ(r.steps.size(), 9u);
  EXPECT_TRUE(proxy.serving("new"));
  EXPECT_TRUE(proxy.in_maint("old"));
  EXPECT_FALSE(proxy.fenced);
  EXPECT_NE(r.steps[0].detail.find("died in steps 5-8"), std::string::npos) << r.steps[0].detail;
}

TEST_F(SwitchoverTest, KilledInsideTheSwitchFinishesForward) {
  // Killed between `set weight fhir/new 100%` and `set server fhir/old state maint` (step 8): both
  // serve, writes held. new may have served reads: forward only, and nothing is verified again
  // (the dead run's final verify passed before step 8).
  proxy.put("new", ServerState::kOpRunning, 0);
  proxy.fenced = true;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_TRUE(r.traffic_on_to);
  ASSERT_NE(index_of("proxy fence off fhir"), std::string::npos) << dump();
  EXPECT_LT(index_of("proxy fhir/old maint"), index_of("proxy fence off fhir")) << dump();
  EXPECT_FALSE(called("proxy fhir/new maint")) << dump();
  EXPECT_FALSE(called("verify")) << dump();
  EXPECT_TRUE(proxy.serving("new"));
  EXPECT_TRUE(proxy.in_maint("old"));
  EXPECT_FALSE(proxy.fenced);
}

TEST_F(SwitchoverTest, AFenceLeftUpWithNewInMaintenanceIsLiftedBeforeTheChecks) {
  // Killed while its abort was putting things back (new already in maintenance, fence up).
  proxy.fenced = true;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_EQ(index_of("proxy fence off fhir"), 0u) << dump();
  EXPECT_LT(index_of("proxy fence off fhir"), index_of("verify counts (writes flowing)")) << dump();
  EXPECT_FALSE(proxy.fenced);
}

TEST_F(SwitchoverTest, ADryRunChangesNothingAnEarlierRunLeft) {
  cfg.dry_run = true;
  proxy.put("new", ServerState::kOpRunning, 0, /*weight=*/0);
  proxy.fenced = true;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kDryRun) << dump();
  EXPECT_FALSE(called("proxy")) << dump();
  EXPECT_TRUE(proxy.fenced);
  EXPECT_NE(r.steps[0].detail.find("a real run puts it back"), std::string::npos) << r.steps[0].detail;
}

TEST_F(SwitchoverTest, DryRunRunsOnlyReadOnlyChecks) {
  cfg.dry_run = true;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kDryRun) << dump();
  EXPECT_EQ(exit_code(r.outcome), 0);
  EXPECT_FALSE(called("proxy fence on"));
  EXPECT_FALSE(called("proxy"));
  EXPECT_TRUE(called("verify counts"));
  bool plan_printed = false;
  for (const auto& l : log)
    if (l.find("set server fhir/new state ready") != std::string::npos) plan_printed = true;
  EXPECT_TRUE(plan_printed) << dump();
}

TEST_F(SwitchoverTest, DryRunReportsAFailingCheck) {
  cfg.dry_run = true;
  new_server.ready_ok = false;
  SwitchResult r = run();
  EXPECT_EQ(r.outcome, Outcome::kDryRunFailed);
  EXPECT_EQ(exit_code(r.outcome), 1);
  EXPECT_FALSE(called("proxy fence on"));
}

TEST_F(SwitchoverTest, WithoutVerifierTheVerifyStepsAreSkippedAndSaySo) {
  SwitchResult r = run(nullptr, /*use_verifier=*/false);
  EXPECT_EQ(r.outcome, Outcome::kSwitched) << dump();
  ASSERT_EQ(r.steps.size(), 9u);
  EXPECT_TRUE(r.steps[3].skipped);
  EXPECT_TRUE(r.steps[6].skipped);
}

TEST_F(SwitchoverTest, RollbackDirectionUsesTheSameMachine) {
  cfg.action = "rollback";
  cfg.from = "new";
  cfg.to = "old";
  proxy.put("old", ServerState::kOpStopped, ServerState::kAdmForcedMaint);
  proxy.put("new", ServerState::kOpRunning, 0);
  Switchover sw(cfg, proxy, old_server, progress, nullptr, clock,
                [this](LogLevel, const std::string& l) { log.push_back(l); });
  SwitchResult r = sw.run();
  EXPECT_EQ(r.outcome, Outcome::kSwitched) << dump();
  EXPECT_TRUE(proxy.serving("old"));
  EXPECT_TRUE(proxy.in_maint("new"));
  EXPECT_TRUE(called("old ready?"));
  EXPECT_LT(index_of("proxy fhir/old ready"), index_of("proxy fence on fhir")) << dump();
  EXPECT_LT(index_of("proxy fence on fhir"), index_of("proxy fhir/old weight 100%")) << dump();
  EXPECT_LT(index_of("proxy fhir/new maint"), index_of("proxy fence off fhir")) << dump();
}

// Feeds a LiveReport and keeps its JSON as it was when step `snapshot_at` started.
class SnapshotObserver : public SwitchObserver {
 public:
  SnapshotObserver(LiveReport& live, int snapshot_at) : live_(live), snapshot_at_(snapshot_at) {}
  void step_started(int number, const std::string& name) override {
    live_.step_started(number, name);
    if (number == snapshot_at_) snapshot = nlohmann::json::parse(live_.to_json());
  }
  void step_finished(const StepRecord& step) override { live_.step_finished(step); }
  void fence_raised() override { live_.fence_raised(); }
  void fence_lifted(std::chrono::milliseconds pause) override { live_.fence_lifted(pause); }
  nlohmann::json snapshot;

 private:
  LiveReport& live_;
  int snapshot_at_;
};

LiveReport live_report_for(const SwitchConfig& cfg, FakeProxy& proxy, FakeServer& to,
                           FakeProgress& progress, FakeClock& clock) {
  Switchover sw(cfg, proxy, to, progress, nullptr, clock, [](LogLevel, const std::string&) {});
  return LiveReport(cfg, sw.step_names(), sw.plan());
}

TEST_F(SwitchoverTest, TheLiveReportShowsDoneRunningAndWaitingStepsAndTheWritePause) {
  LiveReport live = live_report_for(cfg, proxy, new_server, progress, clock);
  auto before = nlohmann::json::parse(live.to_json());
  EXPECT_EQ(before["steps"].size(), 9u);
  EXPECT_EQ(before["steps"][8]["name"], "release held writes to new");
  EXPECT_EQ(before["steps"][8]["state"], "waiting");
  EXPECT_NE(before["steps"][4]["plan"].get<std::string>().find("fence on fhir"), std::string::npos);
  EXPECT_EQ(before["writePause"]["state"], "not raised");

  SnapshotObserver watch(live, 6);
  observer = &watch;
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kSwitched) << dump();
  const nlohmann::json& mid = watch.snapshot;
  ASSERT_TRUE(mid.is_object());
  EXPECT_TRUE(mid["running"].get<bool>());
  EXPECT_TRUE(mid["outcome"].is_null());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(mid["steps"][i]["state"], "ok") << i + 1;
  EXPECT_EQ(mid["steps"][5]["state"], "running");
  for (int i = 6; i < 9; ++i) EXPECT_EQ(mid["steps"][i]["state"], "waiting") << i + 1;
  EXPECT_EQ(mid["writePause"]["state"], "held");
  EXPECT_NE(mid["steps"][3]["detail"].get<std::string>().find("EQUAL"), std::string::npos)
      << mid.dump(2);

  live.finished(r);
  auto after = nlohmann::json::parse(live.to_json());
  EXPECT_FALSE(after["running"].get<bool>());
  EXPECT_EQ(after["outcome"], "SWITCHED");
  EXPECT_EQ(after["trafficOn"], "new");
  for (const auto& s : after["steps"]) EXPECT_EQ(s["state"], "ok") << s.dump();
  EXPECT_EQ(after["writePause"]["state"], "lifted");
  EXPECT_EQ(after["writePause"]["ms"].get<int64_t>(), r.write_pause->count());
}

TEST_F(SwitchoverTest, TheLiveReportOfAnAbortedDrainShowsTheFailedStepAndStepsNotRun) {
  int calls = 0;
  progress.script = [&] {
    Progress p;
    p.caught_up = calls++ == 0;
    p.lag_seconds = 1;
    p.last_poll_at = clock.wall_now();
    return p;
  };
  cfg.drain_timeout = 3s;
  LiveReport live = live_report_for(cfg, proxy, new_server, progress, clock);
  SnapshotObserver watch(live, 0);
  observer = &watch;
  SwitchResult r = run();
  ASSERT_EQ(r.outcome, Outcome::kAbortedSafely) << dump();
  live.finished(r);
  auto j = nlohmann::json::parse(live.to_json());
  EXPECT_EQ(j["outcome"], "ABORTED SAFELY");
  EXPECT_EQ(j["trafficOn"], "old");
  EXPECT_EQ(j["steps"][5]["state"], "failed");
  EXPECT_NE(j["steps"][5]["detail"].get<std::string>().find("did not drain"), std::string::npos);
  for (int i = 6; i < 9; ++i) {
    EXPECT_EQ(j["steps"][i]["state"], "not run") << i + 1;
    EXPECT_TRUE(j["steps"][i]["ms"].is_null());
  }
  EXPECT_EQ(j["writePause"]["state"], "lifted");
  EXPECT_GE(j["writePause"]["ms"].get<int64_t>(), 3000);
  EXPECT_NE(j["failedStep"].get<std::string>().find("6 drain"), std::string::npos);
}

}  // namespace
}  // namespace fhirshift::cutover

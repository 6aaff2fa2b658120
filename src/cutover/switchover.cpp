#include "cutover/switchover.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace fhirshift::cutover {

namespace {

constexpr int kSteps = 9;

class CheckFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string seconds(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

std::string lag_text(double lag) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", lag);
  return buf;
}

std::string progress_text(const Progress& p) {
  std::ostringstream o;
  o << "caughtUp=" << (p.caught_up ? "true" : "false") << " lag=" << lag_text(p.lag_seconds)
    << " read=" << p.entries_read << " written=" << p.entries_written;
  if (p.quarantined) o << " quarantined=" << p.quarantined;
  if (p.conflicts) o << " conflicts=" << p.conflicts;
  if (p.errors) o << " errors=" << p.errors;
  if (p.last_poll_at) o << " lastPollAt=" << format_iso8601(*p.last_poll_at);
  return o.str();
}

// Both verify steps may count the same entries; each is listed once.
void note_quarantine_accounted(SwitchResult& r, const VerifyOutcome& v) {
  for (const auto& q : v.quarantine_accounted)
    if (std::find(r.quarantine_accounted.begin(), r.quarantine_accounted.end(), q) ==
        r.quarantine_accounted.end())
      r.quarantine_accounted.push_back(q);
}

}  // namespace

std::string_view to_string(Outcome o) {
  switch (o) {
    case Outcome::kSwitched:
      return "SWITCHED";
    case Outcome::kAlreadySwitched:
      return "ALREADY SWITCHED";
    case Outcome::kAbortedSafely:
      return "ABORTED SAFELY";
    case Outcome::kDryRun:
      return "DRY RUN OK";
    case Outcome::kDryRunFailed:
      return "DRY RUN: A CHECK FAILS";
    case Outcome::kNeedsOperator:
      return "NEEDS OPERATOR";
  }
  return "?";
}

int exit_code(Outcome o) {
  return (o == Outcome::kSwitched || o == Outcome::kAlreadySwitched || o == Outcome::kDryRun) ? 0 : 1;
}

struct Switchover::State {
  SwitchResult result;
  SteadyTime start;
  bool fenced = false;
  SteadyTime fence_sent;
  WallTime fence_sent_wall;
  WallTime fence_acked_wall;
  SteadyTime fence_acked;
  bool to_made_ready = false;
  int64_t to_sessions_before = -1;
  bool committed = false;  // `to` may have received requests: forward only from here
  bool from_in_maint = false;
  bool released = false;
  std::optional<WallTime> poll_at_fence;  // the migrator's lastPollAt read right after the fence
  std::optional<int64_t> polls_started_at_fence;  // and its pollsStarted
  std::optional<WallTime> verified_up_to;  // the mark of the verify before the fence
  // By step 5 (from just before the fence until no write is in flight) or step 6 (for the final
  // verify): resumed when the run ends, whatever its outcome.
  bool migrator_paused = false;
  // Started in step 5 before the fence; reads the source once writes are held, the target in
  // step 7. Reset (cancelled, if unfinished) when the run ends.
  std::unique_ptr<StagedVerify> final_verify;
};

Switchover::Switchover(SwitchConfig config, Proxy& proxy, ServerHealth& to,
                       ProgressSource& progress, Verifier* verifier, Clock& clock, LogFn log)
    : cfg_(std::move(config)),
      proxy_(proxy),
      to_(to),
      progress_(progress),
      verifier_(verifier),
      clock_(clock),
      log_(std::move(log)) {}

std::string Switchover::ms(std::chrono::milliseconds d) const { return seconds(d); }

std::vector<std::string> Switchover::plan() const {
  const std::string b = cfg_.backend;
  const std::string f = b + "/" + cfg_.from;
  const std::string t = b + "/" + cfg_.to;
  VerifyRequest counts{"counts", std::nullopt, std::chrono::milliseconds(0), true};
  VerifyRequest before{cfg_.final_verify_mode,
                       std::string("<now - ") + seconds(cfg_.verify_margin) + ">",
                       std::chrono::milliseconds(0), true};
  VerifyRequest final_req{cfg_.final_verify_mode,
                          std::string("<mark - ") + seconds(cfg_.verify_overlap) + ">",
                          std::chrono::milliseconds(0)};
  std::vector<std::string> p;
  p.push_back("1. proxy state   (read-only) " + proxy_.describe() + ": `show servers state " + b +
              "`: expect " + f + " serving (UP, ready) and " + t + " in maintenance; `fhirshift " +
              "fence show " + b + "`: the write fence is installed");
  p.push_back("2. target ready  (read-only) GET " + to_.url() + " -> 2xx");
  p.push_back("3. caught up     (read-only) GET " + progress_.url() +
              " -> caughtUp=true and lagSeconds <= " + seconds(cfg_.max_lag) + " (waits up to " +
              seconds(cfg_.catch_up_wait) + ")");
  p.push_back("4. verify counts (read-only) " +
              (verifier_ ? verifier_->describe(counts) + " -> EQUAL, then " +
                               verifier_->describe(before) +
                               " -> EQUAL (clients still write; the mark is the source's newest "
                               "lu at its start)"
                         : std::string("skipped: no --srcMongoConnectionString/--mongoConnectionstring given")));
  p.push_back("5. fence         GET " + to_.url() + "; start the final verify (7), which " +
              "connects and waits; `set weight " + t + " 0`, `set server " + t +
              " state ready`, wait until a health check of " + t + " passed (at most " +
              seconds(cfg_.switch_timeout) + "; weight 0: it receives no request); POST " +
              "/pause?by=cutover to the migrator and wait until it reads nothing (reading=false); " +
              "then `fhirshift fence on " + b +
              "`: HAProxy holds writes from here (reads flow); then `fhirshift fence show " + b +
              "` until in_flight=0 (the writes already sent to " + cfg_.from +
              " completed): the verify reads the source from here; POST /resume to the migrator; "
              "budget " + seconds(cfg_.max_pause) + " until the switch");
  p.push_back("6. drain         POST /poll to the migrator (" + progress_.url() +
              "), then GET /progress every " +
              seconds(std::min(cfg_.poll_interval, std::chrono::milliseconds(50))) +
              " until a poll begun after the fence is done (pollsDone above pollsStarted at the "
              "fence) and caughtUp (at most " + seconds(cfg_.drain_timeout) +
              "); then POST /pause?by=cutover (resumed when the cut-over ends)");
  p.push_back("7. final verify  " +
              (verifier_ ? verifier_->describe(final_req) +
                               " --stdin-stages, started in 5: `source` on its standard input "
                               "once writes are held, `target` now -> EQUAL"
                         : std::string("skipped: no connection strings given")));
  p.push_back("8. switch        GET " + to_.url() + ", " + t + " still UP, `set weight " + t +
              " 100%`, `set server " + f + " state maint`");
  p.push_back("9. release       `fhirshift fence off " + b + "`: held writes go to " + t +
              ", the write pause ends");
  p.push_back("on a failed check in 1-4: nothing was changed. In 5-8 before " + t +
              " received a request: `set server " + t + " state maint`, `set weight " + t +
              " 100%`, `fhirshift fence off " + b + "` (held writes go to " + cfg_.from +
              "). Once " + t + " received a request: forward only (finish 8 and 9).");
  return p;
}

std::vector<std::string> Switchover::step_names() const {
  return {"proxy state",
          "target ready",
          "migrator caught up",
          "verify counts",
          "fence writes in HAProxy",
          "drain the migrator",
          "final verify",
          "switch " + cfg_.backend + " to " + cfg_.to,
          "release held writes to " + cfg_.to};
}

bool Switchover::step(State& st, int number, const std::string& name,
                      const std::function<std::string(StepRecord&)>& body) {
  StepRecord rec;
  rec.number = number;
  rec.name = name;
  rec.started = clock_.wall_now();
  auto t0 = clock_.steady_now();
  auto since_start = std::chrono::duration_cast<std::chrono::milliseconds>(t0 - st.start);
  log(LogLevel::kInfo, cfg_.action + " step " + std::to_string(number) + "/" +
                           std::to_string(kSteps) + " [t+" + seconds(since_start) + "] " + name +
                           " ...");
  if (observer_) observer_->step_started(number, name);
  try {
    check_interrupt(st);
    rec.detail = body(rec);
    rec.ok = true;
  } catch (const std::exception& e) {
    rec.ok = false;
    rec.detail = e.what();
  }
  rec.took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steady_now() - t0);
  std::string head = cfg_.action + " step " + std::to_string(number) + "/" + std::to_string(kSteps) +
                     " " + name;
  if (rec.skipped) {
    log(LogLevel::kWarn, head + ": SKIPPED: " + rec.detail);
  } else if (rec.ok) {
    log(LogLevel::kInfo, head + ": ok in " + seconds(rec.took) + (rec.detail.empty() ? "" : ": ") +
                             rec.detail);
  } else {
    log(LogLevel::kError, head + ": FAILED after " + seconds(rec.took) + ": " + rec.detail);
    st.result.failed_step = std::to_string(number) + " " + name;
    st.result.reason = rec.detail;
  }
  st.result.steps.push_back(rec);
  if (observer_) observer_->step_finished(rec);
  return rec.ok;
}

void Switchover::check_budget(State& st, const std::string& before_what) {
  auto held = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steady_now() - st.fence_sent);
  if (held > cfg_.max_pause)
    throw CheckFailed("writes have been held for " + seconds(held) + ", over the budget of " +
                      seconds(cfg_.max_pause) + " (--max-pause) before " + before_what);
}

void Switchover::check_interrupt(const State& st) const {
  if (interrupted_ && interrupted_() && !st.committed)
    throw CheckFailed("interrupted by the operator (SIGINT/SIGTERM)");
}

// `fhirshift fence off`: held writes proceed to whichever server HAProxy chooses now. Retries
// until `keep_trying` has passed (a blip of the runtime API must not leave writes held).
bool Switchover::lift_fence(State& st, std::chrono::milliseconds keep_trying) {
  auto deadline = clock_.steady_now() + keep_trying;
  for (int attempt = 1;; ++attempt) {
    try {
      // Held writes wake up within milliseconds of the lift: the count is still theirs.
      FenceStatus after = proxy_.set_fence(cfg_.backend, false);
      st.released = true;
      st.result.released_writes = after.held;
      st.result.write_pause =
          std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steady_now() - st.fence_sent);
      if (observer_) observer_->fence_lifted(*st.result.write_pause);
      return true;
    } catch (const std::exception& e) {
      log(LogLevel::kError, "lifting the fence (`fhirshift fence off " + cfg_.backend +
                                "`) failed (attempt " + std::to_string(attempt) + "): " + e.what());
      if (clock_.steady_now() >= deadline) return false;
      clock_.sleep_for(std::chrono::milliseconds(500));
    }
  }
}

void Switchover::roll_forward(State& st) {
  const std::string f = cfg_.backend + "/" + cfg_.from;
  const std::string t = cfg_.backend + "/" + cfg_.to;
  if (st.to_made_ready) {
    try {
      proxy_.set_weight(cfg_.backend, cfg_.to, "100%");
    } catch (const std::exception& e) {
      log(LogLevel::kError, "set weight " + t + " 100% failed: " + e.what());
    }
  }
  if (!st.from_in_maint) {
    for (int attempt = 1; attempt <= 3 && !st.from_in_maint; ++attempt) {
      try {
        proxy_.set_state(cfg_.backend, cfg_.from, AdminState::kMaint);
        st.from_in_maint = proxy_.state(cfg_.backend, cfg_.from).in_maintenance();
      } catch (const std::exception& e) {
        log(LogLevel::kError, "set server " + f + " state maint failed (attempt " +
                                  std::to_string(attempt) + "/3): " + e.what());
        clock_.sleep_for(std::chrono::milliseconds(200));
      }
    }
    if (!st.from_in_maint) {
      // Lifting the fence now could send held writes to `from`, whose store the migrator no
      // longer copies after the switch: the fence stays up until `from` is out.
      st.result.manual_actions.push_back(
          "HAProxy still sends requests to " + f + " and the fence stays up (writes are held, "
          "and answered 503 + Retry-After after 30 s): run `echo 'set server " + f +
          " state maint' | socat stdio <stats socket>`, then `echo 'fhirshift fence off " +
          cfg_.backend + "' | socat stdio <stats socket>`");
    }
  }
  if (!st.released && st.from_in_maint) {
    auto left = st.fence_sent + cfg_.release_deadline - clock_.steady_now();
    if (!lift_fence(st, std::max(std::chrono::milliseconds(0),
                                 std::chrono::duration_cast<std::chrono::milliseconds>(left)))) {
      st.result.manual_actions.push_back(
          "the fence could not be lifted; each held write is answered 503 + Retry-After after 30 s "
          "and stays held on retry until you run `echo 'fhirshift fence off " + cfg_.backend +
          "' | socat stdio <stats socket>` (" + f + " is in maintenance: held writes then go to " +
          cfg_.to + ")");
    }
  }
  st.result.traffic_on_to = true;
  try {
    ServerState ts = proxy_.state(cfg_.backend, cfg_.to);
    if (!ts.serving())
      st.result.manual_actions.push_back(
          t + " is " + ts.describe() + ": HAProxy has no healthy server for new requests. Fix " +
          "the server behind " + t + " (HAProxy's health check, " + to_.url() +
          "); never send traffic back to " + f + ": its store misses the writes made since");
  } catch (const std::exception& e) {
    st.result.manual_actions.push_back("cannot read " + t + "'s state from HAProxy: " + e.what());
  }
}

void Switchover::abort(State& st) {
  st.final_verify.reset();  // a verify waiting for the stores to be final is cancelled
  const std::string t = cfg_.backend + "/" + cfg_.to;
  if (st.committed) {
    log(LogLevel::kWarn, "abort: " + t + " has already received requests, so traffic cannot go "
                             "back to " + cfg_.from + " without losing writes: finishing forward");
    roll_forward(st);
    st.result.outcome = st.result.manual_actions.empty() ? Outcome::kSwitched : Outcome::kNeedsOperator;
    return;
  }
  if (!st.fenced && !st.to_made_ready) {
    log(LogLevel::kWarn, "abort: nothing was changed; traffic stays on " + cfg_.backend + "/" +
                             cfg_.from);
    st.result.outcome = Outcome::kAbortedSafely;
    return;
  }
  if (st.to_made_ready) {
    bool in_maint = false;
    for (int attempt = 1; attempt <= 3 && !in_maint; ++attempt) {
      try {
        proxy_.set_state(cfg_.backend, cfg_.to, AdminState::kMaint);
        in_maint = proxy_.state(cfg_.backend, cfg_.to).in_maintenance();
      } catch (const std::exception& e) {
        log(LogLevel::kError, "abort: set server " + t + " state maint failed: " + e.what());
        clock_.sleep_for(std::chrono::milliseconds(200));
      }
    }
    try {
      proxy_.set_weight(cfg_.backend, cfg_.to, "100%");  // as configured, for the next attempt
    } catch (const std::exception& e) {
      log(LogLevel::kWarn, "abort: set weight " + t + " 100%: " + e.what());
    }
    // Did `to` take a request while it was out of maintenance? Then it may hold writes `from`
    // never saw, and going back would lose them.
    bool served = true;
    try {
      served = proxy_.sessions_total(cfg_.backend, cfg_.to) > st.to_sessions_before;
    } catch (const std::exception& e) {
      log(LogLevel::kError, "abort: cannot read HAProxy's session counter for " + t + ": " + e.what());
    }
    if (served || !in_maint) {
      st.committed = true;
      try {
        proxy_.set_state(cfg_.backend, cfg_.to, AdminState::kReady);
      } catch (const std::exception& e) {
        log(LogLevel::kError, std::string("abort: set server ") + t + " state ready: " + e.what());
      }
      log(LogLevel::kWarn, "abort: " + t + " received requests while it was ready: finishing the "
                               "switch forward instead of going back");
      roll_forward(st);
      st.result.outcome =
          st.result.manual_actions.empty() ? Outcome::kSwitched : Outcome::kNeedsOperator;
      return;
    }
    log(LogLevel::kWarn, "abort: " + t + " is back in maintenance and never received a request");
  }
  if (st.fenced && !st.released) {
    if (lift_fence(st, std::chrono::milliseconds(1500))) {
      log(LogLevel::kWarn, "abort: fence lifted: " + std::to_string(st.result.released_writes) +
                               " held writes proceed to " + cfg_.backend + "/" + cfg_.from);
    } else {
      st.result.manual_actions.push_back(
          "lift the fence so held writes proceed to " + cfg_.backend + "/" + cfg_.from +
          ": `echo 'fhirshift fence off " + cfg_.backend +
          "' | socat stdio <stats socket>` (until then held writes are answered 503 + "
          "Retry-After after 30 s)");
    }
    st.result.write_pause =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steady_now() - st.fence_sent);
  }
  st.result.outcome =
      st.result.manual_actions.empty() ? Outcome::kAbortedSafely : Outcome::kNeedsOperator;
}

SwitchResult Switchover::run() {
  State st;
  st.start = clock_.steady_now();
  SwitchResult result = run_steps(st);
  st.final_verify.reset();
  if (st.migrator_paused) {
    try {
      progress_.resume();
      log(LogLevel::kInfo, "migrator resumed");
    } catch (const std::exception& e) {
      log(LogLevel::kWarn, std::string("the migrator could not be resumed (") + e.what() +
                               "): it stays paused until `fhirshift ctl --metrics <its metrics "
                               "URL> resume` (beside " + progress_.url() + ")");
    }
  }
  return result;
}

// Just before the fence the migrator is paused until the writes in flight have completed, and its
// poll in progress is abandoned meanwhile (`reading: false`), while clients still write. Otherwise
// the poll that proves the drain would begin only once that poll ended: on a slow source, a second
// or two more of the write pause (2026-12-03, busy machine). Best effort: a migrator that cannot
// be paused, or does not say whether it reads, is drained the slower way.
void Switchover::quiesce_migrator(State& st) {
  try {
    progress_.pause();
    st.migrator_paused = true;
  } catch (const std::exception& e) {
    log(LogLevel::kWarn, std::string("the migrator could not be paused before the fence (") +
                             e.what() + "): the drain waits for its poll in progress");
    return;
  }
  auto deadline = clock_.steady_now() + cfg_.drain_timeout;
  std::string last_error;
  for (;;) {
    try {
      Progress p = progress_.progress();
      if (!p.reading || !*p.reading) return;  // idle (or it does not say: nothing to wait for)
      last_error.clear();
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    if (clock_.steady_now() >= deadline) {
      log(LogLevel::kWarn, "the migrator's poll in progress did not end within " +
                               seconds(cfg_.drain_timeout) + " (--drain-timeout) of its pause" +
                               (last_error.empty() ? std::string() : " (" + last_error + ")") +
                               ": fencing anyway; the drain waits for it");
      return;
    }
    check_interrupt(st);
    clock_.sleep_for(std::chrono::milliseconds(20));
  }
}

// Once the migrator has drained, nothing is left for it to read until the release, and its polls
// would compete with the final verify for the source (on a server without range indexes each is a
// scan): it holds them until this run ends. Returns the note for the drain step's line.
std::string Switchover::pause_migrator(State& st) {
  try {
    progress_.pause();
    st.migrator_paused = true;
    return "; migrator paused for the final verify";
  } catch (const std::exception& e) {
    return std::string("; the migrator could not be paused, it polls on (") + e.what() + ")";
  }
}

SwitchResult Switchover::run_steps(State& st) {
  const std::string b = cfg_.backend;
  const std::string f = b + "/" + cfg_.from;
  const std::string t = b + "/" + cfg_.to;
  const std::vector<std::string> names = step_names();

  if (cfg_.dry_run) {
    log(LogLevel::kInfo, cfg_.action + " plan (dry run: only the read-only checks 1-4 run, nothing "
                                       "is changed):");
    for (const auto& line : plan()) log(LogLevel::kInfo, "  " + line);
  }

  // What an earlier run that died without cleaning up (kill -9, host lost) left in HAProxy, found
  // at step 1. Every state the machine passes through is one of these or a clean one.
  enum class Leftover {
    kNone,
    // steps 5-8 before the switch: `to` out of maintenance at weight 0 (HAProxy sent it nothing),
    // the fence maybe up: put `to` back and lift the fence (held writes go to `from`), then run.
    kBeforeSwitch,
    // inside step 8: `to` has its weight back while `from` still serves and writes are held
    // (the final verify passed): finish forward, as that run would have.
    kMidSwitch,
  };
  Leftover leftover = Leftover::kNone;
  bool already_switched = false;
  bool fence_left_up = false;
  // 1. Where does traffic go now?
  if (!step(st, 1, names[0], [&](StepRecord&) {
        ServerState fs = proxy_.state(b, cfg_.from);
        ServerState ts = proxy_.state(b, cfg_.to);
        std::string states = f + " " + fs.describe() + ", " + t + " " + ts.describe();
        if (ts.serving() && fs.in_maintenance()) {
          already_switched = true;
          return states + ": traffic is already on " + cfg_.to;
        }
        if (!fs.serving())
          throw CheckFailed(states + ": " + f + " does not serve traffic, so there is nothing to " +
                            "move from (fix HAProxy or the server first)");
        FenceStatus fence = proxy_.fence_status(b);
        if (!fence.in_flight)
          throw CheckFailed(states + ": the write fence cannot count writes in progress: HAProxy "
                            "has no `fhirshift_writes` stick table with conn_cur (docs/cutover.md, "
                            "\"The write fence in your HAProxy\")");
        fence_left_up = fence.fenced;
        if (ts.serving()) {
          if (!fence.fenced)
            throw CheckFailed(states + ": " + t + " must be in maintenance before the " +
                              cfg_.action + " (`set server " + t + " state maint`); both serve " +
                              "and writes are not held, so each store may hold writes the other " +
                              "lacks: decide which store is complete before changing HAProxy");
          leftover = Leftover::kMidSwitch;
          return states + ", writes held: an earlier " + cfg_.action + " died inside step 8 " +
                 "(switch), after its final verify; finishing it forward";
        }
        if (!ts.in_maintenance()) {
          if (ts.weight > 0)
            throw CheckFailed(states + ": " + t + " must be in maintenance before the " +
                              cfg_.action + " (`set server " + t + " state maint`)");
          leftover = Leftover::kBeforeSwitch;
          return states + (fence.fenced ? ", writes held" : "") + ": an earlier " + cfg_.action +
                 " died in steps 5-8, before the switch (at weight 0 " + t +
                 " received no request): " + (cfg_.dry_run ? "a real run puts" : "putting") +
                 " it back in maintenance" +
                 (fence.fenced ? std::string(" and lifts the fence (held writes go to ") +
                                     cfg_.from + ")"
                               : std::string()) +
                 ", then runs every step";
        }
        return states + "; write fence installed (" +
               (fence.fenced ? std::string("UP, left by an earlier run: ") +
                                   (cfg_.dry_run ? "a real run lifts" : "lifting") +
                                   " it (held writes go to " + cfg_.from + ", the only server)"
                             : std::string("down")) +
               ", " + std::to_string(fence.passed) + " writes through it so far)";
      })) {
    abort(st);
    if (cfg_.dry_run) st.result.outcome = Outcome::kDryRunFailed;
    return st.result;
  }

  if ((already_switched && !cfg_.dry_run) || leftover == Leftover::kMidSwitch) {
    // A previous run may have switched and died before the release, or died between giving `to`
    // its weight and putting `from` in maintenance: finish it. Held writes go to `to`.
    try {
      FenceStatus s = proxy_.fence_status(b);
      if (s.fenced && !cfg_.dry_run) {
        log(LogLevel::kWarn, "the write fence is still up from a previous run: " +
                                 std::string(already_switched ? "" : "putting " + f +
                                                                         " in maintenance and ") +
                                 "lifting it, its " + std::to_string(s.held) +
                                 " held writes go to " + t);
        st.fenced = true;
        st.fence_sent = clock_.steady_now();
        st.from_in_maint = already_switched;
        st.committed = true;
        roll_forward(st);
        st.result.write_pause.reset();
        st.result.outcome =
            st.result.manual_actions.empty() ? Outcome::kSwitched : Outcome::kNeedsOperator;
        return st.result;
      }
    } catch (const std::exception& e) {
      log(LogLevel::kWarn, "cannot read the write fence's state: " + std::string(e.what()));
    }
  }
  if (leftover == Leftover::kMidSwitch) {
    // A dry run, or the fence came down meanwhile: nothing is changed here.
    st.result.failed_step = "1 " + names[0];
    st.result.reason = f + " and " + t + " both serve: run without --dry-run to finish the " +
                       "interrupted switch forward";
    st.result.outcome = cfg_.dry_run ? Outcome::kDryRunFailed : Outcome::kNeedsOperator;
    if (!cfg_.dry_run)
      st.result.manual_actions.push_back(
          "both serve and the write fence is down: decide which store is complete, then `set "
          "server " + f + " state maint` (or " + t + ")");
    return st.result;
  }
  if (already_switched) {
    st.result.traffic_on_to = true;
    st.result.outcome = Outcome::kAlreadySwitched;
    return st.result;
  }

  if (!cfg_.dry_run && (leftover == Leftover::kBeforeSwitch || fence_left_up)) {
    // Back to the state a cut-over starts from. Lifting the fence before steps 2-4 matters: they
    // may take longer than the 30 s HAProxy holds a write.
    try {
      if (leftover == Leftover::kBeforeSwitch) {
        proxy_.set_state(b, cfg_.to, AdminState::kMaint);
        proxy_.set_weight(b, cfg_.to, "100%");
        ServerState ts = proxy_.state(b, cfg_.to);
        if (!ts.in_maintenance())
          throw std::runtime_error(t + " did not go back to maintenance (state " + ts.describe() + ")");
        log(LogLevel::kWarn, t + " is back in maintenance at full weight (an earlier run left it "
                                 "ready at weight 0)");
      }
      if (fence_left_up) {
        FenceStatus after = proxy_.set_fence(b, false);
        log(LogLevel::kWarn, "lifted the write fence an earlier run left up: " +
                                 std::to_string(after.held) + " held writes go to " + f);
      }
    } catch (const std::exception& e) {
      st.result.failed_step = "1 " + names[0];
      st.result.reason = std::string("cleaning up after an earlier run: ") + e.what();
      st.result.manual_actions.push_back(
          "`set server " + t + " state maint`, `set weight " + t + " 100%`, then `fhirshift "
          "fence off " + b + "` (held writes go to " + f + "), and run the " + cfg_.action +
          " again");
      st.result.outcome = Outcome::kNeedsOperator;
      return st.result;
    }
  }

  auto preflight_fails = [&] {
    abort(st);
    if (cfg_.dry_run) st.result.outcome = Outcome::kDryRunFailed;
    return st.result;
  };

  // 2. The server that will take the traffic answers ready.
  if (!step(st, 2, names[1], [&](StepRecord&) {
        ReadyCheck r = to_.ready();
        if (!r.ok) throw CheckFailed("GET " + to_.url() + ": " + r.detail);
        return "GET " + to_.url() + ": " + r.detail;
      }))
    return preflight_fails();

  // 3. The migrator is close enough that the drain under the fence is short.
  if (!step(st, 3, names[2], [&](StepRecord&) {
        auto deadline = clock_.steady_now() + cfg_.catch_up_wait;
        for (;;) {
          Progress p = progress_.progress();
          st.result.last_progress = p;
          bool lag_ok = p.lag_seconds * 1000.0 <= static_cast<double>(cfg_.max_lag.count());
          if (p.caught_up && lag_ok) return progress_text(p);
          // A cut-over pauses the drained migrator for its final verify and resumes it when it
          // ends; one killed in between left it paused: resumed here. The operator's pause is
          // theirs to end.
          if (p.paused && p.paused_by == "cutover" && !cfg_.dry_run) {
            progress_.resume();
            log(LogLevel::kWarn, "the migrator was left paused by an interrupted cut-over: resumed");
            continue;
          }
          if (p.paused)
            throw CheckFailed("the migrator is paused" +
                              (p.paused_by.empty() ? std::string() : " by the " + p.paused_by) +
                              ", so not following the source: resume it with `fhirshift ctl "
                              "--metrics <its metrics URL> resume` (beside " +
                              progress_.url() + ") and run the cut-over again");
          if (clock_.steady_now() >= deadline) {
            if (!p.caught_up)
              throw CheckFailed("the migrator is not caught up after " +
                                seconds(cfg_.catch_up_wait) + " (--catch-up-wait): " +
                                progress_text(p) + "; wait for `caughtUp: true` at " +
                                progress_.url());
            throw CheckFailed("migrator lag " + lag_text(p.lag_seconds) + " is over --max-lag " +
                              seconds(cfg_.max_lag) + " after " + seconds(cfg_.catch_up_wait) +
                              " (--catch-up-wait)");
          }
          check_interrupt(st);
          clock_.sleep_for(cfg_.poll_interval);
        }
      }))
    return preflight_fails();

  // 4. The copy is equal so far (counts: cheap, read-only).
  if (!step(st, 4, names[3], [&](StepRecord& rec) {
        if (!verifier_) {
          rec.skipped = true;
          return std::string("no connection strings given (pass --srcMongoConnectionString, "
                             "--mongoConnectionstring to verify)");
        }
        VerifyOutcome v = verifier_->verify({"counts", std::nullopt, std::chrono::milliseconds(0), true});
        if (!v.equal) throw CheckFailed(v.verdict);
        note_quarantine_accounted(st.result, v);
        std::string counts = v.verdict + " (" + seconds(v.took) + ")";
        // The expensive part of the final verify, done while clients still write: everything up
        // to the mark is proven here, so under the fence only what is newer is compared.
        std::string since = format_iso8601(clock_.wall_now() - cfg_.verify_margin);
        VerifyOutcome full = verifier_->verify({cfg_.final_verify_mode, since, std::chrono::milliseconds(0), true});
        if (!full.equal) throw CheckFailed(full.verdict + " (verify since " + since + ")");
        note_quarantine_accounted(st.result, full);
        if (full.source_high_water_lu)
          st.verified_up_to = parse_iso8601(*full.source_high_water_lu);
        if (st.verified_up_to) st.result.verified_up_to = format_iso8601(*st.verified_up_to);
        return counts + "; " + full.verdict + " (" + seconds(full.took) + ", since " + since +
               (st.verified_up_to ? ", mark " + st.result.verified_up_to : std::string()) + ")";
      }))
    return preflight_fails();

  if (cfg_.dry_run) {
    st.result.outcome = Outcome::kDryRun;
    log(LogLevel::kInfo, "dry run: the read-only checks pass; steps 5-9 were not run, nothing "
                         "was changed");
    return st.result;
  }

  // 5. Fence: from here HAProxy holds writes; the clock of the write pause runs. Writes it sent
  // to `from` before the fence must complete before the drain starts counting migrator polls.
  if (!step(st, 5, names[4], [&](StepRecord&) {
        // `to` passes HAProxy's health check before the fence, at weight 0 (HAProxy sends it no
        // request): the wait for a check is not part of the write pause.
        ReadyCheck r = to_.ready();
        if (!r.ok) throw CheckFailed("GET " + to_.url() + " just before the fence: " + r.detail);
        // The final verify starts now, so that its start-up is not part of the write pause; it
        // covers everything since the mark proven in step 4 (less the overlap), or without a mark
        // the margin before now.
        if (verifier_) {
          WallTime since = st.verified_up_to ? *st.verified_up_to - cfg_.verify_overlap
                                             : clock_.wall_now() - cfg_.verify_margin;
          st.result.verify_since = format_iso8601(since);
          st.final_verify = verifier_->start(
              {cfg_.final_verify_mode, st.result.verify_since, std::chrono::milliseconds(0)});
        }
        st.to_sessions_before = proxy_.sessions_total(b, cfg_.to);
        st.to_made_ready = true;  // from here an abort restores `to` (maint, full weight)
        proxy_.set_weight(b, cfg_.to, "0");
        proxy_.set_state(b, cfg_.to, AdminState::kReady);
        auto to_deadline = clock_.steady_now() + cfg_.switch_timeout;
        while (true) {
          ServerState ts = proxy_.state(b, cfg_.to);
          if (ts.check_confirmed() && !ts.in_maintenance()) break;
          if (clock_.steady_now() >= to_deadline)
            throw CheckFailed(t + " did not pass HAProxy's health check within " +
                              seconds(cfg_.switch_timeout) + " (state " + ts.describe() +
                              ", check health " + std::to_string(ts.check_health) +
                              "): check " + to_.url() + " from the HAProxy host");
          check_interrupt(st);
          clock_.sleep_for(std::chrono::milliseconds(20));
        }
        quiesce_migrator(st);
        st.fence_sent = clock_.steady_now();
        st.fence_sent_wall = clock_.wall_now();
        st.result.fence_at = format_iso8601(st.fence_sent_wall);
        st.fenced = true;  // even if the answer is lost, the fence may be up: lift it on abort
        if (observer_) observer_->fence_raised();
        FenceStatus fs = proxy_.set_fence(b, true);
        if (!fs.in_flight) throw CheckFailed("the fence cannot count writes in progress");
        st.result.in_flight_at_fence = *fs.in_flight;
        while (*fs.in_flight > 0) {
          check_budget(st, "the writes sent to " + cfg_.from + " before the fence completed (" +
                               std::to_string(*fs.in_flight) + " still in flight)");
          check_interrupt(st);
          clock_.sleep_for(std::chrono::milliseconds(20));
          fs = proxy_.fence_status(b);
          if (!fs.fenced) throw CheckFailed("the fence was lifted by someone else");
          if (!fs.in_flight) throw CheckFailed("the fence cannot count writes in progress");
        }
        st.fence_acked = clock_.steady_now();
        st.fence_acked_wall = clock_.wall_now();
        // The source is final: the verify reads it while the migrator drains.
        if (st.final_verify) st.final_verify->source_final();
        try {
          Progress at_fence = progress_.progress();  // the drain counts polls after this read
          st.poll_at_fence = at_fence.last_poll_at;
          st.polls_started_at_fence = at_fence.polls_started;
        } catch (const std::exception&) {
        }
        if (st.migrator_paused) {  // by quiesce_migrator: the proving poll begins now
          try {
            progress_.resume();
            st.migrator_paused = false;
          } catch (const std::exception& e) {
            throw CheckFailed(std::string("the migrator, paused just before the fence, could not "
                                          "be resumed to drain: ") + e.what());
          }
        }
        try {
          progress_.poll_now();  // the proving poll need not wait for the migrator's --pollInterval
        } catch (const std::exception& e) {
          log(LogLevel::kWarn, std::string("the migrator did not take the request to poll now (") +
                                   e.what() + "): the drain waits for its next poll");
        }
        st.result.held_at_fence = fs.held;
        return t + " passed its health check at weight 0; writes held in HAProxy; " + std::to_string(st.result.in_flight_at_fence) +
               " in flight to " + cfg_.from + " at the fence, completed in " +
               seconds(std::chrono::duration_cast<std::chrono::milliseconds>(st.fence_acked -
                                                                             st.fence_sent)) +
               " (held now: " + std::to_string(fs.held) + "); reads flow";
      })) {
    abort(st);
    return st.result;
  }

  // 6. Drain: the migrator copies what was written before the fence. Proof: a poll that began
  // after the fence was acknowledged has all its entries applied (pollsDone above the
  // pollsStarted read after the acknowledgement), and the migrator is caught up. A migrator that
  // does not count its polls: two polls newer than the last one it reported at the fence (the
  // first may have started before the fence; the second started after the first ended). Only the
  // migrator's own numbers and timestamps are compared, so clock skew between hosts does not
  // matter.
  if (!step(st, 6, names[5], [&](StepRecord&) {
        auto deadline = st.fence_acked + cfg_.drain_timeout;
        std::optional<WallTime> baseline = st.poll_at_fence;
        std::optional<WallTime> last_counted;
        int newer_polls = 0;
        std::string last_error;
        Progress last;
        while (true) {
          try {
            last = progress_.progress();
            st.result.last_progress = last;
            last_error.clear();
            if (!last.last_poll_at)
              throw CheckFailed("the migrator's /progress has no lastPollAt: cannot prove a poll "
                                "after the fence");
            if (st.polls_started_at_fence && last.polls_done) {
              if (*last.polls_done > *st.polls_started_at_fence && last.caught_up) {
                st.result.drain_time = std::chrono::duration_cast<std::chrono::milliseconds>(
                    clock_.steady_now() - st.fence_acked);
                std::string paused = pause_migrator(st);
                return "caught up after the fence (poll " + std::to_string(*last.polls_done) +
                       " began after it): " + progress_text(last) + paused;
              }
            } else if (!baseline) {
              baseline = last.last_poll_at;  // the fence-time read failed: start counting from here
            } else if (*last.last_poll_at > *baseline && last.last_poll_at != last_counted) {
              last_counted = last.last_poll_at;
              ++newer_polls;
            }
            if (newer_polls >= cfg_.post_fence_polls && last.caught_up) {
              st.result.drain_time = std::chrono::duration_cast<std::chrono::milliseconds>(
                  clock_.steady_now() - st.fence_acked);
              std::string paused = pause_migrator(st);
              return "caught up after the fence (" + std::to_string(newer_polls) +
                     " polls since): " + progress_text(last) + paused;
            }
          } catch (const CheckFailed&) {
            throw;
          } catch (const std::exception& e) {
            last_error = e.what();  // a blip of the progress endpoint: retry until the deadline
          }
          if (clock_.steady_now() >= deadline)
            throw CheckFailed("the migrator did not drain within " + seconds(cfg_.drain_timeout) +
                              " (--drain-timeout): " +
                              (last_error.empty() ? progress_text(last) : last_error));
          check_budget(st, "the drain finished");
          check_interrupt(st);
          // Writes are held: the migrator's poll is noticed within 50 ms (/progress is answered
          // from memory), not a whole --poll-interval later.
          clock_.sleep_for(std::min(cfg_.poll_interval, std::chrono::milliseconds(50)));
        }
      })) {
    abort(st);
    return st.result;
  }

  // 7. Final verify of everything written since shortly before the fence.
  if (!step(st, 7, names[6], [&](StepRecord& rec) {
        check_budget(st, "the final verify");
        if (!st.final_verify) {
          rec.skipped = true;
          return std::string("no connection strings given");
        }
        auto held = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steady_now() -
                                                                          st.fence_sent);
        // The target is final too (drained, migrator paused): the verify, started in step 5 and
        // reading the source since the fence, now reads the target and compares.
        st.final_verify->target_final();
        VerifyOutcome v = st.final_verify->finish(cfg_.max_pause - held);
        st.final_verify.reset();
        st.result.final_verify_time = v.took;
        if (!v.equal) throw CheckFailed(v.verdict);
        note_quarantine_accounted(st.result, v);
        check_budget(st, "the switch");
        check_interrupt(st);
        return v.verdict + " (" + seconds(v.took) + ", since " + st.result.verify_since + ")";
      })) {
    abort(st);
    return st.result;
  }

  // 8. Switch HAProxy. `to` is UP at weight 0 since step 5 (a passed health check); it gets its
  // weight back, and `from` goes to maintenance.
  if (!step(st, 8, names[7], [&](StepRecord&) {
        ReadyCheck r = to_.ready();
        if (!r.ok) throw CheckFailed("GET " + to_.url() + " just before the switch: " + r.detail);
        ServerState before = proxy_.state(b, cfg_.to);
        if (!before.check_confirmed() || before.in_maintenance())
          throw CheckFailed(t + " is no longer healthy in HAProxy (state " + before.describe() +
                            ", check health " + std::to_string(before.check_health) + ")");
        // Point of no return: `to` serves and may take writes from now on.
        st.committed = true;
        proxy_.set_weight(b, cfg_.to, "100%");
        proxy_.set_state(b, cfg_.from, AdminState::kMaint);
        ServerState fs = proxy_.state(b, cfg_.from);
        if (!fs.in_maintenance())
          throw CheckFailed(f + " did not go to maintenance (state " + fs.describe() + ")");
        st.from_in_maint = true;
        ServerState ts = proxy_.state(b, cfg_.to);
        if (!ts.serving())
          throw CheckFailed(t + " is " + ts.describe() + " right after the switch");
        return t + " " + ts.describe() + ", " + f + " " + fs.describe() + ": new requests go to " +
               cfg_.to;
      })) {
    abort(st);
    return st.result;
  }

  // 9. Release the held writes toward `to`.
  if (!step(st, 9, names[8], [&](StepRecord&) {
        roll_forward(st);
        if (!st.released) throw CheckFailed("the fence could not be lifted (see manual actions)");
        return "fence lifted: " + std::to_string(st.result.released_writes) +
               " held writes go to " + t + "; write pause " + seconds(*st.result.write_pause);
      })) {
    st.result.outcome = Outcome::kNeedsOperator;
    return st.result;
  }
  st.result.outcome = st.result.manual_actions.empty() ? Outcome::kSwitched : Outcome::kNeedsOperator;
  return st.result;
}

std::string summarize(const SwitchConfig& cfg, const SwitchResult& r) {
  std::ostringstream o;
  const std::string f = cfg.backend + "/" + cfg.from;
  const std::string t = cfg.backend + "/" + cfg.to;
  o << cfg.action << ": " << to_string(r.outcome);
  switch (r.outcome) {
    case Outcome::kSwitched:
      o << ": traffic on " << t << "\n";
      break;
    case Outcome::kAlreadySwitched:
      o << ": traffic was already on " << t << ", nothing to do\n";
      break;
    case Outcome::kAbortedSafely:
      o << ": traffic stays on " << f << "\n";
      break;
    case Outcome::kDryRun:
    case Outcome::kDryRunFailed:
      o << ": nothing was changed\n";
      break;
    case Outcome::kNeedsOperator:
      o << ": traffic on " << (r.traffic_on_to ? t : f) << ", see the manual actions below\n";
      break;
  }
  if (!r.failed_step.empty()) o << "  failed step:  " << r.failed_step << ": " << r.reason << "\n";
  if (!r.fence_at.empty()) o << "  fence at:     " << r.fence_at << "\n";
  if (r.write_pause)
    o << "  write pause:  " << seconds(*r.write_pause) << " (fence -> release; reads never paused)\n";
  if (r.held_at_fence || r.released_writes >= 0)
    o << "  held writes:  " << (r.released_writes >= 0 ? std::to_string(r.released_writes) : "?")
      << (r.traffic_on_to ? " sent to " + cfg.to : " sent to " + cfg.from) << " when the fence was lifted\n";
  if (r.drain_time) o << "  drain:        " << seconds(*r.drain_time) << " (fence -> migrator caught up)\n";
  if (r.final_verify_time)
    o << "  final verify: " << seconds(*r.final_verify_time) << " (since " << r.verify_since << ")\n";
  if (r.last_progress)
    o << "  migrator:     " << progress_text(*r.last_progress) << "\n";
  if (!r.quarantine_accounted.empty()) {
    o << "  quarantine:   " << r.quarantine_accounted.size()
      << " entries the target does not have, accounted for (fhirshift quarantine list):\n";
    for (const auto& q : r.quarantine_accounted) o << "    " << q << "\n";
  }
  for (const auto& m : r.manual_actions) o << "  MANUAL ACTION: " << m << "\n";
  return o.str();
}

}  // namespace fhirshift::cutover

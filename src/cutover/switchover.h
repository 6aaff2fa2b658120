// The cut-over state machine: moves client traffic of one HAProxy backend from the server that
// serves it (`from`) to the one waiting in maintenance (`to`), without a failed client request and
// without losing a write. `fhirshift cutover` runs it old -> new; `fhirshift rollback
// --after-cutover` runs the same machine new -> old (with the reverse migrator's progress).
//
//   1 proxy state     `from` serves, `to` is in maintenance, the fence is installed  (read-only)
//   2 target ready    GET <to><health path> is 2xx                                 (read-only)
//   3 caught up       migrator GET /progress: caughtUp, lagSeconds <= --max-lag     (read-only)
//   4 verify counts   fhirshift verify --mode counts: EQUAL, then --mode full --since
//                     <now - margin> while clients still write: EQUAL up to the source's
//                     newest lu at its start (the mark)                           (read-only)
//   5 fence           `to` leaves maintenance with weight 0 (no request reaches it) and waits for
//                     a passed health check; then `fhirshift fence on B` in HAProxy: writes are
//                     held there from here, reads flow; wait until the writes already sent to
//                     `from` have completed
//   6 drain           GET /progress until two polls newer than at the fence, caught up
//   7 final verify    fhirshift verify --mode full --since <mark - overlap>: EQUAL (only what
//                     was written since shortly before the fence)
//   8 switch          set weight B/<to> 100%; set server B/<from> state maint
//   9 release         `fhirshift fence off B`: held writes go to `to`, the only server left
//
// The fence is in the proxy (tools/haproxy/fhirshift_fence.lua), so neither FHIR server needs
// anything but FHIR. A failed check before the switch aborts SAFELY: `to` back to maintenance, the
// fence lifted (held writes then go to `from`), nothing else changed. Once `to` has received a
// request (HAProxy's session counter says so), the only safe direction is forward: finish the
// switch, then lift the fence; the machine never sends traffic back to a server that missed
// writes. Whatever it cannot make safe by itself is listed as exact manual actions.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cutover/ports.h"

namespace fhirshift::cutover {

struct SwitchConfig {
  std::string action = "cutover";  // word used in messages ("cutover" or "rollback")
  std::string backend = "fhir";
  std::string from = "old";  // HAProxy server names
  std::string to = "new";
  std::chrono::milliseconds max_lag{5000};
  // How long step 3 waits for the migrator to be caught up (nothing is fenced yet: waiting is
  // free, and a migrator under load dips over the lag limit now and then).
  std::chrono::milliseconds catch_up_wait{60000};
  // Writes are held from the fence on and HAProxy answers a held write 503 after 30 s; the
  // switch must happen well before that, else the machine aborts (writes proceed on `from`).
  std::chrono::milliseconds max_pause{20000};
  std::chrono::milliseconds drain_timeout{15000};
  std::chrono::milliseconds switch_timeout{5000};
  // The verify before the fence covers entries since its start minus this margin.
  std::chrono::milliseconds verify_margin{60000};
  // The final verify starts this long before the mark the verify before the fence reached (the
  // source's newest lu then): a write whose lu was taken before the mark may commit after it.
  std::chrono::milliseconds verify_overlap{10000};
  std::chrono::milliseconds poll_interval{200};
  // How long lifting the fence keeps retrying after a failure (before held writes time out).
  std::chrono::milliseconds release_deadline{27000};
  // Migrator polls newer than the one it reported at the fence before the copy counts as drained
  // (2: the second surely started after the fence).
  int post_fence_polls = 2;
  std::string final_verify_mode = "full";
  bool dry_run = false;
};

enum class Outcome {
  kSwitched,         // traffic on `to`, held writes released toward it
  kAlreadySwitched,  // traffic was already on `to`: nothing to do
  kAbortedSafely,    // a check failed; traffic stays on `from`, its writes flow again
  kDryRun,           // plan printed, the read-only checks pass
  kDryRunFailed,     // plan printed, a read-only check fails
  kNeedsOperator,    // something could not be made safe automatically: see manual_actions
};
std::string_view to_string(Outcome o);
// 0 for kSwitched, kAlreadySwitched and kDryRun; 1 otherwise.
int exit_code(Outcome o);

struct StepRecord {
  int number = 0;
  std::string name;
  WallTime started;
  std::chrono::milliseconds took{0};
  bool ok = false;
  bool skipped = false;
  std::string detail;
};

struct SwitchResult {
  Outcome outcome = Outcome::kAbortedSafely;
  std::string failed_step;
  std::string reason;
  std::vector<StepRecord> steps;
  std::optional<std::chrono::milliseconds> write_pause;  // fence raised -> fence lifted
  std::optional<std::chrono::milliseconds> drain_time;   // fence acknowledged -> drained
  std::optional<std::chrono::milliseconds> final_verify_time;
  int64_t in_flight_at_fence = 0;  // writes sent to `from` before the fence, waited for
  int64_t held_at_fence = 0;       // held once those completed
  int64_t released_writes = -1;
  std::optional<Progress> last_progress;
  std::string fence_at;      // ISO-8601, when the fence was requested
  std::string verified_up_to;  // the mark: the source's newest lu when the verify before the fence started
  std::string verify_since;    // what the final verify was given
  // What the verify steps counted as accounted for by the quarantine (docs/runbook.md, "Reviewing
  // the quarantine"): the target switched to lacks these entries by the operator's decision.
  std::vector<std::string> quarantine_accounted;
  bool traffic_on_to = false;
  std::vector<std::string> manual_actions;
};

// Told of each step and of the write pause as they happen (the live report of --report-port).
// Called on the machine's thread; an implementation must be quick and must not throw.
class SwitchObserver {
 public:
  virtual ~SwitchObserver() = default;
  virtual void step_started(int number, const std::string& name) = 0;
  virtual void step_finished(const StepRecord& step) = 0;
  virtual void fence_raised() = 0;
  virtual void fence_lifted(std::chrono::milliseconds write_pause) = 0;
};

enum class LogLevel { kInfo, kWarn, kError };
using LogFn = std::function<void(LogLevel, const std::string&)>;

class Switchover {
 public:
  // `verifier` may be null: the verify steps are then skipped (and say so).
  Switchover(SwitchConfig config, Proxy& proxy, ServerHealth& to, ProgressSource& progress,
             Verifier* verifier, Clock& clock, LogFn log);

  // Polled between steps and in every wait: when it returns true (the operator pressed Ctrl-C),
  // the machine aborts as a failed check would: safely back before the switch, forward after.
  void set_interrupt_check(std::function<bool()> interrupted) { interrupted_ = std::move(interrupted); }
  // Not owned; may be null.
  void set_observer(SwitchObserver* observer) { observer_ = observer; }

  // The steps with the exact commands and checks, one line each (what --dry-run prints).
  std::vector<std::string> plan() const;
  // The nine steps' names, as logged ("proxy state", ..., "release held writes to new").
  std::vector<std::string> step_names() const;
  SwitchResult run();

 private:
  struct State;
  SwitchResult run_steps(State& st);
  std::string pause_migrator(State& st);
  void quiesce_migrator(State& st);
  bool step(State& st, int number, const std::string& name,
            const std::function<std::string(StepRecord&)>& body);
  void check_budget(State& st, const std::string& before_what);
  void check_interrupt(const State& st) const;
  void abort(State& st);
  void roll_forward(State& st);
  bool lift_fence(State& st, std::chrono::milliseconds keep_trying);
  std::string ms(std::chrono::milliseconds d) const;
  void log(LogLevel level, const std::string& text) const { log_(level, text); }

  SwitchConfig cfg_;
  Proxy& proxy_;
  ServerHealth& to_;
  ProgressSource& progress_;
  Verifier* verifier_;
  Clock& clock_;
  LogFn log_;
  std::function<bool()> interrupted_;
  SwitchObserver* observer_ = nullptr;
};

// A few lines for the operator: outcome, write pause, drain, verify, manual actions.
std::string summarize(const SwitchConfig& config, const SwitchResult& result);

}  // namespace fhirshift::cutover

// The cut-over as it happens, for `--report-port`: which of the nine steps are done, running or
// waiting, how long each took, how long writes have been held, and the verdict at the end. The
// machine tells it (SwitchObserver); the page served by ReportServer polls it as JSON.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cutover/switchover.h"

namespace fhirshift::cutover {

class LiveReport : public SwitchObserver {
 public:
  // `names`: Switchover::step_names(); `plan`: Switchover::plan() (a line per step, then what an
  // abort does).
  LiveReport(const SwitchConfig& config, std::vector<std::string> names,
             std::vector<std::string> plan);

  void step_started(int number, const std::string& name) override;
  void step_finished(const StepRecord& step) override;
  void fence_raised() override;
  void fence_lifted(std::chrono::milliseconds write_pause) override;
  // The machine returned: steps never started are "not run"; the outcome and its reasons are kept.
  void finished(const SwitchResult& result);
  bool is_finished() const;

  // {"action", "backend", "from", "to", "dryRun", "running", "elapsedMs", "outcome" (null while
  //  running), "failedStep", "reason", "trafficOn", "manualActions", "onFailure",
  //  "writePause": {"state": "not raised"|"held"|"lifted", "ms", "budgetMs"},
  //  "steps": [{"number", "name", "plan", "state": "waiting"|"running"|"ok"|"failed"|"skipped"|
  //             "not run", "ms" (so far while running), "detail"}]}
  std::string to_json() const;

 private:
  using Steady = std::chrono::steady_clock;
  struct Step {
    std::string name;
    std::string plan;
    std::string state = "waiting";
    Steady::time_point started{};
    std::chrono::milliseconds took{0};
    std::string detail;
  };

  mutable std::mutex mutex_;
  SwitchConfig config_;
  std::vector<Step> steps_;
  std::string on_failure_;
  Steady::time_point started_ = Steady::now();
  std::optional<Steady::time_point> fence_raised_;
  std::optional<std::chrono::milliseconds> write_pause_;
  std::optional<SwitchResult> result_;
};

// Serves the cut-over page (GET /) and the LiveReport (GET /report.json) on 127.0.0.1:port from
// its own thread while the cut-over runs.
class ReportServer {
 public:
  // Throws std::runtime_error naming the port when it cannot listen.
  ReportServer(int port, const LiveReport& report);
  // Once the report is finished, a page that has been watching gets up to 3 s to fetch the final
  // state before the server stops (the process exits right after).
  ~ReportServer();
  ReportServer(const ReportServer&) = delete;
  ReportServer& operator=(const ReportServer&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fhirshift::cutover

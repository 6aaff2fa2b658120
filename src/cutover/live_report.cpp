#include "cutover/live_report.h"

#include <httplib.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "dashboard/pages.h"

namespace fhirshift::cutover {

namespace {

std::chrono::milliseconds since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t);
}

}  // namespace

LiveReport::LiveReport(const SwitchConfig& config, std::vector<std::string> names,
                       std::vector<std::string> plan)
    : config_(config) {
  for (size_t i = 0; i < names.size(); ++i) {
    Step s;
    s.name = std::move(names[i]);
    if (i < plan.size()) s.plan = plan[i];
    steps_.push_back(std::move(s));
  }
  if (plan.size() > names.size()) on_failure_ = plan.back();
}

void LiveReport::step_started(int number, const std::string& name) {
  std::lock_guard lock(mutex_);
  if (number < 1 || static_cast<size_t>(number) > steps_.size()) return;
  Step& s = steps_[number - 1];
  s.name = name;
  s.state = "running";
  s.started = Steady::now();
}

void LiveReport::step_finished(const StepRecord& rec) {
  std::lock_guard lock(mutex_);
  if (rec.number < 1 || static_cast<size_t>(rec.number) > steps_.size()) return;
  Step& s = steps_[rec.number - 1];
  s.state = rec.skipped ? "skipped" : rec.ok ? "ok" : "failed";
  s.took = rec.took;
  s.detail = rec.detail;
}

void LiveReport::fence_raised() {
  std::lock_guard lock(mutex_);
  fence_raised_ = Steady::now();
  write_pause_.reset();
}

void LiveReport::fence_lifted(std::chrono::milliseconds write_pause) {
  std::lock_guard lock(mutex_);
  // A fence left up by an earlier run and lifted now was not raised by this one: no pause of ours.
  if (fence_raised_) write_pause_ = write_pause;
}

void LiveReport::finished(const SwitchResult& result) {
  std::lock_guard lock(mutex_);
  for (Step& s : steps_)
    if (s.state == "waiting" || s.state == "running") s.state = "not run";
  result_ = result;
}

bool LiveReport::is_finished() const {
  std::lock_guard lock(mutex_);
  return result_.has_value();
}

std::string LiveReport::to_json() const {
  std::lock_guard lock(mutex_);
  nlohmann::json j{{"action", config_.action},
                   {"backend", config_.backend},
                   {"from", config_.from},
                   {"to", config_.to},
                   {"dryRun", config_.dry_run},
                   {"running", !result_},
                   {"elapsedMs", since(started_).count()},
                   {"onFailure", on_failure_}};
  if (result_) {
    j["outcome"] = std::string(to_string(result_->outcome));
    j["failedStep"] = result_->failed_step;
    j["reason"] = result_->reason;
    j["trafficOn"] = result_->traffic_on_to ? config_.to : config_.from;
    j["manualActions"] = result_->manual_actions;
  } else {
    j["outcome"] = nullptr;
    j["manualActions"] = nlohmann::json::array();
  }
  nlohmann::json pause{{"budgetMs", config_.max_pause.count()}};
  if (!fence_raised_) {
    pause["state"] = "not raised";
    pause["ms"] = nullptr;
  } else if (write_pause_) {
    pause["state"] = "lifted";
    pause["ms"] = write_pause_->count();
  } else {
    // Held: the page shows the pause growing; after an end without a lift it stays "held" (the
    // manual actions say how to lift the fence).
    pause["state"] = "held";
    pause["ms"] = since(*fence_raised_).count();
  }
  j["writePause"] = pause;
  nlohmann::json steps = nlohmann::json::array();
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    int64_t ms = s.state == "running" ? since(s.started).count() : s.took.count();
    steps.push_back({{"number", i + 1},
                     {"name", s.name},
                     {"plan", s.plan},
                     {"state", s.state},
                     {"ms", s.state == "waiting" || s.state == "not run" ? nlohmann::json(nullptr)
                                                                         : nlohmann::json(ms)},
                     {"detail", s.detail}});
  }
  j["steps"] = steps;
  return j.dump();
}

struct ReportServer::Impl {
  const LiveReport& report;
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> watched{false};       // a page fetched the report
  std::atomic<bool> final_served{false};  // ... and got its finished state
  explicit Impl(const LiveReport& r) : report(r) {}
};

ReportServer::ReportServer(int port, const LiveReport& report)
    : impl_(std::make_unique<Impl>(report)) {
  Impl& im = *impl_;
  im.server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(std::string(dashboard::cutover_page()), "text/html; charset=utf-8");
  });
  im.server.Get("/report.json", [&im](const httplib::Request&, httplib::Response& res) {
    bool finished = im.report.is_finished();
    res.set_header("Cache-Control", "no-store");
    res.set_content(im.report.to_json(), "application/json");
    im.watched = true;
    if (finished) im.final_served = true;
  });
  if (!im.server.bind_to_port("127.0.0.1", port))
    throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port) +
                             " for --report-port (in use?): pick another port or leave it out");
  im.thread = std::thread([&im] { im.server.listen_after_bind(); });
}

ReportServer::~ReportServer() {
  Impl& im = *impl_;
  if (im.report.is_finished() && im.watched) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (!im.final_served && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  im.server.stop();
  im.thread.join();
}

}  // namespace fhirshift::cutover

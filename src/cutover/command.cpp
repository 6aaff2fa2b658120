#include "cutover/command.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cutover/adapters.h"
#include "cutover/live_report.h"
#include "cutover/process.h"

namespace fhirshift::cutover {

std::chrono::milliseconds parse_duration(const std::string& text) {
  auto bad = [&] {
    return std::invalid_argument("'" + text +
                                 "' is not a duration (examples: 200ms, 5s, 2m, 00:00:05)");
  };
  if (text.empty()) throw bad();
  int h, m, s;
  char tail;
  if (std::sscanf(text.c_str(), "%d:%d:%d%c", &h, &m, &s, &tail) == 3)
    return std::chrono::milliseconds((h * 3600LL + m * 60LL + s) * 1000LL);
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    throw bad();
  }
  if (value < 0 || !std::isfinite(value)) throw bad();
  std::string unit = text.substr(used);
  double factor;
  if (unit.empty() || unit == "s") factor = 1000;
  else if (unit == "ms") factor = 1;
  else if (unit == "m" || unit == "min") factor = 60000;
  else if (unit == "h") factor = 3600000;
  else throw bad();
  return std::chrono::milliseconds(static_cast<long long>(std::llround(value * factor)));
}

std::string report_json(const SwitchConfig& cfg, const SwitchResult& r) {
  nlohmann::json j;
  j["action"] = cfg.action;
  j["outcome"] = std::string(to_string(r.outcome));
  j["backend"] = cfg.backend;
  j["from"] = cfg.from;
  j["to"] = cfg.to;
  j["trafficOn"] = r.traffic_on_to ? cfg.to : cfg.from;
  j["failedStep"] = r.failed_step;
  j["reason"] = r.reason;
  j["fenceAt"] = r.fence_at;
  j["verifiedUpTo"] = r.verified_up_to;
  j["verifySince"] = r.verify_since;
  j["writePauseMs"] = r.write_pause ? nlohmann::json(r.write_pause->count()) : nlohmann::json();
  j["drainMs"] = r.drain_time ? nlohmann::json(r.drain_time->count()) : nlohmann::json();
  j["finalVerifyMs"] =
      r.final_verify_time ? nlohmann::json(r.final_verify_time->count()) : nlohmann::json();
  j["inFlightAtFence"] = r.in_flight_at_fence;
  j["heldAtFence"] = r.held_at_fence;
  j["releasedWrites"] = r.released_writes;
  if (r.last_progress) {
    j["migrator"] = {{"caughtUp", r.last_progress->caught_up},
                     {"lagSeconds", r.last_progress->lag_seconds},
                     {"entriesRead", r.last_progress->entries_read},
                     {"entriesWritten", r.last_progress->entries_written}};
  }
  j["manualActions"] = r.manual_actions;
  j["quarantineAccounted"] = r.quarantine_accounted;
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : r.steps) {
    steps.push_back({{"number", s.number},
                     {"name", s.name},
                     {"startedAt", format_iso8601(s.started)},
                     {"ms", s.took.count()},
                     {"ok", s.ok},
                     {"skipped", s.skipped},
                     {"detail", s.detail}});
  }
  j["steps"] = steps;
  return j.dump(2);
}

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int sig) {
  g_interrupted = true;
  // A second Ctrl-C ends the process at once (the operator insists; the summary explains how to
  // finish by hand).
  ::signal(sig, SIG_DFL);
}

}  // namespace

int run_switch_command(const SwitchCommand& c) {
  HaproxyProxy proxy(c.proxy_socket);
  HttpServerHealth to(c.to_url, c.to_health_path);
  HttpProgressSource progress(c.metrics_url);
  std::optional<SubprocessVerifier> verifier;
  if (!c.verify_args.empty()) verifier.emplace(self_exe(), c.verify_args, c.verify_timeout);
  SystemClock clock;
  Switchover machine(c.config, proxy, to, progress, verifier ? &*verifier : nullptr, clock,
                     [](LogLevel level, const std::string& line) {
                       switch (level) {
                         case LogLevel::kInfo:
                           spdlog::info("{}", line);
                           break;
                         case LogLevel::kWarn:
                           spdlog::warn("{}", line);
                           break;
                         case LogLevel::kError:
                           spdlog::error("{}", line);
                           break;
                       }
                     });
  machine.set_interrupt_check([] { return g_interrupted.load(); });
  // Declared before the server that reads it, so it outlives the server's thread.
  LiveReport live(c.config, machine.step_names(), machine.plan());
  std::optional<ReportServer> report_server;
  if (c.report_port > 0) {
    try {
      report_server.emplace(c.report_port, live);
    } catch (const std::exception& e) {
      spdlog::error("{}; nothing was changed", e.what());
      return 1;
    }
    machine.set_observer(&live);
    spdlog::info("{} live report on http://127.0.0.1:{}/ (JSON: /report.json)", c.config.action,
                 c.report_port);
  }
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  SwitchResult result = machine.run();
  live.finished(result);
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  std::cout << summarize(c.config, result) << std::flush;
  if (!c.report_path.empty()) {
    std::ofstream out(c.report_path);
    out << report_json(c.config, result) << "\n";
    if (!out) spdlog::error("cannot write the report to {}", c.report_path);
  }
  return exit_code(result.outcome);
}

}  // namespace fhirshift::cutover

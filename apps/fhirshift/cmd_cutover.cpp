#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.h"
#include "common/log.h"
#include "cutover/command.h"
#include "switch_options.h"

namespace fhirshift::cli {
namespace {

struct CutoverArgs {
  cutover::SwitchCommand command;
  SwitchOptions options;
  std::string verify_timeout = "30m";
  std::string old_url;  // no longer used: the fence is in HAProxy
  bool verbose = false;
};

int run_cutover(CutoverArgs& a) {
  init_logging(a.verbose);
  auto& c = a.command;
  apply_switch_limits(a.options, c.config);
  c.verify_timeout = cutover::parse_duration(a.verify_timeout);
  if (c.config.max_pause >= std::chrono::seconds(30))
    spdlog::warn("--max-pause {} is not below the 30 s HAProxy's fence holds a write: writes held "
                 "that long are answered 503 + Retry-After", a.options.max_pause);
  if (!a.old_url.empty())
    spdlog::warn("--old-url is no longer used: the cut-over fences writes in HAProxy and asks "
                 "nothing of the old server");
  auto verify_args = verify_connection_args(a.options, "cutover");
  if (!verify_args) return kExitUsage;
  c.verify_args = std::move(*verify_args);
  return cutover::run_switch_command(c);
}

}  // namespace

void add_cutover(CLI::App& app, Action& action) {
  auto a = std::make_shared<CutoverArgs>();
  auto& c = a->command;
  c.config.action = "cutover";
  auto* sub = app.add_subcommand(
      "cutover",
      "Switch client traffic from the old to the new server through HAProxy's runtime API: no "
      "failed request, no lost write, a short measured write pause.");
  sub->footer(
      "Steps (each logged, numbered, timed and checked):\n"
      "  1-4 read-only: HAProxy state and its write fence, GET <new-url><new-health-path> 2xx,\n"
      "      migrator caught up (--max-lag), verify --mode counts\n"
      "  5 fence writes in HAProxy (held there, reads keep flowing); wait until the writes\n"
      "    already sent to the old server completed\n"
      "  6 wait until the migrator polled after the fence and is caught up (--drain-timeout)\n"
      "  7 final verify --since <fence time - --verify-margin>\n"
      "  8 switch: new leaves maintenance with weight 0, must pass a health check, gets its\n"
      "    weight back; old goes to maintenance\n"
      "  9 lift the fence: held writes go to the new server\n"
      "The fence is tools/haproxy/fhirshift_fence.lua, driven over the runtime API; neither FHIR "
      "server needs anything but FHIR. A failed check before the switch aborts safely: traffic "
      "stays on the old server and its held writes go there. After the new server took a request "
      "the only direction is forward. HAProxy answers a write held longer than 30 s with 503 + "
      "Retry-After, so the pause is bounded by --max-pause. Exit codes: 0 switched (or already switched, or a dry run "
      "whose checks pass), 1 aborted or needs the operator (the summary lists exact manual "
      "actions), 2 usage. See docs/runbook.md.");
  sub->add_option("--proxy-socket", c.proxy_socket,
                  "HAProxy runtime API socket (`stats socket ... level admin`)")
      ->required();
  sub->add_option("--backend", c.config.backend, "HAProxy backend")->capture_default_str();
  sub->add_option("--from", c.config.from, "HAProxy server that serves now (the old server)")
      ->capture_default_str();
  sub->add_option("--to", c.config.to, "HAProxy server to switch to (the new server, in maint)")
      ->capture_default_str();
  sub->add_option("--new-url", c.to_url,
                  "New server's base URL, http://host:port (directly, not through HAProxy): its "
                  "readiness is checked there")
      ->required();
  sub->add_option("--new-health-path", c.to_health_path,
                  "What a ready new server answers 2xx to a GET of (any FHIR server has /metadata)")
      ->capture_default_str();
  sub->add_option("--old-url", a->old_url, "Ignored (older versions fenced the old server itself)");
  sub->add_option("--metrics", c.metrics_url,
                  "Migrator's metrics base URL (migrate --metrics-port), http://host:port")
      ->required();
  add_switch_limits(sub, a->options, c.config, "migrator");
  sub->add_option("--verify-timeout", a->verify_timeout, "Time limit of the preflight verify")
      ->check(kDuration)->capture_default_str();
  add_verify_connection(sub, a->options, "Legacy source (for verify)",
                        "Current-schema target (for verify)");
  sub->add_option("--report", c.report_path, "Write a JSON summary (steps, write pause) to this file");
  sub->add_option("--report-port", c.report_port,
                  "Serve a live page of the nine steps (/) and its JSON (/report.json) on "
                  "127.0.0.1:PORT while the cut-over runs")
      ->check(CLI::Range(1, 65535));
  sub->add_flag("--dry-run", c.config.dry_run,
                "Print the plan with the exact commands, run only the read-only checks, change "
                "nothing");
  sub->add_flag("-v,--verbose", a->verbose, "Debug logging");
  sub->callback([a, &action] { action = [a] { return run_cutover(*a); }; });
}

}  // namespace fhirshift::cli

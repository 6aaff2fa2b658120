#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.h"
#include "common/log.h"
#include "cutover/command.h"

namespace fhirshift::cli {
namespace {

struct CutoverArgs {
  cutover::SwitchCommand command;
  std::string max_lag = "5s";
  std::string catch_up_wait = "60s";
  std::string max_pause = "20s";
  std::string drain_timeout = "15s";
  std::string switch_timeout = "5s";
  std::string verify_margin = "60s";
  std::string poll_interval = "200ms";
  std::string verify_timeout = "30m";
  std::string src_uri, src_collection = "vonkentries";
  std::string dst_uri, dst_collection = "vonkentries";
  bool no_verify = false;
  bool verbose = false;
};

const CLI::Validator kDuration(
    [](std::string& v) {
      try {
        cutover::parse_duration(v);
        return std::string();
      } catch (const std::exception& e) {
        return std::string(e.what());
      }
    },
    "DURATION", "duration");

int run_cutover(CutoverArgs& a) {
  init_logging(a.verbose);
  auto& c = a.command;
  c.config.max_lag = cutover::parse_duration(a.max_lag);
  c.config.catch_up_wait = cutover::parse_duration(a.catch_up_wait);
  c.config.max_pause = cutover::parse_duration(a.max_pause);
  c.config.drain_timeout = cutover::parse_duration(a.drain_timeout);
  c.config.switch_timeout = cutover::parse_duration(a.switch_timeout);
  c.config.verify_margin = cutover::parse_duration(a.verify_margin);
  c.config.poll_interval = cutover::parse_duration(a.poll_interval);
  c.verify_timeout = cutover::parse_duration(a.verify_timeout);
  if (c.config.max_pause >= std::chrono::seconds(30))
    spdlog::warn("--max-pause {} is not below the 30 s a server holds a fenced write: writes held "
                 "that long are answered 503 + Retry-After", a.max_pause);
  if (!a.no_verify) {
    if (a.src_uri.empty() || a.dst_uri.empty()) {
      std::cerr << "fhirshift cutover: the verify steps need --srcMongoConnectionString and "
                   "--mongoConnectionstring (legacy source and current target); pass --no-verify "
                   "to switch without proving the copy equal\n";
      return kExitUsage;
    }
    c.verify_args = {"--srcMongoConnectionString", a.src_uri, "--srcMongoCollection", a.src_collection,
                     "--mongoConnectionstring", a.dst_uri, "--mongoCollection", a.dst_collection};
  }
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
      "  1-4 read-only: HAProxy state, new server /readyz, migrator caught up (--max-lag),\n"
      "      verify --mode counts\n"
      "  5 fence writes on the old server (held, reads keep flowing)\n"
      "  6 wait until the migrator polled after the fence and is caught up (--drain-timeout)\n"
      "  7 final verify --since <fence time - --verify-margin>\n"
      "  8 switch: new leaves maintenance with weight 0, must pass a health check, gets its\n"
      "    weight back; old goes to maintenance\n"
      "  9 release the held writes, forwarded to the new server\n"
      "A failed check before the switch aborts safely: traffic stays on the old server and its "
      "held writes proceed there. After the new server took a request the only direction is "
      "forward. Writes held longer than 30 s are answered 503 + Retry-After by the server, so the "
      "pause is bounded by --max-pause. Exit codes: 0 switched (or already switched, or a dry run "
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
  sub->add_option("--old-url", c.from_url, "Old server's base URL (admin endpoints), http://host:port")
      ->required();
  sub->add_option("--new-url", c.to_url, "New server's base URL, http://host:port; held writes are "
                                         "forwarded there")
      ->required();
  sub->add_option("--metrics", c.metrics_url,
                  "Migrator's metrics base URL (migrate --metrics-port), http://host:port")
      ->required();
  sub->add_option("--max-lag", a->max_lag, "Largest migrator lag accepted before fencing")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--catch-up-wait", a->catch_up_wait,
                  "How long to wait for the migrator to be caught up before fencing")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--max-pause", a->max_pause,
                  "Longest write pause allowed before the switch; over it the cut-over aborts "
                  "and writes proceed on the old server (keep it under the servers' 30 s hold)")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--drain-timeout", a->drain_timeout,
                  "How long to wait for the migrator to copy the last writes after the fence")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--switch-timeout", a->switch_timeout,
                  "How long HAProxy may take to report the new server UP")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--verify-margin", a->verify_margin,
                  "The final verify covers entries since the fence time minus this margin")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--poll-interval", a->poll_interval, "How often /progress is read while waiting")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--final-verify-mode", c.config.final_verify_mode,
                  "Mode of the final verify (full or sample)")
      ->check(CLI::IsMember({"full", "sample", "counts"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option("--verify-timeout", a->verify_timeout, "Time limit of the preflight verify")
      ->check(kDuration)->capture_default_str();
  sub->add_option("--srcMongoConnectionString,--srcMongoConnectionstring", a->src_uri,
                  "Legacy source (for verify)");
  sub->add_option("--srcMongoCollection", a->src_collection, "Source collection")
      ->capture_default_str();
  sub->add_option("--mongoConnectionstring,--mongoConnectionString", a->dst_uri,
                  "Current-schema target (for verify)");
  sub->add_option("--mongoCollection", a->dst_collection, "Target collection")->capture_default_str();
  sub->add_flag("--no-verify", a->no_verify,
                "Switch without the verify steps (not recommended: nothing proves the copy equal)");
  sub->add_option("--report", c.report_path, "Write a JSON summary (steps, write pause) to this file");
  sub->add_flag("--dry-run", c.config.dry_run,
                "Print the plan with the exact commands, run only the read-only checks, change "
                "nothing");
  sub->add_flag("-v,--verbose", a->verbose, "Debug logging");
  sub->callback([a, &action] { action = [a] { return run_cutover(*a); }; });
}

}  // namespace fhirshift::cli

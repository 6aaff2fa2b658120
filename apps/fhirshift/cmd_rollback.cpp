#include <spdlog/spdlog.h>

#include <iostream>
#include <thread>

#include "commands.h"
#include "common/log.h"
#include "cutover/adapters.h"
#include "cutover/command.h"
#include "cutover/rollback.h"
#include "switch_options.h"

namespace fhirshift::cli {
namespace {

struct RollbackArgs {
  bool after_cutover = false;
  cutover::SwitchCommand command;  // --after-cutover
  SwitchOptions options;
  std::string stop_timeout = "60s";
  // before the switch
  std::string migrator_pid_file;
  bool migrator_stopped = false;
  bool drop_target = false;
  std::string delete_journal;
  std::string new_url;  // no longer used: the fence is in HAProxy
  bool verbose = false;
};

constexpr const char* kBothOrNeither =
    "--drop-target and --delete-journal go together, never one alone: a journal without its "
    "target makes the next migrate resume past entries that are gone (it refuses), a target "
    "without its journal makes it copy everything again over a full target";

int run_after_cutover(RollbackArgs& a) {
  auto& c = a.command;
  if (c.proxy_socket.empty() || c.to_url.empty() || c.metrics_url.empty()) {
    std::cerr << "fhirshift rollback --after-cutover needs --proxy-socket, --old-url (traffic "
                 "returns to it: its readiness is checked there) and --metrics (the reverse "
                 "migrator, `fhirshift migrate --reverse --metrics-port P`)\n";
    return kExitUsage;
  }
  apply_switch_limits(a.options, c.config);
  auto verify_args = verify_connection_args(a.options, "rollback --after-cutover");
  if (!verify_args) return kExitUsage;
  c.verify_args = std::move(*verify_args);
  return cutover::run_switch_command(c);
}

int run_before_switch(RollbackArgs& a) {
  auto& c = a.command;
  const std::string backend = c.config.backend;
  const std::string old_srv = c.config.to;    // traffic stays on / returns to
  const std::string new_srv = c.config.from;  // never received traffic
  int step = 0;
  auto say = [&](const std::string& s) { spdlog::info("rollback step {}: {}", ++step, s); };

  // 1. Traffic must still be on the old server; the new one must never have served.
  if (!c.proxy_socket.empty()) {
    cutover::HaproxyProxy proxy(c.proxy_socket);
    cutover::ServerState n = proxy.state(backend, new_srv);
    cutover::ServerState o = proxy.state(backend, old_srv);
    int64_t new_sessions = proxy.sessions_total(backend, new_srv);
    if (n.serving() || new_sessions > 0) {
      spdlog::error("{}/{} is {} and has received {} requests: the switch already happened, so "
                    "writes may exist only in the new store. Use `fhirshift rollback "
                    "--after-cutover` (reverse replication), not this.",
                    backend, new_srv, n.describe(), new_sessions);
      return kExitFailure;
    }
    if (!n.in_maintenance()) proxy.set_state(backend, new_srv, cutover::AdminState::kMaint);
    // An interrupted cut-over leaves it at weight 0 (step 5): back to its configured weight.
    if (n.weight == 0) proxy.set_weight(backend, new_srv, "100%");
    if (!o.serving()) {
      proxy.set_state(backend, old_srv, cutover::AdminState::kReady);
      say("set server " + backend + "/" + old_srv + " state ready (it was " + o.describe() + ")");
    }
    say("HAProxy: " + backend + "/" + old_srv + " " + proxy.state(backend, old_srv).describe() +
        ", " + backend + "/" + new_srv + " " + proxy.state(backend, new_srv).describe() +
        " (never served)");
  } else {
    spdlog::warn("no --proxy-socket: not checking where traffic goes (pass it to have rollback "
                 "confirm that the new server never served)");
  }

  // 2. A fence left by an interrupted cut-over is lifted (held writes go to the old server).
  if (!c.proxy_socket.empty()) {
    cutover::HaproxyRuntime runtime(c.proxy_socket);
    cutover::FenceStatus s = runtime.fence_status(backend);
    if (s.fenced) {
      cutover::FenceStatus after = runtime.set_fence(backend, false);
      say("lifted the write fence in HAProxy: " + std::to_string(after.held) +
          " held writes go to " + backend + "/" + old_srv);
    } else {
      say("the write fence in HAProxy is down: writes flow to " + backend + "/" + old_srv);
    }
  }

  // 3. Stop the migrator.
  if (!a.migrator_pid_file.empty()) {
    say(cutover::stop_migrator(a.migrator_pid_file, cutover::parse_duration(a.stop_timeout)));
  } else if (a.migrator_stopped) {
    say("migrator stopped by the operator (--migrator-stopped)");
  } else {
    say("the migrator was not stopped by this command: stop it yourself (Ctrl-C, or SIGTERM to its "
        "pid: it exits cleanly and its journal keeps the copy resumable)");
  }

  // 4. Clean slate, when asked: target and journal together.
  if (a.drop_target) {
    if (a.migrator_pid_file.empty() && !a.migrator_stopped) {
      std::cerr << "fhirshift rollback: --drop-target needs the migrator stopped first: pass "
                   "--migrator-pid-file F (rollback stops it) or --migrator-stopped (you did)\n";
      return kExitUsage;
    }
    cutover::DropTargetRequest req;
    req.target_uri = a.options.dst_uri;
    req.target_collection = a.options.dst_collection;
    req.journal_dir = a.delete_journal;
    req.source_uri = a.options.src_uri;
    req.source_collection = a.options.src_collection;
    for (const auto& line : cutover::drop_target_and_journal(req)) say(line);
  }
  std::cout << "rollback: DONE: traffic on " << backend << "/" << old_srv
            << ", the old server serves reads and writes"
            << (a.drop_target ? "; target and journal removed, the next migrate starts from zero"
                              : "; target and journal kept, the next migrate resumes")
            << "\n";
  return kExitOk;
}

int run_rollback(RollbackArgs& a) {
  init_logging(a.verbose);
  if (a.drop_target != !a.delete_journal.empty()) {
    std::cerr << "fhirshift rollback: " << kBothOrNeither << "\n";
    return kExitUsage;
  }
  if (a.drop_target && a.options.dst_uri.empty()) {
    std::cerr << "fhirshift rollback: --drop-target needs the target's --mongoConnectionstring\n";
    return kExitUsage;
  }
  if (a.after_cutover && (a.drop_target || !a.migrator_pid_file.empty())) {
    std::cerr << "fhirshift rollback: --after-cutover keeps both stores (the new one holds writes "
                 "made after the switch): --drop-target/--migrator-pid-file do not apply\n";
    return kExitUsage;
  }
  try {
    return a.after_cutover ? run_after_cutover(a) : run_before_switch(a);
  } catch (const cutover::RollbackError& e) {
    spdlog::error("rollback: {}", e.what());
    return kExitFailure;
  }
}

}  // namespace

void add_rollback(CLI::App& app, Action& action) {
  auto a = std::make_shared<RollbackArgs>();
  auto& c = a->command;
  c.config.action = "rollback";
  c.config.from = "new";
  c.config.to = "old";
  auto* sub = app.add_subcommand(
      "rollback",
      "Go back to the old server at any step without losing a write: before the switch (stop "
      "the migrator, optionally drop target + journal) or --after-cutover (reverse replication).");
  sub->footer(
      "BEFORE the switch (default): the old server never stopped serving. rollback checks through "
      "HAProxy (--proxy-socket) that the new server never served, lifts a write fence an "
      "interrupted cut-over left in HAProxy, stops the migrator (--migrator-pid-file; or "
      "stop it yourself and say --migrator-stopped) and, for a clean slate, drops the target AND "
      "deletes the recovery journal: --drop-target --delete-journal DIR, both or neither. A "
      "journal without its target makes the next migrate resume past entries that are gone (it "
      "refuses); a target without its journal makes it copy everything again. The source (a "
      "legacy store, or the --srcMongoConnectionString namespace) is never dropped.\n\n"
      "AFTER the switch (--after-cutover): the new server took writes the legacy store lacks. "
      "First run `fhirshift migrate --reverse` (current -> legacy, with --metrics-port) until it "
      "is caught up; then rollback fences writes in HAProxy, waits for the writes in flight to "
      "the new server and for the reverse migrator to drain (--metrics), switches HAProxy back "
      "and lifts the fence, so held writes go to the old server: the cut-over's state machine, "
      "new -> old, with the same abort rules. See docs/runbook.md.");
  sub->add_flag("--after-cutover", a->after_cutover,
                "Traffic is on the new server: move it back behind reverse replication");
  sub->add_option("--proxy-socket", c.proxy_socket, "HAProxy runtime API socket (level admin)");
  sub->add_option("--backend", c.config.backend, "HAProxy backend")->capture_default_str();
  sub->add_option("--from", c.config.from, "HAProxy server traffic leaves (the new server)")
      ->capture_default_str();
  sub->add_option("--to", c.config.to, "HAProxy server traffic returns to (the old server)")
      ->capture_default_str();
  sub->add_option("--old-url", c.to_url,
                  "--after-cutover: old server's base URL, http://host:port (directly, not through "
                  "HAProxy): its readiness is checked there");
  sub->add_option("--old-health-path", c.to_health_path,
                  "--after-cutover: what a ready old server answers 2xx to a GET of")
      ->capture_default_str();
  sub->add_option("--new-url", a->new_url, "Ignored (older versions fenced the new server itself)");
  sub->add_option("--metrics", c.metrics_url,
                  "--after-cutover: the REVERSE migrator's metrics URL (migrate --reverse "
                  "--metrics-port)");
  add_switch_limits(sub, a->options, c.config, "reverse migrator");
  add_verify_connection(sub, a->options,
                        "Legacy store (verify; and never dropped: --drop-target refuses it)",
                        "Current-schema target (verify; what --drop-target drops)");
  sub->add_option("--migrator-pid-file", a->migrator_pid_file,
                  "Before the switch: stop the migrator whose pid this file holds (SIGTERM, wait)");
  sub->add_option("--stop-timeout", a->stop_timeout, "How long to wait for the migrator to exit")
      ->check(kDuration)->capture_default_str();
  sub->add_flag("--migrator-stopped", a->migrator_stopped,
                "Before the switch: you stopped the migrator yourself");
  sub->add_flag("--drop-target", a->drop_target,
                "Before the switch: drop the target collection (needs --delete-journal too)");
  sub->add_option("--delete-journal", a->delete_journal,
                  "Before the switch: delete this recovery journal directory (needs --drop-target "
                  "too)");
  sub->add_option("--report", c.report_path, "--after-cutover: write a JSON summary to this file");
  sub->add_option("--report-port", c.report_port,
                  "--after-cutover: serve a live page of the nine steps (/) and its JSON "
                  "(/report.json) on 127.0.0.1:PORT while the rollback runs")
      ->check(CLI::Range(1, 65535));
  sub->add_flag("--dry-run", c.config.dry_run,
                "--after-cutover: print the plan and run only the read-only checks");
  sub->add_flag("-v,--verbose", a->verbose, "Debug logging");
  sub->callback([a, &action] { action = [a] { return run_rollback(*a); }; });
}

}  // namespace fhirshift::cli

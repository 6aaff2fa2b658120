#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "commands.h"
#include "common/log.h"
#include "load/load.h"

namespace fhirshift::cli {
namespace {

struct LoadArgs {
  load::LoadOptions options;
  std::string duration = "60s";
  std::string mix = "30:20:45:5";
  std::string retry_budget = "60s";
  std::string check_ledger;
  std::string check_url;
  int check_concurrency = 8;
  bool verbose = false;
};

int run_load(LoadArgs& a) {
  init_logging(a.verbose);
  if (a.options.url.empty()) {
    std::cerr << "fhirshift load: --url is required\n";
    return kExitUsage;
  }
  try {
    a.options.duration = load::parse_duration(a.duration);
    a.options.retry_budget = load::parse_duration(a.retry_budget);
    a.options.mix = load::Mix::parse(a.mix);
  } catch (const std::invalid_argument& e) {
    std::cerr << "fhirshift load: " << e.what() << "\n";
    return kExitUsage;
  }
  // Ctrl-C / SIGTERM end the load: requests in flight finish, then the report.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<bool> finished{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (!finished) spdlog::info("signal {}: stopping the load (requests in flight finish)", sig);
    stop = true;
  });
  spdlog::info("load: {} at {}/s for {} (mix create:update:read:delete {}){}", a.options.url,
               a.options.rate, a.options.duration.count() ? a.duration : "until stopped", a.mix,
               a.options.ledger.empty() ? "" : ", ledger " + a.options.ledger);
  load::LoadReport report;
  try {
    report = load::run_load(a.options, stop);
  } catch (...) {
    finished = true;
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    throw;
  }
  finished = true;
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  std::cout << load::format_report(report) << std::flush;
  return report.total_failed() == 0 ? kExitOk : kExitFailure;
}

int run_check(LoadArgs& a) {
  init_logging(a.verbose);
  load::CheckReport r = load::check_ledger(a.check_ledger, a.check_url, a.check_concurrency);
  for (const auto& p : r.problems) std::cout << p << "\n";
  std::cout << "load check: " << r.versions << " recorded versions of " << r.resources
            << " resources at " << a.check_url << ": " << r.lost << " lost, " << r.wrong
            << " wrong, " << r.unreachable << " unchecked: "
            << (r.passed() ? "OK" : "FAILED") << "\n";
  return r.passed() ? kExitOk : kExitFailure;
}

}  // namespace

void add_load(CLI::App& app, Action& action) {
  auto a = std::make_shared<LoadArgs>();
  auto* sub = app.add_subcommand(
      "load",
      "FHIR load generator: realistic resources at a fixed rate, every acknowledged write recorded "
      "in a ledger; `load check` reads every recorded version back.");
  sub->footer(
      "Exit code 0 when no request failed (503 + Retry-After answers are retried, as during a\n"
      "cut-over's write pause). Ctrl-C ends the load early and prints the report.\n"
      "  fhirshift load --url http://proxy:8080 --rate 25 --duration 10m --mix 30:20:45:5 --ledger l.jsonl\n"
      "  fhirshift load check --ledger l.jsonl --url http://proxy:8080");
  sub->add_option("--url", a->options.url, "Base URL of the FHIR server (or of HAProxy)");
  sub->add_option("--rate", a->options.rate, "Requests per second (all operations)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--duration", a->duration, "How long: 90s, 10m, 1h; 0 = until Ctrl-C")
      ->capture_default_str();
  sub->add_option("--mix", a->mix, "Weights create:update:read:delete")->capture_default_str();
  sub->add_option("--ledger", a->options.ledger,
                  "Append every acknowledged write (type, id, version, content hash) to this file");
  sub->add_option("--seed", a->options.seed, "Seed of the resource generator")->capture_default_str();
  sub->add_option("--concurrency", a->options.concurrency, "Requests in flight at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  sub->add_option("--retry-budget", a->retry_budget,
                  "Retry a 503 + Retry-After answer for at most this long")
      ->capture_default_str();
  sub->add_flag("-v,--verbose", a->verbose, "Debug logging");

  auto* check = sub->add_subcommand(
      "check", "Read every version recorded in a ledger back; exit 0 iff none is lost or wrong");
  check->add_option("--ledger", a->check_ledger, "Ledger written by `fhirshift load --ledger`")
      ->required();
  check->add_option("--url", a->check_url, "Base URL of the FHIR server to check")->required();
  check->add_option("--concurrency", a->check_concurrency, "Parallel reads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  check->add_flag("-v,--verbose", a->verbose, "Debug logging");

  sub->callback([a, check, &action] {
    if (check->parsed()) action = [a] { return run_check(*a); };
    else action = [a] { return run_load(*a); };
  });
}

}  // namespace fhirshift::cli

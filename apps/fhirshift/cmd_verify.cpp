#include <spdlog/spdlog.h>

#include <fstream>
#include <future>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "commands.h"
#include "common/log.h"
#include "index/indexer.h"
#include "verify/verifier.h"

namespace fhirshift::cli {
namespace {

// --stdin-stages: the lines `source` and `target` on standard input say that a store is final (the
// cut-over writes them once writes are held, and once the migrator has drained). End of input
// before a line cancels the verify: the cut-over aborted.
class StdinStages {
 public:
  // The reading thread keeps the stages alive: it may still be blocked in a read at exit.
  static std::shared_ptr<StdinStages> start() {
    auto stages = std::shared_ptr<StdinStages>(new StdinStages());
    std::thread([stages] { stages->read(); }).detach();
    return stages;
  }
  void wait(bool source) {
    spdlog::info("verify: waiting for `{}` on standard input", source ? "source" : "target");
    (source ? source_future_ : target_future_).get();
  }

 private:
  StdinStages() = default;
  void read() {
    bool source_said = false;
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line != "source" && line != "target") continue;
      if (!source_said) {
        source_said = true;
        source_.set_value();
      }
      if (line == "target") {
        target_.set_value();
        return;
      }
    }
    auto cancelled = std::make_exception_ptr(std::runtime_error(
        "cancelled: standard input ended before the cut-over said the stores are final"));
    if (!source_said) source_.set_exception(cancelled);
    target_.set_exception(cancelled);
  }

  std::promise<void> source_, target_;
  std::shared_future<void> source_future_ = source_.get_future().share();
  std::shared_future<void> target_future_ = target_.get_future().share();
};

struct VerifyArgs {
  verify::Options options;
  std::string mode = "full";
  std::string since;
  std::string report;
  double settle_seconds = 5;
  bool stdin_stages = false;
  bool verbose = false;
};

int run_verify(VerifyArgs& a) {
  init_logging(a.verbose);
  try {
    a.options.mode = verify::parse_mode(a.mode);
  } catch (const std::invalid_argument& e) {
    std::cerr << "fhirshift verify: " << e.what() << "\n";
    return kExitUsage;
  }
  if (!a.since.empty()) {
    a.options.since_ms = parse_iso8601(a.since);
    if (!a.options.since_ms) {
      std::cerr << "fhirshift verify: --since '" << a.since
                << "' is not an ISO-8601 time (e.g. 2024-05-01T12:00:00.000Z)\n";
      return kExitUsage;
    }
  }
  a.options.settle_ms = static_cast<int64_t>(a.settle_seconds * 1000);
  if (a.options.delete_extra && !a.options.repair) {
    std::cerr << "fhirshift verify: --delete-extra only goes with --repair\n";
    return kExitUsage;
  }
  if (a.options.repair && a.options.mode == verify::Mode::kCounts) {
    std::cerr << "fhirshift verify: --repair needs --mode full or sample (counts cannot tell "
                 "which entries differ)\n";
    return kExitUsage;
  }
  if (a.stdin_stages && (a.options.mode != verify::Mode::kFull || !a.options.since_ms ||
                         a.options.repair)) {
    std::cerr << "fhirshift verify: --stdin-stages goes with --mode full --since, without --repair\n";
    return kExitUsage;
  }
  std::shared_ptr<StdinStages> stages;
  if (a.stdin_stages) {
    stages = StdinStages::start();
    a.options.wait_until_final = [stages](bool source) { stages->wait(source); };
  }
  try {
    auto indexer = index::Indexer::load(index::Indexer::default_definitions_path());
    verify::Result result = verify::run_verify(a.options, indexer);
    if (!a.report.empty()) {
      std::ofstream out(a.report);
      out << result.to_json().dump(2) << "\n";
      if (!out) {
        std::cerr << "fhirshift verify: cannot write the report to " << a.report << "\n";
        std::cout << result.text() << std::flush;
        return kExitFailure;
      }
    }
    std::cout << result.text() << std::flush;
    return result.equal() ? kExitOk : kExitFailure;
  } catch (const std::exception& e) {
    spdlog::error("verify failed: {}", e.what());
    std::cerr << "fhirshift verify: " << e.what() << "\n";
    return kExitFailure;
  }
}

}  // namespace

void add_verify(CLI::App& app, Action& action) {
  auto a = std::make_shared<VerifyArgs>();
  auto* sub = app.add_subcommand(
      "verify",
      "Prove the current-schema target equal to the legacy source, or name what differs "
      "(exit 0 only when equal); --repair re-copies what differs through the migrator's transform.");
  sub->footer(
      "\nModes:\n"
      "  full    (default) every entry deep-compared in _id order, idx recomputed, version state\n"
      "          checked; with --since only resources touched since then (the cut-over's final\n"
      "          verify)\n"
      "  sample  --sample N random source entries, their resources deep-compared\n"
      "  counts  entries per (im, type, change) and per cur, side by side\n"
      "The last line is the verdict: EQUAL (...) or DIFFERENT: n missing, n extra, n changed,\n"
      "n bad state (...). Entries newer than the start point are reported as in flight, not as\n"
      "differences; verify again once writes are fenced for a final answer. See docs/verify.md.\n");
  auto& o = a->options;
  sub->add_option("--srcMongoConnectionString,--srcMongoConnectionstring", o.source_uri,
                  "Legacy source connection string (database in the path, default vonkdata)")
      ->required();
  sub->add_option("--srcMongoCollection", o.source_collection, "Source collection")
      ->capture_default_str();
  sub->add_option("--mongoConnectionstring,--mongoConnectionString", o.target_uri,
                  "Current-schema target connection string")
      ->required();
  sub->add_option("--mongoCollection", o.target_collection, "Target collection")
      ->capture_default_str();
  sub->add_option("--mode", a->mode, "counts, sample or full")
      ->check(CLI::IsMember({"counts", "sample", "full"}))
      ->capture_default_str();
  sub->add_option("--since", a->since,
                  "Only resources with an entry written at or after this ISO-8601 time (by the time in its "
                  "ObjectId _id, which every store indexes)");
  sub->add_option("--sample", o.sample, "Entries to sample in --mode sample")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--sample-seed", o.sample_seed, "Replays a sample (the report prints the seed)");
  sub->add_option("--report", a->report, "Write the JSON report to this file");
  sub->add_flag("--repair", o.repair,
                "Re-copy missing and changed entries and fix version state, then re-verify them");
  sub->add_flag("--delete-extra", o.delete_extra,
                "With --repair: also delete target entries the source does not have");
  sub->add_option("--settle", a->settle_seconds,
                  "Seconds to wait before looking at differences again (a continuous migrator may "
                  "still be copying them); 0: report at once")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  sub->add_option("--parallelism", o.parallelism, "Repair write workers")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  sub->add_flag("--stdin-stages", a->stdin_stages,
                "With --mode full --since: connect at once, then read the source only after a line "
                "`source` and the target only after a line `target` on standard input (the "
                "cut-over starts its final verify before the fence this way); end of input cancels");
  sub->add_flag("-v,--verbose", a->verbose, "Debug logging");
  sub->callback([a, &action] { action = [a] { return run_verify(*a); }; });
}

}  // namespace fhirshift::cli

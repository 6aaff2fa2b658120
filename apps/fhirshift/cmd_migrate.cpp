#include <httplib.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "commands.h"
#include "common/log.h"
#include "dashboard/history.h"
#include "dashboard/routes.h"
#include "legacy_options.h"
#include "migrate/engine.h"
#include "migrate/file_import.h"
#include "migrate/file_source.h"
#include "migrate/journal.h"
#include "migrate_control.h"
#include "mongo/error.h"
#include "provision/provision.h"

namespace fhirshift::cli {
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

// Option values are case-insensitive like the legacy tool's (--sourceType filesystem).
bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y)); });
}

struct MigrateArgs {
  std::string fhir_version = "R4";
  std::string provision = "false";
  std::string journal;
  std::string source_type;  // empty: decided by resolve_source_type
  std::string source_path;
  std::string src_uri;
  std::string src_collection = "vonkentries";
  std::string running_mode = "AdHoc";
  std::string policy = "ErrorOnConflict";
  std::string db_type = "MongoDb";
  std::string dst_uri;
  std::string dst_collection = "vonkentries";
  LegacyOptions legacy;
  std::string poll_interval = "5s";
  std::string late_window = "30s";
  std::string retry_timeout = "10m";
  std::string search_parameters;
  int64_t limit = 0;
  bool halt_on_error = false;
  int batch = 1000;
  int parallelism = 0;
  int metrics_port = 0;
  std::string metrics_bind = "127.0.0.1";
  double max_rate = 0;
  std::string max_source_latency = "0";
  bool dry_run = false;
  bool reverse = false;
  bool verbose = false;
};

// The legacy tool's default source type is the file system, so `--source DIR` alone is an import
// (its runbook provisions a sharded target by importing an empty folder). A database source is
// named with --sourceType MongoDb, or implied by a --srcMongoConnectionString without --source.
std::string resolve_source_type(const MigrateArgs& a) {
  if (!a.source_type.empty()) return a.source_type;
  return !a.src_uri.empty() && a.source_path.empty() ? "MongoDb" : "Filesystem";
}

int run_migrate(const MigrateArgs& a) {
  init_logging(a.verbose);
  migrate::Options o;
  try {
    a.legacy.log_notices();
    if (a.fhir_version != "R4" && a.fhir_version != "r4")
      spdlog::info("--fhir-version {}: entries keep their own information model (im); STU3 and R4 are both migrated",
                   a.fhir_version);
    o.source_uri = a.src_uri;
    o.source_collection = a.src_collection;
    o.target_uri = a.dst_uri;
    o.target_collection = a.dst_collection;
    o.mode = migrate::parse_running_mode(a.running_mode);
    o.policy = migrate::parse_conflict_policy(a.policy);
    o.provision_target = parse_bool_flag(a.provision, "--provisionTargetDatabase");
    if (!a.journal.empty()) o.journal_dir = a.journal;
    o.batch_size = a.batch;
    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    o.parallelism = a.parallelism > 0 ? a.parallelism : static_cast<int>(std::min(8u, cores * 2));
    o.poll_interval = migrate::parse_interval(a.poll_interval);
    o.late_entry_window = migrate::parse_interval(a.late_window);
    o.retry_timeout = migrate::parse_interval(a.retry_timeout);
    o.limit = a.limit;
    if (a.max_rate < 0)
      throw std::invalid_argument("--max-rate must be >= 0 entries/s (0: no limit)");
    o.max_rate = a.max_rate;
    try {
      o.max_source_latency = migrate::parse_interval(a.max_source_latency);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("--max-source-latency: ") + e.what());
    }
    if (o.max_source_latency.count() < 0)
      throw std::invalid_argument(
          "--max-source-latency must be a duration >= 0 such as 200ms (0: no limit)");
    o.halt_on_error = a.halt_on_error;
    o.dry_run = a.dry_run;
    o.reverse = a.reverse;
    o.search_parameters = a.search_parameters;
  } catch (const std::invalid_argument& e) {
    std::cerr << "fhirshift migrate: " << e.what() << "\n";
    return kExitUsage;
  }
  const std::string source_type = resolve_source_type(a);
  const bool from_files = iequals(source_type, "Filesystem");
  if (!from_files && !iequals(source_type, "MongoDb")) {
    std::cerr << "fhirshift migrate: --sourceType " << source_type
              << " is not supported; use --sourceType MongoDb or --sourceType Filesystem\n";
    return kExitUsage;
  }
  if (from_files) {
    // Files are read once: there is nothing to follow, and no database to read them from.
    const char* refusal = nullptr;
    if (a.source_path.empty())
      refusal = a.source_type.empty()
                    ? "name a source: -s DIR|FILE to import files (the default source type), or "
                      "--sourceType MongoDb --srcMongoConnectionString URI to copy a legacy database"
                    : "--sourceType Filesystem needs -s DIR|FILE (ndjson files or Bundles)";
    else if (!std::filesystem::exists(a.source_path)) refusal = "-s: no such file or directory";
    else if (o.mode == migrate::RunningMode::kContinuous)
      refusal = "--srcMongoRunningMode Continuous makes no sense for files (they are read once); use AdHoc";
    else if (!a.src_uri.empty())
      refusal = "--srcMongoConnectionString is for --sourceType MongoDb; with Filesystem the source is -s";
    else if (o.reverse) refusal = "--reverse is for a current-schema source database, not for files";
    else if (o.policy == migrate::ConflictPolicy::kOnlyIfNewer)
      refusal = "--update-existing-resources OnlyIfNewer is not supported for files (use true, false or ErrorOnConflict)";
    if (refusal) {
      std::cerr << "fhirshift migrate: " << refusal << (a.source_path.empty() ? "" : " (-s " + a.source_path + ")")
                << "\n";
      return kExitUsage;
    }
    o.source_path = a.source_path;
  } else if (a.src_uri.empty()) {
    std::cerr << "fhirshift migrate: --srcMongoConnectionString is required with --sourceType MongoDb\n";
    return kExitUsage;
  }
  if (a.dst_uri.empty()) {
    std::cerr << "fhirshift migrate: --mongoConnectionstring is required\n";
    return kExitUsage;
  }
  if (o.batch_size < 1 || o.batch_size > 100000) {
    std::cerr << "fhirshift migrate: --mongoBatch must be between 1 and 100000\n";
    return kExitUsage;
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::unique_ptr<migrate::Engine> engine;
  std::unique_ptr<migrate::FileImport> file_import;
  if (from_files) file_import = std::make_unique<migrate::FileImport>(o, g_stop);
  else engine = std::make_unique<migrate::Engine>(o, g_stop);
  const migrate::Progress& progress = from_files ? file_import->progress() : engine->progress();
  migrate::Throttle& throttle = from_files ? file_import->throttle() : engine->throttle();

  std::unique_ptr<httplib::Server> metrics;
  std::thread metrics_thread;
  dashboard::ProgressHistory history;
  std::unique_ptr<dashboard::HistoryRecorder> recorder;
  if (a.metrics_port > 0) {
    metrics = std::make_unique<httplib::Server>();
    metrics->Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(progress.to_prometheus(), "text/plain; version=0.0.4");
    });
    metrics->Get("/progress", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(progress.to_json(), "application/json");
    });
    dashboard::add_migrate_routes(*metrics, history);
    add_control_routes(*metrics, throttle);
    recorder = std::make_unique<dashboard::HistoryRecorder>(history, [&progress] {
      migrate::Tally t = progress.tally();
      return dashboard::Sample{.read = t.read,
                               .written = t.written,
                               .lag_seconds = progress.lag_seconds(),
                               .quarantined = t.quarantined,
                               .conflicts = t.conflicts};
    });
    if (!metrics->bind_to_port(a.metrics_bind, a.metrics_port)) {
      std::cerr << "fhirshift migrate: cannot listen on " << a.metrics_bind << ":" << a.metrics_port
                << " for --metrics-port (in use? is --metrics-bind an address of this host?)\n";
      return kExitFailure;
    }
    metrics_thread = std::thread([&] { metrics->listen_after_bind(); });
    spdlog::info(
        "metrics on http://{0}:{1}/metrics and /progress; dashboard on http://{0}:{1}/; control: "
        "POST /pause, /resume, /throttle, /poll",
        a.metrics_bind, a.metrics_port);
    if (a.metrics_bind != "127.0.0.1" && a.metrics_bind != "localhost" && a.metrics_bind != "::1")
      spdlog::warn(
          "--metrics-bind {}: whoever reaches this address can pause and throttle the migration",
          a.metrics_bind);
  }
  auto stop_metrics = [&] {
    if (metrics) {
      metrics->stop();
      metrics_thread.join();
    }
  };

  int code = kExitFailure;
  try {
    migrate::RunResult r = from_files ? file_import->run() : engine->run();
    std::cout << r.report << std::flush;
    code = r.exit_code;
  } catch (const mongo::MongoError& e) {
    spdlog::error("{}", e.what());
  } catch (const migrate::JournalError& e) {
    spdlog::error("{}", e.what());
  } catch (const migrate::FileSourceError& e) {
    spdlog::error("{}", e.what());
  } catch (const provision::ProvisionError& e) {
    spdlog::error("{}", e.what());
  } catch (const std::exception& e) {
    spdlog::error("migration failed: {}", e.what());
  }
  stop_metrics();
  return code;
}

}  // namespace

void add_migrate(CLI::App& app, Action& action) {
  auto a = std::make_shared<MigrateArgs>();
  auto* sub = app.add_subcommand(
      "migrate",
      "Copy every entry of a legacy store into the current schema (search index recomputed), once "
      "(AdHoc) or continuously until the cut-over (Continuous); resumable with a recovery journal.");
  sub->add_option("--fhir-version", a->fhir_version, "FHIR version of the store (R4)");
  sub->add_option("--provisionTargetDatabase", a->provision, "Provision the target first: true or false");
  sub->add_option("--useRecoveryJournal", a->journal,
                  "Directory of the recovery journal; a restart resumes where the run stopped");
  sub->add_option(
      "--sourceType", a->source_type,
      "Filesystem: import FHIR R4 ndjson files and batch/transaction/collection Bundles, each "
      "resource as a new version; MongoDb: copy a legacy store. Default, as in the legacy tool: "
      "Filesystem, except that a --srcMongoConnectionString without -s means MongoDb");
  sub->add_option(
      "-s,--source", a->source_path,
      "Files to import: a file, or a directory whose *.ndjson and *.json files are read in name "
      "order (an empty directory imports nothing: with --provisionTargetDatabase true it only "
      "provisions the target)");
  sub->add_option("--srcMongoConnectionString,--srcMongoConnectionstring", a->src_uri,
                  "Source MongoDB connection string; the database is its path (default vonkdata)");
  sub->add_option("--srcMongoCollection", a->src_collection, "Source collection")->capture_default_str();
  sub->add_option("--srcMongoRunningMode", a->running_mode, "AdHoc (stop when done) or Continuous")
      ->capture_default_str();
  sub->add_option("--update-existing-resources", a->policy,
                  "true, false, ErrorOnConflict or OnlyIfNewer")->capture_default_str();
  sub->add_option("--dbType", a->db_type, "Target database type (MongoDb)")
      ->check(CLI::IsMember({"MongoDb"}, CLI::ignore_case));
  sub->add_option("--mongoConnectionstring,--mongoConnectionString", a->dst_uri, "Target MongoDB connection string");
  sub->add_option("--mongoCollection", a->dst_collection, "Target collection")->capture_default_str();
  sub->add_option("--limit", a->limit, "Stop after this many source entries (0: all)");
  sub->add_flag("--haltOnError", a->halt_on_error, "Stop at the first quarantined entry, conflict or error");
  sub->add_option("--mongoBatch", a->batch, "Entries per write batch")->capture_default_str();
  sub->add_option("--mongoPar", a->parallelism, "Write batches in flight (default: 2 x cores, at most 8)");
  sub->add_option("--pollInterval", a->poll_interval, "Continuous: wait between polls (5s, 200ms, 00:00:05)")
      ->capture_default_str();
  sub->add_option("--lateEntryWindow", a->late_window,
                  "Continuous: rescan this much of the recent _id range for entries committed late")
      ->capture_default_str();
  sub->add_option("--retryTimeout", a->retry_timeout, "Give up when the source or target stays unreachable this long")
      ->capture_default_str();
  sub->add_option(
      "--metrics-port", a->metrics_port,
      "Serve /metrics (Prometheus), /progress (JSON), a live dashboard (/) and the runtime control "
      "POST /pause, /resume, /throttle?maxRate=N&maxSourceLatency=D (fhirshift ctl) on "
      "127.0.0.1:PORT (see --metrics-bind)");
  sub->add_option(
         "--metrics-bind", a->metrics_bind,
         "Address of --metrics-port; anyone who reaches it can pause and throttle the migration")
      ->capture_default_str();
  sub->add_option("--max-rate", a->max_rate,
                  "Read at most N source entries/s (0: no limit); changeable at run time "
                  "(fhirshift ctl throttle)")
      ->capture_default_str();
  sub->add_option(
         "--max-source-latency", a->max_source_latency,
         "Slow down while the p90 of the source's response times exceeds D (200ms, 1s; 0: off), "
         "speed up again when it recovers; with -s files it watches the target")
      ->capture_default_str();
  sub->add_option("--search-parameters", a->search_parameters, "FHIR R4 search-parameters.json (default: the pinned one)");
  sub->add_flag("--dry-run", a->dry_run, "Read and transform everything, write nothing, print the report");
  sub->add_flag("--reverse", a->reverse,
                "Reverse replication: the source is a current-schema store, the target a legacy one "
                "(rollback after the cut-over)");
  sub->add_flag("-v,--verbose", a->verbose, "Debug logging");
  a->legacy.add_to(sub);
  sub->callback([&action, a] { action = [a] { return run_migrate(*a); }; });
}

}  // namespace fhirshift::cli

#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.h"
#include "common/log.h"
#include "mongo/error.h"
#include "seed/seed.h"

namespace fhirshift::cli {

void add_seed(CLI::App& app, Action& action) {
  struct Args {
    std::string uri;
    seed::SeedOptions options;
    bool verbose = false;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand(
      "seed", "Fill a legacy store with a generated, deterministic history (tests, demo, benchmarks)");
  sub->add_option("--mongoConnectionstring,--mongoConnectionString", a->uri,
                  "MongoDB connection string; the database is its path (default vonkdata)")
      ->required();
  sub->add_option("--mongoCollection", a->options.collection, "Collection")->capture_default_str();
  sub->add_option("--entries", a->options.entries, "Entries to write")->capture_default_str();
  sub->add_option("--seed", a->options.seed, "Random seed (same seed, same store)")->capture_default_str();
  sub->add_option("--start-ms", a->options.start_ms, "lu of the first entry (ms since the epoch)")
      ->capture_default_str();
  sub->add_flag("-v,--verbose", a->verbose, "Debug logging");
  sub->callback([&action, a] {
    action = [a] {
      init_logging(a->verbose);
      try {
        mongo::ClientPool pool(mongo::Uri::parse(a->uri));
        pool.acquire().ping();
        auto last_log = std::chrono::steady_clock::now();
        seed::SeedReport r = seed::seed_legacy_store(pool, a->options, [&](int64_t done) {
          auto now = std::chrono::steady_clock::now();
          if (now - last_log > std::chrono::seconds(5)) {
            spdlog::info("seed: {} / {} entries", done, a->options.entries);
            last_log = now;
          }
        });
        std::cout << "seeded " << r.entries << " entries (" << r.resources << " resources, "
                  << r.tombstones << " tombstones, " << r.contained << " contained)\n";
        return kExitOk;
      } catch (const std::exception& e) {
        spdlog::error("seed failed: {}", e.what());
        return kExitFailure;
      }
    };
  });
}

}  // namespace fhirshift::cli

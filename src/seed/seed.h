// A deterministic generator of legacy stores (what the old server would have written): resources of
// several types with updates, deletes, tombstones, contained resources, STU3 entries and legacy
// search fields. Used by tests, the demo and the benchmarks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "mongo/client.h"

namespace fhirshift::seed {

struct SeedOptions {
  std::string collection = "vonkentries";
  int64_t entries = 10000;  // entries to write (versions, tombstones and contained entries all count)
  uint64_t seed = 1;
  int64_t start_ms = 1700000000000;  // lu of the first entry; each next one is later
  int batch = 1000;
  bool write_system_document = true;
};

struct SeedReport {
  int64_t entries = 0;
  int64_t resources = 0;
  int64_t tombstones = 0;
  int64_t contained = 0;
};

// Appends `options.entries` entries to the collection (database from the pool's URI).
SeedReport seed_legacy_store(mongo::ClientPool& pool, const SeedOptions& options,
                             const std::function<void(int64_t done)>& on_progress = {});

}  // namespace fhirshift::seed

// What the benchmarks share: the target's insertMany ceiling, and the process figures they print.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mongo/bson.h"
#include "mongo/client.h"

namespace fhirshift::bench {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0);
int64_t peak_rss_mb();  // of this process so far

// Inserts `docs` into `collection` with unordered insertMany batches of `batch` documents, `par`
// of them in flight, and returns the seconds it took: the fastest the target takes these
// documents, which the importer and the migrator are measured against. Throws when any document
// was refused (the ceiling of a partial insert means nothing).
double insert_all(mongo::ClientPool& pool, const std::string& collection, const std::vector<mongo::Bson>& docs,
                  int batch, int par);

}  // namespace fhirshift::bench

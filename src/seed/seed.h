// A deterministic generator of legacy stores (what the old server would have written): resources of
// several types with updates, deletes, tombstones, contained resources, STU3 entries and legacy
// search fields. Used by tests, the demo and the benchmarks.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>

#include "mongo/client.h"
#include "mongo/collection.h"

namespace fhirshift::seed {

// The resource types the generator writes. A MedicationRequest carries a contained Medication,
// stored both in its body and as its own contained (`cnt`) entry.
inline constexpr const char* kResourceTypes[] = {"Patient",   "Observation",  "Encounter",    "Condition",
                                                 "Procedure", "Practitioner", "Organization", "MedicationRequest"};

// The FHIR JSON of one version as the generator writes it (meta included, as the old server stores
// it); `rng` picks the contents. Public so that live writers (bench/migrate) make the same shapes.
std::string resource_body(std::mt19937_64& rng, const std::string& type, const std::string& id,
                          const std::string& v, int64_t lu_ms, int version, uint64_t med_code);
// The contained Medication's JSON (res_id "med1").
std::string contained_medication(uint64_t med_code);

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

// Makes `coll` look like the old server's store before its first entry: the legacy system document
// and the old server's (im, type, res_id, cur) index. Also used by bench/import's legacy store of a
// Synthea-shaped export, so that both benchmark sources are the same kind of store.
void prepare_legacy_store(mongo::Collection& coll);

// Appends `options.entries` entries to the collection (database from the pool's URI).
SeedReport seed_legacy_store(mongo::ClientPool& pool, const SeedOptions& options,
                             const std::function<void(int64_t done)>& on_progress = {});

}  // namespace fhirshift::seed

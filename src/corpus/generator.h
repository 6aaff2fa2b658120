// A deterministic, seeded generator of realistic FHIR R4 resources: the shared corpus of the
// indexer's differential test, the benchmarks and the load generator.
//
// Realistic means what real stores hold and what breaks naive code: names with diacritics and
// several parts, identifiers with systems, CodeableConcepts with several codings and text,
// extensions (simple and nested), choice types (value[x], onset[x], effective[x], ...), dates of
// every precision (year .. milliseconds) with and without zones, relative, absolute, logical and
// contained references, contained resources, decimals whose text matters ("1.50").
// Bodies carry no meta.versionId/meta.lastUpdated: the store sets those.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fhirshift::corpus {

class Generator {
 public:
  explicit Generator(uint64_t seed);

  // One resource of `type` (one of types()) with logical id `id`, as compact JSON text whose first
  // members are resourceType and id. The same seed and the same sequence of calls yield the same
  // bytes on every platform. Throws std::invalid_argument for a type not in types().
  std::string resource(std::string_view type, std::string_view id);

  // A type drawn from types() with realistic weights (Observation most often, then Patient,
  // Encounter, Condition, ...).
  std::string_view random_type();

  // Every type this generator produces (at least 30 R4 resource types).
  static const std::vector<std::string>& types();

 private:
  uint64_t state_;
};

}  // namespace fhirshift::corpus

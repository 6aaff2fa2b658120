// A generated bulk FHIR export shaped like a Synthea R4 one, for the import benchmark: one ndjson
// file per resource type (`Observation.ndjson`, ...; `.ndjson.gz` when compressed), the type mix
// of a Synthea population (observations most, one patient per ~100 resources, a clinical note per
// encounter) and its record sizes: Encounter, Procedure, MedicationRequest and Condition of
// 0.5-1.5 KB, DocumentReference ~3.3 KB with the note as a base64 attachment, Claim and
// ExplanationOfBenefit larger. Bodies come from corpus::Generator; a record shorter than its type's
// range gets a narrative (`text`), as Synthea writes them, and the note's length is drawn.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "corpus/generator.h"

namespace fhirshift::corpus {

struct ExportType {
  const char* name;
  int share;      // resources of this type per 100
  int min_bytes;  // record size range
  int max_bytes;
};

// The 13 types of the export with their share and size range.
const std::vector<ExportType>& export_types();

struct ExportOptions {
  int64_t resources = 50000;
  uint64_t seed = 1;
  bool gzip = false;
};

struct ExportReport {
  int64_t resources = 0;
  int64_t bytes = 0;  // of the records (uncompressed, newlines included)
  std::map<std::string, int64_t> resources_by_type;
  std::map<std::string, int64_t> bytes_by_type;
  std::vector<std::filesystem::path> files;
};

// Writes the export into `dir` (created if needed; files of the same names are replaced). The same
// options give the same bytes. Throws std::runtime_error naming the file when it cannot be written.
ExportReport write_bulk_export(const std::filesystem::path& dir, const ExportOptions& options);

// One record of `type` (one of export_types()) with id `id`, sized into the type's range when the
// generator allows it; `draw` picks the size. Exposed for the tests.
std::string export_record(Generator& generator, const ExportType& type, const std::string& id, uint64_t draw);

}  // namespace fhirshift::corpus

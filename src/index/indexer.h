// The search indexer: computes a resource's `idx` (docs/schema.md) from its FHIR JSON text
// with the official R4 SearchParameter definitions. No MongoDB dependency; used by the migrator,
// the FHIR server and verify.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "index/index_value.h"

namespace fhirshift::index {

enum class ParamType { kString, kToken, kReference, kDate, kNumber, kQuantity, kUri, kComposite, kSpecial };

// One search parameter as it applies to one resource type.
struct ParamInfo {
  std::string code;        // "name", "identifier", "_id", ...
  ParamType type = ParamType::kString;
  std::string expression;  // the part of the FHIRPath expression that applies to this type
};

// Problems met while indexing; never fatal.
struct IndexStats {
  int64_t evaluation_errors = 0;  // a parameter that failed on odd data (it yields nothing)
  int64_t skipped_params = 0;     // composite and special parameters (not indexed)
};

class Indexer {
 public:
  // Reads and compiles every definition once. Throws std::runtime_error naming the file, or the
  // parameter whose expression cannot be compiled.
  static std::shared_ptr<const Indexer> load(const std::filesystem::path& search_parameters_json);
  // $FHIRSHIFT_SEARCH_PARAMETERS when set, else the file the build was configured with.
  static std::filesystem::path default_definitions_path();

  virtual ~Indexer() = default;
  // Thread-safe. `json` is the resource's JSON text. Never throws on odd data: a parameter that
  // fails yields nothing and is counted in `stats`; unparsable JSON yields an empty index.
  virtual SearchIndex index(std::string_view resource_type, std::string_view json,
                            IndexStats* stats = nullptr) const = 0;
  // The parameter `code` of `resource_type` (including the common Resource ones), or nullptr.
  virtual const ParamInfo* param(std::string_view resource_type, std::string_view code) const = 0;
  // Every parameter that applies to `resource_type`.
  virtual std::vector<const ParamInfo*> params(std::string_view resource_type) const = 0;
};

}  // namespace fhirshift::index

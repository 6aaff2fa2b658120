// The entry model of docs/schema.md: one entry is one version of one resource, in the
// legacy schema (source) or the current schema (target).
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "index/index_value.h"
#include "mongo/bson.h"

namespace fhirshift::schema {

inline constexpr const char* kDefaultDatabase = "vonkdata";
inline constexpr const char* kDefaultCollection = "vonkentries";
inline constexpr const char* kInfoModelR4 = "Fhir4.0";
inline constexpr const char* kInfoModelStu3 = "Fhir3.0";

enum class Change : char { kCreated = 'c', kUpdated = 'u', kDeleted = 'd' };

// The fields both schemas share, plus the body. `json` is absent exactly on tombstones.
struct Entry {
  bson_oid_t id{};
  std::string im;
  std::string type;
  std::string res_id;
  std::string v;
  int64_t lu_ms = 0;
  bool cur = false;
  Change change = Change::kCreated;
  bool cnt = false;
  std::optional<bson_oid_t> container;
  std::optional<std::string> json;

  bool is_tombstone() const { return change == Change::kDeleted; }
  std::string id_string() const { return mongo::oid_to_string(id); }
};

// A current-schema entry: `idx` only on the current, non-deleted version.
struct CurrentEntry : Entry {
  std::optional<index::SearchIndex> idx;
};

// A document that breaks the schema. The message names the entry, the field and what was expected,
// e.g. "entry 65a1…: field 'res_id': expected a FHIR id ([A-Za-z0-9-.]{1,64}), got \"a b\"".
class EntryError : public std::runtime_error {
 public:
  EntryError(std::string entry_id, std::string field, const std::string& problem);
  const std::string& entry_id() const { return entry_id_; }
  const std::string& field() const { return field_; }

 private:
  std::string entry_id_;
  std::string field_;
};

// Documents without a `type` field are system documents (schema version, markers), not resources.
bool is_system_document(const bson_t* doc);

// Reads and validates the common fields and the body of an entry in either schema; unknown fields
// (legacy `ix`, …) are ignored. Throws EntryError. The current schema's `idx` is not decoded.
Entry decode_entry(const bson_t* doc);

// The target document for `entry`, fields in the spec's order; `idx` only when given.
mongo::Bson encode_current(const CurrentEntry& entry);
// The legacy document for `entry` (as the old server writes it).
mongo::Bson encode_legacy(const Entry& entry);

// Appends `idx` (or any search index) under `key`.
void append_search_index(mongo::Builder& builder, std::string_view key, const index::SearchIndex& idx);
mongo::Bson encode_search_index(const index::SearchIndex& idx);

bool is_valid_fhir_id(std::string_view id);
char change_code(Change c);

}  // namespace fhirshift::schema

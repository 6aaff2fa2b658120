// Entry-level checks of `fhirshift verify`: one source entry against its target copy, and the
// version state of one resource in the target. No MongoDB I/O: the callers stream documents in.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "index/indexer.h"
#include "schema/entry.h"

namespace fhirshift::verify {

// What a comparison of one `_id` found. `problems` empty means the target holds exactly what the
// migrator writes for the source entry (the `cur` of ordinary entries is left to the version-state
// check: the migrator decides it from the versions, not from the source's flag).
struct Comparison {
  std::vector<std::string> problems;
  // Contained entries take their container's `cur`; when it differs from the source's flag the
  // caller checks it against the container in the target (the source's container may have been
  // repaired by the migrator, or be in flight).
  bool contained_cur_differs = false;
  std::optional<schema::Entry> source;  // decoded, when it could be
  std::optional<schema::Entry> target;
  std::optional<std::string> source_invalid;  // why the migrator cannot copy the source entry
};

class EntryComparator {
 public:
  explicit EntryComparator(const index::Indexer& indexer) : indexer_(indexer) {}

  // `source` and `target` have the same `_id`.
  Comparison compare(const bson_t* source, const bson_t* target) const;

  // The target's `idx` against the schema: present (and equal to a recomputation from the body)
  // exactly on the current, non-deleted, non-contained entry. nullopt when right.
  std::optional<std::string> check_idx(const bson_t* target_doc, const schema::Entry& target) const;

 private:
  const index::Indexer& indexer_;
};

// The fields a current-schema entry may have; anything else (legacy `ix`, ...) was not written by
// the migrator.
bool is_current_schema_field(std::string_view key);

// One version of a resource, as the version-state check needs it.
struct VersionFacts {
  bson_oid_t id{};
  int64_t lu_ms = 0;
  bool cur = false;
};

// A resource's versions in the target must have exactly one `cur`, on the newest by (lu, _id)
// (docs/schema.md). Returns what is wrong, or nullopt.
std::optional<std::string> check_version_state(const std::vector<VersionFacts>& versions);

// "Fhir4.0 Patient/123 v2": how an entry is named in messages.
std::string describe(const schema::Entry& e);

// Best-effort `lu` of a document that may not decode (for in-flight classification).
std::optional<int64_t> lu_of(const bson_t* doc);
// `_id` as 24 hex digits, or extended JSON when it is not an ObjectId.
std::string id_of(const bson_t* doc);

}  // namespace fhirshift::verify

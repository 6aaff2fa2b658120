// The transform stage: one legacy (or current) source entry -> one current-schema entry.
// Shared by the migrator, `verify --repair` and the reverse migrator's checks.
#pragma once

#include <bson/bson.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include "index/indexer.h"
#include "schema/entry.h"

namespace fhirshift::migrate {

// A body above this size is quarantined: with the entry's other fields and its `idx` it would not
// fit MongoDB's 16 MiB document limit.
inline constexpr size_t kMaxBodyBytes = 15 * 1024 * 1024;

// Why an entry cannot be migrated. `reason()` is a stable code stored in the quarantine
// collection: bad-field, invalid-json, type-mismatch, id-mismatch, oversized.
class TransformError : public std::runtime_error {
 public:
  TransformError(std::string reason, const std::string& message)
      : std::runtime_error(message), reason_(std::move(reason)) {}
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

// Decodes a source document and checks its body (a JSON object whose resourceType and id match
// `type` and `res_id`, at most kMaxBodyBytes). Throws TransformError naming entry and field.
schema::Entry read_source_entry(const bson_t* doc);

// Checks `json` as the body of `entry`; throws TransformError.
void check_body(const schema::Entry& entry, std::string_view json);

// The current-schema entry for `entry` with version state `cur` decided by the caller: `idx` is
// computed only for a current, non-deleted entry, a contained one (`cnt`) included, with the
// search parameters of its own type (docs/schema.md, "idx"). The body is copied byte for byte.
schema::CurrentEntry to_current(const schema::Entry& entry, bool cur, const index::Indexer& indexer,
                                index::IndexStats* stats = nullptr);

// Version order of one resource: (lu, _id) ascending. True when `a` is newer than `b`.
bool is_newer(const schema::Entry& a, const schema::Entry& b);

}  // namespace fhirshift::migrate

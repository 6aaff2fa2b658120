// A record of `<collection>_quarantine`: a source entry the migrator could not migrate, why, and
// what the operator decided about it (docs/runbook.md, "Reviewing the quarantine").
//
// The migrator writes `_id` (the source entry's `_id`), `reason`, `message`, `at` and, for an
// entry of a database source, `entry` (a copy of the source document); conflicts add `sourceId`
// and `targetId`, file imports `file`, `line` and `text`. The review adds `accepted` (who, when,
// why: the target is not to have this entry) and the migrator `supersededBy`/`supersededAt` (a
// newer version of the same resource is in the target).
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <optional>
#include <string>

#include "mongo/bson.h"

namespace fhirshift::quarantine {

struct Acceptance {
  std::string by;
  int64_t at_ms = 0;
  std::string reason;
};

struct Supersession {
  bson_oid_t by{};  // the target entry that is a newer version of the same resource
  int64_t at_ms = 0;
};

// The quarantined entry's place in its resource's history, when the copy of the source document
// has readable key fields.
struct EntryKey {
  std::string im, type, res_id, v;
  std::optional<int64_t> lu_ms;
  bool cnt = false;
};

struct Record {
  bson_oid_t id{};
  std::string reason;
  std::string message;
  std::optional<int64_t> at_ms;
  // The source entry to read again on a retry: the record's `_id`, except for file imports (no
  // source entry) and entries whose own `_id` is not an ObjectId.
  std::optional<bson_oid_t> source_id;
  std::optional<EntryKey> key;
  std::optional<std::string> file;  // file imports: the file and line the entry came from
  std::optional<int64_t> line;
  std::optional<Acceptance> accepted;
  std::optional<Supersession> superseded;
  mongo::Bson document;  // the whole record, for `quarantine show`

  std::string id_string() const { return mongo::oid_to_string(id); }
  // "Fhir4.0 Patient/p1 v2", or what is known of it.
  std::string resource() const;
};

// Reads a quarantine document; nullopt when its `_id` is not an ObjectId (not written by
// fhirshift).
std::optional<Record> decode_record(const bson_t* doc);

// Field names, shared by the writers (migrator, review) and the readers (verify, cut-over).
inline constexpr const char* kAcceptedField = "accepted";
inline constexpr const char* kSupersededByField = "supersededBy";
inline constexpr const char* kSupersededAtField = "supersededAt";

}  // namespace fhirshift::quarantine

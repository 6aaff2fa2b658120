// The target side of a file import: what the target holds for a chunk's resources, and writing the
// chunk's versions.
//
// The versions of a chunk are new entries with `_id`s of their own (import_entry_id), so writing
// them is inserting them, in their final state (the newest version of each resource current and
// indexed, the others history). Per chunk the target is asked once for the current versions of its
// resources; when it has some, the chunk's writes end with one query for their contained entries
// and an update by `_id` for each entry that became history. So on a target that holds none of the
// imported resources, a chunk costs one lookup and the inserts, whatever the target's size.
//
// Concurrent writers (a live server on the same store): a version number that another writer took
// after the lookup is refused by the unique version index (`{im, type, res_id, v, container}`), and
// the resource's versions of this chunk are then recorded as conflicts and not written (the ones
// already inserted are removed again, by `_id`); nothing is ever overwritten but this import's own
// entries. A rerun of a chunk after a crash meets its own `_id`s, which are checked, not rewritten.
#pragma once

#include <bson/bson.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "index/indexer.h"
#include "migrate/apply.h"
#include "mongo/client.h"
#include "schema/shard_key.h"
#include "schema/entry.h"

namespace fhirshift::migrate {

// One version to write: a resource entry (`cur` decided by the caller) and its contained entries.
struct ImportVersion {
  schema::Entry entry;
  std::vector<schema::Entry> contained;
};

// The target's newest version of one resource, by (lu, _id) as `fhirshift serve` finds it: the
// version a new one follows.
struct TargetVersion {
  bson_oid_t id{};
  std::string v;
  int64_t lu_ms = 0;
  bool deleted = false;
  int64_t versions = 0;  // how many the target holds (the next id after a non-numeric one)
  // Every current entry of the resource: normally just `id`; two after a writer died between its
  // insert and its flip, none while a writer is between its flip and its insert. All of them
  // become history when a newer version is written.
  std::vector<bson_oid_t> current;
};

// "Type/id", the key of a resource in a file import.
std::string import_resource_key(std::string_view type, std::string_view id);

struct ImportWriterConfig {
  std::string database;
  std::string collection;
  int parallelism = 4;   // insert batches in flight
  int batch_size = 1000;  // entries per insert batch
  bool dry_run = false;
};

class ImportWriter {
 public:
  ImportWriter(mongo::ClientPool& target, ImportWriterConfig config, std::shared_ptr<const index::Indexer> indexer);

  // Whether the target holds any resource entry: one query for one entry.
  bool holds_resources();

  // The target's newest version of each resource of `keys` ((type, id) pairs) that has one: one
  // query. Throws mongo::MongoError.
  std::map<std::string, TargetVersion> newest_versions(const std::set<std::pair<std::string, std::string>>& keys);

  // Writes `versions` (in file order) and makes `replaced` (resource key -> target entries that the
  // chunk's versions of that resource replace) history, with their contained entries. Idempotent:
  // a rerun after a crash gives the same end state. Throws mongo::MongoError when the target fails
  // as a whole (the caller retries); per-entry problems are counted and recorded in the quarantine.
  Tally write(const std::vector<ImportVersion>& versions,
              const std::map<std::string, std::vector<bson_oid_t>>& replaced);

 private:
  enum class Outcome { kWritten, kUnchanged, kExisting, kConflict, kError };
  // Inserts `entries` in batches, `parallelism` in flight; one outcome per entry (kExisting: an
  // entry with its `_id` or its version key is there).
  std::vector<Outcome> insert(const std::vector<const schema::Entry*>& entries, Tally& tally);
  // Sorts out the kExisting ones: the same entry (a replayed chunk: unchanged), this import's own
  // entry in another state (replaced), or another writer's version (conflict).
  void resolve_existing(const std::vector<const schema::Entry*>& entries, std::vector<Outcome>& outcomes);
  void make_history(const std::vector<bson_oid_t>& replaced);

  mongo::ClientPool& target_;
  ImportWriterConfig config_;
  std::shared_ptr<const index::Indexer> indexer_;
  schema::KeyFilter key_filter_;  // of updates that change `cur` (schema/shard_key.h)
};

}  // namespace fhirshift::migrate

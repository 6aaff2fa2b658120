// The server's view of the entry collection (docs/schema.md): reads pick the newest entry of
// a resource by (lu, _id); writes add a new entry per version, mark the previous one history, write
// tombstones and contained entries, and on the current schema compute `idx`.
//
// Concurrent writers of one resource never both win, and no lock is held across requests. A write
// is: read the newest version; claim it with a compare-and-set that marks it history
// ({_id, cur: true} -> cur: false, exactly one writer can succeed); insert the new version. The
// loser re-reads and retries, or answers 412 when the client sent If-Match. On the current schema
// the unique index {im,type,res_id,v,container} backs this up on MongoDB (a duplicate version is
// refused; the writer undoes its claim and retries). Within one process, writers of the same
// resource also take a striped mutex for the duration of that one write, which makes first versions
// (nothing to claim yet) race-free there too; across processes a first version relies on the
// unique index (current schema on MongoDB; docs/serve.md lists what FerretDB and legacy lack).
// A newest entry with cur: false is a write between its claim and its insert: others wait; after
// kStaleClaimMs (its writer died in between) it is made current again.
#pragma once

#include <bson/bson.h>

#include <array>
#include <mutex>
#include <unordered_map>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "index/indexer.h"
#include "mongo/client.h"
#include "schema/entry.h"
#include "schema/shard_key.h"

namespace fhirshift::server {

enum class Schema { kLegacy, kCurrent };
std::string_view schema_name(Schema s);

// One version of a resource (a non-contained entry).
struct StoredVersion {
  bson_oid_t entry_id{};
  std::string type;
  std::string id;
  std::string v;
  int64_t lu_ms = 0;
  bool cur = false;
  schema::Change change = schema::Change::kCreated;
  std::optional<std::string> json;  // absent on tombstones
  // The entry's shard key as read, the filter of the update that flips its `cur`.
  std::optional<schema::ShardKey> key;
  bool deleted() const { return change == schema::Change::kDeleted; }
};

enum class WriteKind { kCreate, kUpdate, kDelete };

struct WriteRequest {
  WriteKind kind = WriteKind::kUpdate;
  std::string type;
  std::string id;  // kCreate: the server-assigned id
  std::string_view body;
  std::optional<std::string> if_match;  // version id the client expects to be current
};

enum class WriteOutcome {
  kCreated,             // a first version, or a new version of a deleted resource
  kUpdated,
  kDeleted,             // a tombstone was written
  kNothingToDelete,     // absent or already deleted: nothing written
  kPreconditionFailed,  // If-Match does not name the current version
  kConflict,            // lost the race kMaxAttempts times in a row (hot resource)
};

struct WriteResult {
  WriteOutcome outcome = WriteOutcome::kConflict;
  std::optional<StoredVersion> version;  // the version written (or the current one on 412)
  int attempts = 0;
};

struct HistoryPage {
  std::vector<StoredVersion> versions;  // newest first
  int64_t total = 0;
};

class Store {
 public:
  static constexpr int kMaxAttempts = 20;
  static constexpr int64_t kStaleClaimMs = 5000;
  static constexpr size_t kEntryCacheSize = 200000;

  // `indexer` is required for the current schema (writes compute `idx`), unused on legacy.
  Store(std::shared_ptr<mongo::ClientPool> pool, std::string collection, Schema schema,
        std::shared_ptr<const index::Indexer> indexer);

  Schema schema() const { return schema_; }
  const std::string& collection_name() const { return collection_; }
  mongo::ClientPool& pool() { return *pool_; }
  const index::Indexer* indexer() const { return indexer_.get(); }

  // Throws MongoError when the database does not answer.
  void ping();
  // Warnings about the store's layout (schema version, missing unique index), for the log.
  std::vector<std::string> check_layout();

  // The newest version (possibly a tombstone), or nullopt when the resource never existed.
  std::optional<StoredVersion> read(const std::string& type, const std::string& id);
  // One version. The entry `_id` of every version seen is remembered (versions are immutable but
  // for `cur`), so the query by (type, res_id) runs once per resource, not once per version.
  std::optional<StoredVersion> vread(const std::string& type, const std::string& id,
                                     const std::string& version);
  // Instance history (`id` set) or type history, newest first, from `since_ms` on.
  HistoryPage history(const std::string& type, const std::optional<std::string>& id,
                      std::optional<int64_t> since_ms, int64_t count, int64_t offset);

  WriteResult write(const WriteRequest& request);

  static StoredVersion decode(const bson_t* doc);

 private:
  struct Attempt;
  // The newest version. The entry `_id` of each resource's newest version is remembered: a lookup
  // by `_id` that still finds it current answers without the (type, res_id) query (on FerretDB,
  // which indexes nothing but `_id`, that query is a collection scan).
  std::optional<StoredVersion> newest(mongo::Client& client, mongo::Collection& c,
                                      const std::string& type, const std::string& id);
  using EntryCache = std::unordered_map<std::string, bson_oid_t>;
  std::optional<bson_oid_t> cached(const EntryCache& cache, const std::string& key);
  void remember(EntryCache& cache, const std::string& key, const bson_oid_t& entry);
  // True on FerretDB (detected once with buildInfo): there a conditional update is not atomic
  // anyway and only an {_id} filter avoids a collection scan, so the claim filters by _id alone,
  // and a resource missing from the maps below refreshes them with one collection read instead of
  // a (type, res_id) query, which would scan the collection all the same.
  bool is_ferretdb(mongo::Client& client);
  // FerretDB: reads every entry's (_id, type, res_id, v, lu, cur) once and rebuilds both maps, unless
  // a refresh that began after `asked_at` already did. False when the store is too big to map.
  bool refresh_entry_map(mongo::Collection& c, std::chrono::steady_clock::time_point asked_at);
  // Gives `prev` back its current state (cur: true and, on the current schema, its idx).
  void restore_current(mongo::Client& client, mongo::Collection& c, const StoredVersion& prev);
  // The filter shape of updates that change `cur` (schema/shard_key.h).
  schema::KeyFilter key_filter(mongo::Client& client) { return schema::key_filter_for(is_ferretdb(client)); }
  std::string next_version(mongo::Collection& c, const std::optional<StoredVersion>& prev);

  std::shared_ptr<mongo::ClientPool> pool_;
  std::string database_;
  std::string collection_;
  Schema schema_;
  std::shared_ptr<const index::Indexer> indexer_;
  std::array<std::mutex, 256> stripes_;
  std::once_flag backend_checked_;
  std::mutex cache_mu_;
  EntryCache newest_cache_;   // "Type/id" -> entry _id of the newest version (verified on use)
  EntryCache version_cache_;  // "Type/id/_history/v" -> entry _id of that version
  bool ferretdb_ = false;
  std::mutex refresh_mu_;
  std::optional<std::chrono::steady_clock::time_point> last_refresh_;
  bool map_too_big_ = false;
};

}  // namespace fhirshift::server

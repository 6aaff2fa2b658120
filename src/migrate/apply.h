// The write stage: applies one chunk of source entries to the target with the right version state
// and the conflict policy, in parallel partitions.
//
// A chunk is applied in two phases. Phase 1 handles resources, partitioned by (im, type, res_id) so
// that all versions of a resource are decided by one worker: the newest by (lu, _id) among the
// chunk's versions and the target's current one becomes current, the others history. Phase 2
// handles contained entries, which take the version state of their container (decided in phase 1,
// else found in the target, else as the source had it). Every write is idempotent (replace by
// `_id`), so re-applying a chunk after a crash gives the same end state.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "index/indexer.h"
#include "migrate/journal.h"
#include "migrate/options.h"
#include "mongo/bson.h"
#include "mongo/client.h"
#include "schema/shard_key.h"

namespace fhirshift::migrate {

// What applying entries did; every entry read lands in exactly one of the first seven counters.
struct Tally {
  int64_t read = 0;
  int64_t written = 0;      // inserted or replaced in the target
  int64_t unchanged = 0;    // the target already had this exact entry (a rerun)
  int64_t kept = 0;         // the target's version kept (policy false / OnlyIfNewer)
  int64_t system = 0;       // system documents: not resources, skipped
  int64_t quarantined = 0;  // could not be migrated: in <collection>_quarantine with the reason
  int64_t conflicts = 0;    // ErrorOnConflict: recorded in <collection>_quarantine with both _ids
  int64_t errors = 0;       // the target refused the write (recorded too)
  int64_t index_problems = 0;
  int64_t skipped_params = 0;
  std::map<std::string, int64_t> written_by_type;
  std::vector<std::string> first_problems;  // a few messages for the report

  void add(const Tally& other);
  int64_t accounted() const { return written + unchanged + kept + system + quarantined + conflicts + errors; }
};

enum class TargetSchema { kCurrent, kLegacy };

struct ApplierConfig {
  std::string database;
  std::string collection;
  ConflictPolicy policy = ConflictPolicy::kErrorOnConflict;
  TargetSchema schema = TargetSchema::kCurrent;
  int parallelism = 4;  // partitions in flight
  // A partition gets about this many entries (one bulk write). On a target the run does not own,
  // a small chunk (a Continuous poll) is applied by fewer partitions, each of which costs the
  // target a lookup query; on an owned one by `parallelism` partitions (no lookups).
  int batch_size = 1000;
  bool dry_run = false;
};

class Applier {
 public:
  // `heads`: the journal of a run that owns the target (JournalState::owns_target). Version
  // state then comes from the journal's heads instead of target lookups, which matters on servers
  // that can serve only `_id` lookups from an index; nullptr: look everything up in the target.
  Applier(mongo::ClientPool& target, ApplierConfig config, std::shared_ptr<const index::Indexer> indexer,
          Journal* heads = nullptr);
  // Applies `docs` (source documents). Throws mongo::MongoError when the target fails as a whole
  // (the caller retries the chunk); per-entry problems are counted and recorded. With a heads
  // journal, `chunk_state` receives the heads to commit with the chunk's checkpoint.
  Tally apply(const std::vector<mongo::Bson>& docs, ChunkState* chunk_state = nullptr);

 private:
  struct Partition;
  struct Decision {
    bool cur = false;
    std::string key;  // the container's resource key
  };
  // What phase 1 decided, for phase 2: each resource entry's state, and per resource the entry
  // that became current in this chunk (a container that was current before is now history).
  struct Decisions {
    std::map<std::string, Decision> by_entry;           // entry _id -> its decision
    std::map<std::string, std::string> new_current;     // resource key -> _id of its new current entry
  };
  void run_partition(Partition& part, bool contained_phase, const Decisions& decisions);

  mongo::ClientPool& target_;
  ApplierConfig config_;
  schema::KeyFilter key_filter_;
  std::shared_ptr<const index::Indexer> indexer_;
  Journal* heads_;
};

// Queues the updates that make entries history (`cur: false`, `idx` removed): one single-document
// update per entry, filtered by its `_id` and its whole shard key as it is now (`shape`,
// schema/shard_key.h). On a sharded cluster `cur` is part of the shard key, which only a
// single-document retryable write naming the full key may change; FerretDB (kIdOnly) serves only
// a filter of `_id` alone without a scan.
void add_history_flips(mongo::BulkWriter& writer, const std::vector<schema::ShardKey>& keys,
                       schema::KeyFilter shape);
// The shard keys of the entries `ids` as the target holds them, one `_id $in` query; entries not
// found or already history are left out. With kIdOnly no query: keys of `_id` alone (cur: true).
std::vector<schema::ShardKey> current_keys(mongo::Collection& target, const std::vector<bson_oid_t>& ids,
                                           schema::KeyFilter shape);

}  // namespace fhirshift::migrate

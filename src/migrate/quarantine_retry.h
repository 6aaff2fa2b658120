// `fhirshift quarantine retry`: reads quarantined entries from the source again, by `_id`, and
// pushes them through the migrator's own Applier (transform checks, version state, conflict
// policy). An entry fixed in the source since is migrated and leaves the quarantine; one that
// still fails stays there with the new reason (and keeps its review).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "index/indexer.h"
#include "migrate/apply.h"
#include "mongo/client.h"
#include "quarantine/record.h"

namespace fhirshift::migrate {

struct RetryOutcome {
  enum class Status {
    kMigrated,       // in the target now; the record is removed
    kStillFailing,   // quarantined again (the record says why)
    kSourceDeleted,  // the source no longer has the entry: nothing to migrate; record removed
    kNotRetryable,   // no source entry to read (a file import, an `_id` that is not an ObjectId)
  };
  std::string id;
  std::string resource;
  Status status = Status::kStillFailing;
  std::string detail;
};
const char* status_name(RetryOutcome::Status status);

struct RetryEndpoints {
  mongo::ClientPool& source;
  std::string source_database, source_collection;
  mongo::ClientPool& target;
  std::string target_database, target_collection;
};

// `policy` as migrate's --update-existing-resources. Throws mongo::MongoError when a store fails.
std::vector<RetryOutcome> retry_quarantined(const RetryEndpoints& endpoints,
                                            const std::vector<quarantine::Record>& records,
                                            ConflictPolicy policy,
                                            std::shared_ptr<const index::Indexer> indexer);

}  // namespace fhirshift::migrate

// `verify --repair`: makes the target hold what the migrator would have written, for the
// differences a verify found, through the migrator's own code (migrate::to_current for a changed
// entry, migrate::Applier for missing entries and version state).
#pragma once

#include <memory>
#include <set>
#include <string>

#include "index/indexer.h"
#include "mongo/client.h"
#include "verify/findings.h"

namespace fhirshift::verify {

struct RepairSummary;

struct RepairTarget {
  mongo::ClientPool& source;
  std::string source_database, source_collection;
  mongo::ClientPool& target;
  std::string target_database, target_collection;
};

// What the repair touched: the caller re-verifies exactly this.
struct RepairScope {
  std::set<ResourceKey> keys;
  std::set<std::string> ids;
};

// Repairs the kept, not-in-flight differences of `findings`:
//  - extra:   deleted only with `delete_extra`, else left and reported;
//  - changed: the target entry replaced by to_current(source entry) with its current `cur`;
//  - every resource involved (missing, changed, bad state, deleted extra): all its source versions
//    re-applied by the migrator's Applier (policy Overwrite), which inserts what is missing and
//    decides `cur`/`idx` from the versions, flipping the others.
// In-flight differences are left to the running migrator.
RepairScope repair_differences(const RepairTarget& where, const Findings& findings,
                               bool delete_extra, int parallelism,
                               std::shared_ptr<const index::Indexer> indexer,
                               RepairSummary& summary);

}  // namespace fhirshift::verify

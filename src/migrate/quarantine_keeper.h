// Keeps the target's quarantine current while the migrator runs: a quarantined entry whose
// resource gets a newer version in the target is marked superseded (`supersededBy`, the newer
// entry's `_id`), so that `quarantine list` shows it and nobody reviews a version that is history
// anyway. (`verify` does not rely on the mark: it applies the same rule, quarantine/store.h
// find_superseding, to the target as it finds it.)
//
// Cost: the quarantine collection is read once at the start and again after each chunk that
// quarantined something; the target is asked (one query) only after a chunk that quarantined
// something or that wrote a resource with an open quarantined entry.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "migrate/apply.h"
#include "mongo/client.h"
#include "quarantine/record.h"

namespace fhirshift::migrate {

class QuarantineKeeper {
 public:
  QuarantineKeeper(mongo::ClientPool& target, std::string database, std::string collection);
  // After the Applier wrote `docs` (source documents) with outcome `tally`.
  void after_chunk(const std::vector<mongo::Bson>& docs, const Tally& tally);

 private:
  void reload();
  void supersede(const std::vector<const quarantine::Record*>& records);

  mongo::ClientPool& target_;
  std::string database_, collection_;
  bool loaded_ = false;
  // Open records (neither superseded nor without a readable resource key), by resource key.
  std::map<std::string, std::vector<quarantine::Record>> open_;
};

}  // namespace fhirshift::migrate

// Prepares an empty target for the current schema: collection, indexes, system document and, on a
// sharded cluster, the shard key. Idempotent: re-running completes what a crash left undone and is
// otherwise a no-op that says so.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "mongo/bson.h"
#include "mongo/client.h"

namespace fhirshift::provision {

struct Options {
  std::string collection = "vonkentries";
  bool force = false;  // provision even though the target already holds entries
  bool shard = false;  // run shardCollection on a sharded cluster
  // Recorded in the system document as `migratedFrom` (source hosts/collection when known).
  mongo::Bson migrated_from;
};

struct Report {
  bool already_provisioned = false;  // nothing had to be done
  std::vector<std::string> actions;  // what was done, one line each
  std::vector<std::string> notices;  // what the operator should know (sharding advice, --force)
};

// Refusals that the operator must resolve (non-empty target, legacy store); the message says how.
class ProvisionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Report provision(mongo::Client& client, const std::string& database, const Options& options);

// The mongosh command that shards the collection with the spec's shard key.
std::string shard_command_text(const std::string& database, const std::string& collection);

}  // namespace fhirshift::provision

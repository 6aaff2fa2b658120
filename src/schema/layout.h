// What the current schema puts in a target besides entries: its indexes, its shard key and its
// system document (docs/schema.md, "Current schema").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mongo/bson.h"

namespace fhirshift::schema {

inline constexpr int kLegacySchemaVersion = 1;
inline constexpr int kCurrentSchemaVersion = 2;
inline constexpr const char* kSystemDocumentId = "system";

struct IndexSpec {
  std::string name;
  mongo::Bson keys;
  bool unique = false;
};

// The indexes provisioning creates, in creation order. On a sharded cluster MongoDB only enforces
// unique indexes that start with the shard key, so `for_sharded_cluster` makes the version index
// non-unique there (the migrator and server keep versions unique by themselves).
std::vector<IndexSpec> current_schema_indexes(bool for_sharded_cluster = false);

// {type: 1, im: 1, cur: 1, cnt: 1, change: 1, res_id: "hashed"}
mongo::Bson shard_key();

// {_id: "system", schemaVersion: 2, provisionedAt: <now>, migratedFrom: <migrated_from>}
mongo::Bson current_system_document(int64_t provisioned_at_ms, const mongo::Bson& migrated_from);
// {_id: "system", schemaVersion: 1}
mongo::Bson legacy_system_document();

// Name of the collection where the migrator puts entries it cannot migrate.
std::string quarantine_collection(const std::string& collection);

}  // namespace fhirshift::schema

#include "provision/provision.h"

#include <chrono>
#include <set>

#include "mongo/error.h"
#include "schema/layout.h"

namespace fhirshift::provision {
namespace {

using mongo::Bson;
using mongo::Builder;
using mongo::View;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::set<std::string> existing_index_names(mongo::Collection& coll) {
  std::set<std::string> names;
  try {
    for (const Bson& spec : coll.list_indexes()) {
      if (auto name = View(spec.get()).string("name")) names.emplace(*name);
    }
  } catch (const mongo::MongoError& e) {
    if (e.code() != 26) throw;  // NamespaceNotFound: the collection does not exist yet
  }
  return names;
}

void shard_collection(mongo::Client& client, const std::string& database,
                      const std::string& collection, Report& report) {
  Builder enable;
  enable.append("enableSharding", database);
  try {
    client.command("admin", enable.extract());
  } catch (const mongo::MongoError& e) {
    if (e.code() != 23) throw;  // AlreadyInitialized: sharding was enabled before
  }
  Builder cmd;
  cmd.append("shardCollection", database + "." + collection);
  Bson key = schema::shard_key();
  cmd.append_document("key", key.get());
  try {
    client.command("admin", cmd.extract());
    report.actions.push_back("sharded " + database + "." + collection + " with key " + key.to_json());
  } catch (const mongo::MongoError& e) {
    if (e.code() != 20 && e.code() != 23) throw;  // already sharded
    report.notices.push_back(database + "." + collection + " is already sharded");
  }
}

}  // namespace

std::string shard_command_text(const std::string& database, const std::string& collection) {
  return "sh.shardCollection(\"" + database + "." + collection + "\", " + schema::shard_key().to_json() + ")";
}

Report provision(mongo::Client& client, const std::string& database, const Options& options) {
  Report report;
  mongo::Topology topology = mongo::describe_topology(client);
  mongo::Collection coll = client.collection(database, options.collection);
  const std::string ns = database + "." + options.collection;

  Builder system_filter;
  system_filter.append("_id", schema::kSystemDocumentId);
  std::optional<Bson> system = coll.find_one(system_filter.get());
  int64_t system_version = system ? View(system->get()).integer("schemaVersion").value_or(0) : 0;
  if (system && system_version != schema::kCurrentSchemaVersion) {
    throw ProvisionError(ns + " holds a store of schema version " + std::to_string(system_version) +
                         " (the legacy schema is version 1), not a current-schema target. "
                         "Fix: provision a different database or collection as the target.");
  }

  Builder has_type;
  has_type.document("type", [](Builder& b) { b.append("$exists", true); });
  Builder projection;
  projection.document("projection", [](Builder& b) { b.append("_id", int32_t{1}); });
  bool has_entries = coll.find_one(has_type.get(), projection.get()).has_value();
  if (has_entries && !system) {
    if (!options.force) {
      throw ProvisionError(ns + " already holds entries but was never provisioned by fhirshift. "
                           "Fix: point --mongoConnectionstring/--mongoCollection at an empty target, "
                           "or pass --force to add the indexes and system document to it as it is.");
    }
    report.notices.push_back("--force: provisioning " + ns + " although it already holds entries");
  }

  if (topology.is_mongos) {
    if (options.shard) {
      shard_collection(client, database, options.collection, report);
    } else {
      report.notices.push_back("this is a sharded cluster but --shard was not given: " + ns +
                               " stays unsharded. To shard it run: " +
                               shard_command_text(database, options.collection));
    }
  } else if (options.shard) {
    report.notices.push_back("--shard ignored: the server is not a mongos (hello did not answer "
                             "msg: \"isdbgrid\"). On a sharded cluster, run through mongos: " +
                             shard_command_text(database, options.collection));
  }

  std::set<std::string> existing = existing_index_names(coll);
  Bson indexes;
  mongo::ArrayBuilder to_create(indexes.get());
  std::vector<std::string> created;
  for (const auto& spec : schema::current_schema_indexes(topology.is_mongos)) {
    if (existing.count(spec.name)) continue;
    to_create.document([&](Builder& b) {
      b.append_document("key", spec.keys.get()).append("name", spec.name);
      if (spec.unique) b.append("unique", true);
    });
    created.push_back(spec.name + (spec.unique ? " (unique)" : ""));
  }
  if (!created.empty()) {
    coll.create_indexes(indexes.get());
    for (const auto& name : created) report.actions.push_back("created index " + name);
  }

  if (!system) {
    coll.insert_one(schema::current_system_document(now_ms(), options.migrated_from).get());
    report.actions.push_back("wrote the system document (schemaVersion 2)");
  }
  report.already_provisioned = report.actions.empty();
  return report;
}

}  // namespace fhirshift::provision

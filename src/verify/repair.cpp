#include "verify/repair.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <span>

#include "migrate/apply.h"
#include "migrate/transform.h"
#include "mongo/collection.h"
#include "schema/entry.h"
#include "schema/shard_key.h"
#include "verify/compare.h"
#include "verify/verifier.h"

namespace fhirshift::verify {
namespace {

constexpr size_t kInBatch = 200;

mongo::Bson ids_filter(const std::vector<bson_oid_t>& ids, size_t from, size_t to) {
  mongo::Builder f;
  f.document("_id", [&](mongo::Builder& d) { d.append_in(std::span(&ids[from], to - from)); });
  return f.extract();
}

void note(RepairSummary& s, const std::string& message) {
  spdlog::warn("repair: {}", message);
  if (s.problems.size() < 50) s.problems.push_back(message);
}

}  // namespace

RepairScope repair_differences(const RepairTarget& where, const Findings& findings,
                               bool delete_extra, int parallelism,
                               std::shared_ptr<const index::Indexer> indexer,
                               RepairSummary& summary) {
  RepairScope scope;
  std::vector<bson_oid_t> extra, changed;
  for (const auto& d : findings.kept()) {
    if (d.in_flight) continue;
    if (d.key) scope.keys.insert(*d.key);
    if (!d.id.empty()) scope.ids.insert(d.id);
    switch (d.kind) {
      case Kind::kExtra:
        if (delete_extra && d.oid)
          extra.push_back(*d.oid);
        else
          ++summary.not_repairable;
        break;
      case Kind::kChanged:
        if (d.oid) changed.push_back(*d.oid);
        break;
      case Kind::kMissing:
      case Kind::kBadState:
        break;
    }
  }
  auto source_client = where.source.acquire();
  auto target_client = where.target.acquire();
  auto source = source_client.collection(where.source_database, where.source_collection);
  auto target = target_client.collection(where.target_database, where.target_collection);
  const schema::KeyFilter key_filter = schema::key_filter_for(target_client);

  // 1. Extra entries (only when asked).
  for (size_t i = 0; i < extra.size(); i += kInBatch) {
    auto bulk = target.bulk(false);
    for (size_t j = i; j < std::min(extra.size(), i + kInBatch); ++j) {
      mongo::Builder f;
      f.append("_id", extra[j]);
      bulk.delete_one(f.extract().get());
    }
    summary.deleted += bulk.execute().deleted;
  }

  // 2. Changed entries: the transform of the source entry, keeping the target's `cur` (step 3
  //    decides it). The applier alone would skip an entry whose fields match but whose `idx` is
  //    wrong.
  for (size_t i = 0; i < changed.size(); i += kInBatch) {
    size_t end = std::min(changed.size(), i + kInBatch);
    mongo::Bson filter = ids_filter(changed, i, end);
    // The target's `cur` and shard key of each: the replacement is filtered by the key the entry
    // has now (schema/shard_key.h), read by this same query.
    std::map<std::string, std::optional<bool>> target_cur;
    std::map<std::string, schema::ShardKey> target_key;
    {
      mongo::Builder o;
      o.document("projection", [](mongo::Builder& p) { schema::ShardKey::project(p); });
      auto c = target.find(filter.get(), o.extract().get());
      while (const bson_t* doc = c.next()) {
        target_cur[id_of(doc)] = mongo::View(doc).boolean("cur");
        if (auto k = schema::ShardKey::read(doc)) target_key.emplace(k->id_string(), std::move(*k));
      }
    }
    auto bulk = target.bulk(false);
    auto c = source.find(filter.get());
    while (const bson_t* doc = c.next()) {
      schema::Entry e;
      try {
        e = migrate::read_source_entry(doc);
      } catch (const migrate::TransformError& err) {
        ++summary.not_repairable;
        note(summary, std::string("cannot repair ") + id_of(doc) + ": " + err.what());
        continue;
      }
      auto it = target_cur.find(e.id_string());
      bool cur = it != target_cur.end() && it->second ? *it->second : e.cur;
      mongo::Bson replacement = schema::encode_current(migrate::to_current(e, cur, *indexer));
      auto k = target_key.find(e.id_string());
      schema::ShardKey key = k != target_key.end() ? k->second : schema::ShardKey::of(e);
      if (k == target_key.end()) key.cur = cur;
      bulk.replace_one(key.filter(key_filter).get(), replacement.get(), true);
    }
    if (bulk.size() > 0) {
      auto result = bulk.execute();
      summary.rewritten += result.modified + result.upserted;
      for (const auto& e : result.write_errors)
        note(summary, "target refused a rewrite: " + e.message);
    }
  }

  // 3. Every version of every resource involved, through the migrator's applier.
  migrate::ApplierConfig config;
  config.database = where.target_database;
  config.collection = where.target_collection;
  config.policy = migrate::ConflictPolicy::kOverwrite;
  config.schema = migrate::TargetSchema::kCurrent;
  config.parallelism = std::max(1, parallelism);
  migrate::Applier applier(where.target, config, indexer);
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> by_type;
  for (const auto& k : scope.keys) by_type[{k.im, k.type}].push_back(k.res_id);
  summary.resources = static_cast<int64_t>(scope.keys.size());
  for (const auto& [im_type, res_ids] : by_type) {
    for (size_t i = 0; i < res_ids.size(); i += kInBatch) {
      mongo::Builder f;
      f.append("im", im_type.first).append("type", im_type.second);
      f.document("res_id", [&](mongo::Builder& d) {
        d.append_in(std::span(&res_ids[i], std::min(res_ids.size() - i, kInBatch)));
      });
      std::vector<mongo::Bson> docs;
      auto c = source.find(f.extract().get());
      while (const bson_t* doc = c.next()) docs.push_back(mongo::Bson::copy_of(doc));
      if (docs.empty()) continue;
      migrate::Tally tally = applier.apply(docs);
      summary.applied += tally.written;
      summary.unchanged += tally.unchanged;
      summary.quarantined += tally.quarantined;
      for (const auto& p : tally.first_problems) note(summary, p);
    }
  }
  spdlog::info(
      "repair: {} extra deleted, {} changed rewritten, {} resources re-applied ({} written, {} "
      "already right, {} quarantined)",
      summary.deleted, summary.rewritten, summary.resources, summary.applied, summary.unchanged,
      summary.quarantined);
  return scope;
}

}  // namespace fhirshift::verify

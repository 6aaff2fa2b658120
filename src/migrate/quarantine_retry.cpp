#include "migrate/quarantine_retry.h"

#include <map>
#include <set>
#include <span>

#include "mongo/collection.h"
#include "quarantine/store.h"

namespace fhirshift::migrate {
namespace {

constexpr size_t kPerQuery = 200;

// `_id` (24 hex) -> document, for the `ids` that `coll` holds.
std::map<std::string, mongo::Bson> fetch(mongo::Collection& coll,
                                         const std::vector<bson_oid_t>& ids) {
  std::map<std::string, mongo::Bson> out;
  for (size_t i = 0; i < ids.size(); i += kPerQuery) {
    mongo::Builder f;
    f.document("_id", [&](mongo::Builder& d) {
      d.append_in(std::span(ids).subspan(i, std::min(kPerQuery, ids.size() - i)));
    });
    mongo::Cursor c = coll.find(f.extract().get());
    while (const bson_t* doc = c.next())
      if (auto id = mongo::View(doc).oid("_id"))
        out.emplace(mongo::oid_to_string(*id), mongo::Bson::copy_of(doc));
  }
  return out;
}

}  // namespace

const char* status_name(RetryOutcome::Status status) {
  switch (status) {
    case RetryOutcome::Status::kMigrated:
      return "migrated";
    case RetryOutcome::Status::kStillFailing:
      return "still quarantined";
    case RetryOutcome::Status::kSourceDeleted:
      return "gone from the source";
    case RetryOutcome::Status::kNotRetryable:
      return "not retryable";
  }
  return "?";
}

std::vector<RetryOutcome> retry_quarantined(const RetryEndpoints& ep,
                                            const std::vector<quarantine::Record>& records,
                                            ConflictPolicy policy,
                                            std::shared_ptr<const index::Indexer> indexer) {
  std::vector<RetryOutcome> outcomes;
  std::vector<bson_oid_t> source_ids;
  for (const auto& r : records)
    if (r.source_id) source_ids.push_back(*r.source_id);
  mongo::Client source_client = ep.source.acquire();
  mongo::Collection source = source_client.collection(ep.source_database, ep.source_collection);
  std::map<std::string, mongo::Bson> found = fetch(source, source_ids);

  // One apply for all of them, so that versions of one resource are decided together.
  std::vector<mongo::Bson> docs;
  for (auto& [id, doc] : found) docs.push_back(doc.clone());
  ApplierConfig config;
  config.database = ep.target_database;
  config.collection = ep.target_collection;
  config.policy = policy;
  config.parallelism = 1;
  Applier applier(ep.target, config, std::move(indexer));
  if (!docs.empty()) applier.apply(docs);

  mongo::Client target_client = ep.target.acquire();
  mongo::Collection target = target_client.collection(ep.target_database, ep.target_collection);
  std::map<std::string, mongo::Bson> migrated = fetch(target, source_ids);
  quarantine::Store store(target_client, ep.target_database, ep.target_collection);
  std::vector<bson_oid_t> settled;
  std::vector<bson_oid_t> again_ids;
  for (const auto& r : records) {
    RetryOutcome o;
    o.id = r.id_string();
    o.resource = r.resource();
    if (!r.source_id) {
      o.status = RetryOutcome::Status::kNotRetryable;
      o.detail = r.file
                     ? "from a file import (" + *r.file +
                           "): fix the file and import it again, or accept the entry"
                     : "the source entry's _id is not an ObjectId: fix the source, then migrate it "
                       "again or accept the entry";
    } else if (std::string sid = mongo::oid_to_string(*r.source_id); migrated.count(sid)) {
      o.status = RetryOutcome::Status::kMigrated;
      o.detail = "in the target now; removed from the quarantine";
      settled.push_back(r.id);
    } else if (!found.count(sid)) {
      o.status = RetryOutcome::Status::kSourceDeleted;
      o.detail = "the source has no entry " + sid +
                 " any more: nothing to migrate; removed from the quarantine";
      settled.push_back(r.id);
    } else {
      o.status = RetryOutcome::Status::kStillFailing;
      again_ids.push_back(r.id);
    }
    outcomes.push_back(std::move(o));
  }
  store.remove(settled);
  // Why the ones still failing failed this time (the Applier rewrote their records).
  std::map<std::string, std::string> why;
  for (const auto& r : store.get(again_ids)) why[r.id_string()] = r.reason + ": " + r.message;
  for (auto& o : outcomes)
    if (o.status == RetryOutcome::Status::kStillFailing)
      o.detail = why.count(o.id) ? why[o.id] : "see the log";
  return outcomes;
}

}  // namespace fhirshift::migrate

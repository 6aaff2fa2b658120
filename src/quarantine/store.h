// The target's `<collection>_quarantine`, read and reviewed by `_id` (a quarantine holds few
// documents; every write here is by `_id`).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mongo/client.h"
#include "mongo/collection.h"
#include "quarantine/record.h"

namespace fhirshift::quarantine {

class Store {
 public:
  // `collection`: the target's entry collection; the quarantine is `<collection>_quarantine`.
  Store(mongo::Client& client, const std::string& database, const std::string& collection);

  const std::string& ns() const { return ns_; }
  // Every record, in `_id` order.
  std::vector<Record> list();
  // The records of `ids` that exist, in `_id` order.
  std::vector<Record> get(const std::vector<bson_oid_t>& ids);

  // Records the review; returns how many records were found. Accepting again replaces the
  // acceptance (the newest review counts).
  int64_t accept(const std::vector<bson_oid_t>& ids, const Acceptance& acceptance);
  int64_t unaccept(const std::vector<bson_oid_t>& ids);
  void mark_superseded(const bson_oid_t& id, const Supersession& supersession);
  // The entry is in the target now (migrated by a retry) or no longer in the source.
  void remove(const std::vector<bson_oid_t>& ids);

 private:
  int64_t update(const std::vector<bson_oid_t>& ids, const bson_t* update);
  mongo::Collection coll_;
  std::string ns_;
};

// Which records are superseded: those of a resource entry (not contained: a contained entry's
// versions are its container's) whose key fields are readable, for which `target` holds an entry
// of the same (im, type, res_id) that is newer by version order (lu, _id). Had the quarantined
// entry been migrated, it would be history now: the target's current state of the resource does
// not depend on it. Returns record `_id` (24 hex) -> the newest such target entry. One query per
// 200 records.
std::map<std::string, bson_oid_t> find_superseding(mongo::Collection& target,
                                                   const std::vector<const Record*>& records);

}  // namespace fhirshift::quarantine

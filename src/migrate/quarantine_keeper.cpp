#include "migrate/quarantine_keeper.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <set>

#include "mongo/collection.h"
#include "quarantine/store.h"
#include "schema/entry.h"

namespace fhirshift::migrate {
namespace {

std::string key_of(std::string_view im, std::string_view type, std::string_view res_id) {
  return std::string(im) + '\x1f' + std::string(type) + '\x1f' + std::string(res_id);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

QuarantineKeeper::QuarantineKeeper(mongo::ClientPool& target, std::string database,
                                   std::string collection)
    : target_(target), database_(std::move(database)), collection_(std::move(collection)) {}

void QuarantineKeeper::reload() {
  mongo::Client client = target_.acquire();
  quarantine::Store store(client, database_, collection_);
  open_.clear();
  for (auto& r : store.list())
    if (!r.superseded && r.key && !r.key->cnt && r.key->lu_ms)
      open_[key_of(r.key->im, r.key->type, r.key->res_id)].push_back(std::move(r));
  loaded_ = true;
}

void QuarantineKeeper::supersede(const std::vector<const quarantine::Record*>& records) {
  if (records.empty()) return;
  mongo::Client client = target_.acquire();
  mongo::Collection target = client.collection(database_, collection_);
  std::map<std::string, bson_oid_t> superseding = quarantine::find_superseding(target, records);
  if (superseding.empty()) return;
  quarantine::Store store(client, database_, collection_);
  std::set<std::string> done;
  for (const quarantine::Record* r : records) {
    auto it = superseding.find(r->id_string());
    if (it == superseding.end()) continue;
    store.mark_superseded(r->id, {it->second, now_ms()});
    spdlog::info(
        "quarantine: entry {} ({}) is superseded by the newer version {} in the target; it "
        "no longer blocks a verify",
        r->id_string(), r->resource(), mongo::oid_to_string(it->second));
    done.insert(r->id_string());
  }
  for (auto it = open_.begin(); it != open_.end();) {
    std::erase_if(it->second,
                  [&](const quarantine::Record& r) { return done.count(r.id_string()) > 0; });
    it = it->second.empty() ? open_.erase(it) : std::next(it);
  }
}

void QuarantineKeeper::after_chunk(const std::vector<mongo::Bson>& docs, const Tally& tally) {
  const bool new_records = tally.quarantined + tally.conflicts + tally.errors > 0;
  std::vector<const quarantine::Record*> candidates;
  if (!loaded_ || new_records) {
    reload();
    for (const auto& [key, records] : open_)
      for (const auto& r : records) candidates.push_back(&r);
  } else {
    if (open_.empty()) return;
    std::set<std::string> touched;
    for (const auto& doc : docs) {
      mongo::View v(doc.get());
      if (v.boolean("cnt").value_or(false)) continue;
      auto it = open_.find(key_of(v.string("im").value_or(""), v.string("type").value_or(""),
                                  v.string("res_id").value_or("")));
      if (it != open_.end() && touched.insert(it->first).second)
        for (const auto& r : it->second) candidates.push_back(&r);
    }
  }
  supersede(candidates);
}

}  // namespace fhirshift::migrate

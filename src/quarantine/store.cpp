#include "quarantine/store.h"

#include <algorithm>
#include <span>

#include "mongo/error.h"
#include "schema/layout.h"

namespace fhirshift::quarantine {
namespace {

constexpr size_t kPerQuery = 200;

std::vector<Record> decode_all(mongo::Cursor cursor) {
  std::vector<Record> out;
  while (const bson_t* doc = cursor.next())
    if (auto r = decode_record(doc)) out.push_back(std::move(*r));
  std::sort(out.begin(), out.end(),
            [](const Record& a, const Record& b) { return bson_oid_compare(&a.id, &b.id) < 0; });
  return out;
}

mongo::Bson ids_filter(std::span<const bson_oid_t> ids) {
  mongo::Builder f;
  f.document("_id", [&](mongo::Builder& d) { d.append_in(ids); });
  return f.extract();
}

// Version order (lu, _id): true when (lu_a, a) is newer than (lu_b, b).
bool newer(int64_t lu_a, const bson_oid_t& a, int64_t lu_b, const bson_oid_t& b) {
  return lu_a != lu_b ? lu_a > lu_b : bson_oid_compare(&a, &b) > 0;
}

}  // namespace

Store::Store(mongo::Client& client, const std::string& database, const std::string& collection)
    : coll_(client.collection(database, schema::quarantine_collection(collection))),
      ns_(database + "." + schema::quarantine_collection(collection)) {}

std::vector<Record> Store::list() {
  return decode_all(coll_.find(mongo::Bson().get()));
}

std::vector<Record> Store::get(const std::vector<bson_oid_t>& ids) {
  std::vector<Record> out;
  for (size_t i = 0; i < ids.size(); i += kPerQuery) {
    mongo::Bson f = ids_filter(std::span(ids).subspan(i, std::min(kPerQuery, ids.size() - i)));
    for (auto& r : decode_all(coll_.find(f.get()))) out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(),
            [](const Record& a, const Record& b) { return bson_oid_compare(&a.id, &b.id) < 0; });
  return out;
}

int64_t Store::update(const std::vector<bson_oid_t>& ids, const bson_t* update) {
  if (ids.empty()) return 0;
  mongo::BulkWriter w = coll_.bulk(false);
  for (const auto& id : ids) {
    mongo::Builder f;
    f.append("_id", id);
    w.update_one(f.get(), update, false);
  }
  mongo::BulkResult r = w.execute();
  if (!r.ok())
    throw mongo::MongoError(
        "updating " + ns_, 0,
        r.write_errors.empty() ? 0 : static_cast<uint32_t>(r.write_errors[0].code),
        r.write_errors.empty() ? r.write_concern_error : r.write_errors[0].message);
  return r.matched;
}

int64_t Store::accept(const std::vector<bson_oid_t>& ids, const Acceptance& acceptance) {
  mongo::Builder u;
  u.document("$set", [&](mongo::Builder& s) {
    s.document(kAcceptedField, [&](mongo::Builder& a) {
      a.append("by", acceptance.by)
          .append_date("at", acceptance.at_ms)
          .append("reason", acceptance.reason);
    });
  });
  return update(ids, u.get());
}

int64_t Store::unaccept(const std::vector<bson_oid_t>& ids) {
  mongo::Builder u;
  u.document("$unset", [](mongo::Builder& s) { s.append(kAcceptedField, ""); });
  return update(ids, u.get());
}

void Store::mark_superseded(const bson_oid_t& id, const Supersession& supersession) {
  mongo::Builder u;
  u.document("$set", [&](mongo::Builder& s) {
    s.append(kSupersededByField, supersession.by)
        .append_date(kSupersededAtField, supersession.at_ms);
  });
  update({id}, u.get());
}

void Store::remove(const std::vector<bson_oid_t>& ids) {
  if (ids.empty()) return;
  mongo::BulkWriter w = coll_.bulk(false);
  for (const auto& id : ids) {
    mongo::Builder f;
    f.append("_id", id);
    w.delete_one(f.get());
  }
  mongo::BulkResult r = w.execute();
  if (!r.ok())
    throw mongo::MongoError(
        "deleting from " + ns_, 0,
        r.write_errors.empty() ? 0 : static_cast<uint32_t>(r.write_errors[0].code),
        r.write_errors.empty() ? r.write_concern_error : r.write_errors[0].message);
}

std::map<std::string, bson_oid_t> find_superseding(mongo::Collection& target,
                                                   const std::vector<const Record*>& records) {
  std::vector<const Record*> candidates;
  for (const Record* r : records)
    if (r->key && !r->key->cnt && r->key->lu_ms && !r->key->im.empty() && !r->key->type.empty() &&
        !r->key->res_id.empty())
      candidates.push_back(r);
  std::map<std::string, bson_oid_t> out;
  for (size_t i = 0; i < candidates.size(); i += kPerQuery) {
    auto batch = std::span(candidates).subspan(i, std::min(kPerQuery, candidates.size() - i));
    mongo::Builder f;
    f.array("$or", [&](mongo::ArrayBuilder& any) {
      for (const Record* r : batch)
        any.document([&](mongo::Builder& c) {
          c.append("im", r->key->im).append("type", r->key->type).append("res_id", r->key->res_id);
        });
    });
    mongo::Builder o;
    o.document("projection", [](mongo::Builder& p) {
      for (const char* k : {"im", "type", "res_id", "lu", "cnt"}) p.append(k, int32_t{1});
    });
    // resource key -> the newest target entry (lu, _id)
    std::map<std::string, std::pair<int64_t, bson_oid_t>> newest;
    mongo::Bson fd = f.extract(), od = o.extract();
    mongo::Cursor cursor = target.find(fd.get(), od.get());
    while (const bson_t* doc = cursor.next()) {
      mongo::View v(doc);
      auto id = v.oid("_id");
      auto lu = v.date("lu");
      if (!id || !lu || v.boolean("cnt").value_or(false)) continue;
      std::string key = std::string(v.string("im").value_or("")) + '\x1f' +
                        std::string(v.string("type").value_or("")) + '\x1f' +
                        std::string(v.string("res_id").value_or(""));
      auto [it, added] = newest.try_emplace(key, *lu, *id);
      if (!added && newer(*lu, *id, it->second.first, it->second.second)) it->second = {*lu, *id};
    }
    for (const Record* r : batch) {
      auto it = newest.find(r->key->im + '\x1f' + r->key->type + '\x1f' + r->key->res_id);
      if (it != newest.end() && newer(it->second.first, it->second.second, *r->key->lu_ms, r->id))
        out.emplace(r->id_string(), it->second.second);
    }
  }
  return out;
}

}  // namespace fhirshift::quarantine

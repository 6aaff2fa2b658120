#include "server/store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <stdexcept>
#include <thread>

#include "mongo/error.h"
#include "schema/layout.h"
#include "server/body.h"
#include "server/fhir.h"

namespace fhirshift::server {
namespace {

using mongo::Builder;
using mongo::View;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// {im: R4, type, res_id, cnt: {$ne: true}}: the versions of one resource (legacy writers sometimes
// left `cnt` out, which means "not contained").
void append_resource(Builder& b, const std::string& type, const std::string& id) {
  b.append("im", schema::kInfoModelR4).append("type", type).append("res_id", id);
  b.document("cnt", [](Builder& d) { d.append("$ne", true); });
}

mongo::Bson newest_first(int64_t limit = 0, int64_t skip = 0) {
  Builder o;
  o.document("sort", [](Builder& s) { s.append("lu", int32_t{-1}).append("_id", int32_t{-1}); });
  if (limit > 0) o.append("limit", limit);
  if (skip > 0) o.append("skip", skip);
  return o.extract();
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() < 18 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A short randomized pause between attempts so that racing writers do not stay in lock step.
void backoff(int attempt) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  int cap = std::min(50, 1 << std::min(attempt, 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(1 + static_cast<int>(rng() % cap)));
}

mongo::Bson set_cur_false(bool drop_idx) {
  Builder u;
  u.document("$set", [](Builder& s) { s.append("cur", false); });
  if (drop_idx) u.document("$unset", [](Builder& s) { s.append("idx", ""); });
  return u.extract();
}

}  // namespace

std::string_view schema_name(Schema s) { return s == Schema::kLegacy ? "legacy" : "current"; }

Store::Store(std::shared_ptr<mongo::ClientPool> pool, std::string collection, Schema schema,
             std::shared_ptr<const index::Indexer> indexer)
    : pool_(std::move(pool)),
      database_(pool_->database()),
      collection_(std::move(collection)),
      schema_(schema),
      indexer_(std::move(indexer)) {
  if (schema_ == Schema::kCurrent && !indexer_)
    throw std::invalid_argument("the current schema needs a search indexer");
}

void Store::ping() {
  auto client = pool_->acquire();
  client.ping();
}

std::vector<std::string> Store::check_layout() {
  std::vector<std::string> warnings;
  auto client = pool_->acquire();
  auto c = client.collection(database_, collection_);
  const std::string ns = database_ + "." + collection_;
  Builder f;
  f.append("_id", schema::kSystemDocumentId);
  auto system = c.find_one(f.get());
  std::optional<int64_t> version;
  if (system) version = View(system->get()).integer("schemaVersion");
  if (schema_ == Schema::kCurrent) {
    if (version && *version != schema::kCurrentSchemaVersion)
      throw std::runtime_error(ns + " has schemaVersion " + std::to_string(*version) +
                               ": it is not a current-schema store (serve it with --schema legacy, "
                               "or migrate it first)");
    if (!version)
      throw std::runtime_error(ns + " is not provisioned for the current schema (no system "
                               "document): run `fhirshift provision` first");
    bool unique_versions = false;
    for (const auto& spec : c.list_indexes()) {
      View v(spec.get());
      auto key = v.document("key");
      if (v.boolean("unique").value_or(false) && key && key->has("v") && key->has("res_id"))
        unique_versions = true;
    }
    if (!unique_versions)
      warnings.push_back(ns + " has no unique version index {im,type,res_id,v,container} (a sharded "
                              "cluster?): concurrent updates of one resource are then only "
                              "serialized per server process");
  } else if (version && *version != schema::kLegacySchemaVersion) {
    throw std::runtime_error(ns + " has schemaVersion " + std::to_string(*version) +
                             ": it is not a legacy store (serve it with --schema current)");
  }
  return warnings;
}

StoredVersion Store::decode(const bson_t* doc) {
  schema::Entry e = schema::decode_entry(doc);
  StoredVersion s;
  s.entry_id = e.id;
  s.type = std::move(e.type);
  s.id = std::move(e.res_id);
  s.v = std::move(e.v);
  s.lu_ms = e.lu_ms;
  s.cur = e.cur;
  s.change = e.change;
  s.json = std::move(e.json);
  return s;
}

std::optional<bson_oid_t> Store::cached_newest(const std::string& key) {
  std::lock_guard lock(cache_mu_);
  auto it = newest_cache_.find(key);
  if (it == newest_cache_.end()) return std::nullopt;
  return it->second;
}

void Store::remember_newest(const std::string& key, const bson_oid_t& entry) {
  std::lock_guard lock(cache_mu_);
  if (newest_cache_.size() >= kNewestCacheSize) newest_cache_.clear();  // crude, bounded
  newest_cache_[key] = entry;
}

std::optional<StoredVersion> Store::newest(mongo::Collection& c, const std::string& type,
                                           const std::string& id) {
  const std::string key = type + "/" + id;
  if (auto entry = cached_newest(key)) {
    // The remembered entry is still the newest as long as it is current: a later version, from
    // this process or another, marks it history before or when it is written.
    Builder f;
    f.append("_id", *entry);
    if (auto doc = c.find_one(f.get())) {
      StoredVersion v = decode(doc->get());
      if (v.cur && v.type == type && v.id == id) return v;
    }
  }
  Builder f;
  append_resource(f, type, id);
  auto doc = c.find_one(f.get(), newest_first(1).get());
  if (!doc) return std::nullopt;
  StoredVersion v = decode(doc->get());
  if (v.cur) remember_newest(key, v.entry_id);
  return v;
}

std::optional<StoredVersion> Store::read(const std::string& type, const std::string& id) {
  auto client = pool_->acquire();
  auto c = client.collection(database_, collection_);
  return newest(c, type, id);
}

std::optional<StoredVersion> Store::vread(const std::string& type, const std::string& id,
                                          const std::string& version) {
  auto client = pool_->acquire();
  auto c = client.collection(database_, collection_);
  Builder f;
  append_resource(f, type, id);
  f.append("v", version);
  auto doc = c.find_one(f.get(), newest_first(1).get());
  if (!doc) return std::nullopt;
  return decode(doc->get());
}

HistoryPage Store::history(const std::string& type, const std::optional<std::string>& id,
                           std::optional<int64_t> since_ms, int64_t count, int64_t offset) {
  auto client = pool_->acquire();
  auto c = client.collection(database_, collection_);
  Builder f;
  f.append("im", schema::kInfoModelR4).append("type", type);
  if (id) f.append("res_id", *id);
  f.document("cnt", [](Builder& d) { d.append("$ne", true); });
  if (since_ms) f.document("lu", [&](Builder& d) { d.append_date("$gte", *since_ms); });
  HistoryPage page;
  page.total = c.count(f.get());
  if (count > 0) {
    auto cursor = c.find(f.get(), newest_first(count, offset).get());
    while (const bson_t* doc = cursor.next()) page.versions.push_back(decode(doc));
  }
  return page;
}

std::string Store::next_version(mongo::Collection& c, const std::optional<StoredVersion>& prev) {
  if (!prev) return "1";
  if (all_digits(prev->v)) return std::to_string(std::stoll(prev->v) + 1);
  // Non-numeric version ids (some legacy writers): the number of versions plus one, which every
  // racing writer computes alike, so the unique index still lets only one of them win.
  Builder f;
  append_resource(f, prev->type, prev->id);
  return std::to_string(c.count(f.get()) + 1);
}

bool Store::claims_by_id_only(mongo::Client& client) {
  std::call_once(backend_checked_, [&] {
    try {
      mongo::Builder cmd;
      cmd.append("buildInfo", int32_t{1});
      mongo::Bson info = client.command("admin", cmd.extract());
      if (View(info.get()).has("ferretdbVersion")) {
        claim_by_id_only_ = true;
        spdlog::warn("the store is FerretDB: its updates are a query followed by a write, not an "
                     "atomic compare-and-set, and it only uses an index for _id; versions are "
                     "claimed by _id (one query less), so run one server process per store "
                     "(docs/serve.md)");
      }
    } catch (const std::exception& e) {
      spdlog::debug("buildInfo failed ({}): assuming MongoDB", e.what());
    }
  });
  return claim_by_id_only_;
}

void Store::restore_current(mongo::Collection& c, const StoredVersion& prev) {
  Builder f, u;
  f.append("_id", prev.entry_id);
  u.document("$set", [&](Builder& set) {
    set.append("cur", true);
    if (schema_ == Schema::kCurrent && prev.json && !prev.deleted())
      schema::append_search_index(set, "idx", indexer_->index(prev.type, *prev.json));
  });
  auto bulk = c.bulk(true);
  bulk.update_one(f.get(), u.get(), false);
  bulk.execute();
}

WriteResult Store::write(const WriteRequest& req) {
  auto client = pool_->acquire();
  auto c = client.collection(database_, collection_);
  std::lock_guard stripe(stripes_[std::hash<std::string>{}(req.type + "/" + req.id) % stripes_.size()]);
  WriteResult result;
  int conflicts = 0;
  std::optional<std::chrono::steady_clock::time_point> claimed_since;
  // Lost a race: retry (true), or give up with 412 (If-Match) / 409 (too many rounds).
  auto lost_race = [&]() -> bool {
    if (req.if_match) return false;  // the client asked for exactly this version
    if (++conflicts >= kMaxAttempts) return false;
    backoff(conflicts);
    return true;
  };
  auto give_up = [&] {
    result.outcome = req.if_match ? WriteOutcome::kPreconditionFailed : WriteOutcome::kConflict;
    result.version = newest(c, req.type, req.id);
    return result;
  };
  while (true) {
    ++result.attempts;
    // A POST's id is a fresh UUID: no earlier version to look for (saves a query).
    std::optional<StoredVersion> prev;
    if (req.kind != WriteKind::kCreate) prev = newest(c, req.type, req.id);

    if (prev && !prev->cur) {
      // Claimed by another writer that has not inserted its version yet, or that died in between.
      auto now = std::chrono::steady_clock::now();
      if (!claimed_since) claimed_since = now;
      if (now - *claimed_since < std::chrono::milliseconds(kStaleClaimMs)) {
        backoff(3);
        continue;
      }
      spdlog::warn("{}/{}: newest entry {} stayed cur: false for {} ms (a writer died between its "
                   "claim and its insert): marking it current again",
                   req.type, req.id, mongo::oid_to_string(prev->entry_id), kStaleClaimMs);
      restore_current(c, *prev);
      claimed_since.reset();
      continue;
    }
    claimed_since.reset();

    if (req.if_match && (!prev || prev->v != *req.if_match)) {
      result.outcome = WriteOutcome::kPreconditionFailed;
      result.version = std::move(prev);
      return result;
    }
    if (req.kind == WriteKind::kDelete && (!prev || prev->deleted())) {
      result.outcome = WriteOutcome::kNothingToDelete;
      result.version = std::move(prev);
      return result;
    }

    StoredVersion next;
    bson_oid_init(&next.entry_id, nullptr);
    next.type = req.type;
    next.id = req.id;
    next.v = next_version(c, prev);
    // Version order is (lu, _id): a new version is never older than the one it replaces, even
    // with clock skew between server processes.
    next.lu_ms = std::max(now_ms(), prev ? prev->lu_ms + 1 : int64_t{0});
    next.cur = true;
    next.change = req.kind == WriteKind::kDelete ? schema::Change::kDeleted
                  : (prev && !prev->deleted())   ? schema::Change::kUpdated
                                                 : schema::Change::kCreated;
    PreparedBody body;
    if (req.kind != WriteKind::kDelete) {
      std::string lu = format_instant(next.lu_ms);
      body = prepare_body(req.body, BodyTarget{req.type, req.id, req.kind == WriteKind::kUpdate,
                                               next.v, lu});
      next.json = body.json;
    }

    // The documents: the version, then its contained resources (same v, lu, cur and change).
    std::vector<mongo::Bson> docs;
    schema::CurrentEntry e;
    e.id = next.entry_id;
    e.im = schema::kInfoModelR4;
    e.type = next.type;
    e.res_id = next.id;
    e.v = next.v;
    e.lu_ms = next.lu_ms;
    e.cur = true;
    e.change = next.change;
    e.json = next.json;
    if (schema_ == Schema::kCurrent && next.json) e.idx = indexer_->index(next.type, *next.json);
    docs.push_back(schema_ == Schema::kCurrent ? schema::encode_current(e) : schema::encode_legacy(e));
    for (const auto& ct : body.contained) {
      schema::CurrentEntry ce;
      bson_oid_init(&ce.id, nullptr);
      ce.im = schema::kInfoModelR4;
      ce.type = ct.type;
      ce.res_id = ct.id;
      ce.v = next.v;
      ce.lu_ms = next.lu_ms;
      ce.cur = true;
      ce.change = next.change;
      ce.cnt = true;
      ce.container = next.entry_id;
      ce.json = ct.json;
      docs.push_back(schema_ == Schema::kCurrent ? schema::encode_current(ce)
                                                 : schema::encode_legacy(ce));
    }

    // Claim: mark the previous version history, only if it still is the current one.
    if (prev) {
      Builder f;
      f.append("_id", prev->entry_id);
      if (!claims_by_id_only(client)) f.append("cur", true);
      auto bulk = c.bulk(true);
      bulk.update_one(f.get(), set_cur_false(schema_ == Schema::kCurrent).get(), false);
      if (bulk.execute().matched == 0) {
        if (lost_race()) continue;
        return give_up();
      }
    }
    auto undo_claim = [&] {
      if (!prev) return;
      try {
        restore_current(c, *prev);
      } catch (const std::exception& ex) {
        spdlog::error("{}/{}: could not mark entry {} current again ({}); the next write of the "
                      "resource repairs it after {} ms",
                      req.type, req.id, mongo::oid_to_string(prev->entry_id), ex.what(),
                      kStaleClaimMs);
      }
    };

    auto bulk = c.bulk(/*ordered=*/true);
    for (const auto& d : docs) bulk.insert(d.get());
    mongo::BulkResult r;
    try {
      r = bulk.execute();
    } catch (...) {
      undo_claim();
      throw;
    }
    if (!r.write_errors.empty()) {
      const auto& we = r.write_errors.front();
      bool duplicate = we.code == 11000 || we.code == 11001 || we.code == 12582;
      if (duplicate && we.index == 0 && r.inserted == 0) {
        // The unique version index: another process wrote this version first.
        undo_claim();
        if (lost_race()) continue;
        return give_up();
      }
      if (r.inserted == 0) undo_claim();
      throw mongo::MongoError("writing " + req.type + "/" + req.id + " version " + next.v +
                                  " to " + c.ns(),
                              0, we.code, we.message);
    }
    if (!r.write_concern_error.empty())
      throw mongo::MongoError("writing " + req.type + "/" + req.id + " to " + c.ns(), 0, 64,
                              r.write_concern_error);

    // The previous version's contained resources follow it into history.
    if (prev && prev->json && prev->json->find("\"contained\"") != std::string::npos) {
      Builder f;
      f.append("container", prev->entry_id).append("cur", true);
      auto flip = c.bulk(false);
      flip.update_many(f.get(), set_cur_false(false).get());
      flip.execute();
    }
    remember_newest(req.type + "/" + req.id, next.entry_id);
    result.outcome = req.kind == WriteKind::kDelete            ? WriteOutcome::kDeleted
                     : next.change == schema::Change::kCreated ? WriteOutcome::kCreated
                                                               : WriteOutcome::kUpdated;
    result.version = std::move(next);
    return result;
  }
}

}  // namespace fhirshift::server

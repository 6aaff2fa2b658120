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
  s.key = schema::ShardKey::read(doc);
  return s;
}

namespace {
// The shard key of `v` as read; for a version read without it, as fhirshift writes one.
schema::ShardKey key_of(const StoredVersion& v) {
  if (v.key) return *v.key;
  schema::ShardKey k;
  k.id = v.entry_id;
  k.type = v.type;
  k.im = schema::kInfoModelR4;
  k.cur = v.cur;
  k.change = v.change;
  k.res_id = v.id;
  return k;
}
}  // namespace

std::optional<bson_oid_t> Store::cached(const EntryCache& cache, const std::string& key) {
  std::lock_guard lock(cache_mu_);
  auto it = cache.find(key);
  if (it == cache.end()) return std::nullopt;
  return it->second;
}

void Store::remember(EntryCache& cache, const std::string& key, const bson_oid_t& entry) {
  std::lock_guard lock(cache_mu_);
  if (cache.size() >= kEntryCacheSize) cache.clear();  // crude, but bounded
  cache[key] = entry;
}

std::optional<StoredVersion> Store::newest(mongo::Client& client, mongo::Collection& c,
                                           const std::string& type, const std::string& id) {
  const auto asked_at = std::chrono::steady_clock::now();
  const std::string key = type + "/" + id;
  if (auto entry = cached(newest_cache_, key)) {
    // The remembered entry is still the newest as long as it is current: a later version, from
    // this process or another, marks it history before or when it is written.
    Builder f;
    f.append("_id", *entry);
    if (auto doc = c.find_one(f.get())) {
      StoredVersion v = decode(doc->get());
      if (v.cur && v.type == type && v.id == id) return v;
    }
  }
  if (is_ferretdb(client) && refresh_entry_map(c, asked_at)) {
    auto entry = cached(newest_cache_, key);
    if (!entry) return std::nullopt;  // not in a map read after this request began
    Builder f;
    f.append("_id", *entry);
    if (auto doc = c.find_one(f.get())) {
      StoredVersion v = decode(doc->get());
      if (v.cur) return v;
    }
  }
  Builder f;
  append_resource(f, type, id);
  auto doc = c.find_one(f.get(), newest_first(1).get());
  if (!doc) return std::nullopt;
  StoredVersion v = decode(doc->get());
  if (v.cur) remember(newest_cache_, key, v.entry_id);
  return v;
}

std::optional<StoredVersion> Store::read(const std::string& type, const std::string& id) {
  auto client = pool_->acquire();
  auto c = client.collection(database_, collection_);
  return newest(client, c, type, id);
}

std::optional<StoredVersion> Store::vread(const std::string& type, const std::string& id,
                                          const std::string& version) {
  auto client = pool_->acquire();
  auto c = client.collection(database_, collection_);
  const auto asked_at = std::chrono::steady_clock::now();
  const std::string key = type + "/" + id;
  auto by_map = [&]() -> std::optional<StoredVersion> {
    auto entry = cached(version_cache_, key + "/_history/" + version);
    if (!entry) return std::nullopt;
    Builder f;
    f.append("_id", *entry);
    if (auto doc = c.find_one(f.get())) {
      StoredVersion v = decode(doc->get());
      if (v.type == type && v.id == id && v.v == version) return v;
    }
    return std::nullopt;
  };
  if (auto v = by_map()) return v;
  if (is_ferretdb(client) && refresh_entry_map(c, asked_at)) return by_map();
  // One query for every version of the resource; all are remembered (a version never changes
  // but for its `cur`), so reading the resource's other versions needs no query of this kind.
  Builder f;
  append_resource(f, type, id);
  std::optional<StoredVersion> found;
  bool newest_seen = false;
  auto cursor = c.find(f.get(), newest_first().get());
  while (const bson_t* doc = cursor.next()) {
    StoredVersion v = decode(doc);
    remember(version_cache_, key + "/_history/" + v.v, v.entry_id);
    if (!newest_seen) {
      newest_seen = true;
      if (v.cur) remember(newest_cache_, key, v.entry_id);
    }
    if (v.v == version && !found) found = std::move(v);
  }
  return found;
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

bool Store::is_ferretdb(mongo::Client& client) {
  std::call_once(backend_checked_, [&] {
    try {
      mongo::Builder cmd;
      cmd.append("buildInfo", int32_t{1});
      mongo::Bson info = client.command("admin", cmd.extract());
      if (View(info.get()).has("ferretdbVersion")) {
        ferretdb_ = true;
        spdlog::warn("the store is FerretDB: its updates are a query followed by a write, not an "
                     "atomic compare-and-set, and it uses no index but _id; versions are claimed "
                     "by _id and resources found through a map of entry _ids refreshed by one "
                     "collection read on a miss; run one server process per store "
                     "(docs/serve.md)");
      }
    } catch (const std::exception& e) {
      spdlog::debug("buildInfo failed ({}): assuming MongoDB", e.what());
    }
  });
  return ferretdb_;
}

bool Store::refresh_entry_map(mongo::Collection& c, std::chrono::steady_clock::time_point asked_at) {
  std::lock_guard refresh(refresh_mu_);
  if (map_too_big_) return false;
  // A read that started after this request began saw every write acknowledged before it.
  if (last_refresh_ && *last_refresh_ > asked_at) return true;
  last_refresh_ = std::chrono::steady_clock::now();
  Builder f, o;
  f.append("im", schema::kInfoModelR4);
  f.document("cnt", [](Builder& d) { d.append("$ne", true); });
  o.document("projection", [](Builder& p) {
    for (const char* k : {"_id", "type", "res_id", "v", "lu", "cur"}) p.append(k, int32_t{1});
  });
  struct Newest {
    int64_t lu;
    bson_oid_t id;
    bool cur;
  };
  std::unordered_map<std::string, Newest> newest;
  EntryCache versions;
  auto cursor = c.find(f.get(), o.get());
  while (const bson_t* doc = cursor.next()) {
    View v(doc);
    auto oid = v.oid("_id");
    auto type = v.string("type");
    auto res_id = v.string("res_id");
    auto ver = v.string("v");
    auto lu = v.date("lu");
    if (!oid || !type || !res_id || !ver || !lu) continue;  // system documents, odd entries
    std::string key = std::string(*type) + "/" + std::string(*res_id);
    versions[key + "/_history/" + std::string(*ver)] = *oid;
    auto [it, fresh] = newest.try_emplace(key, Newest{*lu, *oid, v.boolean("cur").value_or(false)});
    if (!fresh && (*lu > it->second.lu || (*lu == it->second.lu && bson_oid_compare(&*oid, &it->second.id) > 0)))
      it->second = Newest{*lu, *oid, v.boolean("cur").value_or(false)};
    if (versions.size() > kEntryCacheSize) {
      spdlog::warn("{} holds over {} versions: resources are looked up by query from now on",
                   c.ns(), kEntryCacheSize);
      map_too_big_ = true;
      return false;
    }
  }
  // Merged, not replaced: a write of this process that landed while the collection was read is
  // already in the maps (entries found here are verified on use anyway).
  std::lock_guard lock(cache_mu_);
  for (auto& [key, n] : newest)
    if (n.cur) newest_cache_[key] = n.id;
  for (auto& [key, id] : versions) version_cache_[key] = id;
  return true;
}

void Store::restore_current(mongo::Client& client, mongo::Collection& c, const StoredVersion& prev) {
  Builder u;
  mongo::Bson f = key_of(prev).filter(key_filter(client));
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
    result.version = newest(client, c, req.type, req.id);
    return result;
  };
  while (true) {
    ++result.attempts;
    // A POST's id is a fresh UUID: no earlier version to look for (saves a query).
    std::optional<StoredVersion> prev;
    if (req.kind != WriteKind::kCreate) prev = newest(client, c, req.type, req.id);

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
      restore_current(client, c, *prev);
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
      // Indexed with its own type's parameters while current, like any entry (docs/schema.md).
      if (schema_ == Schema::kCurrent) ce.idx = indexer_->index(ce.type, *ce.json);
      docs.push_back(schema_ == Schema::kCurrent ? schema::encode_current(ce)
                                                 : schema::encode_legacy(ce));
    }

    // Claim: mark the previous version history, only if it still is the current one: the filter
    // is its shard key with `cur: true` (schema/shard_key.h). On FerretDB `_id` alone, where a
    // conditional update is neither atomic nor indexed (docs/serve.md).
    if (prev) {
      mongo::Bson f = key_of(*prev).filter(key_filter(client));
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
        restore_current(client, c, *prev);
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

    // The previous version's contained resources follow it into history: one single-document
    // update each, filtered by its shard key (read by the same query), as `cur` is in the shard
    // key and only such an update may change it.
    if (prev && prev->json && prev->json->find("\"contained\"") != std::string::npos) {
      Builder f;
      f.append("container", prev->entry_id).append("cur", true);
      Builder o;
      o.document("projection", [](Builder& p) { schema::ShardKey::project(p); });
      auto flip = c.bulk(false);
      auto contained = c.find(f.get(), o.extract().get());
      const schema::KeyFilter shape = key_filter(client);
      while (const bson_t* doc = contained.next()) {
        auto key = schema::ShardKey::read(doc);
        if (!key) continue;
        flip.update_one(key->filter(shape).get(), set_cur_false(schema_ == Schema::kCurrent).get(), false);
      }
      if (flip.size() > 0) flip.execute();
    }
    remember(newest_cache_, req.type + "/" + req.id, next.entry_id);
    remember(version_cache_, req.type + "/" + req.id + "/_history/" + next.v, next.entry_id);
    result.outcome = req.kind == WriteKind::kDelete            ? WriteOutcome::kDeleted
                     : next.change == schema::Change::kCreated ? WriteOutcome::kCreated
                                                               : WriteOutcome::kUpdated;
    result.version = std::move(next);
    return result;
  }
}

}  // namespace fhirshift::server

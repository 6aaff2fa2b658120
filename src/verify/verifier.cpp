#include "verify/verifier.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "migrate/transform.h"
#include "mongo/client.h"
#include "mongo/collection.h"
#include "mongo/error.h"
#include "quarantine/store.h"
#include "schema/entry.h"
#include "schema/layout.h"
#include "verify/compare.h"
#include "verify/repair.h"

namespace fhirshift::verify {
namespace {

using mongo::Bson;
using mongo::Builder;
using mongo::View;

constexpr size_t kInBatch = 200;  // values per $in query
constexpr size_t kKeysPerQuery = 1000;  // resources per scoped query
constexpr int32_t kBatchSize = 1000;
// Differences are looked at again this often within --settle.
constexpr std::chrono::milliseconds kLookAgainEvery{1000};

// Runs `query(true)` (the source) on another thread while `query(false)` (the target) runs here:
// the two stores are separate servers, so a verify waits for the slower of each pair of queries
// instead of their sum (the final verify of a cut-over runs while writes are held).
template <class Query>
auto on_both_sides(Query&& query) {
  auto source = std::async(std::launch::async, [&] { return query(true); });
  auto target = query(false);
  return std::make_pair(source.get(), std::move(target));
}

int64_t ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t)
      .count();
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<ResourceKey> key_of(const bson_t* doc) {
  View v(doc);
  auto im = v.string("im");
  auto type = v.string("type");
  auto res_id = v.string("res_id");
  if (!im || !type || !res_id) return std::nullopt;
  return ResourceKey{std::string(*im), std::string(*type), std::string(*res_id)};
}

std::string key_name(const ResourceKey& k) { return k.im + " " + k.type + "/" + k.res_id; }

// A difference about one entry, identified as far as its fields allow.
Difference entry_difference(Kind kind, const bson_t* doc) {
  Difference d;
  d.kind = kind;
  d.id = id_of(doc);
  if (auto oid = View(doc).oid("_id")) d.oid = *oid;
  d.key = key_of(doc);
  d.lu_ms = lu_of(doc);
  return d;
}

// A resource whose versions are not in a valid state, reported at its newest version.
Difference version_state_difference(const ResourceKey& key, const std::vector<VersionFacts>& versions,
                                    std::string problem) {
  Difference d;
  d.kind = Kind::kBadState;
  const VersionFacts* newest = &versions.front();
  int64_t max_lu = newest->lu_ms;
  for (const auto& v : versions) {
    if (v.lu_ms > newest->lu_ms ||
        (v.lu_ms == newest->lu_ms && bson_oid_compare(&v.id, &newest->id) > 0))
      newest = &v;
    max_lu = std::max(max_lu, v.lu_ms);
  }
  d.id = mongo::oid_to_string(newest->id);
  d.oid = newest->id;
  d.key = key;
  d.resource = key_name(key);
  d.lu_ms = max_lu;
  d.detail = std::move(problem);
  return d;
}

Bson oid_filter() {
  Builder f;
  f.document("_id", [](Builder& d) { d.append("$type", "objectId"); });
  return f.extract();
}

Bson sorted_by_id_opts() {
  Builder o;
  o.document("sort", [](Builder& s) { s.append("_id", int32_t{1}); });
  o.append("batchSize", kBatchSize);
  return o.extract();
}

// The part of the verify that talks to both stores.
class Session {
 public:
  Session(const Options& options, std::shared_ptr<const index::Indexer> indexer)
      : opt_(options),
        indexer_(std::move(indexer)),
        comparator_(*indexer_),
        source_uri_(mongo::Uri::parse(options.source_uri)),
        target_uri_(mongo::Uri::parse(options.target_uri)),
        source_pool_(source_uri_, "fhirshift-verify-source"),
        target_pool_(target_uri_, "fhirshift-verify-target") {}

  Result run();

  // Compares every version of `keys` and the entries `ids` (24-hex `_id`s) on both sides.
  void run_scoped(const std::set<ResourceKey>& keys, const std::set<std::string>& ids,
                  Findings& findings, int64_t& compared);

 private:
  mongo::Collection source(mongo::Client& c) {
    return c.collection(source_uri_.database(), opt_.source_collection);
  }
  mongo::Collection target(mongo::Client& c) {
    return c.collection(target_uri_.database(), opt_.target_collection);
  }
  // Counts mode: quarantined source entries the target lacks, per (im, type), and their records.
  struct CountsQuarantine {
    std::map<std::pair<std::string, std::string>, CountCells> cells;
    std::map<std::string, Bson> docs;  // _id -> source document
    std::map<std::string, quarantine::Record> records;
    std::map<std::string, bson_oid_t> superseding;
  };
  std::optional<int64_t> high_water(mongo::Collection& coll);
  void run_full(Result& r);
  void run_counts(Result& r);
  template <class Match>
  void count_once(Result& r, const Match& match, const CountsQuarantine& quarantined);
  // What one side holds written at or after --since (by the time in its ObjectId `_id`, which
  // every store indexes): the resources (and single entries whose key fields are broken) to
  // compare, and the newest lu among them.
  struct Touched {
    std::set<ResourceKey> keys;
    std::set<std::string> ids;
    std::optional<int64_t> newest_lu;
    void add(const bson_t* doc);
  };
  Bson since_filter() const;
  bson_oid_t since_oid() const;
  Touched touched_since(mongo::Collection& coll);
  void run_since(Result& r);
  int64_t quarantine_count(mongo::Client& client, bool source_side);
  void log_start(const Result& r) const;
  void join(std::map<std::string, Bson>& s, std::map<std::string, Bson>& t,
            std::set<std::string>& seen, Findings& findings, int64_t& compared);
  void compare_resources(const std::set<ResourceKey>& batch, std::map<std::string, Bson>& s,
                         std::map<std::string, Bson>& t, std::set<std::string>& seen,
                         Findings& findings, int64_t& compared);
  static Bson resources_clause(const std::set<ResourceKey>& keys);
  static std::map<std::string, Bson> fetch(mongo::Collection& coll, const bson_t* filter);
  std::set<ResourceKey> sample_keys(uint64_t seed, std::set<std::string>& ids);
  void version_pass(Findings& out);
  void attach_quarantine(Findings& findings);
  std::pair<std::map<std::string, quarantine::Record>, std::map<std::string, bson_oid_t>>
  quarantine_records(const std::vector<bson_oid_t>& ids);
  CountsQuarantine counts_quarantine(const Result& r);
  std::vector<VersionFacts> target_versions(const ResourceKey& key);
  void confirm(Findings& findings);
  void look_again(Findings& findings);

  // The three outcomes of joining by `_id`.
  void source_only(const bson_t* doc, Findings& f, int64_t& compared);
  void target_only(const bson_t* doc, Findings& f, int64_t& compared);
  void pair(const bson_t* s, const bson_t* t, Findings& f, int64_t& compared);
  void resolve_contained(Findings& f);
  // Sets the newest `lu` of each state difference's resource on both sides (in-flight rule).
  void find_newest_versions(std::vector<std::pair<Difference, ResourceKey>>& states);

  struct ContainedCheck {
    Difference diff;  // filled in case the container disagrees
    bson_oid_t container;
    bool cur;
  };

  Options opt_;
  std::shared_ptr<const index::Indexer> indexer_;
  EntryComparator comparator_;
  mongo::Uri source_uri_, target_uri_;
  mongo::ClientPool source_pool_, target_pool_;
  std::vector<ContainedCheck> contained_checks_;
  int64_t source_entries_ = 0, target_entries_ = 0, source_system_ = 0, target_system_ = 0;
};

std::optional<int64_t> Session::high_water(mongo::Collection& coll) {
  Builder f;
  f.document("lu", [](Builder& d) { d.append("$type", "date"); });
  Builder o;
  o.document("sort", [](Builder& s) { s.append("lu", int32_t{-1}); });
  o.document("projection", [](Builder& p) { p.append("lu", int32_t{1}); });
  o.append("limit", int64_t{1});
  auto doc = coll.find_one(f.get(), o.extract().get());
  if (!doc) return std::nullopt;
  return View(doc->get()).date("lu");
}

void Session::source_only(const bson_t* doc, Findings& f, int64_t& compared) {
  if (schema::is_system_document(doc)) {
    ++source_system_;
    return;
  }
  ++source_entries_;
  ++compared;
  Difference d = entry_difference(Kind::kMissing, doc);
  try {
    schema::Entry e = migrate::read_source_entry(doc);
    d.resource = describe(e);
    d.detail = "not in the target";
  } catch (const migrate::TransformError& e) {
    d.detail = std::string("not in the target; the source entry cannot be migrated (") +
               e.reason() + ": " + e.what() + ")";
  }
  f.add(std::move(d));
}

void Session::target_only(const bson_t* doc, Findings& f, int64_t& compared) {
  if (schema::is_system_document(doc)) {
    ++target_system_;
    return;
  }
  ++target_entries_;
  ++compared;
  Difference d = entry_difference(Kind::kExtra, doc);
  try {
    d.resource = describe(schema::decode_entry(doc));
    d.detail = "in the target only";
  } catch (const schema::EntryError& e) {
    d.detail = std::string("in the target only, and invalid: ") + e.what();
  }
  f.add(std::move(d));
}

void Session::pair(const bson_t* s, const bson_t* t, Findings& f, int64_t& compared) {
  const bool s_system = schema::is_system_document(s);
  const bool t_system = schema::is_system_document(t);
  if (s_system || t_system) {
    // A system document is never a resource; one that shares an `_id` with a resource is reported
    // through the resource side.
    if (s_system && t_system) {
      ++source_system_;
      ++target_system_;
      return;
    }
    if (s_system) {
      ++source_system_;
      target_only(t, f, compared);
    } else {
      ++target_system_;
      source_only(s, f, compared);
    }
    return;
  }
  ++source_entries_;
  ++target_entries_;
  ++compared;
  Comparison c = comparator_.compare(s, t);
  Difference d;
  d.kind = Kind::kChanged;
  d.id = id_of(s);
  if (auto oid = View(s).oid("_id")) d.oid = *oid;
  d.key = key_of(s);
  d.lu_ms = lu_of(s);
  if (auto tl = lu_of(t); tl && (!d.lu_ms || *tl > *d.lu_ms)) d.lu_ms = tl;
  if (c.source)
    d.resource = describe(*c.source);
  else if (c.target)
    d.resource = describe(*c.target);
  if (!c.problems.empty()) {
    std::string detail;
    for (const auto& p : c.problems) detail += (detail.empty() ? "" : "; ") + p;
    d.detail = std::move(detail);
    f.add(std::move(d));
    return;
  }
  if (c.contained_cur_differs && c.target && c.target->container &&
      contained_checks_.size() < Findings::kMaxKept) {
    d.kind = Kind::kBadState;
    contained_checks_.push_back({std::move(d), *c.target->container, c.target->cur});
  }
}

// A contained entry's `cur` must be its container's, in the target.
void Session::resolve_contained(Findings& f) {
  if (contained_checks_.empty()) return;
  auto client = target_pool_.acquire();
  auto coll = target(client);
  for (size_t i = 0; i < contained_checks_.size(); i += kInBatch) {
    size_t end = std::min(contained_checks_.size(), i + kInBatch);
    Builder filter;
    filter.document("_id", [&](Builder& d) {
      d.array("$in", [&](mongo::ArrayBuilder& a) {
        for (size_t j = i; j < end; ++j) a.append(contained_checks_[j].container);
      });
    });
    Builder opts;
    opts.document("projection", [](Builder& p) {
      for (const char* k : {"im", "type", "res_id", "cur"}) p.append(k, int32_t{1});
    });
    struct Container {
      std::optional<bool> cur;
      std::optional<ResourceKey> key;
    };
    std::map<std::string, Container> containers;
    auto cursor = coll.find(filter.get(), opts.extract().get());
    while (const bson_t* doc = cursor.next()) containers[id_of(doc)] = {View(doc).boolean("cur"), key_of(doc)};
    std::vector<std::pair<Difference, ResourceKey>> states;  // bad states, by the container's resource
    for (size_t j = i; j < end; ++j) {
      auto& check = contained_checks_[j];
      auto it = containers.find(mongo::oid_to_string(check.container));
      if (it == containers.end()) {
        check.diff.detail = "contained entry whose container " +
                            mongo::oid_to_string(check.container) + " is not in the target";
      } else if (it->second.cur != check.cur) {
        const auto& cur = it->second.cur;
        check.diff.detail = std::string("contained entry has cur: ") +
                            (check.cur ? "true" : "false") + " but its container " + it->first +
                            " has cur: " + (cur ? (*cur ? "true" : "false") : "?");
        if (it->second.key) {
          states.emplace_back(std::move(check.diff), *it->second.key);
          continue;
        }
      } else {
        continue;  // follows its container, as the migrator keeps it
      }
      f.add(std::move(check.diff));
    }
    find_newest_versions(states);
    for (auto& [d, key] : states) f.add(std::move(d));
  }
  contained_checks_.clear();
}

// One query per side for a batch of resources: every version's `lu` (contained entries excluded).
void Session::find_newest_versions(std::vector<std::pair<Difference, ResourceKey>>& states) {
  for (size_t i = 0; i < states.size(); i += kInBatch) {
    size_t end = std::min(states.size(), i + kInBatch);
    Builder f;
    f.array("$or", [&](mongo::ArrayBuilder& any) {
      for (size_t j = i; j < end; ++j)
        any.document([&](Builder& k) {
          const ResourceKey& key = states[j].second;
          k.append("im", key.im).append("type", key.type).append("res_id", key.res_id);
        });
    });
    f.document("cnt", [](Builder& d) { d.append("$ne", true); });
    Bson filter = f.extract();
    Builder o;
    o.document("projection", [](Builder& p) {
      for (const char* k : {"im", "type", "res_id", "lu"}) p.append(k, int32_t{1});
    });
    Bson opts = o.extract();
    for (bool source_side : {true, false}) {
      auto client = (source_side ? source_pool_ : target_pool_).acquire();
      auto coll = source_side ? source(client) : target(client);
      std::map<ResourceKey, int64_t> newest;
      auto cursor = coll.find(filter.get(), opts.get());
      while (const bson_t* doc = cursor.next()) {
        auto key = key_of(doc);
        auto lu = View(doc).date("lu");
        if (!key || !lu) continue;
        auto [it, fresh] = newest.try_emplace(*key, *lu);
        if (!fresh) it->second = std::max(it->second, *lu);
      }
      for (size_t j = i; j < end; ++j)
        if (auto it = newest.find(states[j].second); it != newest.end())
          (source_side ? states[j].first.newest_source_lu_ms : states[j].first.newest_target_lu_ms) = it->second;
    }
  }
}

// Streams the target in resource order (key fields only) and checks each resource's versions.
void Session::version_pass(Findings& out) {
  auto client = target_pool_.acquire();
  auto coll = target(client);
  Builder f;
  f.document("type", [](Builder& d) { d.append("$exists", true); });
  Builder o;
  o.document("sort", [](Builder& s) {
    s.append("im", int32_t{1}).append("type", int32_t{1}).append("res_id", int32_t{1});
  });
  o.document("projection", [](Builder& p) {
    for (const char* k : {"im", "type", "res_id", "lu", "cur", "cnt"}) p.append(k, int32_t{1});
  });
  o.append("batchSize", int32_t{5000});
  auto cursor = coll.find(f.get(), o.extract().get());
  std::optional<ResourceKey> current;
  std::vector<VersionFacts> versions;
  auto flush = [&] {
    if (!current || versions.empty()) return;
    if (auto problem = check_version_state(versions))
      out.add(version_state_difference(*current, versions, *problem));
    versions.clear();
  };
  while (const bson_t* doc = cursor.next()) {
    View v(doc);
    if (v.boolean("cnt").value_or(false)) continue;  // contained: checked against the container
    auto key = key_of(doc);
    auto id = v.oid("_id");
    auto lu = v.date("lu");
    auto cur = v.boolean("cur");
    if (!key || !id || !lu || !cur) continue;  // invalid: the entry pass reports it
    if (!current || *key != *current) {
      flush();
      current = std::move(key);
    }
    versions.push_back({*id, *lu, *cur});
  }
  flush();
}

void Session::run_full(Result& r) {
  Findings versions(r.source.high_water_ms, r.target.high_water_ms);
  std::exception_ptr version_failure;
  // The version pass reads only the target's key fields: it runs beside the entry pass.
  std::thread version_thread([&] {
    try {
      version_pass(versions);
    } catch (...) {
      version_failure = std::current_exception();
    }
  });
  try {
    auto sc = source_pool_.acquire();
    auto tc = target_pool_.acquire();
    auto scoll = source(sc);
    auto tcoll = target(tc);
    Bson filter = oid_filter();
    Bson opts = sorted_by_id_opts();
    auto s_cursor = scoll.find(filter.get(), opts.get());
    auto t_cursor = tcoll.find(filter.get(), opts.get());
    const bson_t* s = s_cursor.next();
    const bson_t* t = t_cursor.next();
    bson_oid_t s_id{}, t_id{};
    auto load_id = [](const bson_t* doc, bson_oid_t& out) {
      if (doc) out = *View(doc).oid("_id");
    };
    load_id(s, s_id);
    load_id(t, t_id);
    auto last_log = std::chrono::steady_clock::now();
    while (s || t) {
      int cmp = !t ? -1 : !s ? 1 : bson_oid_compare(&s_id, &t_id);
      if (cmp < 0) {
        source_only(s, r.findings, r.entries_compared);
        s = s_cursor.next();
        load_id(s, s_id);
      } else if (cmp > 0) {
        target_only(t, r.findings, r.entries_compared);
        t = t_cursor.next();
        load_id(t, t_id);
      } else {
        pair(s, t, r.findings, r.entries_compared);
        s = s_cursor.next();
        t = t_cursor.next();
        load_id(s, s_id);
        load_id(t, t_id);
      }
      if (auto now = std::chrono::steady_clock::now(); now - last_log > std::chrono::seconds(10)) {
        last_log = now;
        spdlog::info("verify: {} entries compared, {} differences so far", r.entries_compared,
                     r.findings.total());
      }
    }

    // Documents whose `_id` is not an ObjectId (the system document, broken entries): few, so
    // joined in memory.
    Builder nf;
    nf.document("_id", [](Builder& d) {
      d.document("$not", [](Builder& n) { n.append("$type", "objectId"); });
    });
    Bson not_oid = nf.extract();
    std::map<std::string, Bson> s_odd, t_odd;
    {
      auto c = scoll.find(not_oid.get());
      while (const bson_t* doc = c.next()) s_odd.emplace(id_of(doc), Bson::copy_of(doc));
    }
    {
      auto c = tcoll.find(not_oid.get());
      while (const bson_t* doc = c.next()) t_odd.emplace(id_of(doc), Bson::copy_of(doc));
    }
    for (auto& [id, doc] : s_odd) {
      auto it = t_odd.find(id);
      if (it == t_odd.end()) {
        source_only(doc.get(), r.findings, r.entries_compared);
      } else {
        pair(doc.get(), it->second.get(), r.findings, r.entries_compared);
        t_odd.erase(it);
      }
    }
    for (auto& [id, doc] : t_odd) target_only(doc.get(), r.findings, r.entries_compared);
    resolve_contained(r.findings);
  } catch (...) {
    version_thread.join();
    throw;
  }
  version_thread.join();
  if (version_failure) std::rethrow_exception(version_failure);
  r.findings.merge(std::move(versions));
  // Accounted-for quarantined entries first: no reason to wait --settle for them (the cut-over's
  // final verify runs while writes are held).
  attach_quarantine(r.findings);
  confirm(r.findings);
}

// Keeps the entries of `batch`'s resources (a key clause of `$in`s may match a resource of another
// type that shares a res_id), pairs them by `_id` and checks the version state of each resource in
// the target. `seen` holds the `_id`s compared so far.
void Session::compare_resources(const std::set<ResourceKey>& batch,
                                std::map<std::string, Bson>& s, std::map<std::string, Bson>& t,
                                std::set<std::string>& seen, Findings& findings, int64_t& compared) {
  for (auto* side : {&s, &t})
    std::erase_if(*side, [&](const auto& item) {
      auto key = key_of(item.second.get());
      return !key || !batch.count(*key);
    });
  join(s, t, seen, findings, compared);
  // Version state of these resources in the target.
  std::map<ResourceKey, std::vector<VersionFacts>> versions;
  for (auto& [id, doc] : t) {
    View v(doc.get());
    auto key = key_of(doc.get());
    auto oid = v.oid("_id");
    auto lu = v.date("lu");
    auto cur = v.boolean("cur");
    if (v.boolean("cnt").value_or(false) || !key || !oid || !lu || !cur) continue;
    versions[*key].push_back({*oid, *lu, *cur});
  }
  for (auto& [key, facts] : versions)
    if (auto problem = check_version_state(facts))
      findings.add(version_state_difference(key, facts, *problem));
}

// Pairs the two sides' entries by `_id`; `seen` holds the `_id`s compared so far.
void Session::join(std::map<std::string, Bson>& s, std::map<std::string, Bson>& t,
                   std::set<std::string>& seen, Findings& findings, int64_t& compared) {
  for (auto& [id, doc] : s) {
    if (!seen.insert(id).second) continue;
    auto it = t.find(id);
    if (it == t.end())
      source_only(doc.get(), findings, compared);
    else
      pair(doc.get(), it->second.get(), findings, compared);
  }
  for (auto& [id, doc] : t)
    if (seen.insert(id).second) target_only(doc.get(), findings, compared);
}

// `{im: {$in}, type: {$in}, res_id: {$in}}` for these resources: index ranges over (type, res_id)
// on MongoDB; on a server that scans, one cheap clause instead of an `$or` of many. It may also
// match a resource of another type that shares a res_id (compare_resources drops those).
Bson Session::resources_clause(const std::set<ResourceKey>& keys) {
  std::set<std::string> ims, types, res_ids;
  for (const auto& k : keys) {
    ims.insert(k.im);
    types.insert(k.type);
    res_ids.insert(k.res_id);
  }
  Builder f;
  f.document("im", [&](Builder& d) { d.append_in(ims); });
  f.document("type", [&](Builder& d) { d.append_in(types); });
  f.document("res_id", [&](Builder& d) { d.append_in(res_ids); });
  return f.extract();
}

std::map<std::string, Bson> Session::fetch(mongo::Collection& coll, const bson_t* filter) {
  std::map<std::string, Bson> out;
  auto c = coll.find(filter);
  while (const bson_t* doc = c.next()) out.emplace(id_of(doc), Bson::copy_of(doc));
  return out;
}

void Session::run_scoped(const std::set<ResourceKey>& keys, const std::set<std::string>& ids,
                         Findings& findings, int64_t& compared) {
  auto sc = source_pool_.acquire();
  auto tc = target_pool_.acquire();
  auto scoll = source(sc);
  auto tcoll = target(tc);
  std::set<std::string> seen;

  // Resources, up to kKeysPerQuery per query.
  std::set<ResourceKey> batch;
  auto compare_batch = [&] {
    if (batch.empty()) return;
    Bson filter = resources_clause(batch);
    auto [s, t] = on_both_sides([&](bool from_source) {
      return fetch(from_source ? scoll : tcoll, filter.get());
    });
    compare_resources(batch, s, t, seen, findings, compared);
    batch.clear();
  };
  for (const auto& k : keys) {
    batch.insert(k);
    if (batch.size() == kKeysPerQuery) compare_batch();
  }
  compare_batch();
  // Single entries (those whose key fields are broken, extra entries of a resource).
  std::vector<bson_oid_t> oids;
  for (const auto& id : ids)
    if (!seen.count(id))
      if (auto oid = mongo::oid_from_string(id)) oids.push_back(*oid);
  for (size_t i = 0; i < oids.size(); i += kInBatch) {
    size_t end = std::min(oids.size(), i + kInBatch);
    Builder f;
    f.document("_id", [&](Builder& d) {
      d.append_in(std::span(&oids[i], end - i));
    });
    Bson filter = f.extract();
    auto [s, t] = on_both_sides([&](bool from_source) { return fetch(from_source ? scoll : tcoll, filter.get()); });
    join(s, t, seen, findings, compared);
  }
  resolve_contained(findings);
}

Bson Session::since_filter() const {
  Builder f;
  f.document("_id", [&](Builder& d) { d.append("$gte", since_oid()); });
  return f.extract();
}

bson_oid_t Session::since_oid() const {
  return mongo::oid_at_seconds(static_cast<uint32_t>(std::max<int64_t>(0, *opt_.since_ms / 1000)));
}

void Session::Touched::add(const bson_t* doc) {
  if (schema::is_system_document(doc)) return;
  if (auto lu = View(doc).date("lu"); lu && (!newest_lu || *lu > *newest_lu)) newest_lu = lu;
  if (auto k = key_of(doc))
    keys.insert(std::move(*k));
  else
    ids.insert(id_of(doc));
}

Session::Touched Session::touched_since(mongo::Collection& coll) {
  Bson filter = since_filter();
  Builder o;
  o.document("projection", [](Builder& p) {
    for (const char* k : {"im", "type", "res_id", "lu"}) p.append(k, int32_t{1});
  });
  Bson opts = o.extract();
  Touched t;
  auto c = coll.find(filter.get(), opts.get());
  while (const bson_t* doc = c.next()) t.add(doc);
  return t;
}

// N entries drawn uniformly from the source: one pass over its `_id`s (an index-only scan on
// MongoDB) with reservoir sampling, so memory is N whatever the store's size. ($sample is not
// available on every MongoDB-compatible server.)
std::set<ResourceKey> Session::sample_keys(uint64_t seed, std::set<std::string>& ids) {
  std::set<ResourceKey> keys;
  auto client = source_pool_.acquire();
  auto coll = source(client);
  Bson filter = oid_filter();
  Builder o;
  o.document("projection", [](Builder& p) { p.append("_id", int32_t{1}); });
  o.append("batchSize", int32_t{10000});
  std::vector<bson_oid_t> reservoir;
  reservoir.reserve(static_cast<size_t>(opt_.sample));
  std::mt19937_64 rng(seed);
  int64_t seen = 0;
  {
    auto c = coll.find(filter.get(), o.extract().get());
    while (const bson_t* doc = c.next()) {
      auto oid = View(doc).oid("_id");
      if (!oid) continue;
      if (seen < opt_.sample) {
        reservoir.push_back(*oid);
      } else {
        uint64_t j = std::uniform_int_distribution<uint64_t>(0, static_cast<uint64_t>(seen))(rng);
        if (j < reservoir.size()) reservoir[j] = *oid;
      }
      ++seen;
    }
  }
  Builder po;
  po.document("projection", [](Builder& p) {
    for (const char* k : {"im", "type", "res_id"}) p.append(k, int32_t{1});
  });
  Bson opts = po.extract();
  for (size_t i = 0; i < reservoir.size(); i += kInBatch) {
    size_t end = std::min(reservoir.size(), i + kInBatch);
    Builder f;
    f.document("_id", [&](Builder& d) {
      d.append_in(std::span(&reservoir[i], end - i));
    });
    auto c = coll.find(f.extract().get(), opts.get());
    while (const bson_t* doc = c.next()) {
      if (schema::is_system_document(doc)) continue;
      if (auto k = key_of(doc))
        keys.insert(std::move(*k));
      else
        ids.insert(id_of(doc));
    }
  }
  return keys;
}

// Writers change a resource in two steps (insert the new version, flip the old one), so a stream
// can catch a resource between them. A bad state is reported only if a second look, after the
// passes, still finds it (and it is in flight if a version newer than the start point appeared).
std::vector<VersionFacts> Session::target_versions(const ResourceKey& key) {
  auto client = target_pool_.acquire();
  auto coll = target(client);
  Builder f;
  f.append("im", key.im).append("type", key.type).append("res_id", key.res_id);
  Builder o;
  o.document("projection", [](Builder& p) {
    for (const char* k : {"lu", "cur", "cnt"}) p.append(k, int32_t{1});
  });
  std::vector<VersionFacts> out;
  auto c = coll.find(f.extract().get(), o.extract().get());
  while (const bson_t* doc = c.next()) {
    View v(doc);
    auto id = v.oid("_id");
    auto lu = v.date("lu");
    auto cur = v.boolean("cur");
    if (v.boolean("cnt").value_or(false) || !id || !lu || !cur) continue;
    out.push_back({*id, *lu, *cur});
  }
  return out;
}

// A continuous migrator copies while the passes run: an entry may be missing or half-written
// (the new version inserted, the old one not flipped yet) when a stream passes it, and copied a
// moment later. So every difference is looked at once more, after `settle`, and reported only if
// it is still there. Nothing to confirm: no wait.
// Differences are looked at again every second until none is left or --settle has passed: a
// migrator that trails the writes by its poll cycle settles them as soon as it has copied them, so
// the verify ends then (the cut-over's mark is its start: the sooner it ends, the less is left for
// the final verify under the fence).
void Session::confirm(Findings& findings) {
  if (findings.equal() || !findings.complete()) return;  // (too many to look at again: as found)
  spdlog::info("verify: {} differences; looking at them again until they are gone, for at most "
               "{} ms (--settle)",
               findings.total(), opt_.settle_ms);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opt_.settle_ms);
  do {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    std::this_thread::sleep_for(std::clamp(left, std::chrono::milliseconds(0), kLookAgainEvery));
    look_again(findings);
  } while (!findings.equal() && findings.complete() && std::chrono::steady_clock::now() < deadline);
}

void Session::look_again(Findings& findings) {
  Findings confirmed = findings.empty_copy();
  std::vector<bson_oid_t> entries;
  auto is_resource_state = [](const Difference& d) {
    return d.kind == Kind::kBadState && d.key && d.detail.rfind("contained", 0) != 0;
  };
  std::vector<std::pair<Difference, ResourceKey>> states;  // resource states still wrong
  for (auto& d : findings.kept()) {
    // Entries, and contained entries against their container, are compared again.
    if (!d.in_flight && !is_resource_state(d) && d.oid) {
      entries.push_back(*d.oid);
      continue;
    }
    if (!d.in_flight && is_resource_state(d)) {
      auto versions = target_versions(*d.key);
      auto problem = check_version_state(versions);
      if (!problem) continue;  // caught between two writes; right now
      for (const auto& v : versions) d.lu_ms = std::max(d.lu_ms.value_or(v.lu_ms), v.lu_ms);
      d.detail = *problem;
      ResourceKey key = *d.key;
      states.emplace_back(std::move(d), std::move(key));
      continue;
    }
    confirmed.add(std::move(d));
  }
  find_newest_versions(states);
  for (auto& [d, key] : states) confirmed.add(std::move(d));
  // The entries again, both sides, compared as in the pass (its counters left as they were).
  const int64_t counters[4] = {source_entries_, target_entries_, source_system_, target_system_};
  int64_t compared = 0;
  auto sc = source_pool_.acquire();
  auto tc = target_pool_.acquire();
  auto scoll = source(sc);
  auto tcoll = target(tc);
  for (size_t i = 0; i < entries.size(); i += kInBatch) {
    size_t end = std::min(entries.size(), i + kInBatch);
    Builder f;
    f.document("_id", [&](Builder& d) {
      d.append_in(std::span(&entries[i], end - i));
    });
    Bson filter = f.extract();
    std::map<std::string, Bson> s, t;
    for (auto* side : {&s, &t}) {
      auto c = (side == &s ? scoll : tcoll).find(filter.get());
      while (const bson_t* doc = c.next()) side->emplace(id_of(doc), Bson::copy_of(doc));
    }
    for (auto& [id, doc] : s) {
      auto it = t.find(id);
      if (it == t.end())
        source_only(doc.get(), confirmed, compared);
      else
        pair(doc.get(), it->second.get(), confirmed, compared);
    }
    for (auto& [id, doc] : t)
      if (!s.count(id)) target_only(doc.get(), confirmed, compared);
  }
  resolve_contained(confirmed);
  for (const auto& a : findings.accounted()) confirmed.add_accounted(a);
  source_entries_ = counters[0];
  target_entries_ = counters[1];
  source_system_ = counters[2];
  target_system_ = counters[3];
  findings = std::move(confirmed);
}

// The fix an operator has for an open quarantined entry (docs/runbook.md, "Reviewing the
// quarantine").
std::string quarantine_fix(const std::string& id) {
  return "review it: fhirshift quarantine show " + id +
         "; then fix the source entry and fhirshift quarantine retry " + id +
         ", or fhirshift quarantine accept " + id + " --reason TEXT";
}

// Accepted or superseded (as the target is now): the quarantine accounts for the missing entry.
std::optional<AccountedEntry> account_of(const quarantine::Record& r,
                                         const std::map<std::string, bson_oid_t>& superseding) {
  AccountedEntry a;
  a.id = r.id_string();
  a.resource = r.resource();
  a.quarantine = r.reason + ": " + r.message;
  if (r.accepted) {
    a.how = AccountedEntry::How::kAccepted;
    a.by = r.accepted->by;
    a.at_ms = r.accepted->at_ms;
    a.note = r.accepted->reason;
    return a;
  }
  if (auto it = superseding.find(r.id_string()); it != superseding.end()) {
    a.how = AccountedEntry::How::kSuperseded;
    a.by = mongo::oid_to_string(it->second);
    return a;
  }
  return std::nullopt;
}

// The records of `ids` and which of the unaccepted ones are superseded in the target now.
std::pair<std::map<std::string, quarantine::Record>, std::map<std::string, bson_oid_t>>
Session::quarantine_records(const std::vector<bson_oid_t>& ids) {
  std::map<std::string, quarantine::Record> records;
  std::map<std::string, bson_oid_t> superseding;
  if (ids.empty()) return {std::move(records), std::move(superseding)};
  auto client = target_pool_.acquire();
  quarantine::Store store(client, target_uri_.database(), opt_.target_collection);
  std::vector<const quarantine::Record*> open;
  for (auto& r : store.get(ids)) {
    std::string id = r.id_string();
    records.emplace(id, std::move(r));
  }
  for (const auto& [id, r] : records)
    if (!r.accepted) open.push_back(&r);
  auto coll = target(client);
  superseding = quarantine::find_superseding(coll, open);
  return {std::move(records), std::move(superseding)};
}

void Session::attach_quarantine(Findings& findings) {
  std::vector<bson_oid_t> ids;
  for (auto& d : findings.kept())
    if (d.kind == Kind::kMissing && d.oid) ids.push_back(*d.oid);
  auto [records, superseding] = quarantine_records(ids);
  if (records.empty()) return;
  for (auto& d : findings.kept()) {
    if (d.kind != Kind::kMissing || !d.oid) continue;
    auto it = records.find(d.id);
    if (it == records.end()) continue;
    findings.set_quarantine(d, it->second.reason + ": " + it->second.message);
    if (!it->second.accepted && !superseding.count(d.id)) d.detail += "; " + quarantine_fix(d.id);
  }
  findings.account_quarantined([&](const Difference& d) -> std::optional<AccountedEntry> {
    auto it = records.find(d.id);
    if (it == records.end()) return std::nullopt;
    return account_of(it->second, superseding);
  });
}

// Counts mode cannot tell which entries are missing, but the quarantine can: its entries that the
// source holds (in the compared population) and the target does not are taken out of the source's
// cells and judged one by one, as the other modes judge them.
Session::CountsQuarantine Session::counts_quarantine(const Result& r) {
  CountsQuarantine out;
  std::vector<bson_oid_t> ids;
  {
    auto client = target_pool_.acquire();
    quarantine::Store store(client, target_uri_.database(), opt_.target_collection);
    for (const auto& rec : store.list())
      if (rec.source_id) ids.push_back(*rec.source_id);
  }
  if (ids.empty()) return out;
  auto sc = source_pool_.acquire();
  auto tc = target_pool_.acquire();
  auto scoll = source(sc);
  auto tcoll = target(tc);
  std::map<std::string, Bson> in_source;
  std::set<std::string> in_target;
  for (size_t i = 0; i < ids.size(); i += kInBatch) {
    Builder f;
    f.document("_id", [&](Builder& d) {
      d.append_in(std::span(&ids[i], std::min(kInBatch, ids.size() - i)));
    });
    Bson filter = f.extract();
    auto c = scoll.find(filter.get());
    while (const bson_t* doc = c.next()) in_source.emplace(id_of(doc), Bson::copy_of(doc));
    Builder o;
    o.document("projection", [](Builder& p) { p.append("_id", int32_t{1}); });
    auto t = tcoll.find(filter.get(), o.extract().get());
    while (const bson_t* doc = t.next()) in_target.insert(id_of(doc));
  }
  std::vector<bson_oid_t> absent;
  for (auto& [id, doc] : in_source) {
    if (in_target.count(id) || schema::is_system_document(doc.get())) continue;
    auto lu = View(doc.get()).date("lu");
    // The population count_once compares: not newer than the source's start point, not older
    // than --since.
    if (r.source.high_water_ms && (!lu || *lu > *r.source.high_water_ms)) continue;
    if (opt_.since_ms && (!lu || *lu < *opt_.since_ms)) continue;
    View v(doc.get());
    CountCells& cells = out.cells[{std::string(v.string("im").value_or("?")),
                                   std::string(v.string("type").value_or("?"))}];
    cells.total++;
    std::string_view change = v.string("change").value_or("");
    if (change == "c")
      cells.created++;
    else if (change == "u")
      cells.updated++;
    else if (change == "d")
      cells.deleted++;
    out.docs.emplace(id, Bson::copy_of(doc.get()));
    absent.push_back(*View(doc.get()).oid("_id"));
  }
  std::tie(out.records, out.superseding) = quarantine_records(absent);
  return out;
}

void Session::run_counts(Result& r) {
  // The same population on both sides: entries not newer than the source's start point (newer
  // ones are in flight), and not older than --since.
  auto match = [&](bool in_flight) {
    Builder m;
    m.document("type", [](Builder& d) { d.append("$exists", true); });
    if (r.source.high_water_ms || opt_.since_ms)
      m.document("lu", [&](Builder& d) {
        if (r.source.high_water_ms)
          d.append_date(in_flight ? "$gt" : "$lte", *r.source.high_water_ms);
        if (opt_.since_ms) d.append_date("$gte", *opt_.since_ms);
      });
    return m.extract();
  };
  // Counted again (once a second, for up to `settle`) while they differ: the migrator may still be
  // copying entries written just before the start point.
  const CountsQuarantine quarantined = counts_quarantine(r);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opt_.settle_ms);
  for (int attempt = 1;; ++attempt) {
    r.counts.clear();
    r.findings = r.findings.empty_copy();
    r.source.entries = r.target.entries = r.entries_compared = 0;
    count_once(r, match, quarantined);
    if (r.findings.equal() || std::chrono::steady_clock::now() >= deadline) {
      if (attempt > 1) spdlog::info("verify counts: {} counts", attempt);
      return;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

template <class Match>
void Session::count_once(Result& r, const Match& match, const CountsQuarantine& quarantined) {
  std::map<std::pair<std::string, std::string>, CountRow> rows;
  for (bool src : {true, false}) {
    auto client = src ? source_pool_.acquire() : target_pool_.acquire();
    auto coll = src ? source(client) : target(client);
    Bson m = match(false);
    Builder p;
    p.array("pipeline", [&](mongo::ArrayBuilder& stages) {
      stages.document([&](Builder& s) { s.append_document("$match", m.get()); });
      stages.document([](Builder& s) {
        s.document("$group", [](Builder& g) {
          g.document("_id", [](Builder& id) {
            id.append("im", "$im").append("type", "$type").append("cur", "$cur").append(
                "change", "$change");
          });
          g.document("n", [](Builder& n) { n.append("$sum", int32_t{1}); });
        });
      });
    });
    Bson pipeline = p.extract();
    bson_iter_t it;
    bson_iter_init_find(&it, pipeline.get(), "pipeline");
    uint32_t len;
    const uint8_t* data;
    bson_iter_array(&it, &len, &data);
    bson_t stages;
    bson_init_static(&stages, data, len);
    auto c = coll.aggregate(&stages);
    while (const bson_t* doc = c.next()) {
      auto id = View(doc).document("_id");
      if (!id) continue;
      int64_t n = View(doc).integer("n").value_or(0);
      std::string im(id->string("im").value_or("?"));
      std::string type(id->string("type").value_or("?"));
      auto& row = rows[{im, type}];
      row.im = im;
      row.type = type;
      CountCells& cells = src ? row.source : row.target;
      cells.total += n;
      if (id->boolean("cur").value_or(false)) cells.cur += n;
      std::string change(id->string("change").value_or(""));
      if (change == "c") cells.created += n;
      else if (change == "u") cells.updated += n;
      else if (change == "d") cells.deleted += n;
    }
    Builder sys;
    sys.document("type", [](Builder& d) { d.append("$exists", false); });
    (src ? r.source : r.target).system_documents = coll.count(sys.extract().get());
    if (r.source.high_water_ms) {
      Bson in_flight = match(true);
      r.findings.add_in_flight(coll.count(in_flight.get()));
    }
  }
  for (auto& [k, row] : rows) {
    r.source.entries += row.source.total;
    r.target.entries += row.target.total;
    r.entries_compared += std::max(row.source.total, row.target.total);
    if (auto q = quarantined.cells.find(k); q != quarantined.cells.end())
      row.quarantined = q->second;
    auto diff = [&](const char* change, int64_t s, int64_t t) {
      if (s == t) return;
      Difference d;
      d.kind = s > t ? Kind::kMissing : Kind::kExtra;
      d.resource = row.im + " " + row.type;
      d.detail = std::string("entries with change \"") + change + "\": source " +
                 std::to_string(s) + ", target " + std::to_string(t);
      d.count = std::abs(s - t);
      r.findings.add(std::move(d));
    };
    diff("c", row.source.created - row.quarantined.created, row.target.created);
    diff("u", row.source.updated - row.quarantined.updated, row.target.updated);
    diff("d", row.source.deleted - row.quarantined.deleted, row.target.deleted);
    r.counts.push_back(row);
  }
  for (const auto& [id, doc] : quarantined.docs) {
    auto rec = quarantined.records.find(id);
    if (rec == quarantined.records.end()) continue;  // left the quarantine meanwhile (a retry)
    if (auto account = account_of(rec->second, quarantined.superseding)) {
      r.findings.add_accounted(std::move(*account));
      continue;
    }
    Difference d = entry_difference(Kind::kMissing, doc.get());
    d.resource = rec->second.resource();
    d.detail = "not in the target; " + quarantine_fix(id);
    r.findings.add(std::move(d));
    if (auto& kept = r.findings.kept(); !kept.empty() && kept.back().id == id)
      r.findings.set_quarantine(kept.back(), rec->second.reason + ": " + rec->second.message);
  }
}

int64_t Session::quarantine_count(mongo::Client& client, bool source_side) {
  const std::string& db = source_side ? source_uri_.database() : target_uri_.database();
  const std::string& name = source_side ? opt_.source_collection : opt_.target_collection;
  return client.collection(db, schema::quarantine_collection(name)).count(mongo::Bson().get());
}

void Session::log_start(const Result& r) const {
  spdlog::info("verify {} of {} (on {}) against {} (on {}); start point: source lu {}, target lu {}",
               mode_name(opt_.mode), r.target.ns, r.target.hosts, r.source.ns, r.source.hosts,
               r.source.high_water_ms ? format_iso8601(*r.source.high_water_ms) : "none (empty)",
               r.target.high_water_ms ? format_iso8601(*r.target.high_water_ms) : "none (empty)");
}

// --mode full --since (the cut-over's final verify, run while writes are held). The source reads
// its scope (entries written since --since) and then every version of those resources; the
// target reads, in ONE query started as soon as the source's scope is known, its own entries
// written since --since and every version of the source's resources. On MongoDB every clause is an
// index range; on a server that scans for any filter but `_id` equality, the target (the larger
// documents) is passed over once instead of twice while writes wait. The newest lu of each scope
// is its start point. Resources only the target touched are compared afterwards (none, normally).
void Session::run_since(Result& r) {
  using Keys = std::optional<std::set<ResourceKey>>;  // nullopt: too many for one query
  std::promise<Keys> source_scope;
  std::shared_future<Keys> source_keys = source_scope.get_future().share();
  struct Side {
    Touched touched;
    std::map<std::string, Bson> docs;  // every version of the source's scope (when one query)
    std::optional<int64_t> high_water_ms;
    int64_t quarantine = 0;
  };
  auto [src, dst] = on_both_sides([&](bool from_source) {
    Side side;
    auto client = from_source ? source_pool_.acquire() : target_pool_.acquire();
    auto coll = from_source ? source(client) : target(client);
    if (from_source) {
      try {
        client.ping();
        if (opt_.wait_until_final) opt_.wait_until_final(true);
        auto t0 = std::chrono::steady_clock::now();
        side.touched = touched_since(coll);
        spdlog::debug("verify: source: {} resources touched since the start point, read in {} ms",
                      side.touched.keys.size(), ms_since(t0));
      } catch (...) {
        source_scope.set_exception(std::current_exception());
        throw;
      }
      const bool one_query = side.touched.keys.size() <= kKeysPerQuery;
      source_scope.set_value(one_query ? Keys(side.touched.keys) : Keys());
      if (one_query && !side.touched.keys.empty()) {
        auto t1 = std::chrono::steady_clock::now();
        side.docs = fetch(coll, resources_clause(side.touched.keys).get());
        spdlog::debug("verify: source: {} entries of those resources, read in {} ms",
                      side.docs.size(), ms_since(t1));
      }
    } else {
      client.ping();
      if (opt_.wait_until_final) opt_.wait_until_final(false);
      const Keys keys = source_keys.get();
      if (!keys) {
        side.touched = touched_since(coll);
      } else {
        Bson filter = since_filter();
        if (!keys->empty()) {
          Builder f;
          f.array("$or", [&](mongo::ArrayBuilder& a) {
            a.append_document(filter.get());
            a.append_document(resources_clause(*keys).get());
          });
          filter = f.extract();
        }
        const bson_oid_t since = since_oid();
        auto t0 = std::chrono::steady_clock::now();
        side.docs = fetch(coll, filter.get());
        spdlog::debug("verify: target: {} entries, read in {} ms", side.docs.size(), ms_since(t0));
        for (const auto& [id, doc] : side.docs)
          if (auto oid = View(doc.get()).oid("_id"); oid && bson_oid_compare(&*oid, &since) >= 0)
            side.touched.add(doc.get());
      }
    }
    side.high_water_ms = side.touched.newest_lu ? side.touched.newest_lu : high_water(coll);
    side.quarantine = quarantine_count(client, from_source);
    return side;
  });
  r.source.high_water_ms = src.high_water_ms;
  r.target.high_water_ms = dst.high_water_ms;
  r.source.quarantine = src.quarantine;
  r.target.quarantine = dst.quarantine;
  r.findings = Findings(r.source.high_water_ms, r.target.high_water_ms);
  log_start(r);

  const bool one_query = src.touched.keys.size() <= kKeysPerQuery;
  std::set<ResourceKey> rest;  // resources to compare with a read of their own on both sides
  std::set<std::string> ids = std::move(src.touched.ids);
  ids.merge(dst.touched.ids);
  for (const auto& k : dst.touched.keys)
    if (!one_query || !src.touched.keys.count(k)) rest.insert(k);
  if (!one_query) rest.merge(src.touched.keys);
  spdlog::info("verify: {} resources and {} single entries to compare",
               (one_query ? src.touched.keys.size() : 0) + rest.size(), ids.size());
  if (one_query && !src.touched.keys.empty()) {
    std::set<std::string> seen;
    compare_resources(src.touched.keys, src.docs, dst.docs, seen, r.findings, r.entries_compared);
  }
  run_scoped(rest, ids, r.findings, r.entries_compared);
  attach_quarantine(r.findings);
  confirm(r.findings);
}

Result Session::run() {
  Result r;
  r.mode = opt_.mode;
  r.since_ms = opt_.since_ms;
  r.started_at_ms = now_ms();
  auto t0 = std::chrono::steady_clock::now();
  r.source.ns = source_uri_.database() + "." + opt_.source_collection;
  r.target.ns = target_uri_.database() + "." + opt_.target_collection;
  r.source.hosts = source_uri_.hosts();
  r.target.hosts = target_uri_.hosts();
  if (opt_.mode == Mode::kFull && opt_.since_ms) {
    run_since(r);
  } else {
    auto [src, dst] = on_both_sides([&](bool from_source) {
      auto client = from_source ? source_pool_.acquire() : target_pool_.acquire();
      client.ping();
      auto coll = from_source ? source(client) : target(client);
      return std::make_pair(high_water(coll), quarantine_count(client, from_source));
    });
    std::tie(r.source.high_water_ms, r.source.quarantine) = src;
    std::tie(r.target.high_water_ms, r.target.quarantine) = dst;
    r.findings = Findings(r.source.high_water_ms, r.target.high_water_ms);
    log_start(r);
    if (opt_.mode == Mode::kCounts) {
      run_counts(r);
    } else if (opt_.mode == Mode::kFull) {
      run_full(r);
    } else {
      std::set<std::string> ids;
      r.sample_seed = opt_.sample_seed ? opt_.sample_seed : std::random_device{}();
      std::set<ResourceKey> keys = sample_keys(r.sample_seed, ids);
      spdlog::info("verify: {} resources and {} single entries to compare", keys.size(), ids.size());
      run_scoped(keys, ids, r.findings, r.entries_compared);
      attach_quarantine(r.findings);
      confirm(r.findings);
    }
  }
  if (opt_.mode != Mode::kCounts) {
    r.source.entries = source_entries_;
    r.target.entries = target_entries_;
    r.source.system_documents = source_system_;
    r.target.system_documents = target_system_;
    attach_quarantine(r.findings);
  }

  if (opt_.repair && opt_.mode != Mode::kCounts && !r.findings.equal()) {
    RepairSummary summary;
    summary.verdict_before = r.verdict();
    spdlog::info("repair: {}", summary.verdict_before);
    RepairScope scope = repair_differences(
        RepairTarget{source_pool_, source_uri_.database(), opt_.source_collection, target_pool_,
                     target_uri_.database(), opt_.target_collection},
        r.findings, opt_.delete_extra, opt_.parallelism, indexer_, summary);
    // Re-verify what the repair touched (or everything, when there were too many to keep).
    Findings after(r.source.high_water_ms, r.target.high_water_ms);
    // Accepted and superseded entries were not repaired: still accounted for.
    for (const auto& a : r.findings.accounted()) after.add_accounted(a);
    int64_t compared = 0;
    source_entries_ = target_entries_ = source_system_ = target_system_ = 0;
    if (r.findings.complete()) {
      run_scoped(scope.keys, scope.ids, after, compared);
      // In-flight differences were left to the migrator: still reported as such.
      for (auto& d : r.findings.kept())
        if (d.in_flight) after.add(std::move(d));
      r.findings = std::move(after);
    } else {
      r.findings = std::move(after);
      r.entries_compared = 0;
      run_full(r);
      compared = 0;
    }
    r.entries_compared = std::max(r.entries_compared, compared);
    attach_quarantine(r.findings);
    r.repair = std::move(summary);
  }
  r.took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - t0)
                  .count();
  return r;
}

}  // namespace

Mode parse_mode(const std::string& text) {
  if (text == "counts") return Mode::kCounts;
  if (text == "sample") return Mode::kSample;
  if (text == "full") return Mode::kFull;
  throw std::invalid_argument("unknown verify mode '" + text + "' (counts, sample or full)");
}

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::kCounts: return "counts";
    case Mode::kSample: return "sample";
    case Mode::kFull: return "full";
  }
  return "?";
}

bool CountRow::entries_differ() const {
  return source.total - quarantined.total != target.total ||
         source.created - quarantined.created != target.created ||
         source.updated - quarantined.updated != target.updated ||
         source.deleted - quarantined.deleted != target.deleted;
}

Result run_verify(const Options& options, std::shared_ptr<const index::Indexer> indexer) {
  mongo::ensure_driver_initialized();
  Session session(options, std::move(indexer));
  Result r = session.run();
  struct rusage usage {};
  if (::getrusage(RUSAGE_SELF, &usage) == 0) r.peak_rss_kb = usage.ru_maxrss;
  return r;
}

}  // namespace fhirshift::verify

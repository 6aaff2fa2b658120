#include "migrate/import_writer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "migrate/transform.h"
#include "mongo/collection.h"
#include "mongo/error.h"
#include "schema/layout.h"

namespace fhirshift::migrate {
namespace {

constexpr size_t kMaxReportedProblems = 20;

void note_problem(Tally& t, const std::string& message) {
  if (t.first_problems.size() < kMaxReportedProblems) t.first_problems.push_back(message);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Runs `work(i)` for i in [0, n) on up to `threads` threads; rethrows the first failure.
template <class F>
void parallel_for(size_t n, int threads, F work) {
  std::atomic<size_t> next{0};
  std::vector<std::exception_ptr> failures(n);
  std::vector<std::thread> workers;
  for (size_t w = 0; w < std::min(n, static_cast<size_t>(std::max(1, threads))); ++w)
    workers.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) {
        try {
          work(i);
        } catch (...) {
          failures[i] = std::current_exception();
        }
      }
    });
  for (auto& w : workers) w.join();
  for (auto& f : failures)
    if (f) std::rethrow_exception(f);
}

bool same_entry_but_cur(const schema::Entry& a, const schema::Entry& b) {
  return bson_oid_equal(&a.id, &b.id) && a.im == b.im && a.type == b.type && a.res_id == b.res_id && a.v == b.v &&
         a.lu_ms == b.lu_ms && a.change == b.change && a.cnt == b.cnt &&
         a.container.has_value() == b.container.has_value() &&
         (!a.container || bson_oid_equal(&*a.container, &*b.container)) && a.json == b.json;
}

bool same_entry(const schema::Entry& a, const schema::Entry& b) { return a.cur == b.cur && same_entry_but_cur(a, b); }

bool is_duplicate_key(int32_t code) { return code == 11000 || code == 11001 || code == 12582; }

mongo::Bson by_id(const bson_oid_t& id) {
  mongo::Builder f;
  f.append("_id", id);
  return f.extract();
}

}  // namespace

std::string import_resource_key(std::string_view type, std::string_view id) {
  return std::string(type) + '/' + std::string(id);
}

ImportWriter::ImportWriter(mongo::ClientPool& target, ImportWriterConfig config,
                           std::shared_ptr<const index::Indexer> indexer)
    : target_(target), config_(std::move(config)), indexer_(std::move(indexer)) {
  mongo::Client client = target_.acquire();
  key_filter_ = schema::key_filter_for(client);
}

bool ImportWriter::holds_resources() {
  mongo::Client client = target_.acquire();
  mongo::Collection target = client.collection(config_.database, config_.collection);
  mongo::Builder f;
  f.document("type", [](mongo::Builder& d) { d.append("$exists", true); });
  mongo::Builder o;
  o.document("projection", [](mongo::Builder& p) { p.append("_id", int32_t{1}); });
  mongo::Bson fd = f.extract(), od = o.extract();
  return target.find_one(fd.get(), od.get()).has_value();
}

std::map<std::string, TargetVersion> ImportWriter::newest_versions(
    const std::set<std::pair<std::string, std::string>>& keys) {
  std::map<std::string, TargetVersion> found;
  if (keys.empty()) return found;
  std::set<std::string> types, ids;
  for (const auto& [type, id] : keys) {
    types.insert(type);
    ids.insert(id);
  }
  mongo::Client client = target_.acquire();
  mongo::Collection target = client.collection(config_.database, config_.collection);
  mongo::Builder f;
  f.append("im", schema::kInfoModelR4);
  f.document("type", [&](mongo::Builder& in) { in.append_in(types); });
  f.document("res_id", [&](mongo::Builder& in) { in.append_in(ids); });
  mongo::Builder o;
  o.document("projection", [](mongo::Builder& p) {
    for (const char* k : {"_id", "type", "res_id", "v", "lu", "change", "cur", "cnt"}) p.append(k, int32_t{1});
  });
  mongo::Bson fd = f.extract(), od = o.extract();
  mongo::Cursor cursor = target.find(fd.get(), od.get());
  while (const bson_t* d = cursor.next()) {
    mongo::View v(d);
    auto oid = v.oid("_id");
    if (!oid || v.boolean("cnt").value_or(false)) continue;
    std::pair<std::string, std::string> tk{std::string(v.string("type").value_or("")),
                                           std::string(v.string("res_id").value_or(""))};
    if (!keys.count(tk)) continue;  // the cross product of types and ids matched more than asked
    TargetVersion version{*oid, std::string(v.string("v").value_or("")), v.date("lu").value_or(0),
                          v.string("change").value_or("") == "d", 0, {}};
    auto [it, fresh] = found.try_emplace(import_resource_key(tk.first, tk.second), version);
    TargetVersion& newest = it->second;
    bool newer = version.lu_ms != newest.lu_ms ? version.lu_ms > newest.lu_ms
                                               : bson_oid_compare(&version.id, &newest.id) > 0;
    if (!fresh && newer) {
      version.versions = newest.versions;
      version.current = std::move(newest.current);
      newest = std::move(version);
    }
    newest.versions++;
    if (v.boolean("cur").value_or(false)) newest.current.push_back(*oid);
  }
  return found;
}

std::vector<ImportWriter::Outcome> ImportWriter::insert(const std::vector<const schema::Entry*>& entries,
                                                        Tally& tally) {
  std::vector<Outcome> outcomes(entries.size(), Outcome::kWritten);
  const size_t batch = static_cast<size_t>(std::max(1, config_.batch_size));
  const size_t parts = (entries.size() + batch - 1) / batch;
  std::vector<Tally> tallies(parts);
  parallel_for(parts, config_.parallelism, [&](size_t p) {
    const size_t from = p * batch, to = std::min(entries.size(), from + batch);
    Tally& t = tallies[p];
    std::vector<mongo::Bson> docs;
    docs.reserve(to - from);
    for (size_t i = from; i < to; ++i) {
      index::IndexStats stats;
      docs.push_back(schema::encode_current(to_current(*entries[i], entries[i]->cur, *indexer_, &stats)));
      t.index_problems += stats.evaluation_errors;
      t.skipped_params += stats.skipped_params;
    }
    if (config_.dry_run) return;
    mongo::Client client = target_.acquire();
    mongo::Collection target = client.collection(config_.database, config_.collection);
    mongo::BulkWriter bulk = target.bulk(false);
    for (const auto& d : docs) bulk.insert(d.get());
    mongo::BulkResult r = bulk.execute();
    if (!r.write_concern_error.empty())
      throw mongo::MongoError("writing to " + target.ns(), 0, 64, "write concern error: " + r.write_concern_error);
    for (const auto& err : r.write_errors) {
      size_t i = from + err.index;
      if (i >= to) continue;
      if (is_duplicate_key(err.code)) {
        outcomes[i] = Outcome::kExisting;
        continue;
      }
      outcomes[i] = Outcome::kError;
      const schema::Entry& e = *entries[i];
      std::string message = fmt::format("target refused entry {} ({}/{} v{}): {} (code {})", e.id_string(), e.type,
                                        e.res_id, e.v, err.message, err.code);
      note_problem(t, message);
      spdlog::error("{}", message);
    }
  });
  for (const auto& t : tallies) tally.add(t);
  return outcomes;
}

void ImportWriter::resolve_existing(const std::vector<const schema::Entry*>& entries, std::vector<Outcome>& outcomes) {
  std::optional<bson_oid_t> lo, hi;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (outcomes[i] != Outcome::kExisting) continue;
    const bson_oid_t& id = entries[i]->id;
    if (!lo || bson_oid_compare(&id, &*lo) < 0) lo = id;
    if (!hi || bson_oid_compare(&id, &*hi) > 0) hi = id;
  }
  if (!lo) return;
  mongo::Client client = target_.acquire();
  mongo::Collection target = client.collection(config_.database, config_.collection);
  // Only a replayed or retried chunk or a concurrent writer gets here: one query for all of them.
  // A chunk's `_id`s are one range (import_entry_id sorts in file order), so the query is that
  // range, not `$in` of the ids: FerretDB serves neither from an index, but it tests `$in` against
  // every id of the list for every document of the collection (a retried 16,000-entry chunk of a
  // 1 GB import stalled for over ten minutes on it), a range with two comparisons. Entries of the
  // range that were not asked for are ignored.
  std::unordered_map<std::string, std::pair<schema::Entry, bool>> there;  // _id -> (entry, has idx)
  std::unordered_map<std::string, schema::ShardKey> keys;  // _id -> its shard key, for the replace
  mongo::Builder f;
  f.document("_id", [&](mongo::Builder& range) { range.append("$gte", *lo).append("$lte", *hi); });
  mongo::Bson fd = f.extract();
  mongo::Cursor cursor = target.find(fd.get());
  while (const bson_t* d = cursor.next()) {
    if (auto k = schema::ShardKey::read(d)) keys.emplace(k->id_string(), std::move(*k));
    try {
      schema::Entry t = schema::decode_entry(d);
      std::string id = t.id_string();
      there.emplace(std::move(id), std::make_pair(std::move(t), mongo::View(d).type_of("idx") == BSON_TYPE_DOCUMENT));
    } catch (const schema::EntryError&) {
      there.emplace(mongo::oid_to_string(*mongo::View(d).oid("_id")), std::make_pair(schema::Entry{}, false));
    }
  }
  mongo::BulkWriter replace = target.bulk(false);
  std::vector<size_t> replaced;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (outcomes[i] != Outcome::kExisting) continue;
    const schema::Entry& e = *entries[i];
    auto it = there.find(e.id_string());
    if (it == there.end()) {
      outcomes[i] = Outcome::kConflict;  // the version key is held by another writer's entry
      continue;
    }
    const schema::Entry& t = it->second.first;
    bool indexed = t.cur && !t.cnt && !t.is_tombstone();
    // The same entry; or the same made history since (by a newer version another writer added
    // after a crashed attempt of this chunk wrote it), which stays history.
    if (same_entry(e, t) || (e.cur && !t.cur && same_entry_but_cur(e, t))) {
      if (it->second.second == indexed) {
        outcomes[i] = Outcome::kUnchanged;
        continue;
      }
    }
    // This import's own `_id` in another state (a chunk replayed with other flips done meanwhile).
    mongo::Bson doc = schema::encode_current(to_current(e, e.cur, *indexer_));
    // It may change `cur`: filtered by the shard key the entry has now (a document too broken to
    // have one is matched by `_id` alone).
    auto key = keys.find(e.id_string());
    replace.replace_one(key != keys.end() ? key->second.filter(key_filter_).get() : by_id(e.id).get(), doc.get(),
                        false);
    replaced.push_back(i);
    outcomes[i] = Outcome::kWritten;
  }
  if (replace.size() == 0) return;
  mongo::BulkResult r = replace.execute();
  for (const auto& err : r.write_errors)
    if (err.index < replaced.size()) outcomes[replaced[err.index]] = Outcome::kConflict;
}

void ImportWriter::make_history(const std::vector<bson_oid_t>& replaced) {
  if (replaced.empty()) return;
  mongo::Client client = target_.acquire();
  mongo::Collection target = client.collection(config_.database, config_.collection);
  // The replaced entries that are still current and their contained entries, which follow them,
  // with their shard keys (the filters of the flips): one query for all.
  std::vector<schema::ShardKey> flips;
  mongo::Builder f;
  f.append("cur", true);
  f.array("$or", [&](mongo::ArrayBuilder& any) {
    any.document([&](mongo::Builder& d) { d.document("_id", [&](mongo::Builder& in) { in.append_in(replaced); }); });
    any.document([&](mongo::Builder& d) {
      d.document("container", [&](mongo::Builder& in) { in.append_in(replaced); });
    });
  });
  mongo::Builder o;
  o.document("projection", [](mongo::Builder& p) { schema::ShardKey::project(p); });
  mongo::Bson fd = f.extract(), od = o.extract();
  mongo::Cursor cursor = target.find(fd.get(), od.get());
  while (const bson_t* d = cursor.next())
    if (auto k = schema::ShardKey::read(d)) flips.push_back(std::move(*k));
  // One single-document update per entry (`cur` is in the shard key: only such an update may
  // change it), spread over the writers in flight.
  const size_t n = static_cast<size_t>(std::max(1, config_.parallelism));
  const size_t per = (flips.size() + n - 1) / n;
  parallel_for(n, config_.parallelism, [&](size_t p) {
    const size_t from = p * per, to = std::min(flips.size(), from + per);
    if (from >= to) return;
    mongo::Client c = target_.acquire();
    mongo::Collection coll = c.collection(config_.database, config_.collection);
    mongo::BulkWriter bulk = coll.bulk(false);
    add_history_flips(bulk,
                      std::vector<schema::ShardKey>(flips.begin() + static_cast<ptrdiff_t>(from),
                                                    flips.begin() + static_cast<ptrdiff_t>(to)),
                      key_filter_);
    mongo::BulkResult r = bulk.execute();
    if (!r.write_errors.empty())
      throw mongo::MongoError("making replaced versions history in " + coll.ns(), 0, r.write_errors.front().code,
                              r.write_errors.front().message);
  });
}

Tally ImportWriter::write(const std::vector<ImportVersion>& versions,
                          const std::map<std::string, std::vector<bson_oid_t>>& replaced) {
  Tally tally;
  std::vector<mongo::Bson> quarantine;
  auto record = [&](const schema::Entry& e, const std::string& reason, const std::string& message) {
    note_problem(tally, message);
    spdlog::warn("{}", message);
    mongo::Builder q;
    q.append("_id", e.id).append("reason", reason).append("message", message);
    q.append_date("at", now_ms());
    q.append("sourceId", e.id);
    quarantine.push_back(q.extract());
  };

  // 1. The resources.
  std::vector<const schema::Entry*> resources;
  for (const auto& v : versions) resources.push_back(&v.entry);
  std::vector<Outcome> outcomes = insert(resources, tally);
  if (!config_.dry_run) resolve_existing(resources, outcomes);

  // 2. A resource with a version that could not be written keeps none of this chunk's versions:
  // the others would be history or current out of order around another writer's version.
  std::set<std::string> failed;
  for (size_t i = 0; i < versions.size(); ++i)
    if (outcomes[i] == Outcome::kConflict || outcomes[i] == Outcome::kError)
      failed.insert(import_resource_key(versions[i].entry.type, versions[i].entry.res_id));
  std::vector<bson_oid_t> undo;
  std::vector<const schema::Entry*> contained;
  for (size_t i = 0; i < versions.size(); ++i) {
    const ImportVersion& v = versions[i];
    const schema::Entry& e = v.entry;
    tally.read += 1 + static_cast<int64_t>(v.contained.size());
    if (!failed.count(import_resource_key(e.type, e.res_id))) {
      if (outcomes[i] == Outcome::kUnchanged) tally.unchanged++;
      else {
        tally.written++;
        tally.written_by_type[e.type]++;
      }
      for (const auto& c : v.contained) contained.push_back(&c);
      continue;
    }
    std::string what = fmt::format("{}/{} version {} (entry {})", e.type, e.res_id, e.v, e.id_string());
    if (outcomes[i] == Outcome::kError) {
      tally.errors++;
      record(e, "write-error", "the target refused " + what + ": see the log");
    } else {
      tally.conflicts++;
      record(e, "conflict",
             outcomes[i] == Outcome::kConflict
                 ? "conflict: " + what + ": another writer took this version number meanwhile; not written"
                 : "conflict: " + what + ": another version of this resource could not be written; not written");
    }
    // Contained entries share their container's fate.
    (outcomes[i] == Outcome::kError ? tally.errors : tally.conflicts) += static_cast<int64_t>(v.contained.size());
    if (outcomes[i] != Outcome::kConflict && outcomes[i] != Outcome::kError) undo.push_back(e.id);
    for (const auto& c : v.contained) undo.push_back(c.id);  // a crashed attempt may have written them
  }

  // 3. Contained entries of the resources written.
  std::vector<Outcome> contained_outcomes = insert(contained, tally);
  if (!config_.dry_run) resolve_existing(contained, contained_outcomes);
  for (size_t i = 0; i < contained.size(); ++i)
    if (contained_outcomes[i] == Outcome::kUnchanged) {
      tally.unchanged++;
    } else if (contained_outcomes[i] == Outcome::kWritten) {
      tally.written++;
      tally.written_by_type[contained[i]->type]++;
    } else {
      tally.errors++;
      record(*contained[i], "write-error",
             fmt::format("the target refused contained entry {} ({}/{} in {}): see the log", contained[i]->id_string(),
                         contained[i]->type, contained[i]->res_id, mongo::oid_to_string(*contained[i]->container)));
    }
  if (config_.dry_run) return tally;

  mongo::Client client = target_.acquire();
  if (!undo.empty()) {
    mongo::Collection target = client.collection(config_.database, config_.collection);
    mongo::BulkWriter deletes = target.bulk(false);
    for (const auto& id : undo) deletes.delete_one(by_id(id).get());
    deletes.execute();
  }

  // 4. What the chunk's versions replace becomes history.
  std::vector<bson_oid_t> history;
  for (const auto& [key, ids] : replaced)
    if (!failed.count(key)) history.insert(history.end(), ids.begin(), ids.end());
  make_history(history);

  if (!quarantine.empty()) {
    mongo::Collection q = client.collection(config_.database, schema::quarantine_collection(config_.collection));
    mongo::BulkWriter w = q.bulk(false);
    for (const auto& doc : quarantine) w.replace_one(by_id(*mongo::View(doc.get()).oid("_id")).get(), doc.get(), true);
    w.execute();
  }
  return tally;
}

}  // namespace fhirshift::migrate

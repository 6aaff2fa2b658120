#include "migrate/apply.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iterator>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "migrate/transform.h"
#include "mongo/collection.h"
#include "mongo/error.h"
#include "schema/entry.h"
#include "schema/layout.h"
#include "schema/shard_key.h"

namespace fhirshift::migrate {
namespace {

constexpr size_t kMaxReportedProblems = 20;

void note_problem(Tally& t, const std::string& message) {
  if (t.first_problems.size() < kMaxReportedProblems) t.first_problems.push_back(message);
}

std::string resource_key(const schema::Entry& e) {
  return e.im + '\x1f' + e.type + '\x1f' + e.res_id;
}

std::string version_key(const schema::Entry& e) {
  return resource_key(e) + '\x1f' + e.v + '\x1f' +
         (e.container ? mongo::oid_to_string(*e.container) : std::string());
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool same_entry(const schema::Entry& a, const schema::Entry& b) {
  return bson_oid_equal(&a.id, &b.id) && a.im == b.im && a.type == b.type && a.res_id == b.res_id &&
         a.v == b.v && a.lu_ms == b.lu_ms && a.change == b.change && a.cnt == b.cnt &&
         a.container.has_value() == b.container.has_value() &&
         (!a.container || bson_oid_equal(&*a.container, &*b.container)) && a.json == b.json;
}

// (type, id) of each resource in the body's `contained` array.
// A contained entry's identity: its version key plus its container's `_id`.
std::string contained_match(std::string_view im, std::string_view type, std::string_view res_id,
                            std::string_view v, const bson_oid_t& container) {
  return fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}", im, type, res_id, v,
                     mongo::oid_to_string(container));
}

std::vector<std::pair<std::string, std::string>> contained_of(const std::string& json) {
  std::vector<std::pair<std::string, std::string>> out;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc)) return out;
  simdjson::dom::array contained;
  if (doc["contained"].get(contained)) return out;
  for (simdjson::dom::element c : contained) {
    std::string_view type, id;
    if (!c["resourceType"].get(type) && !c["id"].get(id)) out.emplace_back(type, id);
  }
  return out;
}

}  // namespace

void add_history_flips(mongo::BulkWriter& writer, const std::vector<schema::ShardKey>& keys,
                       schema::KeyFilter shape) {
  mongo::Builder u;
  u.document("$set", [](mongo::Builder& s) { s.append("cur", false); });
  u.document("$unset", [](mongo::Builder& s) { s.append("idx", ""); });
  mongo::Bson update = u.extract();
  for (const auto& key : keys) writer.update_one(key.filter(shape).get(), update.get(), false);
}

std::vector<schema::ShardKey> current_keys(mongo::Collection& target, const std::vector<bson_oid_t>& ids,
                                           schema::KeyFilter shape) {
  std::vector<schema::ShardKey> keys;
  if (ids.empty()) return keys;
  if (shape == schema::KeyFilter::kIdOnly) {
    for (const auto& id : ids) {
      schema::ShardKey k;
      k.id = id;
      k.cur = true;
      keys.push_back(std::move(k));
    }
    return keys;
  }
  mongo::Builder f;
  f.document("_id", [&](mongo::Builder& in) { in.append_in(ids); });
  mongo::Builder o;
  o.document("projection", [](mongo::Builder& p) { schema::ShardKey::project(p); });
  mongo::Bson fd = f.extract(), od = o.extract();
  mongo::Cursor cursor = target.find(fd.get(), od.get());
  while (const bson_t* d = cursor.next())
    if (auto k = schema::ShardKey::read(d); k && k->cur) keys.push_back(std::move(*k));
  return keys;
}

void Tally::add(const Tally& o) {
  read += o.read;
  written += o.written;
  unchanged += o.unchanged;
  kept += o.kept;
  system += o.system;
  quarantined += o.quarantined;
  conflicts += o.conflicts;
  errors += o.errors;
  index_problems += o.index_problems;
  skipped_params += o.skipped_params;
  for (const auto& [type, n] : o.written_by_type) written_by_type[type] += n;
  for (const auto& p : o.first_problems) note_problem(*this, p);
}

struct Applier::Partition {
  std::vector<const mongo::Bson*> docs;
  Tally tally;
  std::map<std::string, Decision> decisions;  // phase 1: entry _id -> decision, for phase 2
  HeadUpdates heads;                          // phase 1: new heads (owned target)
  std::map<std::string, std::vector<std::string>>
      contained_added;  // phase 2: key -> contained _ids
  std::map<std::string, std::vector<Orphan>>
      orphans;                       // phase 2, owned: written before their container
  std::vector<std::string> adopted;  // phase 1, owned: containers whose orphans were set
  std::exception_ptr failure;
};

Applier::Applier(mongo::ClientPool& target, ApplierConfig config,
                 std::shared_ptr<const index::Indexer> indexer, Journal* heads)
    : target_(target), config_(std::move(config)), indexer_(std::move(indexer)), heads_(heads) {
  mongo::Client client = target_.acquire();
  key_filter_ = schema::key_filter_for(client);
}

Tally Applier::apply(const std::vector<mongo::Bson>& docs, ChunkState* chunk_state) {
  // One partition per --mongoBatch entries (a partition is one bulk write), at most
  // `parallelism` of them in flight; the engine's chunks hold several rounds of them
  // (kRoundsPerChunk), so the wait for a chunk's slowest partition is paid once per several
  // batches. A smaller chunk (a Continuous poll) on a target this run owns still gets
  // `parallelism` partitions: they cost no lookup query (the journal's heads decide), and their
  // history flips, updates by `_id` that a server without secondary indexes serves by a scan each,
  // then run `parallelism` bulk writes at a time instead of one after another.
  const size_t batch = static_cast<size_t>(std::max(1, config_.batch_size));
  const size_t min_partitions = heads_ ? static_cast<size_t>(std::max(1, config_.parallelism)) : 1;
  const size_t n = std::max(min_partitions, (docs.size() + batch - 1) / batch);
  std::vector<Partition> resources(n), contained(n);
  Tally total;
  std::hash<std::string> hash;
  for (const auto& doc : docs) {
    total.read++;
    if (schema::is_system_document(doc.get())) {
      total.system++;
      continue;
    }
    // Partitioning needs only the key fields; a document too broken for them is checked (and
    // quarantined) by whichever partition gets it.
    mongo::View v(doc.get());
    if (v.boolean("cnt").value_or(false)) {
      auto container = v.oid("container");
      std::string key = container ? mongo::oid_to_string(*container) : std::string();
      contained[hash(key) % n].docs.push_back(&doc);
    } else {
      std::string key = std::string(v.string("im").value_or("")) + '\x1f' +
                        std::string(v.string("type").value_or("")) + '\x1f' +
                        std::string(v.string("res_id").value_or(""));
      resources[hash(key) % n].docs.push_back(&doc);
    }
  }
  auto run_phase = [&](std::vector<Partition>& parts, bool contained_phase,
                       const Decisions& decisions) {
    std::atomic<size_t> next{0};
    std::vector<std::thread> workers;
    const size_t threads =
        std::min(parts.size(), static_cast<size_t>(std::max(1, config_.parallelism)));
    for (size_t w = 0; w < threads; ++w) {
      workers.emplace_back([&, contained_phase] {
        for (size_t i = next++; i < parts.size(); i = next++) {
          Partition& part = parts[i];
          if (part.docs.empty()) continue;
          try {
            run_partition(part, contained_phase, decisions);
          } catch (...) {
            part.failure = std::current_exception();
          }
        }
      });
    }
    for (auto& w : workers) w.join();
    for (auto& part : parts)
      if (part.failure) std::rethrow_exception(part.failure);
  };
  run_phase(resources, false, Decisions{});
  Decisions decisions;
  for (auto& part : resources) decisions.by_entry.merge(part.decisions);
  for (const auto& [id, d] : decisions.by_entry)
    if (d.cur) decisions.new_current[d.key] = id;
  run_phase(contained, true, decisions);
  for (auto* parts : {&resources, &contained})
    for (auto& part : *parts) total.add(part.tally);
  if (heads_ && chunk_state && !config_.dry_run) {
    HeadUpdates merged;
    for (auto& part : resources) merged.merge(part.heads);
    for (auto& part : contained)
      for (auto& [key, ids] : part.contained_added) {
        auto it = merged.find(key);
        if (it == merged.end()) {
          std::optional<Head> committed = heads_->head(key);
          if (!committed) continue;
          it = merged.emplace(key, std::move(*committed)).first;
        }
        for (auto& id : ids)
          if (std::find(it->second.contained.begin(), it->second.contained.end(), id) ==
              it->second.contained.end())
            it->second.contained.push_back(std::move(id));
      }
    chunk_state->heads = std::move(merged);
    chunk_state->orphans.clear();
    chunk_state->adopted.clear();
    for (auto& part : resources)
      chunk_state->adopted.insert(chunk_state->adopted.end(), part.adopted.begin(),
                                  part.adopted.end());
    for (auto& part : contained)
      for (auto& [container, orphans] : part.orphans) {
        auto& all = chunk_state->orphans[container];
        all.insert(all.end(), orphans.begin(), orphans.end());
      }
  }
  return total;
}

void Applier::run_partition(Partition& part, bool contained_phase, const Decisions& decisions) {
  Tally& tally = part.tally;
  mongo::Client client = target_.acquire();
  mongo::Collection target = client.collection(config_.database, config_.collection);
  mongo::Collection quarantine =
      client.collection(config_.database, schema::quarantine_collection(config_.collection));
  mongo::BulkWriter quarantine_bulk = quarantine.bulk(false);

  auto record = [&](const bson_oid_t& id, const std::string& reason, const std::string& message,
                    const std::function<void(mongo::Builder&)>& extra) {
    // An update, not a replace: an entry quarantined again (a rerun, a retry) keeps the
    // operator's review (`accepted`) and its supersession. What this attempt does not write of
    // the optional fields is dropped, so the record describes this attempt only.
    mongo::Builder fields;
    fields.append("reason", reason).append("message", message);
    fields.append_date("at", now_ms());
    extra(fields);
    mongo::Bson set = fields.extract();
    std::vector<const char*> absent;
    for (const char* optional : {"entry", "sourceId", "targetId"})
      if (!mongo::View(set.get()).has(optional)) absent.push_back(optional);
    mongo::Builder u;
    u.append_document("$set", set.get());
    if (!absent.empty())
      u.document("$unset", [&](mongo::Builder& unset) {
        for (const char* field : absent) unset.append(field, "");
      });
    mongo::Builder filter;
    filter.append("_id", id);
    mongo::Bson update = u.extract();
    quarantine_bulk.update_one(filter.get(), update.get(), true);
  };

  // 1. Transform checks; a bad entry goes to quarantine with its reason.
  std::vector<schema::Entry> entries;
  std::unordered_map<std::string, const mongo::Bson*> source_of;  // _id -> source document
  for (const mongo::Bson* source_doc : part.docs) {
    const bson_t* doc = source_doc->get();
    try {
      entries.push_back(read_source_entry(doc));
      source_of[entries.back().id_string()] = source_doc;
    } catch (const TransformError& e) {
      tally.quarantined++;
      note_problem(tally, e.what());
      spdlog::warn("quarantined: {}", e.what());
      mongo::View v(doc);
      bson_oid_t id;
      if (auto oid = v.oid("_id"))
        id = *oid;
      else
        bson_oid_init(&id, nullptr);
      bool small = doc->len < 8 * 1024 * 1024;
      record(id, e.reason(), e.what(), [&](mongo::Builder& q) {
        if (small) q.append_document("entry", doc);
      });
    }
  }

  // 1b. Duplicate versions: two source entries of one version of one resource (left by a race
  // of the old server's writers, or by hand), which the target's unique version index cannot
  // hold both. The first in `_id` order, the one the reader hands on first, is migrated; each
  // other is quarantined as `duplicate-version`, naming the one kept (`targetId`). Here within
  // the partition; a duplicate of an earlier chunk's entry below (the head's version, owned
  // target) or at the insert (another version, owned target); in a target that held entries
  // before, the conflict policy decides, as for any version the target already holds. A kept
  // entry that the source made history while its duplicate stayed current takes that state: the
  // duplicate is no newer version of it.
  auto quarantine_duplicate = [&](const schema::Entry& dup, const std::optional<bson_oid_t>& kept) {
    const std::string holder = kept ? mongo::oid_to_string(*kept) : "an entry with a smaller _id";
    std::string message = "duplicate version: source entries " + dup.id_string() + " and " + holder +
                          " are both " + dup.type + "/" + dup.res_id + " version " + dup.v +
                          "; the target keeps " + (kept ? holder : "that one") +
                          " (the first in _id order), review this one";
    tally.quarantined++;
    note_problem(tally, message);
    spdlog::warn("quarantined: {}", message);
    auto doc = source_of.find(dup.id_string());
    record(dup.id, "duplicate-version", message, [&](mongo::Builder& q) {
      if (doc != source_of.end() && doc->second->get()->len < 8 * 1024 * 1024)
        q.append_document("entry", doc->second->get());
      q.append("sourceId", dup.id);
      if (kept) q.append("targetId", *kept);
    });
  };
  {
    std::unordered_map<std::string, size_t> kept;  // version key -> index of the entry kept
    std::vector<size_t> duplicates;
    for (size_t i = 0; i < entries.size(); ++i) {
      auto [it, first] = kept.emplace(version_key(entries[i]), i);
      if (first || bson_oid_equal(&entries[i].id, &entries[it->second].id)) continue;
      size_t dup = i;
      if (bson_oid_compare(&entries[i].id, &entries[it->second].id) < 0) std::swap(dup, it->second);
      duplicates.push_back(dup);
    }
    if (!duplicates.empty()) {
      std::vector<bool> drop(entries.size(), false);
      for (size_t d : duplicates) {
        schema::Entry& k = entries[kept[version_key(entries[d])]];
        k.cur = k.cur || entries[d].cur;
        quarantine_duplicate(entries[d], k.id);
        drop[d] = true;
      }
      std::vector<schema::Entry> rest;
      for (size_t i = 0; i < entries.size(); ++i)
        if (!drop[i]) rest.push_back(std::move(entries[i]));
      entries = std::move(rest);
    }
  }

  // 2. What the target already has: the same _ids, the same versions, the current versions.
  std::unordered_map<std::string, schema::Entry> by_id, by_version;
  std::unordered_map<std::string, std::vector<schema::Entry>> current_by_key;
  std::unordered_map<std::string, std::vector<std::string>>
      head_contained;                                                // owned: key -> contained _ids
  std::unordered_map<std::string, std::string> owned_container_key;  // owned: container _id -> key
  // The shard keys of the target entries read here, for the filters of updates that change `cur`
  // (schema/shard_key.h): read with the entries, so they cost no query of their own.
  std::unordered_map<std::string, schema::ShardKey> key_by_id;
  auto remember = [&](const bson_t* doc) {
    if (schema::is_system_document(doc)) return;
    schema::Entry t;
    try {
      t = schema::decode_entry(doc);
    } catch (const schema::EntryError& e) {
      spdlog::warn("target entry ignored while deciding versions: {}", e.what());
      return;
    }
    if (auto k = schema::ShardKey::read(doc)) key_by_id.insert_or_assign(t.id_string(), std::move(*k));
    by_id[t.id_string()] = t;
    by_version[version_key(t)] = t;
    if (t.cur && !t.cnt) current_by_key[resource_key(t)].push_back(t);
  };
  auto projection = [] {
    mongo::Builder opts;
    opts.document("projection", [](mongo::Builder& p) { p.append("idx", int32_t{0}); });
    return opts.extract();
  };
  if (!entries.empty() && !config_.dry_run && heads_) {
    // The run owns the target: its heads say which entry is current; only a contained entry whose
    // container is neither decided in this chunk nor current needs the target (by `_id`).
    std::vector<bson_oid_t> unknown_containers;
    for (const auto& e : entries) {
      if (!contained_phase) {
        std::string key = resource_key(e);
        if (current_by_key.count(key)) continue;
        auto head = heads_->head(key);
        auto cur_id = head ? mongo::oid_from_string(head->cur_id) : std::nullopt;
        if (!cur_id) continue;
        schema::Entry c;
        c.id = *cur_id;
        c.im = e.im;
        c.type = e.type;
        c.res_id = e.res_id;
        c.v = head->v;  // "" in a journal of an older fhirshift
        c.lu_ms = head->lu_ms;
        c.cur = true;
        current_by_key[key].push_back(std::move(c));
        head_contained[key] = head->contained;
      } else if (e.container) {
        std::string container = mongo::oid_to_string(*e.container);
        if (decisions.by_entry.count(container) || owned_container_key.count(container)) continue;
        if (auto key = heads_->key_of_current(container))
          owned_container_key[container] = *key;
        else
          unknown_containers.push_back(*e.container);
      }
    }
    if (!unknown_containers.empty()) {
      mongo::Builder filter;
      filter.document("_id", [&](mongo::Builder& in) { in.append_in(unknown_containers); });
      mongo::Bson f = filter.extract();
      mongo::Bson o = projection();
      mongo::Cursor cursor = target.find(f.get(), o.get());
      while (const bson_t* doc = cursor.next()) remember(doc);
    }
  } else if (!entries.empty() && !config_.dry_run) {
    std::set<std::string> types, res_ids, versions;
    std::vector<bson_oid_t> ids;
    for (const auto& e : entries) {
      types.insert(e.type);
      res_ids.insert(e.res_id);
      versions.insert(e.v);
      ids.push_back(e.id);
      if (e.container) ids.push_back(*e.container);
    }
    mongo::Builder filter;
    filter.array("$or", [&](mongo::ArrayBuilder& any) {
      any.document([&](mongo::Builder& d) {
        d.document("_id", [&](mongo::Builder& in) { in.append_in(ids); });
      });
      any.document([&](mongo::Builder& d) {
        d.document("type", [&](mongo::Builder& in) { in.append_in(types); });
        d.document("res_id", [&](mongo::Builder& in) { in.append_in(res_ids); });
        d.array("$or", [&](mongo::ArrayBuilder& which) {
          if (!contained_phase) which.document([](mongo::Builder& c) { c.append("cur", true); });
          which.document([&](mongo::Builder& c) {
            c.document("v", [&](mongo::Builder& in) { in.append_in(versions); });
          });
        });
      });
    });
    mongo::Bson f = filter.extract();
    mongo::Bson o = projection();
    mongo::Cursor cursor = target.find(f.get(), o.get());
    while (const bson_t* doc = cursor.next()) remember(doc);
  }

  // 3. The conflict policy, entry by entry.
  std::vector<schema::Entry> accepted;
  std::vector<bson_oid_t> to_delete;  // target entries the source overwrites under another _id
  auto conflict = [&](const schema::Entry& e, const schema::Entry& t, const std::string& what) {
    std::string message = "conflict: source entry " + e.id_string() + " and target entry " +
                          t.id_string() + " are both " + e.type + "/" + e.res_id + " version " +
                          e.v + " with " + what + " (--update-existing-resources ErrorOnConflict)";
    tally.conflicts++;
    note_problem(tally, message);
    spdlog::warn("{}", message);
    record(e.id, "conflict", message,
           [&](mongo::Builder& q) { q.append("sourceId", e.id).append("targetId", t.id); });
  };
  for (auto& e : entries) {
    if (heads_ && !contained_phase) {
      // Owned target: the current entry of this resource (from the journal's head) may be a
      // duplicate of this version, kept from an earlier chunk.
      auto curs = current_by_key.find(resource_key(e));
      const schema::Entry* twin = nullptr;
      if (curs != current_by_key.end())
        for (const auto& c : curs->second)
          if (!c.v.empty() && c.v == e.v && !bson_oid_equal(&c.id, &e.id)) twin = &c;
      if (twin) {
        quarantine_duplicate(e, twin->id);
        continue;
      }
    }
    const schema::Entry* t = nullptr;
    if (auto it = by_id.find(e.id_string()); it != by_id.end())
      t = &it->second;
    else if (auto it2 = by_version.find(version_key(e)); it2 != by_version.end())
      t = &it2->second;
    if (!t) {
      accepted.push_back(std::move(e));
      continue;
    }
    if (same_entry(e, *t)) {
      // A rerun: the entry is there. It still takes part in the version decision below.
      accepted.push_back(std::move(e));
      continue;
    }
    bool same_id = bson_oid_equal(&e.id, &t->id);
    bool source_wins = false;
    switch (config_.policy) {
      case ConflictPolicy::kOverwrite:
        source_wins = true;
        break;
      case ConflictPolicy::kKeep:
        source_wins = false;
        break;
      case ConflictPolicy::kOnlyIfNewer:
        source_wins = is_newer(e, *t);
        break;
      case ConflictPolicy::kErrorOnConflict:
        conflict(e, *t, same_id ? "different content" : "different _ids");
        continue;
    }
    if (!source_wins) {
      tally.kept++;
      continue;
    }
    if (!same_id) {
      to_delete.push_back(t->id);
      auto& curs = current_by_key[resource_key(*t)];
      std::erase_if(curs, [&](const schema::Entry& c) { return bson_oid_equal(&c.id, &t->id); });
    }
    accepted.push_back(std::move(e));
  }

  // 4. Version state.
  std::unordered_map<std::string, const schema::Entry*> newest;  // resource key -> newest incoming
  if (!contained_phase)
    for (const auto& e : accepted) {
      auto& n = newest[resource_key(e)];
      if (!n || is_newer(e, *n)) n = &e;
    }
  mongo::BulkWriter deletes = target.bulk(false);
  for (const auto& id : to_delete) {
    mongo::Builder f;
    f.append("_id", id);
    deletes.delete_one(f.extract().get());
  }
  mongo::BulkWriter bulk = target.bulk(false);
  std::vector<const schema::Entry*> op_entry;  // bulk op index -> entry (nullptr: a flip)
  // Entries that become history are flipped in the same bulk write as the partition's inserts,
  // one update by `_id` each (add_history_flips), so the target's version state is exact once the
  // chunk is applied; replaying the chunk after a crash flips them again, which changes nothing.
  // Their shard keys: known for entries read in step 2; the heads of an owned target (known by
  // `_id` from the journal) are read by `_id`, in one query for the partition (current_keys).
  std::vector<schema::ShardKey> flips;
  std::vector<bson_oid_t> flips_by_id;
  auto flip_to_history = [&](const schema::Entry& old) {
    if (auto k = key_by_id.find(old.id_string()); k != key_by_id.end()) {
      if (k->second.cur) flips.push_back(k->second);
    } else {
      flips_by_id.push_back(old.id);
    }
  };
  // Contained entries follow their container. Their target entries are found by exact version
  // key (which the unique index serves) from the container's body, all at once after the loop,
  // and flipped by `_id` only where their `cur` is wrong.
  struct ContainedCur {
    mongo::Bson key;  // {im, type, res_id, v, container}
    std::string match;
    bool cur;
  };
  std::vector<ContainedCur> contained_cur;
  auto set_contained_cur = [&](const schema::Entry& container, bool cur) {
    if (!container.json) return;
    for (const auto& [type, id] : contained_of(*container.json)) {
      mongo::Builder k;
      k.append("im", container.im)
          .append("type", type)
          .append("res_id", id)
          .append("v", container.v);
      k.append("container", container.id);
      contained_cur.push_back(
          {k.extract(), contained_match(container.im, type, id, container.v, container.id), cur});
    }
  };
  // Owned target: contained entries written before their container (orphans), set to the state
  // the container gets now, by `_id` in this partition's bulk write.
  std::vector<std::pair<bson_oid_t, bool>> orphan_states;
  std::unordered_map<std::string, std::vector<std::string>>
      adopted_current;  // container -> orphans now current
  auto adopt_orphans = [&](const schema::Entry& container, bool cur) {
    std::vector<Orphan> orphans = heads_->orphans_of(container.id_string());
    if (orphans.empty()) return;
    for (const auto& o : orphans) {
      auto id = mongo::oid_from_string(o.id);
      if (!id) continue;
      if (o.cur != cur) orphan_states.emplace_back(*id, cur);
      if (cur) adopted_current[container.id_string()].push_back(o.id);
    }
    part.adopted.push_back(container.id_string());
  };
  for (auto& e : accepted) {
    bool cur;
    if (contained_phase) {
      // A contained entry is written with its container's state (docs/migrate.md, "Version
      // state"), whichever of the two was read first.
      std::string container = e.container ? mongo::oid_to_string(*e.container) : "";
      auto d = decisions.by_entry.find(container);
      auto o = owned_container_key.find(container);
      if (d != decisions.by_entry.end()) {
        cur = d->second.cur;
      } else if (o != owned_container_key.end()) {
        // The container was current; it stays so unless this chunk made another version current.
        auto n = decisions.new_current.find(o->second);
        cur = n == decisions.new_current.end() || n->second == container;
      } else if (auto t = by_id.find(container); t != by_id.end()) {
        // In an owned target a container that is not its resource's head is history (its flip
        // may be in a partition of this chunk that is still being written).
        cur = heads_ ? false : t->second.cur;
      } else {
        cur = e.cur;  // the container is not migrated yet; it sets this when it comes
        if (heads_) part.orphans[container].push_back({e.id_string(), cur});
      }
      if (heads_ && cur) {
        if (d != decisions.by_entry.end())
          part.contained_added[d->second.key].push_back(e.id_string());
        else if (o != owned_container_key.end())
          part.contained_added[o->second].push_back(e.id_string());
      }
    } else {
      const std::string key = resource_key(e);
      // History in the source is history in the target: the source's writer flips `cur` only
      // after the newer version is in, which then arrives here too. Writing each version once in
      // its final state spares the target an update per history entry (on a server whose updates
      // scan, FerretDB, those updates dominate the copy).
      cur = newest[key] == &e && e.cur;
      if (cur)
        for (const auto& c : current_by_key[key])
          if (!bson_oid_equal(&c.id, &e.id) && is_newer(c, e)) cur = false;
      part.decisions[e.id_string()] = {cur, key};
      if (heads_ && !config_.dry_run) adopt_orphans(e, cur);
    }
    if (auto t = by_id.find(e.id_string());
        t != by_id.end() && same_entry(e, t->second) && t->second.cur == cur) {
      tally.unchanged++;  // already exactly right in the target
      if (!contained_phase && !heads_) set_contained_cur(e, cur);
      continue;
    }
    e.cur = cur;
    index::IndexStats stats;
    mongo::Bson doc;
    if (config_.schema == TargetSchema::kCurrent)
      doc = schema::encode_current(to_current(e, cur, *indexer_, &stats));
    else
      doc = schema::encode_legacy(e);
    tally.index_problems += stats.evaluation_errors;
    tally.skipped_params += stats.skipped_params;
    if (heads_) {
      // An owned target cannot hold this entry unless a crashed attempt wrote it: insert, and
      // replace only what turns out to be there (below).
      bulk.insert(doc.get());
    } else {
      // The replacement may change `cur`: filtered by the entry's shard key as the target has it
      // (read in step 2), or, when it is not there, by the key it is written with.
      auto there = key_by_id.find(e.id_string());
      schema::ShardKey key = there != key_by_id.end() ? there->second : schema::ShardKey::of(e);
      bulk.replace_one(key.filter(key_filter_).get(), doc.get(), true);
    }
    op_entry.push_back(&e);
    if (!contained_phase && !heads_) set_contained_cur(e, cur);
  }
  if (!contained_phase)
    for (const auto& [key, n] : newest) {
      if (!part.decisions[n->id_string()].cur) continue;
      if (heads_)
        part.heads[key] =
            Head{n->id_string(), n->lu_ms, std::move(adopted_current[n->id_string()]), n->v};
      for (const auto& old : current_by_key[key])
        if (!bson_oid_equal(&old.id, &n->id)) {
          flip_to_history(old);
          set_contained_cur(old, false);
        }
      for (const auto& hex : head_contained[key])
        if (auto id = mongo::oid_from_string(hex)) {
          schema::Entry c;
          c.id = *id;
          flip_to_history(c);
        }
    }

  if (!contained_cur.empty() && !config_.dry_run) {
    struct Found {
      schema::ShardKey key;  // as the target holds it: the filter of its update
      bool cur;
      std::string type;
      std::optional<std::string> json;  // current schema: to index an entry that becomes current
    };
    const bool indexed_target = config_.schema == TargetSchema::kCurrent;
    std::unordered_map<std::string, Found> found;  // match -> what the target holds
    constexpr size_t kKeysPerQuery = 500;
    for (size_t from = 0; from < contained_cur.size(); from += kKeysPerQuery) {
      mongo::Builder f;
      f.array("$or", [&](mongo::ArrayBuilder& any) {
        for (size_t i = from; i < std::min(contained_cur.size(), from + kKeysPerQuery); ++i)
          any.append_document(contained_cur[i].key.get());
      });
      mongo::Builder o;
      o.document("projection", [&](mongo::Builder& p) {
        schema::ShardKey::project(p);
        for (const char* k : {"v", "container"}) p.append(k, int32_t{1});
        if (indexed_target) p.append("json", int32_t{1});
      });
      mongo::Bson fd = f.extract(), od = o.extract();
      mongo::Cursor cursor = target.find(fd.get(), od.get());
      while (const bson_t* d = cursor.next()) {
        mongo::View v(d);
        auto key = schema::ShardKey::read(d);
        auto container = v.oid("container");
        if (!key || !container) continue;
        auto json = v.string("json");
        found[contained_match(std::string(v.string("im").value_or("")),
                              v.string("type").value_or(""), v.string("res_id").value_or(""),
                              v.string("v").value_or(""), *container)] = {
            *key, key->cur, key->type, json ? std::optional<std::string>(*json) : std::nullopt};
      }
    }
    for (const auto& c : contained_cur) {
      auto it = found.find(c.match);
      if (it == found.end() || it->second.cur == c.cur) continue;
      mongo::Bson f = it->second.key.filter(key_filter_);
      // A contained entry carries `idx` exactly while it is current, like any entry
      // (docs/schema.md).
      mongo::Builder u;
      u.document("$set", [&](mongo::Builder& s) {
        s.append("cur", c.cur);
        if (indexed_target && c.cur && it->second.json) {
          index::IndexStats stats;
          schema::append_search_index(s, "idx",
                                      indexer_->index(it->second.type, *it->second.json, &stats));
          tally.index_problems += stats.evaluation_errors;
        }
      });
      if (indexed_target && !c.cur)
        u.document("$unset", [](mongo::Builder& s) { s.append("idx", ""); });
      bulk.update_one(f.get(), u.extract().get(), false);
      op_entry.push_back(nullptr);
      it->second.cur = c.cur;
      it->second.key.cur = c.cur;
    }
  }
  if (!orphan_states.empty()) {
    // Like any entry, an orphan carries `idx` exactly while it is current (docs/schema.md). One
    // that becomes current was written as history, without `idx`: its body is read back by `_id`
    // (one query for the partition) to index it.
    // The same query reads their shard keys (for the filters) when the target needs them.
    const bool indexed_target = config_.schema == TargetSchema::kCurrent;
    const bool full_key = key_filter_ == schema::KeyFilter::kFullKey;
    std::vector<bson_oid_t> to_read;
    bool any_body = false;
    for (const auto& [id, cur] : orphan_states) {
      bool body = cur && indexed_target;
      any_body = any_body || body;
      if (body || full_key) to_read.push_back(id);
    }
    std::unordered_map<std::string, std::pair<std::string, std::string>>
        bodies;  // _id -> type, json
    std::unordered_map<std::string, schema::ShardKey> orphan_keys;
    if (!to_read.empty()) {
      mongo::Builder f;
      f.document("_id", [&](mongo::Builder& in) { in.append_in(to_read); });
      mongo::Builder o;
      o.document("projection", [&](mongo::Builder& p) {
        schema::ShardKey::project(p);
        if (any_body) p.append("json", int32_t{1});
      });
      mongo::Bson fd = f.extract(), od = o.extract();
      mongo::Cursor cursor = target.find(fd.get(), od.get());
      while (const bson_t* d = cursor.next()) {
        mongo::View v(d);
        auto id = v.oid("_id");
        auto type = v.string("type");
        auto json = v.string("json");
        if (id && type && json)
          bodies[mongo::oid_to_string(*id)] = {std::string(*type), std::string(*json)};
        if (auto k = schema::ShardKey::read(d)) orphan_keys.emplace(k->id_string(), std::move(*k));
      }
    }
    for (const auto& [id, cur] : orphan_states) {
      schema::ShardKey key;
      key.id = id;
      if (full_key) {
        auto k = orphan_keys.find(mongo::oid_to_string(id));
        if (k == orphan_keys.end() || k->second.cur == cur) continue;  // not there, or already right
        key = k->second;
      }
      mongo::Bson f = key.filter(key_filter_);
      mongo::Builder u;
      auto body = cur ? bodies.find(mongo::oid_to_string(id)) : bodies.end();
      u.document("$set", [&](mongo::Builder& s) {
        s.append("cur", cur);
        if (body != bodies.end()) {
          index::IndexStats stats;
          schema::append_search_index(
              s, "idx", indexer_->index(body->second.first, body->second.second, &stats));
          tally.index_problems += stats.evaluation_errors;
        }
      });
      if (indexed_target && !cur)
        u.document("$unset", [](mongo::Builder& s) { s.append("idx", ""); });
      bulk.update_one(f.get(), u.extract().get(), false);
      op_entry.push_back(nullptr);
    }
  }
  if (config_.dry_run) {
    for (const auto* e : op_entry)
      if (e) {
        tally.written++;
        tally.written_by_type[e->type]++;
      }
    return;
  }
  if (deletes.size() > 0) deletes.execute();
  if (!flips_by_id.empty()) {
    std::vector<schema::ShardKey> read = current_keys(target, flips_by_id, key_filter_);
    flips.insert(flips.end(), std::make_move_iterator(read.begin()), std::make_move_iterator(read.end()));
  }
  // An entry this bulk rewrites whole (a version read again, now history) gets its final state
  // from that write: a flip too, in an unordered bulk, could run first and make the rewrite's
  // shard-key filter miss.
  if (!flips.empty()) {
    auto raw = [](const bson_oid_t& id) { return std::string(reinterpret_cast<const char*>(id.bytes), 12); };
    std::set<std::string> rewritten;
    for (const schema::Entry* e : op_entry)
      if (e) rewritten.insert(raw(e->id));
    std::erase_if(flips, [&](const schema::ShardKey& k) { return rewritten.count(raw(k.id)) > 0; });
  }
  add_history_flips(bulk, flips, key_filter_);
  op_entry.resize(op_entry.size() + flips.size(), nullptr);
  // Runs `writer` and counts its outcome; with `retry_existing`, entries whose insert met an
  // existing document are returned for a replace instead of being counted.
  auto execute = [&](mongo::BulkWriter& writer, const std::vector<const schema::Entry*>& ops,
                     bool retry_existing) {
    std::vector<const schema::Entry*> existing;
    if (writer.size() == 0) return existing;
    mongo::BulkResult result = writer.execute();
    std::set<uint32_t> failed;
    for (const auto& err : result.write_errors) {
      failed.insert(err.index);
      const schema::Entry* e = err.index < ops.size() ? ops[err.index] : nullptr;
      if (!e) {
        tally.errors++;
        note_problem(tally, "version-state update failed: " + err.message);
        spdlog::error("target refused a version-state update: {} (code {})", err.message, err.code);
        continue;
      }
      bool duplicate = err.code == 11000 || err.code == 11001;
      if (duplicate && retry_existing) {
        existing.push_back(e);
        continue;
      }
      std::string message = "target refused entry " + e->id_string() + " (" + e->type + "/" +
                            e->res_id + " v" + e->v + "): " + err.message;
      if (duplicate) {
        tally.conflicts++;
        record(e->id, "conflict", message + " (another entry holds this version)",
               [&](mongo::Builder& q) { q.append("sourceId", e->id); });
      } else {
        tally.errors++;
        record(e->id, "write-error", message, [](mongo::Builder&) {});
      }
      note_problem(tally, message);
      spdlog::error("{}", message);
    }
    if (!result.write_concern_error.empty())
      throw mongo::MongoError("writing to " + target.ns(), 0, 0,
                              "write concern error: " + result.write_concern_error);
    for (size_t i = 0; i < ops.size(); ++i)
      if (ops[i] && !failed.count(static_cast<uint32_t>(i))) {
        tally.written++;
        tally.written_by_type[ops[i]->type]++;
      }
    return existing;
  };
  std::vector<const schema::Entry*> existing = execute(bulk, op_entry, heads_ != nullptr);
  if (!existing.empty()) {
    // Written by an attempt that did not reach its checkpoint: usually exactly as now, so looked
    // up (one query) and replaced by `_id` only where it differs. A duplicate then means another
    // entry holds this version: a conflict.
    std::vector<bson_oid_t> ids;
    for (const schema::Entry* e : existing) ids.push_back(e->id);
    mongo::Builder lookup;
    lookup.document("_id", [&](mongo::Builder& in) { in.append_in(ids); });
    mongo::Bson lookup_filter = lookup.extract();
    std::unordered_map<std::string, schema::Entry> there;
    std::set<std::string> found_ids;
    std::vector<const schema::Entry*> duplicate_versions;
    std::unordered_map<std::string, schema::ShardKey> there_keys;
    mongo::Cursor cursor = target.find(lookup_filter.get());
    while (const bson_t* d = cursor.next()) {
      if (auto id = mongo::View(d).oid("_id")) found_ids.insert(mongo::oid_to_string(*id));
      if (auto k = schema::ShardKey::read(d)) there_keys.emplace(k->id_string(), std::move(*k));
      try {
        schema::Entry t = schema::decode_entry(d);
        bool indexed = mongo::View(d).type_of("idx") == BSON_TYPE_DOCUMENT;
        if (config_.schema == TargetSchema::kCurrent && indexed != (t.cur && !t.is_tombstone()))
          continue;
        there.emplace(t.id_string(), std::move(t));
      } catch (const schema::EntryError&) {
        // not a valid entry: replaced below
      }
    }
    std::vector<const schema::Entry*> differing;
    for (const schema::Entry* e : existing) {
      auto it = there.find(e->id_string());
      if (it == there.end() && !found_ids.count(e->id_string())) {
        // No document has this `_id`: the unique version index refused it, so an earlier
        // chunk's entry holds this version (an owned target holds only this source's entries).
        duplicate_versions.push_back(e);
        continue;
      }
      if (it != there.end() && same_entry(*e, it->second) && it->second.cur == e->cur) {
        tally.written++;
        tally.written_by_type[e->type]++;
      } else {
        differing.push_back(e);
      }
    }
    for (const schema::Entry* e : duplicate_versions) {
      quarantine_duplicate(*e, std::nullopt);
      // Not in the target, so neither its resource's head (the journal is to name only entries
      // there) nor a current container for its contained entries.
      if (auto h = part.heads.find(resource_key(*e)); h != part.heads.end() && h->second.cur_id == e->id_string())
        part.heads.erase(h);
      if (auto d = part.decisions.find(e->id_string()); d != part.decisions.end()) d->second.cur = false;
    }
    mongo::BulkWriter replace = target.bulk(false);
    for (const schema::Entry* e : differing) {
      index::IndexStats stats;
      mongo::Bson doc = config_.schema == TargetSchema::kCurrent
                            ? schema::encode_current(to_current(*e, e->cur, *indexer_, &stats))
                            : schema::encode_legacy(*e);
      auto k = there_keys.find(e->id_string());
      schema::ShardKey key = k != there_keys.end() ? k->second : schema::ShardKey::of(*e);
      replace.replace_one(key.filter(key_filter_).get(), doc.get(), true);
    }
    execute(replace, differing, false);
  }
  if (quarantine_bulk.size() > 0) quarantine_bulk.execute();
}

}  // namespace fhirshift::migrate

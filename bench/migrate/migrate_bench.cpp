// The measuring half of bench/migrate/run.sh (the script starts the servers and the migrator).
//
//   migrate_bench ceiling --source URI --target URI [--batch 1000] [--par P]
//     The target's ceiling: reads every entry of the legacy source, transforms it with the
//     migrator's own code (read_source_entry, to_current with the source's version state,
//     encode_current) into memory, then times ONLY the unordered insertMany batches into the
//     (empty, provisioned) target, P batches in flight. Prints one JSON line.
//
//   migrate_bench writer --source URI --target URI [--rate 200] [--seconds 30]
//     A live writer like the old server: new resources, updates (the previous version marked
//     `cur:false` in the source first) and deletes, bodies from the seed generator, one entry per
//     1/rate s. A second thread polls the target by `_id` and records for every written entry the
//     time from its acknowledged insert to its visibility in the target. Prints one JSON line with
//     p50/p99/max.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "index/indexer.h"
#include "migrate/transform.h"
#include "mongo/client.h"
#include "schema/entry.h"
#include "seed/seed.h"

namespace {

using namespace fhirshift;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int64_t peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

// --- ceiling ------------------------------------------------------------------------------------

struct CeilingArgs {
  std::string source, target, collection = "vonkentries";
  int batch = 1000;
  int par = 0;
};

int run_ceiling(const CeilingArgs& a) {
  mongo::ensure_driver_initialized();
  mongo::ClientPool source_pool(mongo::Uri::parse(a.source), "migrate_bench");
  mongo::ClientPool target_pool(mongo::Uri::parse(a.target), "migrate_bench");
  auto indexer = index::Indexer::load(index::Indexer::default_definitions_path());

  // Transform everything first (not timed as the ceiling): the documents the migrator would write.
  auto t_read = Clock::now();
  std::vector<mongo::Bson> docs;
  {
    mongo::Client client = source_pool.acquire();
    mongo::Collection coll = client.collection(source_pool.database(), a.collection);
    mongo::Bson all;
    mongo::Cursor cursor = coll.find(all.get());
    while (const bson_t* doc = cursor.next()) {
      if (schema::is_system_document(doc)) continue;
      schema::Entry e = migrate::read_source_entry(doc);
      docs.push_back(schema::encode_current(migrate::to_current(e, e.cur, *indexer)));
    }
  }
  double transform_s = seconds_since(t_read);
  if (docs.empty()) throw std::runtime_error("the source " + a.source + " holds no entries");
  uint64_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();

  // The timed part: unordered insertMany batches of `batch` documents, `par` of them in flight.
  size_t batches = (docs.size() + a.batch - 1) / a.batch;
  std::atomic<size_t> next{0};
  std::atomic<int64_t> inserted{0};
  std::mutex error_mutex;
  std::string first_error;
  auto t_insert = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < a.par; ++w) {
    workers.emplace_back([&] {
      try {
        mongo::Client client = target_pool.acquire();
        mongo::Collection coll = client.collection(target_pool.database(), a.collection);
        for (size_t b = next++; b < batches; b = next++) {
          mongo::BulkWriter bulk = coll.bulk(false);
          size_t end = std::min(docs.size(), (b + 1) * static_cast<size_t>(a.batch));
          for (size_t i = b * a.batch; i < end; ++i) bulk.insert(docs[i].get());
          mongo::BulkResult r = bulk.execute();
          inserted += r.inserted;
          if (!r.ok()) {
            std::lock_guard lock(error_mutex);
            if (first_error.empty())
              first_error = r.write_errors.empty() ? r.write_concern_error : r.write_errors.front().message;
          }
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(error_mutex);
        if (first_error.empty()) first_error = e.what();
      }
    });
  }
  for (auto& t : workers) t.join();
  double insert_s = seconds_since(t_insert);
  if (!first_error.empty() || inserted.load() != static_cast<int64_t>(docs.size()))
    throw std::runtime_error("insertMany into " + a.target + ": " + std::to_string(inserted.load()) + " of " +
                             std::to_string(docs.size()) + " inserted; first error: " + first_error);
  nlohmann::json out = {{"entries", docs.size()},
                        {"transformSeconds", transform_s},
                        {"insertSeconds", insert_s},
                        {"entriesPerSecond", static_cast<double>(docs.size()) / insert_s},
                        {"batch", a.batch},
                        {"par", a.par},
                        {"bsonMB", static_cast<double>(bytes) / (1 << 20)},
                        {"peakRssMB", peak_rss_mb()}};
  std::cout << out.dump() << std::endl;
  return 0;
}

// --- writer + visibility probe ------------------------------------------------------------------

struct WriterArgs {
  std::string source, target, collection = "vonkentries";
  double rate = 200;
  double seconds = 30;
  double settle = 30;  // after the last write, wait at most this long for the rest to arrive
  uint64_t seed = 99;
};

// One live resource of the writer: its last version's `_id`, for the update that supersedes it.
struct LiveResource {
  std::string type, id;
  int version = 0;
  bool deleted = false;
  bson_oid_t last{};
};

struct Written {
  bson_oid_t id;
  Clock::time_point acked;
};

// Writes legacy entries like the old server: `_id` from the clock, `lu` now.
class LegacyWriter {
 public:
  LegacyWriter(mongo::Collection& coll, uint64_t seed) : coll_(coll), rng_(seed), content_(seed ^ 0x5bd1e995) {}

  // Writes one version (and its contained entry, if any); returns the entries written.
  std::vector<bson_oid_t> write_one() {
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    uint64_t dice = rng_() % 100;
    LiveResource* r = nullptr;
    if (dice < 60 || live_.empty()) {
      live_.push_back({});
      r = &live_.back();
      r->type = seed::kResourceTypes[rng_() % std::size(seed::kResourceTypes)];
      // Ids no seeded store uses, so that the writer never meets a seeded version (a conflict).
      r->id = "w" + std::to_string(live_.size()) + "-" + std::to_string(now_ms);
    } else {
      r = &live_[rng_() % live_.size()];
    }
    bool tombstone = r->version > 0 && !r->deleted && dice >= 94;
    if (r->version > 0) mark_history(r->last);
    r->version++;
    schema::Entry e;
    bson_oid_init(&e.id, nullptr);
    e.im = schema::kInfoModelR4;
    e.type = r->type;
    e.res_id = r->id;
    e.v = std::to_string(r->version);
    e.lu_ms = now_ms;
    e.cur = true;
    e.change = r->version == 1 || r->deleted ? schema::Change::kCreated
                                             : (tombstone ? schema::Change::kDeleted : schema::Change::kUpdated);
    r->deleted = tombstone;
    r->last = e.id;
    uint64_t med_code = 100000 + content_() % 100000;
    if (!tombstone) e.json = seed::resource_body(content_, r->type, r->id, e.v, now_ms, r->version, med_code);
    mongo::BulkWriter bulk = coll_.bulk(false);
    mongo::Bson doc = schema::encode_legacy(e);
    bulk.insert(doc.get());
    std::vector<bson_oid_t> ids{e.id};
    if (!tombstone && r->type == "MedicationRequest") {
      schema::Entry c = e;
      bson_oid_init(&c.id, nullptr);
      c.type = "Medication";
      c.res_id = "med1";
      c.cnt = true;
      c.container = e.id;
      c.json = seed::contained_medication(med_code);
      mongo::Bson cdoc = schema::encode_legacy(c);
      bulk.insert(cdoc.get());
      ids.push_back(c.id);
    }
    mongo::BulkResult res = bulk.execute();
    if (!res.ok())
      throw std::runtime_error("writing " + e.type + "/" + e.res_id + " v" + e.v + " to the source: " +
                               (res.write_errors.empty() ? res.write_concern_error : res.write_errors.front().message));
    return ids;
  }

 private:
  // The old server marks the previous version as history (and its contained entries; the writer's
  // contained entries follow their container in the target, so the container's flip is enough).
  void mark_history(const bson_oid_t& id) {
    mongo::Builder filter;
    filter.append("_id", id);
    mongo::Builder update;
    update.document("$set", [](mongo::Builder& s) { s.append("cur", false); });
    mongo::BulkWriter bulk = coll_.bulk(false);
    bulk.update_one(filter.extract().get(), update.extract().get(), false);
    bulk.execute();
  }

  mongo::Collection& coll_;
  std::mt19937_64 rng_;
  std::mt19937_64 content_;
  std::deque<LiveResource> live_;  // deque: pointers stay valid as it grows
};

int run_writer(const WriterArgs& a) {
  mongo::ensure_driver_initialized();
  mongo::ClientPool source_pool(mongo::Uri::parse(a.source), "migrate_bench");
  mongo::ClientPool target_pool(mongo::Uri::parse(a.target), "migrate_bench");

  std::mutex m;
  std::condition_variable cv;
  std::deque<Written> pending;  // insert order
  bool writing_done = false;
  std::string writer_error;
  int64_t written = 0;

  std::thread writer([&] {
    try {
      mongo::Client client = source_pool.acquire();
      mongo::Collection coll = client.collection(source_pool.database(), a.collection);
      LegacyWriter w(coll, a.seed);
      auto period = std::chrono::duration<double>(1.0 / a.rate);
      auto start = Clock::now();
      int64_t n = 0;
      while (seconds_since(start) < a.seconds) {
        std::vector<bson_oid_t> ids = w.write_one();
        auto acked = Clock::now();
        {
          std::lock_guard lock(m);
          for (const auto& id : ids) pending.push_back({id, acked});
          written += static_cast<int64_t>(ids.size());
        }
        cv.notify_one();
        n += static_cast<int64_t>(ids.size());
        // Open loop on a fixed schedule: a slow write is caught up by the next ones, not skipped.
        std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(period * n));
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(m);
      writer_error = e.what();
    }
    std::lock_guard lock(m);
    writing_done = true;
    cv.notify_one();
  });

  // The probe: asks the target for the oldest pending `_id` until it is there, then the next one.
  // The migrator applies entries in `_id` order chunk by chunk, so a later entry is rarely visible
  // before an earlier one; if it is, its latency is counted from when the probe reaches it (an
  // upper bound, off by at most one probe round trip per entry ahead of it).
  std::vector<double> latencies_ms;
  int64_t lost = 0;
  std::string probe_error;
  try {
    mongo::Client client = target_pool.acquire();
    mongo::Collection coll = client.collection(target_pool.database(), a.collection);
    std::optional<Clock::time_point> settle_deadline;
    for (;;) {
      Written next;
      {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return !pending.empty() || writing_done; });
        if (pending.empty()) break;
        if (writing_done && !settle_deadline)
          settle_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(a.settle));
        next = pending.front();
      }
      if (settle_deadline && Clock::now() > *settle_deadline) {
        std::lock_guard lock(m);
        lost = static_cast<int64_t>(pending.size());
        break;
      }
      mongo::Builder filter;
      filter.append("_id", next.id);
      mongo::Bson f = filter.extract();
      mongo::Builder opts;
      opts.document("projection", [](mongo::Builder& p) { p.append("_id", int32_t{1}); });
      mongo::Bson o = opts.extract();
      if (coll.find_one(f.get(), o.get())) {
        latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - next.acked).count());
        std::lock_guard lock(m);
        pending.pop_front();
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
  } catch (const std::exception& e) {
    probe_error = e.what();
  }
  writer.join();
  if (!writer_error.empty()) throw std::runtime_error("writer: " + writer_error);
  if (!probe_error.empty()) throw std::runtime_error("probing the target " + a.target + ": " + probe_error);
  nlohmann::json out = {{"written", written},
                        {"seen", latencies_ms.size()},
                        {"notSeenWithinSettle", lost},
                        {"ratePerSecond", a.rate},
                        {"seconds", a.seconds},
                        {"p50ms", percentile(latencies_ms, 50)},
                        {"p99ms", percentile(latencies_ms, 99)},
                        {"maxms", percentile(latencies_ms, 100)}};
  std::cout << out.dump() << std::endl;
  return lost == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Migration benchmark helper: insertMany ceiling and Continuous-mode lag"};
  app.require_subcommand(1);
  CeilingArgs ca;
  ca.par = static_cast<int>(std::min(8u, std::max(1u, std::thread::hardware_concurrency()) * 2));
  auto* ceiling = app.add_subcommand("ceiling", "Time unordered insertMany of the transformed source");
  ceiling->add_option("--source", ca.source, "Legacy source URI (database in the path)")->required();
  ceiling->add_option("--target", ca.target, "Empty target URI")->required();
  ceiling->add_option("--collection", ca.collection);
  ceiling->add_option("--batch", ca.batch, "Documents per insertMany (the migrator's --mongoBatch default)");
  ceiling->add_option("--par", ca.par, "insertMany batches in flight (the migrator's --mongoPar default)");
  WriterArgs wa;
  auto* writer = app.add_subcommand("writer", "Write legacy entries at a rate and time their visibility");
  writer->add_option("--source", wa.source)->required();
  writer->add_option("--target", wa.target)->required();
  writer->add_option("--collection", wa.collection);
  writer->add_option("--rate", wa.rate, "Entries per second");
  writer->add_option("--seconds", wa.seconds, "How long to write");
  writer->add_option("--settle", wa.settle, "Seconds to wait for the last entries after writing stops");
  writer->add_option("--seed", wa.seed);
  CLI11_PARSE(app, argc, argv);
  try {
    if (*ceiling) return run_ceiling(ca);
    return run_writer(wa);
  } catch (const std::exception& e) {
    std::cerr << "migrate_bench: " << e.what() << "\n";
    return 2;
  }
}

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
//     `cur:false` in the source first) and deletes, bodies from the seed generator, `rate` writes
//     per second on a fixed schedule (several writer threads). Probe threads ask the target by
//     `_id` for a sample of the written entries (one in --probe-every) and record the time from
//     its acknowledged insert to its visibility in the target. Prints one JSON line with
//     p50/p99/max and how many sampled entries were not seen within --settle seconds after the
//     last write (they are not in the percentiles).
//
//   migrate_bench floor --source URI [--reads 3]
//     The floor of change detection on a server that cannot serve `_id` ranges from an index: a
//     plain `find` of the whole source sorted by `_id`, read to the end, --reads times. Prints
//     one JSON line with the entries read and the median, fastest and slowest read.

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
#include "insert_ceiling.h"
#include "migrate/transform.h"
#include "mongo/client.h"
#include "schema/entry.h"
#include "seed/seed.h"

namespace {

using namespace fhirshift;
using Clock = bench::Clock;

using bench::insert_all;
using bench::peak_rss_mb;
using bench::seconds_since;

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
  double insert_s = insert_all(target_pool, a.collection, docs, a.batch, a.par);
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
  int threads = 8;
  int probes = 2;
  int probe_every = 4;  // probe one entry in this many: each probe is a query the target serves too
  uint64_t seed = 99;
};

// One resource of the writer. `busy` while a version of it is being written, so that no two
// threads write versions of one resource at the same time (the old server serialises them too).
struct LiveResource {
  std::string type, id;
  int version = 0;
  bool deleted = false;
  bool busy = false;
  bson_oid_t last{};
};

// What one write does: the entries to insert and the version they supersede.
struct WritePlan {
  LiveResource* resource = nullptr;
  std::vector<mongo::Bson> docs;
  std::vector<bson_oid_t> ids;
  std::optional<bson_oid_t> superseded;
  std::string what;  // "Patient/w1-… v2", for messages
};

// Decides the writes like the old server: 60 % new resources, the rest updates of a random
// resource and, now and then, deletes; `_id` from the clock, `lu` now, bodies from the seed
// generator. Thread-safe; the database work happens outside its lock.
class WritePlanner {
 public:
  explicit WritePlanner(uint64_t seed) : rng_(seed), content_(seed ^ 0x5bd1e995) {}

  WritePlan next() {
    std::lock_guard lock(m_);
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    uint64_t dice = rng_() % 100;
    LiveResource* r = live_.empty() ? nullptr : &live_[rng_() % live_.size()];
    if (dice < 60 || !r || r->busy) {
      live_.push_back({});
      r = &live_.back();
      r->type = seed::kResourceTypes[rng_() % std::size(seed::kResourceTypes)];
      // Ids no seeded store uses, so that the writer never meets a seeded version (a conflict).
      r->id = "w" + std::to_string(live_.size()) + "-" + std::to_string(now_ms);
    }
    WritePlan plan;
    plan.resource = r;
    r->busy = true;
    bool tombstone = r->version > 0 && !r->deleted && dice >= 94;
    if (r->version > 0) plan.superseded = r->last;
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
    plan.what = e.type + "/" + e.res_id + " v" + e.v;
    uint64_t med_code = 100000 + content_() % 100000;
    if (!tombstone) e.json = seed::resource_body(content_, r->type, r->id, e.v, now_ms, r->version, med_code);
    plan.docs.push_back(schema::encode_legacy(e));
    plan.ids.push_back(e.id);
    if (!tombstone && r->type == "MedicationRequest") {
      schema::Entry c = e;
      bson_oid_init(&c.id, nullptr);
      c.type = "Medication";
      c.res_id = "med1";
      c.cnt = true;
      c.container = e.id;
      c.json = seed::contained_medication(med_code);
      plan.docs.push_back(schema::encode_legacy(c));
      plan.ids.push_back(c.id);
    }
    return plan;
  }

  void done(const WritePlan& plan) {
    std::lock_guard lock(m_);
    plan.resource->busy = false;
  }

 private:
  std::mutex m_;
  std::mt19937_64 rng_;
  std::mt19937_64 content_;
  std::deque<LiveResource> live_;  // deque: pointers stay valid as it grows
};

// Writes one plan: the superseded version becomes history in the source first (its contained
// entries follow their container in the target, so the container's flip is all the test needs),
// then the new entries in one insert.
void write_plan(mongo::Collection& coll, const WritePlan& plan) {
  if (plan.superseded) {
    mongo::Builder filter;
    filter.append("_id", *plan.superseded);
    mongo::Builder update;
    update.document("$set", [](mongo::Builder& s) { s.append("cur", false); });
    mongo::BulkWriter flip = coll.bulk(false);
    flip.update_one(filter.extract().get(), update.extract().get(), false);
    flip.execute();
  }
  mongo::BulkWriter bulk = coll.bulk(false);
  for (const auto& d : plan.docs) bulk.insert(d.get());
  mongo::BulkResult res = bulk.execute();
  if (!res.ok())
    throw std::runtime_error("writing " + plan.what + " to the source: " +
                             (res.write_errors.empty() ? res.write_concern_error : res.write_errors.front().message));
}

struct Written {
  bson_oid_t id;
  Clock::time_point acked;
};

int run_writer(const WriterArgs& a) {
  mongo::ensure_driver_initialized();
  mongo::ClientPool source_pool(mongo::Uri::parse(a.source), "migrate_bench");
  mongo::ClientPool target_pool(mongo::Uri::parse(a.target), "migrate_bench");

  std::mutex m;
  std::condition_variable cv;
  int writers_running = a.threads;
  std::string writer_error;
  int64_t written = 0, sampled = 0, writes = 0, late_starts = 0;
  std::vector<std::deque<Written>> shares(static_cast<size_t>(a.probes));  // per probe, see below

  // Open loop: write k starts at start + k / rate, whoever is free takes it; several threads so
  // that one slow write does not hold up the schedule.
  WritePlanner planner(a.seed);
  std::atomic<int64_t> next_slot{0};
  auto start = Clock::now();
  auto slot_time = [&](int64_t k) {
    return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(k / a.rate));
  };
  auto end = slot_time(static_cast<int64_t>(a.seconds * a.rate));
  std::vector<std::thread> writers;
  for (int w = 0; w < a.threads; ++w) {
    writers.emplace_back([&] {
      try {
        mongo::Client client = source_pool.acquire();
        mongo::Collection coll = client.collection(source_pool.database(), a.collection);
        for (int64_t k = next_slot++; slot_time(k) < end; k = next_slot++) {
          std::this_thread::sleep_until(slot_time(k));
          bool late = Clock::now() - slot_time(k) > std::chrono::milliseconds(100);
          WritePlan plan = planner.next();
          write_plan(coll, plan);
          auto acked = Clock::now();
          planner.done(plan);
          std::lock_guard lock(m);
          for (const auto& id : plan.ids)
            if (written++ % a.probe_every == 0)
              shares[static_cast<size_t>(sampled++ % a.probes)].push_back({id, acked});
          writes++;
          late_starts += late;
          cv.notify_all();
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(m);
        if (writer_error.empty()) writer_error = e.what();
      }
      std::lock_guard lock(m);
      writers_running--;
      cv.notify_all();
    });
  }

  // The probes: every probe_every-th entry written is sampled (sample i goes to probe i % probes);
  // each probe asks the target for the oldest `_id` of its share until it is there, then the
  // next one, waiting 20 ms after a miss. Sampling keeps the probes' own queries from loading a
  // target that serves `_id` lookups by scanning (FerretDB's PostgreSQL backend). An entry that
  // becomes visible before an older one of the same share is counted when its probe reaches it:
  // an upper bound, off by the probe's walk through that share (several probes keep it short).
  auto settle_deadline = Clock::time_point::max();  // set when the writers are done
  std::vector<double> latencies_ms;
  int64_t lost = 0;
  std::string probe_error;
  std::vector<std::thread> probes;
  for (size_t p = 0; p < shares.size(); ++p) {
    probes.emplace_back([&, p] {
      try {
        mongo::Client client = target_pool.acquire();
        mongo::Collection coll = client.collection(target_pool.database(), a.collection);
        mongo::Builder opts;
        opts.document("projection", [](mongo::Builder& b) { b.append("_id", int32_t{1}); });
        mongo::Bson o = opts.extract();
        for (;;) {
          Written next;
          {
            std::unique_lock lock(m);
            cv.wait(lock, [&] { return !shares[p].empty() || writers_running == 0; });
            if (shares[p].empty()) return;
            if (Clock::now() > settle_deadline) {
              lost += static_cast<int64_t>(shares[p].size());
              return;
            }
            next = shares[p].front();
          }
          mongo::Builder filter;
          filter.append("_id", next.id);
          mongo::Bson f = filter.extract();
          if (coll.find_one(f.get(), o.get())) {
            double ms = std::chrono::duration<double, std::milli>(Clock::now() - next.acked).count();
            std::lock_guard lock(m);
            latencies_ms.push_back(ms);
            shares[p].pop_front();
          } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(m);
        if (probe_error.empty()) probe_error = e.what();
      }
    });
  }
  for (auto& t : writers) t.join();
  {
    std::lock_guard lock(m);
    settle_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.settle));
  }
  cv.notify_all();
  for (auto& t : probes) t.join();
  if (!writer_error.empty()) throw std::runtime_error("writer: " + writer_error);
  if (!probe_error.empty()) throw std::runtime_error("probing the target " + a.target + ": " + probe_error);
  nlohmann::json out = {{"writes", writes},
                        {"written", written},
                        {"writesStartedOver100msLate", late_starts},
                        {"sampled", sampled},
                        {"seen", latencies_ms.size()},
                        {"notSeenWithinSettle", lost},
                        {"ratePerSecond", a.rate},
                        {"seconds", a.seconds},
                        {"p50ms", percentile(latencies_ms, 50)},
                        {"p99ms", percentile(latencies_ms, 99)},
                        {"maxms", percentile(latencies_ms, 100)}};
  std::cout << out.dump() << std::endl;
  return 0;  // entries not seen within --settle are in the figures (notSeenWithinSettle)
}

// --- floor --------------------------------------------------------------------------------------

struct FloorArgs {
  std::string source, collection = "vonkentries";
  int reads = 3;
};

int run_floor(const FloorArgs& a) {
  mongo::ensure_driver_initialized();
  mongo::ClientPool pool(mongo::Uri::parse(a.source), "migrate_bench");
  mongo::Client client = pool.acquire();
  mongo::Collection coll = client.collection(pool.database(), a.collection);
  std::vector<double> ms;
  int64_t entries = 0;
  for (int i = 0; i < a.reads; ++i) {
    mongo::Builder o;
    o.document("sort", [](mongo::Builder& s) { s.append("_id", int32_t{1}); });
    o.append("batchSize", int32_t{10000});  // as the migrator's poll
    mongo::Bson filter = mongo::Builder().extract(), opts = o.extract();
    auto t0 = Clock::now();
    mongo::Cursor cursor = coll.find(filter.get(), opts.get());
    int64_t n = 0;
    while (cursor.next()) n++;
    ms.push_back(seconds_since(t0) * 1000);
    if (i > 0 && n != entries)
      throw std::runtime_error("the source changed between two reads (" + std::to_string(entries) +
                               " then " + std::to_string(n) +
                               " entries): measure the floor on a quiet source");
    entries = n;
  }
  nlohmann::json out = {{"entries", entries},
                        {"reads", a.reads},
                        {"medianMs", percentile(ms, 50)},
                        {"minMs", percentile(ms, 0)},
                        {"maxMs", percentile(ms, 100)}};
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Migration benchmark helper: insertMany ceiling, Continuous-mode lag and its floor"};
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
  writer->add_option("--rate", wa.rate, "Writes (resource versions) per second; a MedicationRequest brings its contained entry");
  writer->add_option("--threads", wa.threads, "Writer threads (a slow write does not hold up the schedule)")
      ->check(CLI::PositiveNumber);
  writer->add_option("--probes", wa.probes, "Threads probing the target by _id")->check(CLI::PositiveNumber);
  writer->add_option("--probe-every", wa.probe_every, "Probe one written entry in this many")
      ->check(CLI::PositiveNumber);
  writer->add_option("--seconds", wa.seconds, "How long to write");
  writer->add_option("--settle", wa.settle, "Seconds to wait for the last entries after writing stops");
  writer->add_option("--seed", wa.seed);
  FloorArgs fa;
  auto* floor = app.add_subcommand("floor", "Time a plain sorted find of the whole source");
  floor->add_option("--source", fa.source, "Source URI (database in the path)")->required();
  floor->add_option("--collection", fa.collection);
  floor->add_option("--reads", fa.reads, "How many times to read it")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    if (*ceiling) return run_ceiling(ca);
    if (*floor) return run_floor(fa);
    return run_writer(wa);
  } catch (const std::exception& e) {
    std::cerr << "migrate_bench: " << e.what() << "\n";
    return 2;
  }
}

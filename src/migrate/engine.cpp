#include "migrate/engine.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "common/log.h"
#include "common/version.h"
#include "migrate/journal.h"
#include "migrate/quarantine_keeper.h"
#include "migrate/report.h"
#include "migrate/retry.h"
#include "migrate/source_probe.h"
#include "mongo/collection.h"
#include "mongo/error.h"
#include "provision/provision.h"
#include "schema/entry.h"
#include "schema/layout.h"

namespace fhirshift::migrate {
namespace {

using Clock = std::chrono::system_clock;
using std::chrono::milliseconds;

constexpr const char* kMarkerId = "fhirshift-migration";
// Problem messages /progress lists (recentProblems).
constexpr size_t kRecentProblems = 5;

std::string iso8601(Clock::time_point t) {
  auto ms = std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

// A source chunk, or a marker that a poll found nothing newer (everything read before it is then
// applied by the time the consumer sees it), or the end of an AdHoc read.
struct Chunk {
  enum class Kind { kEntries, kPollMarker, kEnd, kFailed };
  std::vector<mongo::Bson> docs;
  Kind kind = Kind::kEntries;
  Clock::time_point poll_started{};
  int64_t poll_number = 0;
  bool found_nothing = false;
  std::string error;

  static Chunk end() { return make(Kind::kEnd); }
  static Chunk poll_marker(Clock::time_point poll_started, int64_t number, bool found_nothing) {
    Chunk c = make(Kind::kPollMarker);
    c.poll_started = poll_started;
    c.poll_number = number;
    c.found_nothing = found_nothing;
    return c;
  }
  static Chunk failed(std::string error) {
    Chunk c = make(Kind::kFailed);
    c.error = std::move(error);
    return c;
  }

 private:
  static Chunk make(Kind kind) {
    Chunk c;
    c.kind = kind;
    return c;
  }
};

// A bounded queue between the reader and the writers: the reader blocks when writers lag, so
// memory holds at most `capacity` chunks.
class ChunkQueue {
 public:
  explicit ChunkQueue(size_t capacity) : capacity_(capacity) {}
  bool push(Chunk chunk, const std::atomic<bool>& stop) {
    return push(std::move(chunk), [&stop] { return stop.load(); });
  }
  // Waits for room until `give_up()` holds (checked every 100 ms); false: given up, not queued.
  template <class GiveUp>
  bool push(Chunk chunk, GiveUp give_up) {
    std::unique_lock lock(mutex_);
    while (items_.size() >= capacity_ && !give_up()) not_full_.wait_for(lock, milliseconds(100));
    if (give_up()) return false;
    items_.push_back(std::move(chunk));
    not_empty_.notify_one();
    return true;
  }
  // Waits for a chunk until `give_up()` holds (checked every 100 ms).
  template <class GiveUp>
  std::optional<Chunk> pop(GiveUp give_up) {
    std::unique_lock lock(mutex_);
    while (items_.empty() && !give_up()) not_empty_.wait_for(lock, milliseconds(100));
    if (items_.empty()) return std::nullopt;
    Chunk c = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return c;
  }

 private:
  size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Chunk> items_;
};

// A chunk (the unit of the recovery journal's checkpoint) holds this many rounds of write
// partitions: the Applier waits for a chunk's slowest partition before the next chunk, and four
// rounds instead of one took a 100,000-entry copy on FerretDB from 22.5 s to 16.5 s of writing,
// the speed of plain insertMany into the same target.
constexpr int64_t kRoundsPerChunk = 4;
// ... and at most this much source BSON, so that large resources do not multiply the memory held
// by the reader's queue (two chunks) and the chunk being applied.
constexpr size_t kChunkBytes = size_t{48} << 20;

// How long the source may take to estimate its size for the progress line.
constexpr int64_t kEstimateMaxTimeMs = 10000;

// Deferred flips per bulk write (each flip is its own update by `_id`; the BulkWriter sends them
// a few per command).
constexpr size_t kFlipsPerWrite = 100;

// A journal written by fhirshift before 2026-12-03 may hold history flips it deferred to its next
// poll boundary; they are applied before this run reads anything. (Flips are now written with
// the inserts of the chunk that replaces the versions.)
// Their shard keys are read by `_id`, one query per write.
void apply_deferred_flips(Journal& journal, mongo::Collection& target, schema::KeyFilter key_filter,
                          const mongo::Uri& target_uri,
                          std::chrono::milliseconds retry_timeout, const std::atomic<bool>& stop) {
  for (std::vector<std::string> ids; !(ids = journal.pending_flips(kFlipsPerWrite)).empty();) {
    retry_mongo("making replaced versions history", target_uri, retry_timeout, stop, [&] {
      std::vector<bson_oid_t> oids;
      for (const auto& id : ids)
        if (auto oid = mongo::oid_from_string(id)) oids.push_back(*oid);
      mongo::BulkWriter w = target.bulk(false);
      add_history_flips(w, current_keys(target, oids, key_filter), key_filter);
      mongo::BulkResult r = w.execute();
      if (!r.write_errors.empty())
        throw mongo::MongoError("making replaced versions history in " + target.ns(), 0,
                                r.write_errors.front().code, r.write_errors.front().message);
      return 0;
    });
    journal.flips_done(ids);
  }
}

// The start of the late-entry window below `id`: the smallest ObjectId of the second `window`
// before it. Continuous polls re-read from there, so an entry committed up to `window` after the
// reader passed its `_id` is still found.
bson_oid_t window_start(const bson_oid_t& id, std::chrono::milliseconds window) {
  int64_t from_s = static_cast<int64_t>(bson_oid_get_time_t(&id)) -
                   std::chrono::duration_cast<std::chrono::seconds>(window).count();
  return mongo::oid_at_seconds(static_cast<uint32_t>(std::max<int64_t>(0, from_s)));
}

}  // namespace

// --- Progress ---------------------------------------------------------------------------------

void Progress::set_phase(const std::string& phase) {
  std::lock_guard lock(mutex_);
  phase_ = phase;
}
void Progress::set_mode(const std::string& mode) {
  std::lock_guard lock(mutex_);
  mode_ = mode;
}
void Progress::set_error(const std::string& message) {
  std::lock_guard lock(mutex_);
  last_error_ = message;
}
void Progress::add(const Tally& chunk, std::chrono::microseconds latency) {
  std::lock_guard lock(mutex_);
  tally_.add(chunk);
  for (const auto& p : chunk.first_problems) {
    recent_problems_.push_back(p);
    if (recent_problems_.size() > kRecentProblems) recent_problems_.pop_front();
  }
  batches_++;
  last_batch_seconds_ = latency.count() / 1e6;
  batch_seconds_sum_ += last_batch_seconds_;
}
void Progress::poll_done(Clock::time_point poll_started, int64_t number) {
  std::lock_guard lock(mutex_);
  last_poll_at_ = poll_started;
  polls_done_ = number;
  copied_up_to_ = poll_started;
  polled_ = true;
}
void Progress::chunk_read(const std::string& last_id) {
  std::lock_guard lock(mutex_);
  if (last_id > high_water_id_) high_water_id_ = last_id;
}
void Progress::checkpoint(const std::string& id) {
  std::lock_guard lock(mutex_);
  checkpoint_id_ = id;
}
Tally Progress::tally() const {
  std::lock_guard lock(mutex_);
  return tally_;
}
double Progress::lag_seconds() const {
  std::lock_guard lock(mutex_);
  auto since = copied_up_to_ == Clock::time_point{} ? started_ : copied_up_to_;
  return std::chrono::duration<double>(Clock::now() - since).count();
}

std::string Progress::to_json() const {
  double lag = lag_seconds();
  std::lock_guard lock(mutex_);
  double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
  nlohmann::json j{{"mode", mode_},
                   {"phase", phase_},
                   {"caughtUp", caught_up_at(lag)},
                   {"lagSeconds", lag},
                   {"entriesRead", tally_.read},
                   {"entriesWritten", tally_.written},
                   {"unchanged", tally_.unchanged},
                   {"kept", tally_.kept},
                   {"skippedSystem", tally_.system},
                   {"quarantined", tally_.quarantined},
                   {"conflicts", tally_.conflicts},
                   {"errors", tally_.errors},
                   {"lateEntries", late_entries_.load()},
                   {"totalEstimate", total_estimate_.load()},
                   {"entriesPerSecond", elapsed > 0 ? tally_.read / elapsed : 0},
                   {"sourceHighWaterId", high_water_id_},
                   {"checkpointId", checkpoint_id_},
                   {"startedAt", iso8601(started_)},
                   {"lastError", last_error_}};
  j["lastPollAt"] = last_poll_at_ == Clock::time_point{} ? nlohmann::json(nullptr)
                                                         : nlohmann::json(iso8601(last_poll_at_));
  j["pollsStarted"] = polls_started_.load();
  j["pollsDone"] = polls_done_;
  j["reading"] = reading_.load();
  j["recentProblems"] = recent_problems_;
  Throttle::State t = throttle_ ? throttle_->state() : Throttle::State{};
  j["paused"] = t.paused;
  j["pausedBy"] = t.paused ? nlohmann::json(t.paused_by) : nlohmann::json(nullptr);
  j["maxRate"] = t.max_rate;
  j["maxSourceLatencyMs"] = t.max_source_latency_ms;
  j["rateLimit"] = t.rate_limit;
  j["sourceLatencyP90Ms"] =
      t.latency_p90_ms < 0 ? nlohmann::json(nullptr) : nlohmann::json(t.latency_p90_ms);
  j["throttled"] = t.throttled;
  j["throttleReason"] = t.reason;
  return j.dump();
}

std::string Progress::to_prometheus() const {
  double lag = lag_seconds();
  std::lock_guard lock(mutex_);
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  metric("fhirshift_migrate_entries_read_total", "counter", "Source entries read", tally_.read);
  metric("fhirshift_migrate_entries_written_total", "counter", "Entries written to the target", tally_.written);
  metric("fhirshift_migrate_entries_unchanged_total", "counter", "Entries already in the target", tally_.unchanged);
  metric("fhirshift_migrate_entries_quarantined_total", "counter", "Entries quarantined", tally_.quarantined);
  metric("fhirshift_migrate_conflicts_total", "counter", "Version conflicts recorded", tally_.conflicts);
  metric("fhirshift_migrate_errors_total", "counter", "Writes the target refused", tally_.errors);
  metric("fhirshift_migrate_batches_total", "counter", "Chunks applied", static_cast<double>(batches_));
  metric("fhirshift_migrate_batch_latency_seconds_sum", "counter", "Time spent applying chunks", batch_seconds_sum_);
  metric("fhirshift_migrate_batch_latency_seconds_last", "gauge", "Latency of the last chunk", last_batch_seconds_);
  metric("fhirshift_migrate_lag_seconds", "gauge", "Age of the newest moment up to which the source is copied", lag);
  metric("fhirshift_migrate_caught_up", "gauge",
         "1 when following the source within the caught-up lag", caught_up_at(lag) ? 1 : 0);
  Throttle::State t = throttle_ ? throttle_->state() : Throttle::State{};
  metric("fhirshift_migrate_paused", "gauge", "1 while paused by the operator", t.paused ? 1 : 0);
  metric("fhirshift_migrate_max_rate", "gauge", "--max-rate in source entries/s (0: none)",
         t.max_rate);
  metric("fhirshift_migrate_max_source_latency_ms", "gauge", "--max-source-latency in ms (0: none)",
         static_cast<double>(t.max_source_latency_ms));
  metric("fhirshift_migrate_rate_limit", "gauge", "Source entries/s allowed now (0: unlimited)",
         t.rate_limit);
  if (t.latency_p90_ms >= 0)
    metric("fhirshift_migrate_source_latency_p90_ms", "gauge",
           "p90 of the source's recent response times", t.latency_p90_ms);
  out +=
      "# HELP fhirshift_migrate_throttled 1 while reading is held back; reason: paused, max rate "
      "or source latency\n"
      "# TYPE fhirshift_migrate_throttled gauge\n";
  out += fmt::format("fhirshift_migrate_throttled{{reason=\"{}\"}} {}\n", t.reason_kind,
                     t.throttled ? 1 : 0);
  double journal_ts = 0;
  if (auto oid = mongo::oid_from_string(checkpoint_id_)) journal_ts = bson_oid_get_time_t(&*oid);
  metric("fhirshift_migrate_journal_position_timestamp_seconds", "gauge",
         "ObjectId time of the journal checkpoint", journal_ts);
  return out;
}

std::string Progress::summary_line() const {
  double lag = lag_seconds();
  std::lock_guard lock(mutex_);
  double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
  double rate = elapsed > 0 ? tally_.read / elapsed : 0;
  int64_t total = total_estimate_;
  std::string line = with_commas(tally_.read) + " entries read";
  if (total > 0) {
    line += fmt::format(" / ~{} ({}%)", with_commas(total),
                        std::min<int64_t>(100, tally_.read * 100 / std::max<int64_t>(1, total)));
    if (rate > 0 && total > tally_.read)
      line += ", ETA " + format_hms(std::chrono::seconds(static_cast<int64_t>((total - tally_.read) / rate)));
  }
  line += fmt::format(", {} written, {:.0f} entries/s, lag {:.1f} s", with_commas(tally_.written), rate, lag);
  if (tally_.quarantined || tally_.conflicts || tally_.errors)
    line += fmt::format(", {} quarantined, {} conflicts, {} errors", tally_.quarantined, tally_.conflicts,
                        tally_.errors);
  if (throttle_)
    if (Throttle::State t = throttle_->state(); t.throttled) line += ", THROTTLED: " + t.reason;
  return line;
}

// --- Engine -----------------------------------------------------------------------------------

Engine::Engine(Options options, const std::atomic<bool>& stop)
    : options_(std::move(options)), stop_(stop) {
  throttle_.set_max_rate(options_.max_rate);
  throttle_.set_max_source_latency(options_.max_source_latency);
  progress_.attach(&throttle_);
}

RunResult Engine::run() {
  const auto started = std::chrono::steady_clock::now();
  const bool continuous = options_.mode == RunningMode::kContinuous;
  progress_.set_mode(continuous ? "Continuous" : "AdHoc");
  progress_.set_poll_interval(options_.poll_interval);

  mongo::Uri source_uri = mongo::Uri::parse(options_.source_uri);
  mongo::Uri target_uri = mongo::Uri::parse(options_.target_uri);
  // An operation that finds no server gives up within --retryTimeout (see retry_mongo).
  source_uri.cap_server_selection_timeout(options_.retry_timeout);
  target_uri.cap_server_selection_timeout(options_.retry_timeout);
  // Named apart so that the command log (mongo/command_log.h) tells source reads from target ones.
  mongo::ClientPool source_pool(source_uri, "fhirshift-migrate-source");
  mongo::ClientPool target_pool(target_uri, "fhirshift-migrate-target");
  {
    // Fail fast, naming the host, before anything is written.
    mongo::Client s = source_pool.acquire();
    s.ping();
    mongo::Client t = target_pool.acquire();
    t.ping();
  }
  const std::string source_name = source_uri.redacted() + " " + options_.source_collection;
  const std::string target_name = target_uri.redacted() + " " + options_.target_collection;
  spdlog::info("source: {}.{} on {}", source_uri.database(), options_.source_collection, source_uri.hosts());
  spdlog::info("target: {}.{} on {} ({} schema)", target_uri.database(), options_.target_collection,
               target_uri.hosts(), options_.reverse ? "legacy" : "current");

  std::string definitions = options_.search_parameters.empty()
                                ? index::Indexer::default_definitions_path().string()
                                : options_.search_parameters;
  auto indexer_started = std::chrono::steady_clock::now();
  std::shared_ptr<const index::Indexer> indexer = index::Indexer::load(definitions);
  spdlog::info("search parameters compiled from {} in {} ms", definitions,
               std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - indexer_started).count());

  mongo::Client target_client = target_pool.acquire();
  if (options_.provision_target && !options_.reverse && !options_.dry_run) {
    provision::Options p;
    p.collection = options_.target_collection;
    mongo::Builder from;
    from.append("tool", std::string("fhirshift ") + kVersion)
        .append("source", source_uri.redacted())
        .append("collection", options_.source_collection);
    p.migrated_from = from.extract();
    provision::Report report = provision::provision(target_client, target_uri.database(), p);
    for (const auto& n : report.notices)
      spdlog::warn("provision: {}", n);  // e.g. how to shard on mongos
    for (const auto& a : report.actions) spdlog::info("provision: {}", a);
  }

  // Journal and target marker: both name the run, so a journal never resumes into a target that
  // was dropped or belongs to another migration.
  mongo::Collection target = target_client.collection(target_uri.database(), options_.target_collection);
  mongo::Builder marker_filter;
  marker_filter.append("_id", kMarkerId);
  mongo::Bson marker_filter_doc = marker_filter.extract();
  std::optional<mongo::Bson> marker = options_.dry_run ? std::nullopt : target.find_one(marker_filter_doc.get());
  std::string marker_run = marker ? std::string(mongo::View(marker->get()).string("runId").value_or("")) : "";
  // Without --useRecoveryJournal the journal lives in a temporary directory for this run only: it
  // still carries the version state of an owned target, but a restart starts over.
  JournalDir journal_dir(options_.journal_dir, options_.dry_run);
  auto journal = std::make_unique<Journal>(journal_dir.path());
  std::string checkpoint;
  int64_t applied_before = 0;
  std::string run_id;
  bool owns_target = false;
  if (auto state = journal->load()) {
      auto refuse = [&](const std::string& why) {
        throw JournalError("the recovery journal " + journal->path().string() + " " + why +
                           ". Fix: delete the journal directory " + journal_dir.path().string() +
                           " and start again (the migration then restarts from the beginning; "
                           "entries already in the target are recognised as unchanged)");
      };
      if (state->source != source_name)
        refuse("belongs to a migration from " + state->source + ", not from " + source_name);
      if (state->target != target_name)
        refuse("belongs to a migration into " + state->target + ", not into " + target_name);
      if (!options_.dry_run && marker_run != state->run_id)
        refuse("belongs to run " + state->run_id + ", but the target " +
               (marker ? "was written by run " + marker_run : "has no migration marker (was it dropped?)"));
      run_id = state->run_id;
      checkpoint = state->checkpoint_id;
      applied_before = state->entries_applied;
      owns_target = state->owns_target;
      spdlog::info("resuming run {} from the recovery journal at entry {} ({} entries applied before)",
                   run_id, checkpoint.empty() ? "(start)" : checkpoint, with_commas(applied_before));
  }
  if (run_id.empty()) {
    bson_oid_t oid;
    bson_oid_init(&oid, nullptr);
    run_id = mongo::oid_to_string(oid);
    // An empty target (no entry with an ObjectId _id: one index probe, never a scan) is owned by
    // this run. A target that already holds entries (a rerun after deleting the journal, a
    // reverse migration) is looked up entry by entry instead.
    mongo::Builder any;
    any.document("_id", [](mongo::Builder& d) { d.append("$type", "objectId"); });
    owns_target = !options_.dry_run && !target.find_one(any.extract().get());
    journal->begin({run_id, source_name, target_name, "", 0, owns_target});
    spdlog::info("starting run {} ({})", run_id,
                 owns_target ? "the target is empty: version state kept in the journal"
                             : "the target holds entries: version state looked up in the target");
  }
  if (!options_.dry_run) {
    mongo::Builder m;
    m.append("_id", kMarkerId).append("runId", run_id).append("source", source_name);
    m.append_date("updatedAt", std::chrono::duration_cast<milliseconds>(Clock::now().time_since_epoch()).count());
    mongo::Bson mdoc = m.extract();
    mongo::BulkWriter w = target.bulk(true);
    w.replace_one(marker_filter_doc.get(), mdoc.get(), true);
    w.execute();
  }
  progress_.checkpoint(checkpoint);
  if (owns_target && !options_.dry_run)
    apply_deferred_flips(*journal, target, schema::key_filter_for(target_client), target_uri,
                         options_.retry_timeout, stop_);

  // The size estimate is only for the progress line's "done/total" and ETA (an estimate: collection
  // statistics, never used to decide anything), so it runs beside the copy instead of before it.
  // `$collStats`, not the `count` command: servers that answer `count` by scanning (FerretDB; a
  // million entries on its PostgreSQL backend outlasted the socket timeout) take a whole pass over
  // the source for it, and on a sharded cluster `count` includes orphans.
  std::jthread estimator([&] {  // joined when run() returns, before the pools go
    mongo::Client c = source_pool.acquire();
    mongo::Collection coll = c.collection(source_uri.database(), options_.source_collection);
    try {
      progress_.set_total_estimate(coll.stats_count());
    } catch (const std::exception& e) {
      spdlog::warn("no estimate of the source's size (progress shows no total or ETA): {}", e.what());
    }
  });
  // AdHoc copies what the source holds at start: every `_id` up to the start time plus the
  // late-entry window, the clock skew between writers that Continuous allows for too. A bound from
  // the clock, not a query for the newest `_id`: that query is an index probe on MongoDB but a
  // whole-source scan and sort on servers that cannot serve it from an index (FerretDB), and
  // the first poll would wait for it.
  std::optional<bson_oid_t> high_water;  // the smallest ObjectId of the second after that
  if (!continuous)
    high_water = mongo::oid_at_seconds(static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::seconds>((Clock::now() + options_.late_entry_window).time_since_epoch())
            .count() +
        1));

  ApplierConfig ac;
  ac.database = target_uri.database();
  ac.collection = options_.target_collection;
  ac.policy = options_.policy;
  ac.schema = options_.reverse ? TargetSchema::kLegacy : TargetSchema::kCurrent;
  ac.parallelism = options_.parallelism;
  ac.batch_size = options_.batch_size;
  ac.dry_run = options_.dry_run;
  Applier applier(target_pool, ac, indexer, owns_target ? journal.get() : nullptr);
  std::optional<QuarantineKeeper> keeper;
  if (!options_.dry_run && !options_.reverse)
    keeper.emplace(target_pool, target_uri.database(), options_.target_collection);

  // --- the reader thread -------------------------------------------------------------------
  const int64_t chunk_size =
      static_cast<int64_t>(options_.batch_size) * std::max(1, options_.parallelism) * kRoundsPerChunk;
  // Under a limit the source is read in small batches: a second's worth under a rate limit, so a
  // read fetches little ahead of it; at most 100 entries under a latency limit, so that the time of
  // each read measures the source's response, not the size of its reply.
  auto cursor_batch = [&] {
    int64_t b = std::min<int64_t>(chunk_size, 10000);
    if (double r = throttle_.rate_limit(); r > 0)
      b = std::min<int64_t>(b, std::max<int64_t>(10, static_cast<int64_t>(r)));
    if (throttle_.limits_latency()) b = std::min<int64_t>(b, 100);
    return b;
  };
  SourceProbe probe(source_pool, source_uri.database(), options_.source_collection, throttle_);
  ChunkQueue queue(2);
  std::atomic<bool> reader_stop{false};
  std::atomic<bool> halt{false};
  std::atomic<bool> reader_done{false};  // the consumer drains the queue, then stops waiting
  std::thread reader([&] {
    struct Done {
      std::atomic<bool>& flag;
      Progress& progress;
      ~Done() {
        progress.reading_ended();
        flag = true;
      }
    } done{reader_done, progress_};
    mongo::Client client = source_pool.acquire();
    mongo::Collection coll = client.collection(source_uri.database(), options_.source_collection);
    std::optional<bson_oid_t> position;  // the newest `_id` handed on
    if (!checkpoint.empty()) position = mongo::oid_from_string(checkpoint);
    int64_t budget = options_.limit > 0 ? std::max<int64_t>(0, options_.limit - applied_before) : -1;
    const std::function<bool()> should_stop = [&] { return stop_.load() || reader_stop.load(); };
    auto is_new = [&](const bson_t* doc) {
      auto id = mongo::View(doc).oid("_id");
      return !position || (id && bson_oid_compare(&*id, &*position) > 0);
    };
    try {
      // One cursor per poll, streamed in `_id` order and cut into chunks: a single index walk on
      // MongoDB, and a single scan on servers that cannot serve `_id` ranges from an index.
      // Continuous polls start --lateEntryWindow below the position, so that the same read finds
      // late entries (committed after the reader passed their `_id`); the consumer skips the
      // re-read entries it already holds.
      while (!should_stop()) {
        auto poll_started = Clock::now();
        const int64_t poll_number = progress_.poll_begun();
        if (budget == 0) {
          queue.push(Chunk::end(), reader_stop);
          return;
        }
        int64_t found = 0, read = 0;
        bool interrupted = false;  // by a pause or a changed limit
        retry_mongo("reading the source", source_uri, options_.retry_timeout, reader_stop, [&] {
          mongo::Builder f;
          f.document("_id", [&](mongo::Builder& d) {
            d.append("$type", "objectId");
            if (position)
              d.append("$gt", continuous ? window_start(*position, options_.late_entry_window)
                                         : *position);
            if (high_water) d.append("$lte", *high_water);
          });
          mongo::Builder o;
          o.document("sort", [](mongo::Builder& s) { s.append("_id", int32_t{1}); });
          if (!continuous && budget > 0) o.append("limit", budget);
          const int64_t batch = cursor_batch();
          o.append("batchSize", static_cast<int32_t>(batch));
          mongo::Bson fd = f.extract(), od = o.extract();
          mongo::Cursor cursor = coll.find(fd.get(), od.get());
          Chunk chunk;
          chunk.poll_started = poll_started;
          int64_t chunk_new = 0;
          const uint64_t generation = throttle_.generation();
          // A chunk is handed on only when full or at the cursor's end; after a retry the cursor
          // restarts from the last chunk handed on, so nothing new is skipped (what is read twice
          // the consumer holds already). A pause or a changed limit while the queue is full (a
          // paused consumer takes nothing) abandons the poll like the reader's own check below:
          // the chunk is read again from `position`.
          auto hand_on = [&] {
            if (chunk.docs.empty()) return true;
            bson_oid_t last = *mongo::View(chunk.docs.back().get()).oid("_id");
            int64_t n = static_cast<int64_t>(chunk.docs.size());
            if (!queue.push(std::move(chunk), [&] {
                  return reader_stop.load() || throttle_.generation() != generation;
                })) {
              if (!reader_stop) interrupted = true;
              return false;
            }
            if (chunk_new > 0) {
              position = last;
              progress_.chunk_read(mongo::oid_to_string(last));
            }
            read += n;
            found += chunk_new;
            if (budget > 0) budget -= chunk_new;
            chunk = Chunk{};
            chunk.poll_started = poll_started;
            chunk_new = 0;
            return true;
          };
          size_t chunk_bytes = 0;
          auto chunk_started = std::chrono::steady_clock::now();
          for (int64_t k = 0;; ++k) {
            // Nothing is read while paused, and a changed limit takes a fresh cursor (its batch
            // size). What this cursor read but did not hand on is read again from `position`.
            if (throttle_.generation() != generation || !throttle_.admit(should_stop)) {
              interrupted = true;
              return 0;
            }
            auto t0 = std::chrono::steady_clock::now();
            const bson_t* doc = cursor.next();
            auto t1 = std::chrono::steady_clock::now();
            // The first entry of each later batch came with a getMore round trip. The find's own
            // first batch is left out: it includes the query's planning, and on servers that
            // cannot serve `_id` ranges from an index a scan of the whole source (FerretDB),
            // which measures the query rather than how busy the source is.
            if (k > 0 && k % batch == 0)
              throttle_.record_latency(
                  std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0));
            if (!doc) break;
            if (is_new(doc)) {
              if (budget > 0 && chunk_new >= budget) break;
              chunk_new++;
            }
            chunk.docs.push_back(mongo::Bson::copy_of(doc));
            chunk_bytes += doc->len;
            if (static_cast<int64_t>(chunk.docs.size()) >= chunk_size ||
                chunk_bytes >= kChunkBytes ||
                (t1 - chunk_started >= Throttle::kLimitedChunkAge && throttle_.rate_limit() > 0)) {
              if (!hand_on()) return 0;
              chunk_bytes = 0;
              chunk_started = t1;
            }
          }
          hand_on();
          return 0;
        });
        if (should_stop()) return;
        if (interrupted) {
          progress_.reading_ended();
          while (throttle_.paused() && !should_stop())
            std::this_thread::sleep_for(milliseconds(50));
          continue;  // a fresh poll from `position`
        }
        spdlog::debug("poll: {} entries read in {} ms, {} of them new", read,
                      std::chrono::duration_cast<milliseconds>(Clock::now() - poll_started).count(),
                      found);
        if (!continuous) {
          queue.push(Chunk::end(), reader_stop);
          return;
        }
        // Once the chunks of this poll are applied, the target holds everything committed before
        // `poll_started` (late entries aside, which the next polls find). The source is read:
        // handing on the marker may wait for a paused consumer.
        progress_.reading_ended();
        if (!queue.push(Chunk::poll_marker(poll_started, poll_number, found == 0), reader_stop))
          return;
        // A poll that brought a full write batch or more has a source writing faster than one
        // cycle: the next poll starts at once, and the interval is slept only once it is quiet.
        // The wait ends at SIGTERM too (stop_), not only when the consumer stops the reader: the
        // consumer learns of SIGTERM only after a chunk or marker, which a long interval delays.
        // A requested poll (POST /poll: the cut-over's drain, writes held) ends the wait.
        if (found < options_.batch_size)
          for (auto until = std::chrono::steady_clock::now() + options_.poll_interval;
               !should_stop() && std::chrono::steady_clock::now() < until &&
               !throttle_.take_poll_request();)
            std::this_thread::sleep_for(milliseconds(10));
      }
    } catch (const std::exception& e) {
      queue.push(Chunk::failed(std::string("reading the source failed: ") + e.what()), reader_stop);
    }
  });

  // --- the consumer: apply, checkpoint, report progress -------------------------------------
  RunResult result;
  std::string fatal;
  progress_.set_phase("copying");
  auto last_progress_log = std::chrono::steady_clock::now();
  // Empty until the first idle line, and again after each applied chunk (steady_clock's epoch is
  // the machine's boot, so a zero time point would hold the first line back on a new machine).
  std::optional<std::chrono::steady_clock::time_point> last_idle_log;
  bool announced_caught_up = false;
  int64_t applied = applied_before;
  // `_id`s within the late-entry window below the checkpoint that this process has handled
  // (applied, or found in the target), so that a poll's re-read of the window asks the target
  // only about the others: after a restart all of them, once; later only true late entries. Each
  // target query is a scan on servers without secondary indexes.
  std::set<std::string> window_handled;
  // Once this process's first poll is applied, every entry of the window that it has not handled
  // was committed after that poll started, so no earlier process can have written it: it is a
  // true late entry and is applied without asking the target (two scans per poll on a server
  // without secondary indexes, two round trips on MongoDB). Only the first poll's re-read, the
  // window a previous process may have written, is checked against the target.
  bool window_checked = false;
  const bool terminal = stderr_is_terminal();

  ChunkState pending;  // heads of what was applied since the last journal commit
  auto apply_with_retry = [&](const std::vector<mongo::Bson>& docs) {
    auto t0 = std::chrono::steady_clock::now();
    Tally t = retry_mongo("writing to the target", target_uri, options_.retry_timeout, reader_stop, [&] {
      ChunkState chunk;
      Tally applied_tally = applier.apply(docs, &chunk);
      pending.merge(std::move(chunk));
      return applied_tally;
    });
    progress_.add(t, std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0));
    if (keeper) {
      try {
        keeper->after_chunk(docs, t);
      } catch (const std::exception& e) {
        // Not fatal: the next chunk, `verify` and `quarantine list` apply the rule again.
        spdlog::warn("quarantine: could not mark superseded entries: {}", e.what());
      }
    }
    if (options_.halt_on_error && (t.errors || t.conflicts || t.quarantined)) {
      fatal = "--haltOnError: stopping at the first problem: " +
              (t.first_problems.empty() ? std::string("see the log") : t.first_problems.front());
      halt = true;
    }
    return t;
  };
  auto id_of = [](const mongo::Bson& doc) {
    return mongo::oid_to_string(*mongo::View(doc.get()).oid("_id"));
  };

  // Of source entries at or below the checkpoint that this process has not handled, those that
  // neither the target nor its quarantine holds: entries committed after the reader passed them.
  auto late_entries = [&](std::vector<mongo::Bson> unknown) {
    std::vector<bson_oid_t> ids;
    for (const auto& d : unknown) ids.push_back(*mongo::View(d.get()).oid("_id"));
    std::set<std::string> present;
    retry_mongo("checking the target for late entries", target_uri, options_.retry_timeout, reader_stop, [&] {
      present.clear();
      for (const std::string& name :
           {options_.target_collection, schema::quarantine_collection(options_.target_collection)}) {
        mongo::Collection c = target_client.collection(target_uri.database(), name);
        mongo::Builder f;
        f.document("_id", [&](mongo::Builder& d) { d.append_in(ids); });
        mongo::Builder o;
        o.document("projection", [](mongo::Builder& p) { p.append("_id", int32_t{1}); });
        mongo::Bson fd = f.extract(), od = o.extract();
        mongo::Cursor cur = c.find(fd.get(), od.get());
        while (const bson_t* d = cur.next())
          if (auto id = mongo::View(d).oid("_id")) present.insert(mongo::oid_to_string(*id));
      }
      return 0;
    });
    window_handled.insert(present.begin(), present.end());
    std::erase_if(unknown, [&](const mongo::Bson& d) { return present.count(id_of(d)) > 0; });
    return unknown;
  };

  // A chunk's entries above the checkpoint are new; those at or below it are a Continuous poll's
  // re-read of the late-entry window, skipped when handled. Applied together: one write per
  // partition, one journal commit.
  auto apply_chunk = [&](std::vector<mongo::Bson> read) {
    std::vector<mongo::Bson> docs, unknown;
    for (auto& d : read) {
      std::string id = id_of(d);
      if (checkpoint.empty() || id > checkpoint)
        docs.push_back(std::move(d));
      else if (!window_handled.count(id))
        unknown.push_back(std::move(d));
    }
    const std::string new_checkpoint = docs.empty() ? checkpoint : id_of(docs.back());
    std::vector<mongo::Bson> late;
    if (!unknown.empty()) late = window_checked ? std::move(unknown) : late_entries(std::move(unknown));
    docs.insert(docs.begin(), std::make_move_iterator(late.begin()),
                std::make_move_iterator(late.end()));
    if (!docs.empty()) {
      auto t0 = std::chrono::steady_clock::now();
      apply_with_retry(docs);
      if (continuous)
        for (const auto& d : docs) window_handled.insert(id_of(d));
      auto t1 = std::chrono::steady_clock::now();
      applied += static_cast<int64_t>(docs.size());
      checkpoint = new_checkpoint;
      if (!options_.dry_run) journal->commit(checkpoint, applied, pending);
      spdlog::debug(
          "chunk of {} entries applied in {} ms, journal commit {} ms", docs.size(),
          std::chrono::duration_cast<milliseconds>(t1 - t0).count(),
          std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t1).count());
      pending = {};
      progress_.checkpoint(checkpoint);
      last_idle_log.reset();
    }
    if (!late.empty()) {
      progress_.late_entries(static_cast<int64_t>(late.size()));
      spdlog::info(
          "late entries: {} source entries older than the checkpoint appeared and were applied",
          late.size());
    }
    // Ids below the window are never re-read.
    if (auto cp = mongo::oid_from_string(checkpoint))
      window_handled.erase(window_handled.begin(),
                           window_handled.lower_bound(mongo::oid_to_string(
                               window_start(*cp, options_.late_entry_window))));
  };

  // A pause lets the chunk being applied finish (its journal commit included), then applies nothing
  // until resumed: the chunks the reader queued wait in memory and are re-read after a crash.
  const char* phase = "copying";
  bool paused = false;
  auto pop_gives_up = [&] { return reader_done.load() || throttle_.paused(); };
  try {
    while (!halt) {
      if (throttle_.paused()) {
        if (!paused) {
          paused = true;
          progress_.set_phase("paused");
          spdlog::info(
              "paused: the chunk in flight is applied and the journal saved at {}; nothing is read "
              "until resumed (POST /resume or fhirshift ctl resume)",
              checkpoint.empty() ? "(start)" : checkpoint);
        }
        if (stop_) break;
        std::this_thread::sleep_for(milliseconds(50));
        continue;
      }
      if (paused) {
        paused = false;
        progress_.set_phase(phase);
        spdlog::info("resumed: {}", progress_.summary_line());
      }
      std::optional<Chunk> chunk = queue.pop(pop_gives_up);
      if (!chunk) {
        if (throttle_.paused()) continue;
        break;
      }
      if (chunk->kind == Chunk::Kind::kEnd) break;
      if (chunk->kind == Chunk::Kind::kFailed) {
        fatal = chunk->error;
        break;
      }
      if (chunk->kind == Chunk::Kind::kPollMarker) {
        window_checked = true;
        progress_.poll_done(chunk->poll_started, chunk->poll_number);
        phase = "polling";
        progress_.set_phase(phase);
        // Logged when the migrator becomes caught up, and again after it fell behind.
        if (progress_.caught_up() != announced_caught_up) {
          announced_caught_up = !announced_caught_up;
          if (announced_caught_up) spdlog::info("caught up: {}", progress_.summary_line());
          else spdlog::info("behind: {}", progress_.summary_line());
        }
        auto now = std::chrono::steady_clock::now();
        if (chunk->found_nothing &&
            (!last_idle_log ||
             now - *last_idle_log >= std::max<milliseconds>(options_.poll_interval, milliseconds(5000)))) {
          spdlog::info("No new items found in the database. Waiting for {} before retrying...",
                       format_interval(options_.poll_interval));
          last_idle_log = now;
        }
      } else {
        apply_chunk(std::move(chunk->docs));
      }
      auto now = std::chrono::steady_clock::now();
      if (now - last_progress_log >= options_.progress_interval) {
        if (terminal) spdlog::info("progress: {}", progress_.summary_line());
        else spdlog::info("progress {}", progress_.to_json());
        last_progress_log = now;
      }
      if (stop_) break;
    }
  } catch (const std::exception& e) {
    fatal = e.what();
  }
  reader_stop = true;
  reader.join();
  progress_.set_phase(stop_ ? "stopped" : "done");

  // --- the report --------------------------------------------------------------------------
  Tally t = progress_.tally();
  result.tally = t;
  result.duration = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
  std::string r;
  r += fmt::format("Migration report (run {}{})\n", run_id, options_.dry_run ? ", DRY RUN: nothing written" : "");
  r += fmt::format("  source  {}\n  target  {}\n", source_name, target_name);
  r += format_tally(t, schema::quarantine_collection(options_.target_collection), result.duration, {});
  if (!fatal.empty()) r += "  FAILED: " + fatal + "\n";
  result.report = r;
  result.exit_code = report_exit_code(t, !fatal.empty());
  if (!fatal.empty()) {
    progress_.set_error(fatal);
    spdlog::error("{}", fatal);
  }
  return result;
}

}  // namespace fhirshift::migrate

#include "migrate/file_import.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_set>

#include "common/log.h"
#include "common/version.h"
#include "migrate/file_progress.h"
#include "migrate/file_source.h"
#include "migrate/import_writer.h"
#include "migrate/journal.h"
#include "migrate/report.h"
#include "migrate/retry.h"
#include "migrate/source_probe.h"
#include "mongo/collection.h"
#include "mongo/error.h"
#include "provision/provision.h"
#include "schema/entry.h"
#include "schema/layout.h"
#include "server/body.h"
#include "server/fhir.h"

namespace fhirshift::migrate {
namespace {

using Clock = std::chrono::system_clock;
using std::chrono::milliseconds;

// Not the engine's marker: a file import into a store that a migration also writes must not make
// that migration's journal look stale.
constexpr const char* kMarkerId = "fhirshift-file-import";
constexpr const char* kCheckpointKey = "fileCheckpoint";
constexpr const char* kPlanKey = "filePlan";
constexpr size_t kMaxReportedProblems = 20;

int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(Clock::now().time_since_epoch()).count();
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() < 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A resource's newest version: in the target, or assigned by this run.
struct Version {
  std::string v;
  int64_t lu_ms = 0;
  bool deleted = false;
  int64_t versions = 0;  // how many the resource has
};

// The version given to one file entry.
struct Assigned {
  std::string v;
  int64_t lu_ms = 0;
  schema::Change change = schema::Change::kCreated;
};

// A chunk's version assignments by entry ordinal, committed to the journal before the chunk is
// written. An ordinal of [from, upto) without an assignment was not written (unreadable, or kept
// by --update-existing-resources false).
// `replaced`: the target entries (hex `_id`s by resource key) that the chunk's versions make
// history, so that a replay flips the same ones whatever it finds current by then.
struct Plan {
  int64_t upto = 0;
  std::map<int64_t, Assigned> assigned;
  std::map<std::string, std::vector<std::string>> replaced;
  bool has_replaced = true;  // false: a plan of an older fhirshift, which did not record them

  std::string to_json() const {
    nlohmann::json versions = nlohmann::json::object();
    for (const auto& [n, a] : assigned)
      versions[std::to_string(n)] = {a.v, a.lu_ms, std::string(1, schema::change_code(a.change))};
    return nlohmann::json{{"upto", upto}, {"versions", versions}, {"replaced", replaced}}.dump();
  }
  static Plan from_json(const std::string& text) {
    nlohmann::json j = nlohmann::json::parse(text);
    Plan p;
    p.upto = j.at("upto").get<int64_t>();
    for (const auto& [n, a] : j.at("versions").items())
      p.assigned[std::stoll(n)] = {a.at(0).get<std::string>(), a.at(1).get<int64_t>(),
                                   a.at(2).get<std::string>() == "u" ? schema::Change::kUpdated
                                                                     : schema::Change::kCreated};
    p.has_replaced = j.contains("replaced");
    if (p.has_replaced) p.replaced = j.at("replaced").get<std::map<std::string, std::vector<std::string>>>();
    return p;
  }
};

// Where the run is: the file position after the last applied chunk, the next entry ordinal, and
// the file entries applied so far (for --limit).
struct Checkpoint {
  FilePosition position;
  int64_t next = 0;
  int64_t applied = 0;

  std::string to_json() const {
    return nlohmann::json{{"file", position.file}, {"entries", position.entries}, {"next", next}, {"applied", applied}}
        .dump();
  }
  static Checkpoint from_json(const std::string& text) {
    nlohmann::json j = nlohmann::json::parse(text);
    return {{j.at("file").get<std::string>(), j.at("entries").get<int64_t>()},
            j.at("next").get<int64_t>(),
            j.at("applied").get<int64_t>()};
  }
};

void note_problem(Tally& t, const std::string& message) {
  if (t.first_problems.size() < kMaxReportedProblems) t.first_problems.push_back(message);
}


}  // namespace

bson_oid_t import_entry_id(const bson_oid_t& run, uint32_t ordinal, uint16_t k) {
  uint8_t b[12];
  std::copy(run.bytes, run.bytes + 6, b);
  for (int i = 0; i < 4; ++i) b[6 + i] = static_cast<uint8_t>(ordinal >> (24 - 8 * i));
  b[10] = static_cast<uint8_t>(k >> 8);
  b[11] = static_cast<uint8_t>(k);
  bson_oid_t oid;
  bson_oid_init_from_data(&oid, b);
  return oid;
}

std::string next_version_id(const std::string& previous, int64_t versions) {
  if (all_digits(previous)) return std::to_string(std::stoll(previous) + 1);
  return std::to_string(versions + 1);
}

FileImport::FileImport(Options options, const std::atomic<bool>& stop)
    : options_(std::move(options)), stop_(stop) {
  throttle_.set_max_rate(options_.max_rate);
  throttle_.set_max_source_latency(options_.max_source_latency);
  progress_.attach(&throttle_);
}

RunResult FileImport::run() {
  const auto started = std::chrono::steady_clock::now();
  progress_.set_mode("Filesystem");

  const std::filesystem::path source_path = std::filesystem::absolute(*options_.source_path).lexically_normal();
  FileSource source(source_path);
  mongo::Uri target_uri = mongo::Uri::parse(options_.target_uri);
  target_uri.cap_server_selection_timeout(options_.retry_timeout);  // see retry_mongo
  mongo::ClientPool target_pool(target_uri, "fhirshift-migrate");
  mongo::Client target_client = target_pool.acquire();
  target_client.ping();  // fail fast, naming the host, before anything is written
  const std::string source_name = "files " + source_path.string();
  const std::string target_name = target_uri.redacted() + " " + options_.target_collection;
  spdlog::info("source: {} ({} file{}, {})", source_path.string(), source.files().size(),
               source.files().size() == 1 ? "" : "s", format_bytes(source.bytes_total()));
  spdlog::info("target: {}.{} on {} (current schema)", target_uri.database(), options_.target_collection,
               target_uri.hosts());

  std::string definitions = options_.search_parameters.empty()
                                ? index::Indexer::default_definitions_path().string()
                                : options_.search_parameters;
  std::shared_ptr<const index::Indexer> indexer = index::Indexer::load(definitions);

  if (options_.provision_target && !options_.dry_run) {
    provision::Options p;
    p.collection = options_.target_collection;
    mongo::Builder from;
    from.append("tool", std::string("fhirshift ") + kVersion).append("source", source_name);
    p.migrated_from = from.extract();
    provision::Report report = provision::provision(target_client, target_uri.database(), p);
    for (const auto& n : report.notices)
      spdlog::warn("provision: {}", n);  // e.g. how to shard on mongos
    for (const auto& a : report.actions) spdlog::info("provision: {}", a);
  }
  if (source.files().empty()) return nothing_to_import(source_path, started);
  mongo::Collection target = target_client.collection(target_uri.database(), options_.target_collection);
  mongo::Collection quarantine =
      target_client.collection(target_uri.database(), schema::quarantine_collection(options_.target_collection));

  // --- the journal: run id, checkpoint, the plan of a chunk in flight -------------------------
  mongo::Builder marker_filter;
  marker_filter.append("_id", kMarkerId);
  mongo::Bson marker_filter_doc = marker_filter.extract();
  std::optional<mongo::Bson> marker = options_.dry_run ? std::nullopt : target.find_one(marker_filter_doc.get());
  std::string marker_run = marker ? std::string(mongo::View(marker->get()).string("runId").value_or("")) : "";
  JournalDir journal_dir(options_.journal_dir, options_.dry_run);
  Journal journal(journal_dir.path());
  std::string run_id;
  Checkpoint checkpoint;
  std::optional<Plan> replay;
  bool new_run = false;
  if (auto state = journal.load()) {
    auto refuse = [&](const std::string& why) {
      throw JournalError("the recovery journal " + journal.path().string() + " " + why +
                         ". Fix: delete the journal directory " + journal_dir.path().string() +
                         " and start again (the files are then imported again, as new versions)");
    };
    if (state->source != source_name)
      refuse("belongs to a migration from " + state->source + ", not from " + source_name);
    if (state->target != target_name)
      refuse("belongs to a migration into " + state->target + ", not into " + target_name);
    if (marker_run != state->run_id)
      refuse("belongs to file import run " + state->run_id + ", but the target " +
             (marker ? "was last written by file import run " + marker_run
                     : "has no file import marker (was it dropped?)"));
    run_id = state->run_id;
    if (auto cp = journal.value(kCheckpointKey)) checkpoint = Checkpoint::from_json(*cp);
    if (auto plan = journal.value(kPlanKey); plan && !plan->empty()) replay = Plan::from_json(*plan);
    source.seek(checkpoint.position);
    spdlog::info("resuming file import run {} after {} entries ({} of {}){}", run_id,
                 with_commas(checkpoint.applied),
                 checkpoint.position.file.empty() ? "start" : std::to_string(checkpoint.position.entries),
                 checkpoint.position.file.empty() ? "the files" : checkpoint.position.file,
                 replay ? ", replaying the chunk that was in flight" : "");
  } else {
    new_run = true;
    bson_oid_t oid;
    bson_oid_init(&oid, nullptr);
    run_id = mongo::oid_to_string(oid);
    journal.begin({run_id, source_name, target_name, "", 0, false});
    spdlog::info("starting file import run {}", run_id);
  }
  const bson_oid_t run_oid = *mongo::oid_from_string(run_id);
  if (!options_.dry_run) {
    mongo::Builder m;
    m.append("_id", kMarkerId).append("runId", run_id).append("source", source_name);
    m.append_date("updatedAt", now_ms());
    mongo::Bson mdoc = m.extract();
    mongo::BulkWriter w = target.bulk(true);
    w.replace_one(marker_filter_doc.get(), mdoc.get(), true);
    w.execute();
  }

  ImportWriterConfig wc;
  wc.database = target_uri.database();
  wc.collection = options_.target_collection;
  wc.parallelism = options_.parallelism;
  wc.batch_size = options_.batch_size;
  wc.dry_run = options_.dry_run;
  ImportWriter writer(target_pool, wc, indexer);

  // Versions assigned by this run that the target does not show: within a chunk, and for the whole
  // run in a dry run (nothing is written). Otherwise the target, after each chunk, is the truth.
  std::map<std::string, Version> known;

  // A new run that finds the target without resources knows which resources can be in it: those
  // it wrote itself (remembered as a 64-bit hash of each key), and those another writer adds
  // meanwhile, whose version numbers the unique version index refuses to this run (a conflict).
  // So resources this run has not written yet need no lookup, and an export of distinct resources
  // is imported without any. A resumed run does not know what its crashed attempt wrote and looks
  // every chunk up.
  const bool empty_target = new_run && !retry_mongo("looking for resources in the target", target_uri, options_.retry_timeout,
                                                    stop_, [&] { return writer.holds_resources(); });
  if (empty_target)
    spdlog::info("the target holds no resources: only resources that appear again in the files are looked up");
  std::unordered_set<uint64_t> written_keys;
  std::hash<std::string> key_hash;

  // The target's newest versions of the chunk's resources: one query, none when there is nothing
  // to look up. The query's response time is a sample for --max-source-latency (a lookup that
  // asked nothing is none: into an empty target most chunks ask nothing).
  auto look_up = [&](const std::vector<std::pair<int64_t, FileEntry>>& chunk) {
    std::set<std::pair<std::string, std::string>> keys;
    for (const auto& [n, e] : chunk) {
      if (!e.ok()) continue;
      std::string key = import_resource_key(e.type, e.id);
      if (known.count(key) || (empty_target && !written_keys.count(key_hash(key)))) continue;
      keys.insert({e.type, e.id});
    }
    if (keys.empty()) return std::map<std::string, TargetVersion>{};
    auto t0 = std::chrono::steady_clock::now();
    auto found = retry_mongo("reading the target's current versions", target_uri,
                             options_.retry_timeout, stop_,
                             [&] { return writer.newest_versions(keys); });
    throttle_.record_latency(std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - t0));
    return found;
  };

  // A chunk is several rounds of insert batches, so that the lookup and the wait for the slowest
  // batch are paid once per rounds × --mongoBatch × --mongoPar entries; bounded in bytes too, so
  // memory stays flat whatever the size of the resources.
  constexpr int64_t kRoundsPerChunk = 4;
  constexpr size_t kChunkBytes = size_t{48} << 20;
  const int64_t chunk_size =
      static_cast<int64_t>(options_.batch_size) * std::max(1, options_.parallelism) * kRoundsPerChunk;
  int64_t budget = options_.limit > 0 ? std::max<int64_t>(0, options_.limit - checkpoint.applied) : -1;
  int64_t next_ordinal = checkpoint.next;
  int64_t entries_this_run = 0;
  std::string fatal;
  progress_.set_phase("copying");
  const bool terminal = stderr_is_terminal();
  auto last_progress_log = std::chrono::steady_clock::now();
  const auto reading_started = last_progress_log;
  FileProgress file_progress;
  file_progress.bytes_total = source.bytes_total();
  file_progress.bytes_at_start = source.bytes_read();

  // The only database of an import is its target: --max-source-latency watches it.
  SourceProbe probe(target_pool, target_uri.database(), options_.target_collection, throttle_);
  const std::function<bool()> stopping = [&] { return stop_.load(); };
  // How long the last chunk took to write after it was read: reading and writing take turns here
  // (unlike the engine's reader thread), so a rate limit lets the next chunk take the turns it
  // missed meanwhile, else each write would cost the rate its length.
  std::chrono::steady_clock::duration writing{};
  try {
    while (!stop_) {
      // A pause waits between chunks: the last one is written and its checkpoint saved.
      if (throttle_.paused()) {
        writing = {};
        progress_.set_phase("paused");
        spdlog::info(
            "paused: the chunk in flight is written and the journal saved at {}:{}; nothing is "
            "read until resumed (POST /resume or fhirshift ctl resume)",
            checkpoint.position.file, checkpoint.position.entries);
        while (throttle_.paused() && !stop_) std::this_thread::sleep_for(milliseconds(50));
        if (stop_) break;
        progress_.set_phase("copying");
        spdlog::info("resumed");
      }
      // 1. Read a chunk: the planned one when replaying, else up to chunk_size entries. Under a
      // limit each entry waits its turn, and a chunk is cut after a quarter of a second (a replay
      // reads its planned chunk whole: its versions are in the journal).
      int64_t want = replay ? replay->upto - next_ordinal : chunk_size;
      if (!replay && budget >= 0) want = std::min(want, budget);
      std::vector<std::pair<int64_t, FileEntry>> chunk;
      size_t chunk_bytes = 0;
      const auto chunk_started = std::chrono::steady_clock::now();
      while (static_cast<int64_t>(chunk.size()) < want && (replay || chunk_bytes < kChunkBytes)) {
        if (!replay && !chunk.empty() &&
            std::chrono::steady_clock::now() - chunk_started >= Throttle::kLimitedChunkAge &&
            throttle_.rate_limit() > 0)
          break;
        if (!replay && !throttle_.admit(stopping, writing)) break;
        std::optional<FileEntry> e = source.next();
        if (!e) break;
        if (next_ordinal > UINT32_MAX) throw FileSourceError("more than 2^32 entries in one run: split the import");
        chunk_bytes += e->json.size();
        chunk.emplace_back(next_ordinal++, std::move(*e));
      }
      if (chunk.empty()) {
        if (throttle_.paused() && !stop_) continue;  // paused before this chunk's first entry
        break;
      }
      auto t0 = std::chrono::steady_clock::now();  // the chunk is read

      // 2. Versions: replayed, or assigned after the target's current ones.
      Plan plan;
      std::chrono::steady_clock::duration lookup_time{};
      if (replay) {
        plan = std::move(*replay);
        replay.reset();
        if (!plan.has_replaced) {
          // A plan of an older fhirshift: what is current now, but for this chunk's own entries.
          std::set<std::string> own;
          for (const auto& [n, e] : chunk) own.insert(mongo::oid_to_string(import_entry_id(run_oid, static_cast<uint32_t>(n), 0)));
          for (const auto& [key, version] : look_up(chunk))
            for (const auto& id : version.current)
              if (!own.count(mongo::oid_to_string(id))) plan.replaced[key].push_back(mongo::oid_to_string(id));
        }
      } else {
        plan.upto = next_ordinal;
        if (!options_.dry_run) known.clear();
        auto l0 = std::chrono::steady_clock::now();
        std::map<std::string, TargetVersion> current = look_up(chunk);
        lookup_time = std::chrono::steady_clock::now() - l0;
        for (const auto& [key, version] : current)
          known[key] = {version.v, version.lu_ms, version.deleted, version.versions};
        for (const auto& [n, e] : chunk) {
          if (!e.ok()) continue;
          std::string key = import_resource_key(e.type, e.id);
          auto prev = known.find(key);
          bool exists = prev != known.end() && !prev->second.deleted;
          if (exists && options_.policy == ConflictPolicy::kKeep) continue;
          Assigned a;
          if (prev == known.end()) {
            a.v = "1";
          } else {
            a.v = next_version_id(prev->second.v, prev->second.versions);
          }
          // Never older than the version it replaces, even when the target's clock ran ahead.
          a.lu_ms = std::max(now_ms(), prev == known.end() ? int64_t{0} : prev->second.lu_ms + 1);
          a.change = exists ? schema::Change::kUpdated : schema::Change::kCreated;
          known[key] = {a.v, a.lu_ms, false, prev == known.end() ? 1 : prev->second.versions + 1};
          if (empty_target) written_keys.insert(key_hash(key));
          plan.assigned[n] = a;
          if (auto t = current.find(key); t != current.end() && !plan.replaced.count(key))
            for (const auto& id : t->second.current) plan.replaced[key].push_back(mongo::oid_to_string(id));
        }
      }
      if (!options_.dry_run) journal.put({{kPlanKey, plan.to_json()}});

      // 3. The versions: each resource with meta rewritten, then its contained resources; the
      // last version of a resource in the chunk is the current one.
      Tally tally;
      std::vector<ImportVersion> versions;
      std::map<std::string, size_t> newest;  // resource key -> index in versions
      std::vector<mongo::Bson> quarantined;
      for (const auto& [n, e] : chunk) {
        const uint32_t ordinal = static_cast<uint32_t>(n);
        if (!e.ok()) {
          tally.read++;
          tally.quarantined++;
          note_problem(tally, e.problem);
          spdlog::warn("quarantined ({}): {}", e.reason, e.problem);
          mongo::Builder q;
          q.append("_id", import_entry_id(run_oid, ordinal, 0)).append("reason", e.reason).append("message", e.problem);
          q.append_date("at", now_ms());
          q.append("file", e.file.string()).append("line", e.line).append("text", e.excerpt);
          quarantined.push_back(q.extract());
          continue;
        }
        auto a = plan.assigned.find(n);
        if (a == plan.assigned.end()) {
          tally.read++;
          tally.kept++;
          continue;
        }
        std::string lu = server::format_instant(a->second.lu_ms);
        server::PreparedBody body =
            server::prepare_body(e.json, server::BodyTarget{e.type, e.id, true, a->second.v, lu});
        ImportVersion version;
        schema::Entry& entry = version.entry;
        entry.id = import_entry_id(run_oid, ordinal, 0);
        entry.im = schema::kInfoModelR4;
        entry.type = e.type;
        entry.res_id = e.id;
        entry.v = a->second.v;
        entry.lu_ms = a->second.lu_ms;
        entry.change = a->second.change;
        entry.json = std::move(body.json);
        uint16_t k = 0;
        for (auto& c : body.contained) {
          schema::Entry ce = entry;
          ce.id = import_entry_id(run_oid, ordinal, ++k);
          ce.type = c.type;
          ce.res_id = c.id;
          ce.cnt = true;
          ce.container = entry.id;
          ce.json = std::move(c.json);
          version.contained.push_back(std::move(ce));
        }
        newest[import_resource_key(e.type, e.id)] = versions.size();
        versions.push_back(std::move(version));
      }
      for (const auto& [key, i] : newest) {
        versions[i].entry.cur = true;
        for (auto& c : versions[i].contained) c.cur = true;
      }
      std::map<std::string, std::vector<bson_oid_t>> replaced;
      for (const auto& [key, ids] : plan.replaced)
        for (const auto& hex : ids)
          if (auto id = mongo::oid_from_string(hex)) replaced[key].push_back(*id);

      // 4. Write, then move the checkpoint past the chunk.
      if (!quarantined.empty() && !options_.dry_run)
        retry_mongo("writing to the quarantine", target_uri, options_.retry_timeout, stop_, [&] {
          mongo::BulkWriter w = quarantine.bulk(false);
          for (const auto& q : quarantined) {
            mongo::Builder filter;
            filter.append("_id", *mongo::View(q.get()).oid("_id"));
            w.replace_one(filter.extract().get(), q.get(), true);
          }
          return w.execute();
        });
      auto w0 = std::chrono::steady_clock::now();
      if (!versions.empty())
        tally.add(retry_mongo("writing to the target", target_uri, options_.retry_timeout, stop_,
                              [&] { return writer.write(versions, replaced); }));
      auto ms = [](auto d) { return std::chrono::duration_cast<milliseconds>(d).count(); };
      spdlog::debug("chunk of {} file entries ({} versions, {} replaced): lookup {} ms, write {} ms", chunk.size(),
                    versions.size(), replaced.size(), ms(lookup_time), ms(std::chrono::steady_clock::now() - w0));
      checkpoint.position = source.position();
      checkpoint.next = next_ordinal;
      checkpoint.applied += static_cast<int64_t>(chunk.size());
      entries_this_run += static_cast<int64_t>(chunk.size());
      if (budget > 0) budget -= static_cast<int64_t>(chunk.size());
      if (!options_.dry_run) journal.put({{kCheckpointKey, checkpoint.to_json()}, {kPlanKey, ""}});
      progress_.add(tally, std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0));
      progress_.checkpoint(checkpoint.position.file + ":" + std::to_string(checkpoint.position.entries));
      if (options_.halt_on_error && (tally.errors || tally.conflicts || tally.quarantined)) {
        fatal = "--haltOnError: stopping at the first problem: " +
                (tally.first_problems.empty() ? std::string("see the log") : tally.first_problems.front());
        break;
      }
      auto now = std::chrono::steady_clock::now();
      file_progress.bytes_read = source.bytes_read();
      file_progress.entries = entries_this_run;
      file_progress.seconds = std::chrono::duration<double>(now - reading_started).count();
      file_progress.throttled = throttle_.state().reason;
      // For /progress: the entries the files hold, extrapolated from the bytes read so far.
      if (file_progress.bytes_read > file_progress.bytes_at_start)
        progress_.set_total_estimate(
            checkpoint.applied +
            static_cast<int64_t>(static_cast<double>(entries_this_run) *
                                 static_cast<double>(file_progress.bytes_total - file_progress.bytes_read) /
                                 static_cast<double>(file_progress.bytes_read - file_progress.bytes_at_start)));
      if (now - last_progress_log >= options_.progress_interval) {
        if (terminal) spdlog::info("progress: {}", file_progress.line());
        else spdlog::info("progress {}", file_progress.json(progress_.to_json()));
        last_progress_log = now;
      }
      writing = std::chrono::steady_clock::now() - t0;
    }
  } catch (const std::exception& e) {
    fatal = e.what();
  }
  progress_.set_phase(stop_ ? "stopped" : "done");

  // --- the report, in the engine's layout --------------------------------------------------------
  RunResult result;
  Tally t = progress_.tally();
  result.tally = t;
  result.duration = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
  std::string r;
  r += fmt::format("Import report (run {}{})\n", run_id, options_.dry_run ? ", DRY RUN: nothing written" : "");
  r += fmt::format("  source  {} ({} file{})\n  target  {}\n", source_name, source.files().size(),
                   source.files().size() == 1 ? "" : "s", target_name);
  r += fmt::format("  file entries  {:>12}  (resources and unreadable lines/entries, this run)\n",
                   with_commas(entries_this_run));
  r += format_tally(t, schema::quarantine_collection(options_.target_collection), result.duration,
                    {"target entries: each resource and each contained resource, plus the unreadable",
                     "already in the target: a replayed chunk",
                     "existing resource kept: --update-existing-resources false"});
  if (!fatal.empty()) r += "  FAILED: " + fatal + "\n";
  result.report = r;
  result.exit_code = report_exit_code(t, !fatal.empty());
  if (!fatal.empty()) {
    progress_.set_error(fatal);
    spdlog::error("{}", fatal);
  }
  return result;
}

RunResult FileImport::nothing_to_import(const std::filesystem::path& source_path,
                                        std::chrono::steady_clock::time_point started) {
  const bool provisioned = options_.provision_target && !options_.dry_run;
  const std::string what =
      fmt::format("{} holds no *.ndjson, *.ndjson.gz or *.json file: nothing to import{}",
                  source_path.string(), provisioned ? "; the target is provisioned" : "");
  spdlog::info("{}", what);
  progress_.set_phase("done");
  RunResult result;
  result.duration =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
  result.report = fmt::format("Import report{}\n  {}\n",
                              options_.dry_run ? " (DRY RUN: nothing written)" : "", what);
  result.exit_code = 0;
  return result;
}

}  // namespace fhirshift::migrate

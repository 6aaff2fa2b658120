// The measuring half of bench/import/run.sh (the script starts the servers and the importer).
//
//   import_bench export --dir DIR [--resources 50000] [--seed 1] [--gzip]
//     Writes a Synthea-shaped bulk export (corpus::write_bulk_export): one ndjson file per type.
//     Prints one JSON line: resources, bytes, and per type count and mean record size.
//
//   import_bench ceiling --source URI --target URI [--batch 1000] [--par P]
//     The target's ceiling for an import: reads every entry that an import wrote into --source
//     (the final documents, `idx` included) into memory, then times ONLY unordered insertMany
//     batches of them into the (empty, provisioned) --target, P batches in flight. One JSON line.
//
//   import_bench legacy --dir DIR --target URI
//     Writes the export's resources into a legacy store (version 1 of each, current, contained
//     resources as entries of their own), the source of the database-to-database benchmark
//     (bench/migrate/run.sh --shape synthea). Prints the number of entries written.

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "corpus/bulk_export.h"
#include "insert_ceiling.h"
#include "migrate/file_import.h"
#include "migrate/file_source.h"
#include "mongo/client.h"
#include "mongo/collection.h"
#include "schema/entry.h"
#include "seed/seed.h"
#include "server/body.h"
#include "server/fhir.h"

namespace {

using namespace fhirshift;
using Clock = bench::Clock;

using bench::insert_all;
using bench::peak_rss_mb;
using bench::seconds_since;

struct ExportArgs {
  std::string dir;
  corpus::ExportOptions options;
};

int run_export(const ExportArgs& a) {
  auto t0 = Clock::now();
  corpus::ExportReport r = corpus::write_bulk_export(a.dir, a.options);
  nlohmann::json types = nlohmann::json::object();
  for (const auto& [type, n] : r.resources_by_type)
    types[type] = {{"resources", n}, {"meanBytes", r.bytes_by_type[type] / std::max<int64_t>(1, n)}};
  int64_t on_disk = 0;
  for (const auto& f : r.files) on_disk += static_cast<int64_t>(std::filesystem::file_size(f));
  std::cout << nlohmann::json{{"resources", r.resources},
                              {"bytes", r.bytes},
                              {"bytesOnDisk", on_disk},
                              {"seconds", seconds_since(t0)},
                              {"types", types}}
                   .dump()
            << std::endl;
  return 0;
}

struct CeilingArgs {
  std::string source, target, collection = "vonkentries";
  int batch = 1000;
  int par = 0;
};

int run_ceiling(const CeilingArgs& a) {
  mongo::ensure_driver_initialized();
  mongo::ClientPool source_pool(mongo::Uri::parse(a.source), "import_bench");
  mongo::ClientPool target_pool(mongo::Uri::parse(a.target), "import_bench");
  std::vector<mongo::Bson> docs;
  uint64_t bytes = 0;
  {
    mongo::Client client = source_pool.acquire();
    mongo::Collection coll = client.collection(source_pool.database(), a.collection);
    mongo::Bson all;
    mongo::Cursor cursor = coll.find(all.get());
    while (const bson_t* doc = cursor.next()) {
      if (schema::is_system_document(doc)) continue;  // the system document and the import's marker
      docs.push_back(mongo::Bson::copy_of(doc));
      bytes += doc->len;
    }
  }
  if (docs.empty()) throw std::runtime_error("the source " + a.source + " holds no entries");
  double seconds = insert_all(target_pool, a.collection, docs, a.batch, a.par);
  std::cout << nlohmann::json{{"entries", docs.size()},
                              {"insertSeconds", seconds},
                              {"entriesPerSecond", static_cast<double>(docs.size()) / seconds},
                              {"batch", a.batch},
                              {"par", a.par},
                              {"bsonMB", static_cast<double>(bytes) / (1 << 20)},
                              {"peakRssMB", peak_rss_mb()}}
                   .dump()
            << std::endl;
  return 0;
}

struct LegacyArgs {
  std::string dir, target, collection = "vonkentries";
  int batch = 1000;
};

int run_legacy(const LegacyArgs& a) {
  mongo::ensure_driver_initialized();
  mongo::ClientPool pool(mongo::Uri::parse(a.target), "import_bench");
  mongo::Client client = pool.acquire();
  mongo::Collection coll = client.collection(pool.database(), a.collection);
  seed::prepare_legacy_store(coll);  // system document and index, as `fhirshift seed` writes them
  migrate::FileSource source(a.dir);
  int64_t lu = 1700000000000, n = 0;
  std::vector<mongo::Bson> docs;
  auto flush = [&] {
    if (docs.empty()) return;
    mongo::BulkWriter bulk = coll.bulk(false);
    for (const auto& d : docs) bulk.insert(d.get());
    mongo::BulkResult r = bulk.execute();
    if (!r.ok()) throw std::runtime_error("writing the legacy store: " + r.write_errors.front().message);
    docs.clear();
  };
  while (auto e = source.next()) {
    if (!e->ok()) throw std::runtime_error(e->problem);
    // As the old server stored it: meta set, each contained resource an entry of its own.
    schema::Entry entry;
    bson_oid_init(&entry.id, nullptr);
    entry.im = schema::kInfoModelR4;
    entry.type = e->type;
    entry.res_id = e->id;
    entry.v = "1";
    entry.lu_ms = lu++;
    entry.cur = true;
    server::PreparedBody body =
        server::prepare_body(e->json, server::BodyTarget{e->type, e->id, true, "1", server::format_instant(entry.lu_ms)});
    entry.json = std::move(body.json);
    docs.push_back(schema::encode_legacy(entry));
    ++n;
    for (auto& c : body.contained) {
      schema::Entry ce = entry;
      bson_oid_init(&ce.id, nullptr);
      ce.type = c.type;
      ce.res_id = c.id;
      ce.cnt = true;
      ce.container = entry.id;
      ce.json = std::move(c.json);
      docs.push_back(schema::encode_legacy(ce));
      ++n;
    }
    if (docs.size() >= static_cast<size_t>(a.batch)) flush();
  }
  flush();
  std::cout << nlohmann::json{{"entries", n}}.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Import benchmark helper: generated export, insertMany ceiling, legacy store from an export"};
  app.require_subcommand(1);
  ExportArgs ea;
  auto* exp = app.add_subcommand("export", "Write a Synthea-shaped bulk export (one ndjson file per type)");
  exp->add_option("--dir", ea.dir, "Directory to write")->required();
  exp->add_option("--resources", ea.options.resources, "Resources to write")->capture_default_str();
  exp->add_option("--seed", ea.options.seed)->capture_default_str();
  exp->add_flag("--gzip", ea.options.gzip, "Write .ndjson.gz files");
  CeilingArgs ca;
  ca.par = static_cast<int>(std::min(8u, std::max(1u, std::thread::hardware_concurrency()) * 2));
  auto* ceiling = app.add_subcommand("ceiling", "Time unordered insertMany of what an import wrote");
  ceiling->add_option("--source", ca.source, "URI of the imported store (database in the path)")->required();
  ceiling->add_option("--target", ca.target, "Empty, provisioned target URI")->required();
  ceiling->add_option("--collection", ca.collection);
  ceiling->add_option("--batch", ca.batch, "Documents per insertMany (the importer's --mongoBatch default)");
  ceiling->add_option("--par", ca.par, "insertMany batches in flight (the importer's --mongoPar default)");
  LegacyArgs la;
  auto* legacy = app.add_subcommand("legacy", "Write an export's resources into a legacy store");
  legacy->add_option("--dir", la.dir, "The export")->required();
  legacy->add_option("--target", la.target, "Empty legacy store URI")->required();
  legacy->add_option("--collection", la.collection);
  CLI11_PARSE(app, argc, argv);
  try {
    if (*exp) return run_export(ea);
    if (*ceiling) return run_ceiling(ca);
    return run_legacy(la);
  } catch (const std::exception& e) {
    std::cerr << "import_bench: " << e.what() << "\n";
    return 2;
  }
}

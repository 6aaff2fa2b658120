// `fhirshift migrate --sourceType Filesystem` on a live FerretDB: ndjson files and a transaction
// Bundle become versions of their resources (history without idx, meta rewritten as a server
// does), bad entries are quarantined with file and line, a rerun with the same journal changes
// nothing, kill -9 and resume writes every version once, and `fhirshift serve` reads the result.
#include <gtest/gtest.h>
#include <httplib.h>
#include <zlib.h>

#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "ferretdb_server.h"
#include "migrate_fixture.h"
#include "mongo/client.h"
#include "mongo/collection.h"
#include "ports.h"
#include "schema/entry.h"
#include "schema/layout.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift {
namespace {

using testing::RunResult;
using testing::run_command;
using namespace std::chrono_literals;


// The FHIR instant of `ms`, written independently of the server's formatter.
std::string instant(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

void write_gzip(const std::filesystem::path& p, const std::string& text) {
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

struct Stored {
  schema::Entry e;
  bool has_idx = false;
};

class FileImportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { target_ = new testing::FerretDbServer(); }
  static void TearDownTestSuite() { delete target_; }
  void SetUp() override { db_ = ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

  std::vector<std::string> import_args(const std::string& db, const std::filesystem::path& source,
                                       const std::filesystem::path& journal,
                                       const std::vector<std::string>& extra = {}) {
    std::vector<std::string> a = {testing::cli_path(), "migrate", "--fhir-version", "R4",
                                  "--provisionTargetDatabase", "true", "--useRecoveryJournal", journal.string(),
                                  "--sourceType", "Filesystem", "-s", source.string(), "--dbType", "MongoDb",
                                  "--mongoConnectionstring", target_->uri(db), "--mongoCollection", "vonkentries"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  // Every entry of the target, by resource ("Patient/p1") in version order (by v as a number).
  static std::map<std::string, std::vector<Stored>> stored(const std::string& uri, const std::string& collection,
                                                           std::vector<Stored>* contained = nullptr) {
    mongo::ClientPool pool(mongo::Uri::parse(uri));
    mongo::Client c = pool.acquire();
    mongo::Collection coll = c.collection(pool.database(), collection);
    mongo::Builder f;
    f.document("_id", [](mongo::Builder& d) { d.append("$type", "objectId"); });
    mongo::Bson fd = f.extract();
    mongo::Cursor cur = coll.find(fd.get());
    std::map<std::string, std::vector<Stored>> out;
    while (const bson_t* d = cur.next()) {
      Stored s{schema::decode_entry(d), mongo::View(d).has("idx")};
      if (s.e.cnt) {
        if (contained) contained->push_back(s);
        continue;
      }
      out[s.e.type + "/" + s.e.res_id].push_back(s);
    }
    for (auto& [key, versions] : out)
      std::sort(versions.begin(), versions.end(),
                [](const Stored& a, const Stored& b) { return std::stoll(a.e.v) < std::stoll(b.e.v); });
    return out;
  }

  static std::vector<nlohmann::json> quarantined(const std::string& uri) {
    mongo::ClientPool pool(mongo::Uri::parse(uri));
    mongo::Client c = pool.acquire();
    mongo::Collection coll = c.collection(pool.database(), schema::quarantine_collection("vonkentries"));
    mongo::Bson all;
    mongo::Cursor cur = coll.find(all.get());
    std::vector<nlohmann::json> out;
    while (const bson_t* d = cur.next()) out.push_back(nlohmann::json::parse(mongo::to_json(d)));
    return out;
  }

  // The versions of one resource are 1..n in (lu, _id) order, changes c then u, only the last
  // current and indexed, each body's meta matching its entry.
  static void expect_versions(const std::vector<Stored>& versions, size_t n) {
    ASSERT_EQ(versions.size(), n);
    for (size_t i = 0; i < n; ++i) {
      const schema::Entry& e = versions[i].e;
      SCOPED_TRACE(e.type + "/" + e.res_id + " v" + e.v);
      EXPECT_EQ(e.v, std::to_string(i + 1));
      EXPECT_EQ(e.im, "Fhir4.0");
      EXPECT_EQ(e.change, i == 0 ? schema::Change::kCreated : schema::Change::kUpdated);
      EXPECT_EQ(e.cur, i + 1 == n);
      EXPECT_EQ(versions[i].has_idx, i + 1 == n);
      if (i > 0) {
        EXPECT_GT(e.lu_ms, versions[i - 1].e.lu_ms);
      }
      ASSERT_TRUE(e.json);
      nlohmann::json body = nlohmann::json::parse(*e.json);
      EXPECT_EQ(body["meta"]["versionId"], e.v);
      EXPECT_EQ(body["meta"]["lastUpdated"], instant(e.lu_ms));
    }
  }

  static testing::FerretDbServer* target_;
  std::string db_;
  testing::TempDir files_;
  testing::TempDir logs_;
};
testing::FerretDbServer* FileImportTest::target_ = nullptr;

const char* kNdjson =
    R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"77","lastUpdated":"2001-01-01T00:00:00Z","tag":[{"code":"imported"}]},"name":[{"family":"Alpha"}]})"
    "\n"
    R"({"resourceType":"Observation","id":"o1","status":"final","code":{"text":"weight"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1.50,"unit":"kg"}})"
    "\n\n"
    R"({"resourceType":"Patient","id":"p1","name":[)"
    "\n"
    R"({"resourceType":"Patient","id":"p1","name":[{"family":"Beta"}]})"
    "\n";

const char* kBundle = R"({
  "resourceType": "Bundle",
  "type": "transaction",
  "entry": [
    {"resource": {"resourceType":"Patient","id":"p1","name":[{"family":"Gamma"}]},
     "request": {"method": "PUT", "url": "Patient/p1"}},
    {"resource": {"resourceType":"Patient","id":"p2","contained":[{"resourceType":"Organization","id":"org","name":"First"}],"managingOrganization":{"reference":"#org"}},
     "request": {"method": "PUT", "url": "Patient/p2"}},
    {"resource": {"resourceType":"Patient","id":"p2","contained":[{"resourceType":"Organization","id":"org","name":"Second"}],"managingOrganization":{"reference":"#org"}},
     "request": {"method": "PUT", "url": "Patient/p2"}},
    {"request": {"method": "DELETE", "url": "Patient/p9"}}
  ]
}
)";

TEST_F(FileImportTest, NdjsonAndTransactionBundleBecomeVersionsAndARerunChangesNothing) {
  write(files_.path() / "a.ndjson", kNdjson);
  write(files_.path() / "b.json", kBundle);
  // Chunks of 4 entries (4 rounds of one batch of 1) put the versions of Patient/p1 in different
  // chunks; chunks of 4,000 put them all in one.
  for (const char* batch : {"1", "1000"}) {
    SCOPED_TRACE(std::string("--mongoBatch ") + batch);
    const std::string db = std::string("versions_") + batch;  // database names are short
    testing::TempDir journal;
    RunResult r = run_command(import_args(db, files_.path(), journal.path(), {"--mongoBatch", batch, "--mongoPar", "1"}));
    EXPECT_EQ(r.exit_code, 1) << "quarantined entries make the run fail\n" << r.out << r.err;
    EXPECT_EQ(report_figure(r.out, "file entries"), 8) << r.out;
    EXPECT_EQ(report_figure(r.out, "read"), 10) << r.out;  // 8 file entries, 2 contained resources
    EXPECT_EQ(report_figure(r.out, "written"), 8) << r.out;
    EXPECT_EQ(report_figure(r.out, "quarantined"), 2) << r.out;
    EXPECT_NE(r.out.find("check: read = written + unchanged + kept + skipped + quarantined + conflicts + errors: OK"),
              std::string::npos)
        << r.out;

    std::vector<Stored> contained;
    auto resources = stored(target_->uri(db), "vonkentries", &contained);
    ASSERT_EQ(resources.size(), 3u);
    expect_versions(resources["Patient/p1"], 3);
    expect_versions(resources["Observation/o1"], 1);
    expect_versions(resources["Patient/p2"], 2);
    // The meta of the file is rewritten as a server does: its tag kept, versionId/lastUpdated set.
    const std::string& p1v1 = *resources["Patient/p1"][0].e.json;
    EXPECT_NE(p1v1.find(R"("meta":{"tag":[{"code":"imported"}],"versionId":"1","lastUpdated":")"), std::string::npos)
        << p1v1;
    EXPECT_NE(p1v1.find("Alpha"), std::string::npos);
    EXPECT_NE(resources["Patient/p1"][2].e.json->find("Gamma"), std::string::npos);
    EXPECT_NE(resources["Observation/o1"][0].e.json->find(R"("value":1.50)"), std::string::npos);
    // Contained resources follow their container: one entry per version, current (and indexed
    // with their own type's parameters) with it.
    ASSERT_EQ(contained.size(), 2u);
    for (const auto& c : contained) {
      ASSERT_TRUE(c.e.container);
      bool of_current = bson_oid_equal(&*c.e.container, &resources["Patient/p2"][1].e.id);
      EXPECT_EQ(c.e.type, "Organization");
      EXPECT_EQ(c.e.cur, of_current);
      EXPECT_EQ(c.has_idx, of_current);
      EXPECT_NE(c.e.json->find(of_current ? "Second" : "First"), std::string::npos);
    }

    std::vector<nlohmann::json> q = quarantined(target_->uri(db));
    ASSERT_EQ(q.size(), 2u);
    std::map<std::string, nlohmann::json> by_reason;
    for (auto& d : q) by_reason[d["reason"]] = d;
    EXPECT_EQ(by_reason["invalid-json"]["file"], (files_.path() / "a.ndjson").string());
    EXPECT_NE(by_reason["invalid-json"]["message"].get<std::string>().find("a.ndjson line 4: not valid JSON"),
              std::string::npos)
        << by_reason["invalid-json"];
    EXPECT_NE(by_reason["no-resource"]["message"].get<std::string>().find(
                  "b.json entry 4 (line 11): the entry has no resource (request DELETE Patient/p9)"),
              std::string::npos)
        << by_reason["no-resource"];

    // The same journal: the files are done, nothing is read or written again.
    RunResult again = run_command(import_args(db, files_.path(), journal.path()));
    EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
    EXPECT_EQ(report_figure(again.out, "file entries"), 0) << again.out;
    EXPECT_EQ(report_figure(again.out, "written"), 0) << again.out;
    auto after = stored(target_->uri(db), "vonkentries");
    ASSERT_EQ(after.size(), resources.size());
    for (const auto& [key, versions] : resources) {
      ASSERT_EQ(after[key].size(), versions.size()) << key;
      for (size_t i = 0; i < versions.size(); ++i) {
        EXPECT_TRUE(bson_oid_equal(&after[key][i].e.id, &versions[i].e.id)) << key;
        EXPECT_EQ(after[key][i].e.cur, versions[i].e.cur) << key;
      }
    }
    EXPECT_EQ(quarantined(target_->uri(db)).size(), 2u);

    // A new run with --update-existing-resources false keeps every resource the target has.
    testing::TempDir fresh;
    RunResult keep = run_command(import_args(db, files_.path(), fresh.path(), {"--update-existing-resources", "false"}));
    EXPECT_EQ(keep.exit_code, 1) << keep.out << keep.err;
    EXPECT_EQ(report_figure(keep.out, "kept"), 6) << keep.out;
    EXPECT_EQ(report_figure(keep.out, "written"), 0) << keep.out;
    EXPECT_EQ(stored(target_->uri(db), "vonkentries")["Patient/p1"].size(), 3u);
  }

  // The current-schema server reads what was imported: the newest version, and the history.
  int port = testing::free_port();
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  testing::Subprocess serve({testing::cli_path(), "serve", "--schema", "current", "--mongoConnectionstring",
                             target_->uri("versions_1"), "--mongoCollection", "vonkentries", "--port",
                             std::to_string(port)},
                            logs_.path(), "serve");
  httplib::Client c(url);
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline && !c.Get("/healthz")) std::this_thread::sleep_for(100ms);
  auto read = c.Get("/Patient/p1");
  ASSERT_TRUE(read) << serve.stderr_text();
  ASSERT_EQ(read->status, 200) << read->body;
  nlohmann::json p1 = nlohmann::json::parse(read->body);
  EXPECT_EQ(p1["meta"]["versionId"], "3");
  EXPECT_EQ(p1["name"][0]["family"], "Gamma");
  auto v1 = c.Get("/Patient/p1/_history/1");
  ASSERT_TRUE(v1);
  ASSERT_EQ(v1->status, 200) << v1->body;
  EXPECT_EQ(nlohmann::json::parse(v1->body)["name"][0]["family"], "Alpha");
  auto search = c.Get("/Patient?family=gamma");
  ASSERT_TRUE(search);
  ASSERT_EQ(search->status, 200) << search->body;
  EXPECT_EQ(nlohmann::json::parse(search->body)["entry"].size(), 1u) << search->body;
}

TEST_F(FileImportTest, KillNineThenResumeWritesEveryVersionOnce) {
  // 600 patients, each twice: the second pass makes version 2 of every one.
  constexpr int kPatients = 600;
  std::string text;
  for (int pass = 1; pass <= 2; ++pass)
    for (int i = 0; i < kPatients; ++i)
      text += R"({"resourceType":"Patient","id":"k)" + std::to_string(i) + R"(","name":[{"family":"Pass)" +
              std::to_string(pass) + R"("}]})" + "\n";
  write(files_.path() / "k.ndjson", text);
  testing::TempDir journal;
  for (int64_t read_at_least : {150, 700}) {
    int port = testing::free_port();
    testing::Subprocess p(import_args(db_, files_.path() / "k.ndjson", journal.path(),
                                      {"--mongoBatch", "25", "--mongoPar", "1", "--metrics-port", std::to_string(port)}),
                          logs_.path(), "killed");
    ASSERT_TRUE(kill9_after_reading(p, port, read_at_least))
        << "the import ended before it could be killed after " << read_at_least << " entries\n"
        << p.stderr_text();
  }
  RunResult r = run_command(import_args(db_, files_.path() / "k.ndjson", journal.path(), {"--mongoBatch", "25", "--mongoPar", "1"}));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("resuming file import run"), std::string::npos) << r.err;
  EXPECT_GT(report_figure(r.out, "file entries"), 0) << r.out;
  EXPECT_LT(report_figure(r.out, "file entries"), 2 * kPatients) << "the killed runs imported nothing durably\n" << r.out;
  auto resources = stored(target_->uri(db_), "vonkentries");
  ASSERT_EQ(resources.size(), static_cast<size_t>(kPatients));
  for (const auto& [key, versions] : resources) {
    SCOPED_TRACE(key);
    expect_versions(versions, 2);
    if (versions.size() == 2) {
      EXPECT_NE(versions[1].e.json->find("Pass2"), std::string::npos);
    }
  }
}

TEST_F(FileImportTest, ATargetHoldingTheResourcesGetsNewVersionsFromAGzipFile) {
  // First the Bundle: Patient/p1 version 1, Patient/p2 versions 1 and 2 with a contained Organization each.
  write(files_.path() / "b.json", kBundle);
  testing::TempDir first;
  RunResult r1 = run_command(import_args(db_, files_.path() / "b.json", first.path()));
  ASSERT_EQ(r1.exit_code, 1) << "the Bundle's DELETE entry is quarantined\n" << r1.out << r1.err;
  // Then a compressed export, in chunks of 4 entries (--mongoBatch 1, --mongoPar 1): the first
  // chunk replaces the target's current p2 and p1, the second the p2 of the first chunk.
  testing::TempDir more_dir;
  std::string more =
      R"({"resourceType":"Patient","id":"p2","contained":[{"resourceType":"Organization","id":"org","name":"Third"}],"managingOrganization":{"reference":"#org"}})"
      "\n"
      R"({"resourceType":"Patient","id":"p1","name":[{"family":"Delta"}]})"
      "\n"
      R"({"resourceType":"Observation","id":"o9","status":"final","code":{"text":"x"}})"
      "\n"
      R"({"resourceType":"Patient","id":"p5","name":[{"family":"Five"}]})"
      "\n"
      R"({"resourceType":"Patient","id":"p2","contained":[{"resourceType":"Organization","id":"org","name":"Fourth"}],"managingOrganization":{"reference":"#org"}})"
      "\n";
  write_gzip(more_dir.path() / "more.ndjson.gz", more);
  testing::TempDir second;
  RunResult r2 = run_command(
      import_args(db_, more_dir.path(), second.path(), {"--mongoBatch", "1", "--mongoPar", "1", "-v"}));
  ASSERT_EQ(r2.exit_code, 0) << r2.out << r2.err;
  EXPECT_EQ(report_figure(r2.out, "file entries"), 5) << r2.out;
  EXPECT_EQ(report_figure(r2.out, "written"), 7) << r2.out;  // 5 resources, 2 contained
  EXPECT_EQ(report_figure(r2.out, "conflicts"), 0) << r2.out;
  EXPECT_NE(r2.err.find("(1 file, "), std::string::npos) << "the .ndjson.gz file is listed\n" << r2.err;
  // Per chunk one lookup of the target (-v): two chunks.
  std::regex chunk_line(R"(chunk of (\d+) file entries \(\d+ versions, (\d+) replaced\): lookup \d+ ms)");
  std::vector<std::pair<int, int>> chunks;
  for (std::sregex_iterator it(r2.err.begin(), r2.err.end(), chunk_line), end; it != end; ++it)
    chunks.emplace_back(std::stoi((*it)[1]), std::stoi((*it)[2]));
  EXPECT_EQ(chunks, (std::vector<std::pair<int, int>>{{4, 2}, {1, 1}})) << r2.err;

  std::vector<Stored> contained;
  auto resources = stored(target_->uri(db_), "vonkentries", &contained);
  expect_versions(resources["Patient/p1"], 2);
  expect_versions(resources["Patient/p2"], 4);
  expect_versions(resources["Patient/p5"], 1);
  expect_versions(resources["Observation/o9"], 1);
  EXPECT_NE(resources["Patient/p1"][1].e.json->find("Delta"), std::string::npos);
  // One contained Organization per version of p2; only the newest version's is current.
  ASSERT_EQ(contained.size(), 4u);
  for (const auto& c : contained) {
    ASSERT_TRUE(c.e.container);
    bool of_current = bson_oid_equal(&*c.e.container, &resources["Patient/p2"][3].e.id);
    EXPECT_EQ(c.e.cur, of_current) << *c.e.json;
    EXPECT_EQ(c.e.json->find("Fourth") != std::string::npos, of_current) << *c.e.json;
  }
}

TEST_F(FileImportTest, AVersionNumberTakenByAnotherWriterIsAConflictNotAnOverwrite) {
  write(files_.path() / "a.ndjson",
        R"({"resourceType":"Patient","id":"p1","name":[{"family":"Alpha"}]})"
        "\n"
        R"({"resourceType":"Patient","id":"p3","name":[{"family":"Three"}]})"
        "\n");
  testing::TempDir first;
  RunResult r1 = run_command(import_args(db_, files_.path() / "a.ndjson", first.path()));
  ASSERT_EQ(r1.exit_code, 0) << r1.out << r1.err;
  auto before = stored(target_->uri(db_), "vonkentries");
  ASSERT_EQ(before["Patient/p1"].size(), 1u);
  const schema::Entry p1v1 = before["Patient/p1"][0].e;

  // Another writer takes version 2 of p1 between the import's lookup and its insert. Its entry is
  // placed as the lookup cannot have seen it (older lu than version 1); MongoDB's unique version
  // index refuses the import's copy of version 2, which FerretDB enforces only on a key whose
  // fields are all present, so the test adds such an index for resources without contained ones.
  mongo::ClientPool pool(mongo::Uri::parse(target_->uri(db_)));
  mongo::Client client = pool.acquire();
  mongo::Collection coll = client.collection(pool.database(), "vonkentries");
  mongo::Builder idx;
  idx.array("indexes", [](mongo::ArrayBuilder& a) {
    a.document([](mongo::Builder& i) {
      i.document("key", [](mongo::Builder& k) {
        k.append("type", int32_t{1}).append("res_id", int32_t{1}).append("v", int32_t{1});
      });
      i.append("name", "test_version_unique").append("unique", true);
    });
  });
  mongo::Bson idx_doc = idx.extract();
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init_find(&it, idx_doc.get(), "indexes"));
  uint32_t len;
  const uint8_t* data;
  bson_iter_array(&it, &len, &data);
  bson_t arr;
  bson_init_static(&arr, data, len);
  coll.create_indexes(&arr);
  schema::CurrentEntry other;
  bson_oid_init(&other.id, nullptr);
  other.im = "Fhir4.0";
  other.type = "Patient";
  other.res_id = "p1";
  other.v = "2";
  other.lu_ms = p1v1.lu_ms - 1;
  other.cur = false;
  other.change = schema::Change::kUpdated;
  other.json = R"({"resourceType":"Patient","id":"p1","name":[{"family":"OtherWriter"}]})";
  coll.insert_one(schema::encode_current(other).get());

  write(files_.path() / "b.ndjson",
        R"({"resourceType":"Patient","id":"p1","name":[{"family":"Beta"}]})"
        "\n"
        R"({"resourceType":"Patient","id":"p1","name":[{"family":"Gamma"}]})"
        "\n"
        R"({"resourceType":"Patient","id":"p3","name":[{"family":"Three again"}]})"
        "\n");
  testing::TempDir second;
  RunResult r2 = run_command(import_args(db_, files_.path() / "b.ndjson", second.path()));
  EXPECT_EQ(r2.exit_code, 1) << "conflicts make the run fail\n" << r2.out << r2.err;
  EXPECT_EQ(report_figure(r2.out, "conflicts"), 2) << r2.out;
  EXPECT_EQ(report_figure(r2.out, "written"), 1) << r2.out;

  auto after = stored(target_->uri(db_), "vonkentries");
  // p1: version 1 still current and indexed, the other writer's version 2 untouched, neither Beta
  // nor Gamma written (Gamma, version 3, would be current out of order around version 2).
  ASSERT_EQ(after["Patient/p1"].size(), 2u);
  EXPECT_TRUE(bson_oid_equal(&after["Patient/p1"][0].e.id, &p1v1.id));
  EXPECT_TRUE(after["Patient/p1"][0].e.cur);
  EXPECT_TRUE(after["Patient/p1"][0].has_idx);
  EXPECT_TRUE(bson_oid_equal(&after["Patient/p1"][1].e.id, &other.id));
  EXPECT_NE(after["Patient/p1"][1].e.json->find("OtherWriter"), std::string::npos);
  EXPECT_FALSE(after["Patient/p1"][1].e.cur);
  expect_versions(after["Patient/p3"], 2);

  std::vector<nlohmann::json> q = quarantined(target_->uri(db_));
  ASSERT_EQ(q.size(), 2u);
  std::string messages;
  for (const auto& d : q) {
    EXPECT_EQ(d["reason"], "conflict") << d;
    messages += d["message"].get<std::string>() + "\n";
  }
  EXPECT_NE(messages.find("Patient/p1 version 2 (entry "), std::string::npos) << messages;
  EXPECT_NE(messages.find("another writer took this version number meanwhile"), std::string::npos) << messages;
  EXPECT_NE(messages.find("Patient/p1 version 3"), std::string::npos) << messages;
}

TEST_F(FileImportTest, OptionsThatMakeNoSenseForFilesAreRefused) {
  write(files_.path() / "a.ndjson", kNdjson);
  testing::TempDir journal;
  auto refused = [&](const std::vector<std::string>& extra, const std::string& message) {
    RunResult r = run_command(import_args(db_, files_.path(), journal.path(), extra));
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  };
  refused({"--srcMongoRunningMode", "Continuous"}, "--srcMongoRunningMode Continuous makes no sense for files");
  refused({"--update-existing-resources", "OnlyIfNewer"}, "OnlyIfNewer is not supported for files");
  RunResult missing = run_command(import_args(db_, files_.path() / "nothing.ndjson", journal.path()));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("no such file or directory"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace fhirshift

// The fixture of the `fhirshift migrate` integration tests: a live FerretDB source and target shared
// by a suite (one database per test), the operator's command lines for `migrate`, `seed` and
// `verify`, and the entry-by-entry check that the target is a faithful copy of the source.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ferretdb_server.h"
#include "mongo/client.h"
#include "mongo/collection.h"
#include "schema/entry.h"
#include "schema/layout.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift {

// The report line "  <name>   <n>" as a number, or -1.
inline int64_t report_figure(const std::string& out, const std::string& name) {
  std::smatch m;
  std::regex re("\\n  " + name + " +([0-9,]+)");
  if (!std::regex_search(out, m, re)) return -1;
  std::string digits;
  for (char c : m[1].str())
    if (c != ',') digits += c;
  return std::stoll(digits);
}

// Kills `run` with SIGKILL once its /progress on `metrics_port` reports at least `read_at_least`
// entries read: mid-run, at whatever point of the next chunk (write, journal commit) the 5 ms poll
// lands. False when the run ended (or two minutes passed) before that.
inline bool kill9_after_reading(testing::Subprocess& run, int metrics_port, int64_t read_at_least) {
  using namespace std::chrono_literals;
  httplib::Client metrics("127.0.0.1", metrics_port);
  int64_t read = 0;
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (run.running() && read < read_at_least && std::chrono::steady_clock::now() < deadline) {
    if (auto r = metrics.Get("/progress"); r && r->status == 200)
      read = nlohmann::json::parse(r->body).value("entriesRead", int64_t{0});
    std::this_thread::sleep_for(5ms);
  }
  if (!run.running() || read < read_at_least) return false;
  run.kill9();
  return true;
}

// The operator's runbook line for `fhirshift migrate`, with the parts a test varies.
inline std::vector<std::string> migrate_command(const std::string& source_uri, const std::string& target_uri,
                                                const std::filesystem::path& journal,
                                                const std::string& mode = "AdHoc",
                                                const std::string& policy = "ErrorOnConflict",
                                                const std::vector<std::string>& extra = {}) {
  std::vector<std::string> a = {testing::cli_path(), "migrate", "--fhir-version", "R4",
                                "--provisionTargetDatabase", "true", "--useRecoveryJournal",
                                journal.string(), "--sourceType", "MongoDb",
                                "--srcMongoCollection", "vonkentries", "--srcMongoConnectionString",
                                source_uri, "--srcMongoRunningMode", mode, "--update-existing-resources",
                                policy, "--dbType", "MongoDb", "--mongoConnectionstring",
                                target_uri, "--mongoCollection", "vonkentries"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

inline testing::RunResult verify_full(const std::string& source_uri, const std::string& target_uri) {
  return testing::run_command({testing::cli_path(), "verify", "--srcMongoConnectionString", source_uri,
                               "--srcMongoCollection", "vonkentries", "--mongoConnectionstring", target_uri,
                               "--mongoCollection", "vonkentries", "--mode", "full"});
}

class MigrateFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    source_ = new testing::FerretDbServer();
    target_ = new testing::FerretDbServer();
  }
  static void TearDownTestSuite() {
    delete source_;
    delete target_;
  }
  void SetUp() override { db_ = ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

  std::string src_uri() const { return source_->uri(db_); }
  std::string dst_uri() const { return target_->uri(db_); }

  void seed(int entries) {
    testing::RunResult r =
        testing::run_command({testing::cli_path(), "seed", "--mongoConnectionstring", src_uri(), "--mongoCollection",
                              "vonkentries", "--entries", std::to_string(entries), "--seed", "5"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  std::vector<std::string> migrate_args(const std::string& mode, const std::vector<std::string>& extra = {}) {
    return migrate_command(src_uri(), dst_uri(), journal_.path(), mode, "ErrorOnConflict", extra);
  }
  testing::RunResult verify() { return verify_full(src_uri(), dst_uri()); }

  static std::vector<schema::Entry> entries(const std::string& uri, const std::string& collection) {
    mongo::ClientPool pool(mongo::Uri::parse(uri));
    mongo::Client c = pool.acquire();
    mongo::Collection coll = c.collection(pool.database(), collection);
    mongo::Builder f;
    f.document("_id", [](mongo::Builder& d) { d.append("$type", "objectId"); });
    mongo::Bson fd = f.extract();
    mongo::Cursor cur = coll.find(fd.get());
    std::vector<schema::Entry> out;
    while (const bson_t* d = cur.next()) out.push_back(schema::decode_entry(d));
    return out;
  }

  // Every source entry is in the target with the same `_id`, key and body; each resource has
  // exactly one current entry, its newest by (lu, _id); `idx` only on current, non-deleted
  // entries, contained ones included; contained entries are current exactly when their container
  // is.
  void expect_faithful_copy() {
    std::vector<schema::Entry> src = entries(src_uri(), "vonkentries");
    mongo::ClientPool pool(mongo::Uri::parse(dst_uri()));
    mongo::Client c = pool.acquire();
    mongo::Collection coll = c.collection(pool.database(), "vonkentries");
    std::map<std::string, schema::Entry> dst;
    std::set<std::string> with_idx;
    {
      mongo::Builder f;
      f.document("_id", [](mongo::Builder& d) { d.append("$type", "objectId"); });
      mongo::Bson fd = f.extract();
      mongo::Cursor cur = coll.find(fd.get());
      while (const bson_t* d = cur.next()) {
        schema::Entry e = schema::decode_entry(d);
        if (mongo::View(d).has("idx")) with_idx.insert(e.id_string());
        dst[e.id_string()] = e;
      }
    }
    ASSERT_EQ(dst.size(), src.size());
    std::map<std::string, const schema::Entry*> newest;
    for (const auto& s : src) {
      auto it = dst.find(s.id_string());
      ASSERT_NE(it, dst.end()) << "missing " << s.id_string();
      EXPECT_EQ(it->second.json, s.json) << s.id_string();
      EXPECT_EQ(it->second.type, s.type);
      EXPECT_EQ(it->second.res_id, s.res_id);
      EXPECT_EQ(it->second.v, s.v);
      if (s.cnt) continue;
      auto& n = newest[s.im + "/" + s.type + "/" + s.res_id];
      if (!n || s.lu_ms > n->lu_ms || (s.lu_ms == n->lu_ms && s.id_string() > n->id_string())) n = &s;
    }
    std::set<std::string> current;
    for (const auto& [key, e] : newest) current.insert(e->id_string());
    for (const auto& [id, e] : dst) {
      if (e.cnt) {
        ASSERT_TRUE(e.container.has_value());
        EXPECT_EQ(e.cur, current.count(mongo::oid_to_string(*e.container)) == 1) << "contained " << id;
        EXPECT_EQ(with_idx.count(id) == 1, e.cur && e.json.has_value())
            << "idx on contained " << id;
        continue;
      }
      EXPECT_EQ(e.cur, current.count(id) == 1) << "version state of " << e.type << "/" << e.res_id << " v" << e.v;
      EXPECT_EQ(with_idx.count(id) == 1, e.cur && e.json.has_value()) << "idx on " << id;
    }
  }

  inline static testing::FerretDbServer* source_ = nullptr;
  inline static testing::FerretDbServer* target_ = nullptr;
  std::string db_;
  testing::TempDir journal_;
  testing::TempDir logs_;
};

}  // namespace fhirshift

// Every FHIR interaction of `fhirshift serve` and its error paths, over HTTP, on both schemas,
// against a live FerretDB; the stored entries are checked against docs/schema.md.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>

#include "mongo/bson.h"
#include "schema/entry.h"
#include "server_fixture.h"

namespace fhirshift::testing {
namespace {

using nlohmann::json;
using server::Schema;

FerretDbServer* g_db = nullptr;
class Env : public ::testing::Environment {
 public:
  void SetUp() override { g_db = new FerretDbServer(); }
  void TearDown() override { delete g_db; }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new Env);

std::string fresh_database() {
  static std::atomic<int> n{0};
  return "crud" + std::to_string(n++);
}

// Sends `request` as is over a fresh TCP connection to the server on `port` and returns what comes
// back until the server closes the connection or `timeout` passes (then the answer so far, maybe
// ""). The socket is closed on return.
std::string raw_exchange(int port, const std::string& request, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      answer.append(buf, static_cast<size_t>(n));
      // A complete answer that says Connection: close is all there is to read.
      auto end = answer.find("\r\n\r\n");
      auto cl = answer.find("Content-Length: ");
      if (end != std::string::npos && cl != std::string::npos && cl < end &&
          answer.size() >= end + 4 + std::stoul(answer.substr(cl + 16)))
        break;
    }
  }
  ::close(fd);
  return answer;
}

class Crud : public ::testing::TestWithParam<Schema> {
 protected:
  void SetUp() override {
    uri = g_db->uri(fresh_database());
    if (GetParam() == Schema::kCurrent) provision_current(uri);
    srv = std::make_unique<RunningServer>(server_options(GetParam(), uri));
  }
  bool current() const { return GetParam() == Schema::kCurrent; }

  // Every entry document of the collection except the system document, oldest first.
  std::vector<mongo::Bson> entries() {
    mongo::ClientPool pool(mongo::Uri::parse(uri));
    auto client = pool.acquire();
    auto c = client.collection(pool.database(), "vonkentries");
    mongo::Builder f, o;
    f.document("type", [](mongo::Builder& d) { d.append("$exists", true); });
    o.document("sort", [](mongo::Builder& s) { s.append("lu", 1).append("_id", 1); });
    std::vector<mongo::Bson> out;
    auto cursor = c.find(f.get(), o.get());
    while (const bson_t* d = cursor.next()) out.push_back(mongo::Bson::copy_of(d));
    return out;
  }

  httplib::Result post(const std::string& path, const std::string& body,
                       const httplib::Headers& h = {}) {
    auto c = srv->client();
    return c.Post(path.c_str(), h, body, kFhirJson);
  }
  httplib::Result put(const std::string& path, const std::string& body,
                      const httplib::Headers& h = {}) {
    auto c = srv->client();
    return c.Put(path.c_str(), h, body, kFhirJson);
  }
  httplib::Result get(const std::string& path) {
    auto c = srv->client();
    return c.Get(path.c_str());
  }
  httplib::Result del(const std::string& path, const httplib::Headers& h = {}) {
    auto c = srv->client();
    return c.Delete(path.c_str(), h);
  }

  // The issue of an OperationOutcome answer, checked to be one.
  static json issue(const httplib::Result& r) {
    json j = parse(r);
    EXPECT_EQ(j.value("resourceType", ""), "OperationOutcome") << (r ? r->body : "no answer");
    if (!j.is_object() || !j.contains("issue")) return json::object();
    return j["issue"][0];
  }

  std::string uri;
  std::unique_ptr<RunningServer> srv;
};

TEST_P(Crud, CreateReadUpdateVreadDeleteAndHistory) {
  auto created = post("/Patient", R"({"resourceType":"Patient","name":[{"family":"Chalmers"}]})");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  json body = parse(created);
  std::string id = body["id"];
  EXPECT_EQ(id.size(), 36u);
  EXPECT_EQ(body["meta"]["versionId"], "1");
  EXPECT_EQ(created->get_header_value("ETag"), "W/\"1\"");
  EXPECT_EQ(created->get_header_value("Location"), srv->url().substr(0, 7) + "127.0.0.1:" +
                                                       std::to_string(srv->server().port()) +
                                                       "/Patient/" + id + "/_history/1");
  EXPECT_FALSE(created->get_header_value("Last-Modified").empty());
  EXPECT_NE(created->get_header_value("Content-Type").find("application/fhir+json"),
            std::string::npos);

  auto read = get("/Patient/" + id);
  ASSERT_EQ(read->status, 200);
  EXPECT_EQ(read->body, created->body);
  EXPECT_EQ(read->get_header_value("ETag"), "W/\"1\"");

  auto updated = put("/Patient/" + id, R"({"resourceType":"Patient","id":")" + id +
                                           R"(","name":[{"family":"Windsor"}]})");
  ASSERT_EQ(updated->status, 200) << updated->body;
  EXPECT_EQ(parse(updated)["meta"]["versionId"], "2");
  EXPECT_EQ(updated->get_header_value("ETag"), "W/\"2\"");
  EXPECT_GT(parse(updated)["meta"]["lastUpdated"].get<std::string>(),
            body["meta"]["lastUpdated"].get<std::string>());

  auto v1 = get("/Patient/" + id + "/_history/1");
  ASSERT_EQ(v1->status, 200);
  EXPECT_EQ(v1->body, created->body);
  EXPECT_EQ(get("/Patient/" + id)->body, updated->body);
  EXPECT_EQ(get("/Patient/" + id + "/_history/9")->status, 404);

  auto deleted = del("/Patient/" + id);
  ASSERT_EQ(deleted->status, 200) << deleted->body;
  EXPECT_EQ(deleted->get_header_value("ETag"), "W/\"3\"");
  auto gone = get("/Patient/" + id);
  EXPECT_EQ(gone->status, 410);
  EXPECT_EQ(issue(gone).value("code", ""), "deleted");
  EXPECT_EQ(get("/Patient/" + id + "/_history/3")->status, 410);
  EXPECT_EQ(get("/Patient/" + id + "/_history/2")->body, updated->body);
  // Deleting again writes nothing.
  EXPECT_EQ(del("/Patient/" + id)->status, 200);
  EXPECT_EQ(del("/Patient/never-was")->status, 200);

  auto history = parse(get("/Patient/" + id + "/_history"));
  ASSERT_EQ(history["type"], "history");
  EXPECT_EQ(history["total"], 3);
  ASSERT_EQ(history["entry"].size(), 3u);
  EXPECT_EQ(history["entry"][0]["request"]["method"], "DELETE");
  EXPECT_FALSE(history["entry"][0].contains("resource"));
  EXPECT_EQ(history["entry"][1]["request"]["method"], "PUT");
  EXPECT_EQ(history["entry"][1]["resource"]["meta"]["versionId"], "2");
  EXPECT_EQ(history["entry"][2]["request"]["method"], "POST");
  EXPECT_EQ(history["entry"][2]["response"]["etag"], "W/\"1\"");

  // Update on a deleted resource brings it back (201, next version); create-on-update of a new id.
  auto revived = put("/Patient/" + id, R"({"resourceType":"Patient","id":")" + id + R"("})");
  EXPECT_EQ(revived->status, 201);
  EXPECT_EQ(parse(revived)["meta"]["versionId"], "4");
  auto fresh = put("/Patient/chosen-by-client", R"({"resourceType":"Patient","id":"chosen-by-client"})");
  EXPECT_EQ(fresh->status, 201);
  EXPECT_EQ(parse(fresh)["meta"]["versionId"], "1");

  auto type_history = parse(get("/Patient/_history?_count=2"));
  EXPECT_EQ(type_history["total"], 5);
  EXPECT_EQ(type_history["entry"].size(), 2u);
  bool has_next = false;
  for (const auto& l : type_history["link"]) has_next |= l["relation"] == "next";
  EXPECT_TRUE(has_next);
  EXPECT_EQ(parse(get("/Patient/_history?_count=2&_offset=4"))["entry"].size(), 1u);
  EXPECT_EQ(get("/Patient/nope/_history")->status, 404);
}

TEST_P(Crud, EntriesFollowTheStorageContract) {
  std::string body = R"({"resourceType":"Observation","id":"obs1","status":"final",)"
                     R"("contained":[{"resourceType":"Patient","id":"p"},{"resourceType":"Device","id":"d"}],)"
                     R"("code":{"coding":[{"system":"http://loinc.org","code":"1234-5"}]},)"
                     R"("subject":{"reference":"#p"},"valueQuantity":{"value":1.50,"unit":"mg"}})";
  auto v1 = put("/Observation/obs1", body);
  ASSERT_EQ(v1->status, 201) << v1->body;
  auto v2 = put("/Observation/obs1", body);
  ASSERT_EQ(v2->status, 200) << v2->body;
  ASSERT_EQ(del("/Observation/obs1")->status, 200);

  auto docs = entries();
  ASSERT_EQ(docs.size(), 2u * 3 + 1);  // two versions with two contained each, one tombstone
  std::map<std::string, int> by_kind;
  for (const auto& d : docs) {
    schema::Entry e = schema::decode_entry(d.get());  // throws on anything off-contract
    mongo::View v(d.get());
    EXPECT_EQ(e.im, "Fhir4.0");
    EXPECT_EQ(e.cur, e.change == schema::Change::kDeleted)
        << "after the delete only the tombstone is current: " << d.to_json();
    if (e.cnt) {
      ++by_kind["contained"];
      EXPECT_TRUE(e.container.has_value());
      EXPECT_TRUE(e.type == "Patient" || e.type == "Device");
      EXPECT_EQ(*e.json, e.type == "Patient" ? R"({"resourceType":"Patient","id":"p"})"
                                             : R"({"resourceType":"Device","id":"d"})");
      EXPECT_FALSE(v.has("idx"))
          << "history: the contained entries lost their idx with their container";
    } else if (e.change == schema::Change::kDeleted) {
      ++by_kind["tombstone"];
      EXPECT_EQ(e.v, "3");
      EXPECT_FALSE(v.has("json"));
    } else {
      ++by_kind["version"];
      EXPECT_EQ(*e.json, e.v == "1" ? v1->body : v2->body);
      EXPECT_EQ(e.change, e.v == "1" ? schema::Change::kCreated : schema::Change::kUpdated);
      EXPECT_FALSE(v.has("idx")) << "idx only on the current version";
    }
  }
  EXPECT_EQ(by_kind["contained"], 4);
  EXPECT_EQ(by_kind["tombstone"], 1);
  EXPECT_EQ(by_kind["version"], 2);
  // Contained entries share their container's v and lu.
  for (const auto& d : docs) {
    schema::Entry e = schema::decode_entry(d.get());
    if (!e.cnt) continue;
    bool found = false;
    for (const auto& other : docs) {
      schema::Entry c = schema::decode_entry(other.get());
      if (bson_oid_equal(&c.id, &*e.container)) {
        found = true;
        EXPECT_EQ(c.v, e.v);
        EXPECT_EQ(c.lu_ms, e.lu_ms);
        EXPECT_EQ(c.change, e.change);
      }
    }
    EXPECT_TRUE(found) << "container of " << d.to_json();
  }
}

TEST_P(Crud, TheCurrentVersionIsTheOnlyCurrentEntryAndCarriesIdxOnTheCurrentSchema) {
  std::string body = R"({"resourceType":"Patient","id":"p1","contained":[{"resourceType":"Organization","id":"o"}]})";
  ASSERT_EQ(put("/Patient/p1", body)->status, 201);
  ASSERT_EQ(put("/Patient/p1", body)->status, 200);
  int cur_versions = 0, cur_contained = 0;
  for (const auto& d : entries()) {
    schema::Entry e = schema::decode_entry(d.get());
    mongo::View v(d.get());
    if (!e.cur) continue;
    EXPECT_EQ(e.v, "2");
    if (e.cnt) {
      ++cur_contained;
      // Indexed with its own type's parameters, like any current entry.
      EXPECT_EQ(v.has("idx"), current()) << d.to_json();
      if (current()) {
        EXPECT_TRUE(v.document("idx")->array("_id").has_value()) << d.to_json();
      }
    } else {
      ++cur_versions;
      EXPECT_EQ(v.has("idx"), current()) << d.to_json();
      if (current()) {
        auto ids = v.document("idx")->array("_id");
        ASSERT_TRUE(ids.has_value()) << d.to_json();
      }
    }
  }
  EXPECT_EQ(cur_versions, 1);
  EXPECT_EQ(cur_contained, 1);
}

TEST_P(Crud, DecimalsAndUnicodeSurviveByteForByte) {
  std::string body =
      R"({"resourceType":"Observation","id":"d1","status":"final","code":{"text":"Gewicht für Müller"},)"
      R"("valueQuantity":{"value":1.50,"unit":"kg"},"component":[{"code":{"text":"x"},"valueQuantity":{"value":100.000}},)"
      R"({"code":{"text":"y"},"valueQuantity":{"value":1e2}},{"code":{"text":"z"},"valueDecimal":-0.0}]})";
  auto r = put("/Observation/d1", body);
  ASSERT_EQ(r->status, 201) << r->body;
  for (const char* needle : {"\"value\":1.50", "\"value\":100.000", "\"value\":1e2", "-0.0",
                             "Gewicht für Müller"})
    EXPECT_NE(r->body.find(needle), std::string::npos) << needle << " in " << r->body;
  EXPECT_EQ(get("/Observation/d1")->body, r->body);
  // Client-sent meta elements other than versionId/lastUpdated are kept.
  auto tagged = put("/Observation/d1",
                    R"({"resourceType":"Observation","id":"d1","status":"final","code":{"text":"t"},)"
                    R"("meta":{"versionId":"77","profile":["http://x/p"],"lastUpdated":"2000-01-01T00:00:00Z"}})");
  ASSERT_EQ(tagged->status, 200);
  json j = parse(tagged);
  EXPECT_EQ(j["meta"]["versionId"], "2");
  EXPECT_EQ(j["meta"]["profile"][0], "http://x/p");
  EXPECT_NE(j["meta"]["lastUpdated"], "2000-01-01T00:00:00Z");
}

TEST_P(Crud, IfMatchChecksTheVersion) {
  ASSERT_EQ(put("/Patient/m", R"({"resourceType":"Patient","id":"m"})")->status, 201);
  auto ok = put("/Patient/m", R"({"resourceType":"Patient","id":"m"})", {{"If-Match", "W/\"1\""}});
  EXPECT_EQ(ok->status, 200) << ok->body;
  auto stale = put("/Patient/m", R"({"resourceType":"Patient","id":"m"})", {{"If-Match", "W/\"1\""}});
  EXPECT_EQ(stale->status, 412);
  EXPECT_EQ(issue(stale).value("code", ""), "conflict");
  EXPECT_EQ(stale->get_header_value("ETag"), "W/\"2\"");
  EXPECT_EQ(put("/Patient/m", R"({"resourceType":"Patient","id":"m"})", {{"If-Match", "2"}})->status, 200);
  auto malformed = put("/Patient/m", R"({"resourceType":"Patient","id":"m"})", {{"If-Match", "W/\"a\"b\""}});
  EXPECT_EQ(malformed->status, 400);
  // Bare text is no ETag: 400 naming the header and the form, not 412 (taken as a stale version).
  for (const char* method : {"PUT", "DELETE"}) {
    SCOPED_TRACE(method);
    auto bare = std::string(method) == "PUT"
                    ? put("/Patient/m", R"({"resourceType":"Patient","id":"m"})", {{"If-Match", "not-an-etag"}})
                    : del("/Patient/m", {{"If-Match", "not-an-etag"}});
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->status, 400) << bare->body;
    EXPECT_EQ(issue(bare).value("code", ""), "value");
    std::string diagnostics = issue(bare).value("diagnostics", "");
    EXPECT_NE(diagnostics.find("If-Match"), std::string::npos) << diagnostics;
    EXPECT_NE(diagnostics.find("W/\"3\""), std::string::npos) << diagnostics;
  }
  EXPECT_EQ(get("/Patient/m")->get_header_value("ETag"), "W/\"3\"") << "nothing was written";
  EXPECT_EQ(put("/Patient/none", R"({"resourceType":"Patient","id":"none"})", {{"If-Match", "W/\"1\""}})->status, 412);
  EXPECT_EQ(del("/Patient/m", {{"If-Match", "W/\"1\""}})->status, 412);
  EXPECT_EQ(del("/Patient/m", {{"If-Match", "W/\"3\""}})->status, 200);
  EXPECT_EQ(get("/Patient/m")->status, 410);
}

TEST_P(Crud, ConcurrentIfMatchUpdatesOfOneVersionLetExactlyOneWin) {
  ASSERT_EQ(put("/Patient/race", R"({"resourceType":"Patient","id":"race"})")->status, 201);
  std::atomic<int> ok{0}, precondition{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      auto c = srv->client();
      auto r = c.Put("/Patient/race", {{"If-Match", "W/\"1\""}},
                     R"({"resourceType":"Patient","id":"race"})", kFhirJson);
      if (r && r->status == 200) ++ok;
      else if (r && r->status == 412) ++precondition;
      else ++other;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(precondition, 7);
  EXPECT_EQ(other, 0);
}

// Many clients updating one resource at once: every update gets its own version, one stays current.
void hammer(std::vector<RunningServer*> servers,
            const std::function<std::vector<mongo::Bson>()>& entries) {
  constexpr int kThreads = 8, kEach = 6;
  std::atomic<int> ok{0};
  std::vector<std::string> failures;
  std::mutex mu;
  std::set<std::string> versions;
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th)
    threads.emplace_back([&, th] {
      auto c = servers[th % servers.size()]->client();
      for (int i = 0; i < kEach; ++i) {
        auto r = c.Put("/Patient/hot", R"({"resourceType":"Patient","id":"hot","active":true})", kFhirJson);
        std::lock_guard lock(mu);
        if (r && r->status == 200) {
          ++ok;
          versions.insert(r->get_header_value("ETag"));
        } else {
          failures.push_back(r ? std::to_string(r->status) + " " + r->body : "no answer");
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_TRUE(failures.empty()) << failures.front();
  EXPECT_EQ(ok, kThreads * kEach);
  EXPECT_EQ(versions.size(), static_cast<size_t>(kThreads * kEach)) << "every write its own version";
  int cur = 0;
  std::set<std::string> stored;
  for (const auto& d : entries()) {
    schema::Entry e = schema::decode_entry(d.get());
    cur += e.cur;
    EXPECT_TRUE(stored.insert(e.v).second) << "version " << e.v << " stored twice";
  }
  EXPECT_EQ(cur, 1);
  EXPECT_EQ(stored.size(), static_cast<size_t>(kThreads * kEach + 1));
  auto c = servers[0]->client();
  EXPECT_EQ(parse(c.Get("/Patient/hot"))["meta"]["versionId"], std::to_string(kThreads * kEach + 1));
}

TEST_P(Crud, ConcurrentUpdatesNeverYieldTwoCurrentVersions) {
  ASSERT_EQ(put("/Patient/hot", R"({"resourceType":"Patient","id":"hot"})")->status, 201);
  hammer({srv.get()}, [this] { return entries(); });
}

// Two server instances on one store behave like two processes: separate connection pools and no
// shared in-process state, so only the store's compare-and-set (and unique index) keep versions
// apart. FerretDB runs an update as a query followed by a write, not atomically, so this needs a
// real MongoDB (FHIRSHIFT_TEST_MONGODB_URI).
TEST_P(Crud, ConcurrentUpdatesThroughTwoProcessesNeverYieldTwoCurrentVersions) {
  const char* mongodb = std::getenv("FHIRSHIFT_TEST_MONGODB_URI");
  if (!mongodb || !*mongodb)
    GTEST_SKIP() << "needs MongoDB: FerretDB's update is not an atomic compare-and-set (set "
                    "FHIRSHIFT_TEST_MONGODB_URI=mongodb://host/ to run it)";
  std::string base = mongodb;
  if (base.back() != '/') base += '/';
  uri = base + fresh_database() + "_" + std::to_string(::getpid());
  if (GetParam() == Schema::kCurrent) provision_current(uri);
  srv = std::make_unique<RunningServer>(server_options(GetParam(), uri));
  RunningServer second(server_options(GetParam(), uri));
  ASSERT_EQ(put("/Patient/hot", R"({"resourceType":"Patient","id":"hot"})")->status, 201);
  hammer({srv.get(), &second}, [this] { return entries(); });
}

// A server remembers where each resource's versions are; what another process writes meanwhile
// (another server, the migrator) must still be read, never a stale or missing version.
TEST_P(Crud, ReadsSeeWhatOtherProcessesWrote) {
  RunningServer other(server_options(GetParam(), uri));
  auto b = other.client();
  auto version = [](const httplib::Result& r) { return parse(r)["meta"]["versionId"]; };
  ASSERT_EQ(put("/Patient/x", R"({"resourceType":"Patient","id":"x"})")->status, 201);
  EXPECT_EQ(version(get("/Patient/x")), "1");
  ASSERT_EQ(b.Put("/Patient/x", R"({"resourceType":"Patient","id":"x","active":true})", kFhirJson)->status, 200);
  EXPECT_EQ(version(get("/Patient/x")), "2") << "not the remembered version 1";
  EXPECT_EQ(get("/Patient/x/_history/2")->status, 200);
  EXPECT_EQ(get("/Patient/y")->status, 404);
  ASSERT_EQ(b.Put("/Patient/y", R"({"resourceType":"Patient","id":"y"})", kFhirJson)->status, 201);
  EXPECT_EQ(get("/Patient/y")->status, 200) << "a resource created after a 404 is found";
  ASSERT_EQ(b.Delete("/Patient/y")->status, 200);
  EXPECT_EQ(get("/Patient/y")->status, 410);
  EXPECT_EQ(get("/Patient/y/_history/2")->status, 410);
  // And this server's next update builds on the other's version.
  auto r = put("/Patient/x", R"({"resourceType":"Patient","id":"x"})");
  EXPECT_EQ(r->get_header_value("ETag"), "W/\"3\"");
}

TEST_P(Crud, RefusedRequestsAnswerAnOperationOutcomeAndWriteNothing) {
  struct Case {
    std::string what;
    std::function<httplib::Result()> send;
    int status;
    std::string code;
  };
  std::vector<Case> cases{
      {"bad JSON", [&] { return post("/Patient", R"({"resourceType":"Patient",)"); }, 400, "structure"},
      {"not an object", [&] { return post("/Patient", "[1,2]"); }, 400, "invalid"},
      {"no resourceType", [&] { return post("/Patient", R"({"id":"x"})"); }, 400, "invalid"},
      {"wrong resourceType", [&] { return post("/Patient", R"({"resourceType":"Observation"})"); }, 400, "invalid"},
      {"id mismatch", [&] { return put("/Patient/a", R"({"resourceType":"Patient","id":"b"})"); }, 400, "invalid"},
      {"update without id", [&] { return put("/Patient/a", R"({"resourceType":"Patient"})"); }, 400, "invalid"},
      {"meta not an object", [&] { return put("/Patient/a", R"({"resourceType":"Patient","id":"a","meta":[]})"); }, 400, "invalid"},
      {"contained without id", [&] { return post("/Patient", R"({"resourceType":"Patient","contained":[{"resourceType":"Organization"}]})"); }, 400, "invalid"},
      {"contained id twice", [&] { return post("/Patient", R"({"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o"},{"resourceType":"Device","id":"o"}]})"); }, 400, "invalid"},
      {"unknown type", [&] { return post("/Patientt", R"({"resourceType":"Patientt"})"); }, 404, "not-supported"},
      {"unknown type read", [&] { return get("/Unicorn/1"); }, 404, "not-supported"},
      {"invalid id", [&] { return put("/Patient/a_b", R"({"resourceType":"Patient","id":"a_b"})"); }, 400, "value"},
      {"id too long", [&] { return get("/Patient/" + std::string(65, 'a')); }, 400, "value"},
      {"XML", [&] { auto c = srv->client(); return c.Post("/Patient", "<Patient/>", "application/fhir+xml"); }, 415, "not-supported"},
      {"oversized", [&] { return post("/Patient", R"({"resourceType":"Patient","text":")" + std::string(16 << 20, 'a') + "\"}"); }, 413, "too-long"},
      {"PATCH", [&] { auto c = srv->client(); return c.Patch("/Patient/a", "[]", "application/json-patch+json"); }, 405, "not-supported"},
      {"POST to an instance", [&] { return post("/Patient/a", R"({"resourceType":"Patient"})"); }, 405, "not-supported"},
      {"no such path", [&] { return get("/Patient/a/b/c/d"); }, 404, "not-supported"},
      {"not found", [&] { return get("/Patient/nobody"); }, 404, "not-found"},
  };
  for (const auto& c : cases) {
    auto r = c.send();
    ASSERT_TRUE(r) << c.what << ": " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, c.status) << c.what << ": " << r->body.substr(0, 300);
    json j = parse(r);
    ASSERT_TRUE(j.is_object()) << c.what << ": " << r->body.substr(0, 300);
    EXPECT_EQ(j.value("resourceType", ""), "OperationOutcome") << c.what;
    EXPECT_EQ(j["issue"][0].value("code", ""), c.code) << c.what << ": " << r->body;
    EXPECT_FALSE(j["issue"][0].value("diagnostics", "").empty()) << c.what;
  }
  EXPECT_TRUE(entries().empty()) << entries().front().to_json();
}

TEST_P(Crud, MetadataIsACapabilityStatement) {
  auto r = get("/metadata");
  ASSERT_EQ(r->status, 200);
  json cs = parse(r);
  EXPECT_EQ(cs["resourceType"], "CapabilityStatement");
  EXPECT_EQ(cs["fhirVersion"], "4.0.1");
  const auto& resources = cs["rest"][0]["resource"];
  EXPECT_EQ(resources.size(), 145u);
  for (const auto& res : resources) {
    if (res["type"] != "Patient") continue;
    std::set<std::string> params;
    for (const auto& p : res["searchParam"]) params.insert(p["name"]);
    EXPECT_TRUE(params.count("_id"));
    EXPECT_EQ(params.count("name") == 1, current()) << "search beyond _id only on the current schema";
    std::set<std::string> interactions;
    for (const auto& i : res["interaction"]) interactions.insert(i["code"]);
    EXPECT_EQ(interactions.size(), 8u);
  }
}

TEST_P(Crud, HealthAndReadiness) {
  EXPECT_EQ(get("/healthz")->status, 200);
  auto ready = get("/readyz");
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(parse(ready)["ready"], true);
  // A database that does not answer: alive, not ready.
  auto o = server_options(GetParam(), "mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=300");
  RunningServer down(o);
  auto c = down.client();
  EXPECT_EQ(c.Get("/healthz")->status, 200);
  auto r = c.Get("/readyz");
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(parse(r)["ready"], false);
  // Reads then fail with 503 + Retry-After and an OperationOutcome, not a hang or a crash.
  auto read = c.Get("/Patient/x");
  EXPECT_EQ(read->status, 503);
  EXPECT_EQ(read->get_header_value("Retry-After"), "1");
  EXPECT_EQ(parse(read)["resourceType"], "OperationOutcome");
}

TEST_P(Crud, AnInvalidContentLengthIsAnswered400AtOnce) {
  // Two request threads: before the fix one request with Content-Length -1 held a thread for the
  // 60 s read timeout, waiting for a body of 2^64-1 bytes.
  auto o = server_options(GetParam(), uri);
  o.threads = 2;
  RunningServer two(o);
  const int port = two.server().port();
  for (const std::string value : {"-1", "abc", "1x", "99999999999999999999999", "5\r\nContent-Length: 7"}) {
    SCOPED_TRACE("Content-Length: " + value);
    auto t0 = std::chrono::steady_clock::now();
    std::string answer = raw_exchange(
        port, "PUT /Patient/cl HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: " +
                  value + "\r\n\r\n{\"resourceType\":\"Patient\",\"id\":\"cl\"}",
        std::chrono::seconds(20));
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
    EXPECT_LT(took, 5.0) << "not answered at once";
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
    auto body = answer.find("\r\n\r\n");
    ASSERT_NE(body, std::string::npos) << answer;
    json j = json::parse(answer.substr(body + 4), nullptr, false);
    EXPECT_EQ(j.value("resourceType", ""), "OperationOutcome") << answer;
    std::string diagnostics = j.is_object() ? j["issue"][0].value("diagnostics", "") : "";
    EXPECT_NE(diagnostics.find("Content-Length"), std::string::npos) << answer;
  }
  // Both threads are free: a normal request is served at once.
  auto t0 = std::chrono::steady_clock::now();
  auto c = two.client();
  c.set_read_timeout(std::chrono::seconds(5));
  auto ok = c.Put("/Patient/cl", R"({"resourceType":"Patient","id":"cl"})", kFhirJson);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 201) << ok->body;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  EXPECT_EQ(entries().size(), 1u) << "only the normal request wrote";
}

TEST_P(Crud, ReadOnlyAnswersWrites503AndStillReads) {
  ASSERT_EQ(put("/Patient/ro", R"({"resourceType":"Patient","id":"ro"})")->status, 201);
  auto o = server_options(GetParam(), uri);
  o.read_only = true;
  RunningServer ro(o);
  auto c = ro.client();
  auto w = c.Put("/Patient/ro", R"({"resourceType":"Patient","id":"ro"})", kFhirJson);
  EXPECT_EQ(w->status, 503);
  EXPECT_EQ(issue(w).value("code", ""), "transient");
  EXPECT_EQ(c.Post("/Patient", R"({"resourceType":"Patient"})", kFhirJson)->status, 503);
  EXPECT_EQ(c.Delete("/Patient/ro")->status, 503);
  EXPECT_EQ(c.Get("/Patient/ro")->status, 200);
  EXPECT_EQ(entries().size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(BothSchemas, Crud, ::testing::Values(Schema::kLegacy, Schema::kCurrent),
                         [](const auto& info) {
                           return std::string(server::schema_name(info.param));
                         });

}  // namespace
}  // namespace fhirshift::testing

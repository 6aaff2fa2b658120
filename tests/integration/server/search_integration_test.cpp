// FHIR search on the current schema over HTTP, against resources written through the server (the
// real indexer computes `idx`), and the legacy schema's limits. Then the whole point of the
// project in small: an old server writes, `fhirshift migrate` copies, the new server reads back
// identical resources and search finds them.
#include <gtest/gtest.h>

#include <set>

#include "mongo/collection.h"
#include "server_fixture.h"
#include "subprocess.h"

namespace fhirshift::testing {
namespace {

using nlohmann::json;
using server::Schema;

class Search : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    db_ = new FerretDbServer();
    provision_current(db_->uri("search"));
    srv_ = new RunningServer(server_options(Schema::kCurrent, db_->uri("search")));
    for (const auto& [path, body] : fixtures()) {
      auto c = srv_->client();
      auto r = c.Put(path.c_str(), body, kFhirJson);
      ASSERT_TRUE(r && r->status == 201) << path << ": " << (r ? r->body : "no answer");
    }
  }
  static void TearDownTestSuite() {
    delete srv_;
    delete db_;
  }

  static std::vector<std::pair<std::string, std::string>> fixtures() {
    return {
        {"/Patient/p1",
         R"({"resourceType":"Patient","id":"p1","name":[{"family":"Müller","given":["Jan","Erik"]}],)"
         R"("identifier":[{"system":"urn:oid:1.2.3","value":"MRN-1"}],"gender":"male","birthDate":"1980-05-17",)"
         R"("address":[{"city":"Zürich"}]})"},
        {"/Patient/p2",
         R"({"resourceType":"Patient","id":"p2","name":[{"family":"Mullins","given":["Ann"]}],)"
         R"("identifier":[{"value":"MRN-2"}],"gender":"female","birthDate":"1992"})"},
        {"/Patient/p3",
         R"({"resourceType":"Patient","id":"p3","name":[{"family":"van der Berg","given":["Ruud"]}],)"
         R"("gender":"male","birthDate":"2001-01-01","contained":[{"resourceType":"Patient","id":"inner","name":[{"family":"Hidden"}]}]})"},
        {"/Observation/o1",
         R"({"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}],"text":"Body Weight"},)"
         R"("subject":{"reference":"Patient/p1"},"effectiveDateTime":"2020-03-01T10:00:00+02:00",)"
         R"("valueQuantity":{"value":72.50,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}})"},
        {"/Observation/o2",
         R"({"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},)"
         R"("subject":{"reference":"Patient/p2"},"effectiveDateTime":"2021-07",)"
         R"("valueQuantity":{"value":5.4,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}})"},
        {"/Observation/o3",
         R"({"resourceType":"Observation","id":"o3","status":"preliminary","code":{"coding":[{"system":"http://snomed.info/sct","code":"29463-7"}]},)"
         R"("subject":{"reference":"Patient/p1"},"effectivePeriod":{"start":"2019-01-01"}})"},
        {"/RiskAssessment/r1",
         R"({"resourceType":"RiskAssessment","id":"r1","status":"final","subject":{"reference":"Patient/p1"},)"
         R"("prediction":[{"probabilityDecimal":0.75}]})"},
        {"/ValueSet/vs1",
         R"({"resourceType":"ValueSet","id":"vs1","status":"active","url":"http://example.org/fhir/ValueSet/colors"})"},
    };
  }

  // The ids a search finds (all pages), in order; fails the test on a non-200.
  static std::vector<std::string> ids(const std::string& query, json* first_page = nullptr) {
    std::vector<std::string> out;
    auto c = srv_->client();
    std::string next = query;
    for (int page = 0; !next.empty() && page < 50; ++page) {
      auto r = c.Get(next.c_str());
      EXPECT_TRUE(r && r->status == 200) << query << ": " << (r ? r->body : "no answer");
      if (!r || r->status != 200) return {"<error>"};
      json b = json::parse(r->body);
      EXPECT_EQ(b["type"], "searchset");
      if (page == 0 && first_page) *first_page = b;
      for (const auto& e : b.value("entry", json::array())) {
        out.push_back(e["resource"]["id"]);
        EXPECT_EQ(e["search"]["mode"], "match");
      }
      next.clear();
      for (const auto& l : b["link"])
        if (l["relation"] == "next") next = l["url"].get<std::string>().substr(srv_->url().size());
    }
    return out;
  }
  static std::set<std::string> found(const std::string& query) {
    auto v = ids(query);
    return {v.begin(), v.end()};
  }
  static int status(const std::string& query, std::string* body = nullptr) {
    auto c = srv_->client();
    auto r = c.Get(query.c_str());
    if (body && r) *body = r->body;
    return r ? r->status : -1;
  }

  using S = std::set<std::string>;
  static FerretDbServer* db_;
  static RunningServer* srv_;
};
FerretDbServer* Search::db_ = nullptr;
RunningServer* Search::srv_ = nullptr;

TEST_F(Search, String) {
  EXPECT_EQ(found("/Patient?name=mul"), (S{"p1", "p2"})) << "starts-with, case and accents ignored";
  EXPECT_EQ(found("/Patient?name=MÜLLER"), (S{"p1"}));
  EXPECT_EQ(found("/Patient?family=van%20der"), (S{"p3"}));
  EXPECT_EQ(found("/Patient?name:exact=muller"), (S{"p1"}));
  EXPECT_EQ(found("/Patient?name:exact=mul"), (S{}));
  EXPECT_EQ(found("/Patient?name:contains=ll"), (S{"p1", "p2"}));
  EXPECT_EQ(found("/Patient?given=erik"), (S{"p1"}));
  EXPECT_EQ(found("/Patient?address-city=zurich"), (S{"p1"}));
  EXPECT_EQ(found("/Patient?name=ann,ruud"), (S{"p2", "p3"})) << "comma is OR";
  EXPECT_EQ(found("/Patient?name=mul&gender=female"), (S{"p2"})) << "parameters AND";
  EXPECT_EQ(found("/Patient?name=hidden"), (S{})) << "contained resources are not found on their own";
}

TEST_F(Search, Token) {
  EXPECT_EQ(found("/Patient?identifier=urn:oid:1.2.3%7CMRN-1"), (S{"p1"}));
  EXPECT_EQ(found("/Patient?identifier=MRN-2"), (S{"p2"}));
  EXPECT_EQ(found("/Patient?identifier=%7CMRN-2"), (S{"p2"})) << "|code: no system";
  EXPECT_EQ(found("/Patient?identifier=%7CMRN-1"), (S{})) << "MRN-1 has a system";
  EXPECT_EQ(found("/Patient?identifier=urn:oid:1.2.3%7C"), (S{"p1"}));
  EXPECT_EQ(found("/Patient?gender=male"), (S{"p1", "p3"}));
  EXPECT_EQ(found("/Observation?code=http://loinc.org%7C29463-7"), (S{"o1"}));
  EXPECT_EQ(found("/Observation?code=29463-7"), (S{"o1", "o3"}));
  EXPECT_EQ(found("/Observation?code:text=body"), (S{"o1"}));
  EXPECT_EQ(found("/Observation?status=final"), (S{"o1", "o2"}));
  EXPECT_EQ(found("/Patient?_id=p1,p3"), (S{"p1", "p3"}));
}

TEST_F(Search, Reference) {
  EXPECT_EQ(found("/Observation?subject=Patient/p1"), (S{"o1", "o3"}));
  EXPECT_EQ(found("/Observation?subject=p2"), (S{"o2"}));
  EXPECT_EQ(found("/Observation?subject:Patient=p1"), (S{"o1", "o3"}));
  EXPECT_EQ(found("/Observation?patient=Patient/p1"), (S{"o1", "o3"}));
  EXPECT_EQ(found("/Observation?subject=http://elsewhere/fhir/Patient/p2"), (S{"o2"}));
  EXPECT_EQ(found("/Observation?subject=Patient/p9"), (S{}));
}

TEST_F(Search, Date) {
  EXPECT_EQ(found("/Patient?birthdate=1980"), (S{"p1"})) << "the year contains the day";
  EXPECT_EQ(found("/Patient?birthdate=1980-05-17"), (S{"p1"}));
  EXPECT_EQ(found("/Patient?birthdate=1992-06-01"), (S{})) << "a year does not fit in a day";
  EXPECT_EQ(found("/Patient?birthdate=lt1990"), (S{"p1"}));
  EXPECT_EQ(found("/Patient?birthdate=ge1992"), (S{"p2", "p3"}));
  EXPECT_EQ(found("/Patient?birthdate=gt1992-06-01"), (S{"p2", "p3"})) << "1992 ends after June";
  EXPECT_EQ(found("/Patient?birthdate=le1992-01-01"), (S{"p1", "p2"}));
  EXPECT_EQ(found("/Patient?birthdate=sa1992"), (S{"p3"}));
  EXPECT_EQ(found("/Patient?birthdate=eb1992"), (S{"p1"}));
  EXPECT_EQ(found("/Patient?birthdate=ne1980-05-17"), (S{"p2", "p3"}));
  EXPECT_EQ(found("/Patient?birthdate=ge1980&birthdate=lt2000"), (S{"p1", "p2"}));
  // 10:00+02:00 is 08:00Z.
  EXPECT_EQ(found("/Observation?date=2020-03-01T08:00:00Z"), (S{"o1"}));
  EXPECT_EQ(found("/Observation?date=2020-03-01T10:00:00Z"), (S{}));
  EXPECT_EQ(found("/Observation?date=2021"), (S{"o2"}));
  EXPECT_EQ(found("/Observation?date=ge2020"), (S{"o1", "o2", "o3"})) << "o3's open period";
  EXPECT_EQ(status("/Patient?birthdate=1980-13"), 400);
}

TEST_F(Search, NumberQuantityUri) {
  EXPECT_EQ(found("/RiskAssessment?probability=gt0.5"), (S{"r1"}));
  EXPECT_EQ(found("/RiskAssessment?probability=0.75"), (S{"r1"}));
  EXPECT_EQ(found("/RiskAssessment?probability=0.8"), (S{"r1"})) << "0.8 means [0.75, 0.85)";
  EXPECT_EQ(found("/RiskAssessment?probability=0.80"), (S{}));
  EXPECT_EQ(found("/RiskAssessment?probability=lt0.5"), (S{}));
  EXPECT_EQ(found("/Observation?value-quantity=72.5"), (S{"o1"}));
  EXPECT_EQ(found("/Observation?value-quantity=gt5"), (S{"o1", "o2"}));
  EXPECT_EQ(found("/Observation?value-quantity=5.4%7Chttp://unitsofmeasure.org%7Cmg"), (S{"o2"}));
  EXPECT_EQ(found("/Observation?value-quantity=5.4%7C%7Ckg"), (S{}));
  EXPECT_EQ(found("/ValueSet?url=http://example.org/fhir/ValueSet/colors"), (S{"vs1"}));
  EXPECT_EQ(found("/ValueSet?url:below=http://example.org/fhir/"), (S{"vs1"}));
  EXPECT_EQ(found("/ValueSet?url=http://example.org/fhir/"), (S{}));
}

TEST_F(Search, MissingPagingSortTotal) {
  EXPECT_EQ(found("/Patient?identifier:missing=true"), (S{"p3"}));
  EXPECT_EQ(found("/Patient?identifier:missing=false"), (S{"p1", "p2"}));
  json first;
  auto all = ids("/Patient?_count=1&_total=accurate", &first);
  EXPECT_EQ(all.size(), 3u) << "next links walk every page";
  EXPECT_EQ(first["total"], 3);
  EXPECT_EQ(first["entry"].size(), 1u);
  EXPECT_EQ(ids("/Patient?_sort=_lastUpdated"), (std::vector<std::string>{"p1", "p2", "p3"}));
  EXPECT_EQ(ids("/Patient?_sort=-_lastUpdated&_count=2"),
            (std::vector<std::string>{"p3", "p2", "p1"}));
  EXPECT_EQ(found("/Patient?_lastUpdated=gt2000-01-01"), (S{"p1", "p2", "p3"}));
  EXPECT_EQ(found("/Patient?_lastUpdated=lt2000-01-01"), (S{}));
  json summary;
  ids("/Patient?_count=0", &summary);
  EXPECT_EQ(summary["total"], 3);
}

TEST_F(Search, OnlyCurrentVersionsOfLiveResourcesAreFound) {
  auto c = srv_->client();
  ASSERT_EQ(c.Put("/Patient/tmp", R"({"resourceType":"Patient","id":"tmp","name":[{"family":"Before"}]})", kFhirJson)->status, 201);
  EXPECT_EQ(found("/Patient?name=before"), (S{"tmp"}));
  ASSERT_EQ(c.Put("/Patient/tmp", R"({"resourceType":"Patient","id":"tmp","name":[{"family":"After"}]})", kFhirJson)->status, 200);
  EXPECT_EQ(found("/Patient?name=before"), (S{}));
  EXPECT_EQ(found("/Patient?name=after"), (S{"tmp"}));
  ASSERT_EQ(c.Delete("/Patient/tmp")->status, 200);
  EXPECT_EQ(found("/Patient?name=after"), (S{}));
  EXPECT_EQ(found("/Patient?_id=tmp"), (S{}));
}

// Contained resources are indexed with their own type's parameters while their container's
// version is current; `_contained` searches them and answers with the containers (R4).
TEST_F(Search, ContainedResourcesAreFoundThroughTheirContainers) {
  EXPECT_EQ(ids("/Patient?name=hidden&_contained=true"), (std::vector<std::string>{"p3"}));
  EXPECT_EQ(found("/Patient?name=hidden&_contained=false"), (S{}));
  EXPECT_EQ(found("/Patient?name=mul&_contained=true"), (S{})) << "p1 and p2 are not contained";
  EXPECT_EQ(found("/Patient?name=mul,hidden&_contained=both"), (S{"p1", "p2", "p3"}));
  EXPECT_EQ(ids("/Patient?name=ruud,hidden&_contained=both"), (std::vector<std::string>{"p3"}))
      << "a container that matches itself and through its contained resource is one result";

  auto c = srv_->client();
  ASSERT_EQ(
      c.Put("/Encounter/e1",
            R"({"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},)"
            R"("contained":[{"resourceType":"Organization","id":"org","name":"Acme Clinic"}],)"
            R"("serviceProvider":{"reference":"#org"}})",
            kFhirJson)
          ->status,
      201);
  json page;
  EXPECT_EQ(ids("/Organization?name=acme&_contained=true&_total=accurate", &page),
            (std::vector<std::string>{"e1"}));
  EXPECT_EQ(page["total"], 1);
  EXPECT_EQ(page["entry"][0]["resource"]["resourceType"], "Encounter");
  EXPECT_EQ(found("/Organization?name=acme"), (S{})) << "not found on its own";
  // A new version of the container: the old contained entry is history, without idx.
  ASSERT_EQ(
      c.Put("/Encounter/e1",
            R"({"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},)"
            R"("contained":[{"resourceType":"Organization","id":"org","name":"Other Care"}],)"
            R"("serviceProvider":{"reference":"#org"}})",
            kFhirJson)
          ->status,
      200);
  EXPECT_EQ(found("/Organization?name=acme&_contained=true"), (S{}));
  EXPECT_EQ(found("/Organization?name=other&_contained=true"), (S{"e1"}));
  mongo::ClientPool pool(mongo::Uri::parse(db_->uri("search")));
  mongo::Client client = pool.acquire();
  mongo::Collection coll = client.collection("search", "vonkentries");
  auto count = [&](bool cur) {
    mongo::Builder f;
    f.append("type", "Organization").append("cnt", true).append("cur", cur);
    f.document("idx", [](mongo::Builder& d) { d.append("$exists", true); });
    return coll.count(f.extract().get());
  };
  EXPECT_EQ(count(true), 1) << "the current contained Organization is indexed";
  EXPECT_EQ(count(false), 0) << "history keeps no idx";

  for (const char* q :
       {"/Patient?_contained=maybe", "/Patient?_contained=true&_containedType=contained"}) {
    std::string body;
    EXPECT_EQ(status(q, &body), 400) << q;
    EXPECT_NE(body.find("_contained"), std::string::npos) << body;
  }
}

TEST_F(Search, RefusedSearchesAnswer400WithAnOperationOutcome) {
  for (const char* q : {"/Patient?nonsense=1", "/Patient?general-practitioner.name=x",
                        "/Patient?_sort=name", "/Patient?_count=x", "/Patient?name:regex=a",
                        "/Observation?value-quantity=abc", "/Patient?_include=Patient:organization"}) {
    std::string body;
    EXPECT_EQ(status(q, &body), 400) << q;
    EXPECT_NE(body.find("OperationOutcome"), std::string::npos) << q << ": " << body;
  }
}

TEST(LegacySearch, AnswersIdAndLastUpdatedOnly) {
  FerretDbServer db;
  RunningServer srv(server_options(Schema::kLegacy, db.uri("legacysearch")));
  auto c = srv.client();
  ASSERT_EQ(c.Put("/Patient/a", R"({"resourceType":"Patient","id":"a","name":[{"family":"A"}]})", kFhirJson)->status, 201);
  ASSERT_EQ(c.Put("/Patient/b", R"({"resourceType":"Patient","id":"b"})", kFhirJson)->status, 201);
  auto r = c.Get("/Patient?_id=a");
  ASSERT_EQ(r->status, 200);
  json b = json::parse(r->body);
  ASSERT_EQ(b["entry"].size(), 1u);
  EXPECT_EQ(b["entry"][0]["resource"]["id"], "a");
  EXPECT_EQ(json::parse(c.Get("/Patient")->body)["entry"].size(), 2u);
  auto refused = c.Get("/Patient?name=a");
  EXPECT_EQ(refused->status, 400);
  EXPECT_NE(refused->body.find("legacy schema has no search index"), std::string::npos);
}

// The migration in small: the old server writes a legacy store, `fhirshift migrate` copies it, the
// new server reads every resource back byte for byte and finds it by search.
TEST(MigratedStore, TheNewServerReadsWhatTheOldServerWroteAndSearchFindsIt) {
  FerretDbServer db;
  std::string src = db.uri("oldstore"), dst = db.uri("newstore");
  std::map<std::string, std::string> written;  // path -> body the old server answered
  {
    RunningServer old_srv(server_options(Schema::kLegacy, src));
    auto c = old_srv.client();
    auto put = [&](const std::string& path, const std::string& body) {
      auto r = c.Put(path.c_str(), body, kFhirJson);
      ASSERT_TRUE(r && (r->status == 200 || r->status == 201)) << (r ? r->body : "no answer");
      written[path] = r->body;
    };
    put("/Patient/m1", R"({"resourceType":"Patient","id":"m1","name":[{"family":"Øster"}]})");
    put("/Patient/m1", R"({"resourceType":"Patient","id":"m1","name":[{"family":"Østergaard"}],"birthDate":"1970"})");
    put("/Patient/m2", R"({"resourceType":"Patient","id":"m2","name":[{"family":"Ng"}],"contained":[{"resourceType":"Organization","id":"o"}]})");
    put("/Patient/m3",
        R"({"resourceType":"Patient","id":"m3","contained":[{"resourceType":"Organization","id":"o","name":"Acme"}],"managingOrganization":{"reference":"#o"}})");
    put("/Observation/x1", R"({"resourceType":"Observation","id":"x1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"1-8"}]},"subject":{"reference":"Patient/m1"},"valueQuantity":{"value":1.50}})");
    ASSERT_EQ(c.Delete("/Patient/m2")->status, 200);
  }
  RunResult m = run_command({cli_path(), "migrate", "--srcMongoConnectionString", src,
                             "--mongoConnectionstring", dst, "--provisionTargetDatabase", "true"},
                            std::chrono::minutes(2));
  ASSERT_EQ(m.exit_code, 0) << m.out << m.err;

  RunningServer new_srv(server_options(Schema::kCurrent, dst));
  auto c = new_srv.client();
  EXPECT_EQ(c.Get("/Patient/m1")->body, written["/Patient/m1"]);
  EXPECT_EQ(c.Get("/Patient/m1/_history/1")->status, 200);
  EXPECT_EQ(c.Get("/Observation/x1")->body, written["/Observation/x1"]);
  EXPECT_EQ(c.Get("/Patient/m2")->status, 410);
  auto search = [&](const std::string& q) {
    auto r = c.Get(q.c_str());
    EXPECT_EQ(r->status, 200) << r->body;
    std::set<std::string> out;
    for (const auto& e : json::parse(r->body).value("entry", json::array())) out.insert(e["resource"]["id"]);
    return out;
  };
  EXPECT_EQ(search("/Patient?name=ostergaard"), (std::set<std::string>{"m1"}));
  EXPECT_EQ(search("/Patient?name=ng"), (std::set<std::string>{})) << "deleted";
  EXPECT_EQ(search("/Patient?birthdate=1970"), (std::set<std::string>{"m1"}));
  EXPECT_EQ(search("/Organization?name=acme&_contained=true"), (std::set<std::string>{"m3"}))
      << "the migrator indexes a current contained resource";
  EXPECT_EQ(search("/Observation?code=http://loinc.org%7C1-8&subject=Patient/m1"),
            (std::set<std::string>{"x1"}));
  // And the new server keeps writing on the migrated history.
  auto r = c.Put("/Patient/m1", R"({"resourceType":"Patient","id":"m1"})", kFhirJson);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("ETag"), "W/\"3\"");
  EXPECT_EQ(search("/Patient?name=ostergaard"), (std::set<std::string>{}));
}

}  // namespace
}  // namespace fhirshift::testing

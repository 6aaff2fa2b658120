#include "index/indexer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "corpus/generator.h"
#include "index/normalize.h"
#include "temp_dir.h"

namespace fhirshift::index {
namespace {

const Indexer& indexer() {
  static const auto kIndexer = Indexer::load(Indexer::default_definitions_path());
  return *kIndexer;
}

const IndexEntry* find(const SearchIndex& idx, std::string_view code) {
  for (const auto& e : idx)
    if (e.code == code) return &e;
  return nullptr;
}
std::vector<IndexValue> values(const SearchIndex& idx, std::string_view code) {
  const IndexEntry* e = find(idx, code);
  return e ? e->values : std::vector<IndexValue>{};
}
Token tok(std::optional<std::string> s, std::optional<std::string> c) {
  return Token{s, c, std::nullopt};
}
Token text(std::string t) {
  return Token{std::nullopt, std::nullopt, t};
}
using Vs = std::vector<IndexValue>;

const char* kPatient = R"({"resourceType":"Patient","id":"p1","active":true,
  "meta":{"lastUpdated":"2024-01-02T03:04:05.678Z","profile":["http://x.org/p|2"],"tag":[{"system":"http://t","code":"a"}]},
  "identifier":[{"system":"http://mrn","value":"123"}],
  "name":[{"use":"official","family":"Müller ","given":["Anna","José"],"prefix":["Dr."]},{"text":"Anna Müller"}],
  "telecom":[{"system":"phone","value":"555-1"},{"system":"email","value":"a@b.org"}],
  "gender":"female","birthDate":"1980-05",
  "address":[{"line":["1 Main St"],"city":"Zürich","postalCode":"8000","country":"CH"}],
  "generalPractitioner":[{"reference":"Practitioner/7"},{"reference":"#c1"},{"identifier":{"value":"x"}}],
  "managingOrganization":{"reference":"https://x.org/fhir/Organization/5"},
  "contained":[{"resourceType":"Practitioner","id":"c1"}]})";

TEST(Indexer, PatientStringTokenDateReferenceUriEncodings) {
  IndexStats stats;
  SearchIndex idx = indexer().index("Patient", kPatient, &stats);
  EXPECT_EQ(stats.evaluation_errors, 0);
  EXPECT_EQ(values(idx, "_id"), (Vs{tok(std::nullopt, "p1")}));
  EXPECT_EQ(values(idx, "name"), (Vs{"muller", "anna", "jose", "dr.", "anna muller"}));
  EXPECT_EQ(values(idx, "family"), (Vs{"muller"}));
  EXPECT_EQ(values(idx, "identifier"), (Vs{tok("http://mrn", "123")}));
  EXPECT_EQ(values(idx, "telecom"), (Vs{tok(std::nullopt, "555-1"), tok(std::nullopt, "a@b.org")}));
  EXPECT_EQ(values(idx, "email"), (Vs{tok(std::nullopt, "a@b.org")}));
  EXPECT_EQ(values(idx, "phone"), (Vs{tok(std::nullopt, "555-1")}));
  EXPECT_EQ(values(idx, "gender"), (Vs{tok(std::nullopt, "female")}));
  EXPECT_EQ(values(idx, "active"), (Vs{tok(std::nullopt, "true")}));
  EXPECT_EQ(values(idx, "deceased"), (Vs{tok(std::nullopt, "false")}));
  EXPECT_EQ(values(idx, "birthdate"), (Vs{*parse_date_range("1980-05")}));
  EXPECT_EQ(values(idx, "address"), (Vs{"1 main st", "zurich", "8000", "ch"}));
  EXPECT_EQ(values(idx, "address-city"), (Vs{"zurich"}));
  // "#c1" is skipped, the identifier-only reference has no reference string.
  EXPECT_EQ(values(idx, "general-practitioner"), (Vs{"Practitioner/7"}));
  EXPECT_EQ(values(idx, "organization"), (Vs{"https://x.org/fhir/Organization/5"}));
  EXPECT_EQ(values(idx, "_lastUpdated"), (Vs{*parse_date_range("2024-01-02T03:04:05.678Z")}));
  EXPECT_EQ(values(idx, "_profile"), (Vs{"http://x.org/p|2"}));
  EXPECT_EQ(values(idx, "_tag"), (Vs{tok("http://t", "a")}));
  EXPECT_EQ(find(idx, "link"), nullptr);  // yields nothing: no field
  for (size_t i = 1; i < idx.size(); ++i) EXPECT_LT(idx[i - 1].code, idx[i].code);
}

TEST(Indexer, ObservationCodesQuantitiesPeriodsAndResolveByType) {
  const char* obs = R"({"resourceType":"Observation","id":"o1","status":"final",
    "code":{"coding":[{"system":"http://loinc.org","code":"8867-4"},{"system":"http://loinc.org","code":"8867-4"}],"text":"Heart Rate"},
    "subject":{"reference":"Patient/1"},"performer":[{"reference":"Practitioner/2"}],
    "effectivePeriod":{"start":"2020-01-01T10:00:00+01:00"},
    "valueQuantity":{"value":1.50,"unit":"beats/min","system":"http://unitsofmeasure.org","code":"/min"},
    "component":[{"code":{"text":"x"},"valueQuantity":{"value":7,"unit":"mmHg"}}]})";
  IndexStats stats;
  SearchIndex idx = indexer().index("Observation", obs, &stats);
  EXPECT_EQ(stats.evaluation_errors, 0);
  EXPECT_GT(stats.skipped_params, 0);  // composite parameters (code-value-quantity, ...)
  EXPECT_EQ(values(idx, "code"), (Vs{tok("http://loinc.org", "8867-4"), text("heart rate")}));
  EXPECT_EQ(values(idx, "value-quantity"),
            (Vs{Quantity{1.5, "/min", "http://unitsofmeasure.org"}}));
  EXPECT_EQ(values(idx, "component-value-quantity"), (Vs{Quantity{7, "mmHg", std::nullopt}}));
  auto start = parse_date_range("2020-01-01T10:00:00+01:00");
  EXPECT_EQ(values(idx, "date"), (Vs{DateRange{start->lo_ms, kMaxDateMs}}));
  EXPECT_EQ(values(idx, "subject"), (Vs{"Patient/1"}));
  EXPECT_EQ(values(idx, "patient"), (Vs{"Patient/1"}));
  EXPECT_EQ(values(idx, "performer"), (Vs{"Practitioner/2"}));
  EXPECT_EQ(find(idx, "encounter"), nullptr);
}

TEST(Indexer, OddDataIsCountedNeverThrownAndOtherParametersStillIndex) {
  const char* odd = R"({"resourceType":"Observation","id":"o2","code":"not-an-object",
    "status":"final","effectiveDateTime":"2020-13-45","subject":{"reference":"Patient/1"}})";
  IndexStats stats;
  SearchIndex idx;
  ASSERT_NO_THROW(idx = indexer().index("Observation", odd, &stats));
  EXPECT_GE(stats.evaluation_errors, 2);  // code, date (and the composites' parts are skipped)
  EXPECT_EQ(find(idx, "code"), nullptr);
  EXPECT_EQ(find(idx, "date"), nullptr);
  EXPECT_EQ(values(idx, "status"), (Vs{tok(std::nullopt, "final")}));
  EXPECT_EQ(values(idx, "subject"), (Vs{"Patient/1"}));
  EXPECT_TRUE(indexer().index("Observation", "{not json", &stats).empty());
  EXPECT_TRUE(indexer().index("Observation", "[1,2]", &stats).empty());
}

TEST(Indexer, PlansKeepOnlyTheirTypesPartOfSharedExpressions) {
  const ParamInfo* name = indexer().param("Patient", "name");
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(name->type, ParamType::kString);
  EXPECT_EQ(name->expression, "Patient.name");
  const ParamInfo* phone = indexer().param("Practitioner", "phone");
  ASSERT_NE(phone, nullptr);
  EXPECT_EQ(phone->expression, "Practitioner.telecom.where(system='phone')");
  ASSERT_NE(indexer().param("Patient", "_id"), nullptr);
  EXPECT_EQ(indexer().param("Patient", "_id")->expression, "Resource.id");
  EXPECT_EQ(indexer().param("Patient", "code"), nullptr);
  EXPECT_NE(indexer().param("Observation", "code-value-quantity"), nullptr);  // composite, listed
  // A type the R4 model does not know gets the common Resource parameters.
  SearchIndex idx = indexer().index("NoSuchType", R"({"resourceType":"NoSuchType","id":"n"})");
  EXPECT_EQ(values(idx, "_id"), (Vs{tok(std::nullopt, "n")}));
}

TEST(Indexer, CanonicalReferencesDropTheVersionAndBundleCompositionIndexesItsFirstEntry) {
  const char* qr = R"({"resourceType":"QuestionnaireResponse","id":"q","status":"completed",
    "questionnaire":"http://x.org/Questionnaire/phq|1.0"})";
  EXPECT_EQ(values(indexer().index("QuestionnaireResponse", qr), "questionnaire"),
            (Vs{"http://x.org/Questionnaire/phq"}));
  const char* bundle =
      R"({"resourceType":"Bundle","id":"b","type":"document","timestamp":"2020-01-01T00:00:00Z",
    "entry":[{"resource":{"resourceType":"Composition","id":"c9"}},{"resource":{"resourceType":"Patient","id":"p"}}]})";
  SearchIndex idx = indexer().index("Bundle", bundle);
  EXPECT_EQ(values(idx, "composition"), (Vs{"Composition/c9"}));
  EXPECT_EQ(values(idx, "type"), (Vs{tok(std::nullopt, "document")}));
}

TEST(Indexer, LoadErrorsNameTheFile) {
  try {
    Indexer::load("/nonexistent/search-parameters.json");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/search-parameters.json"), std::string::npos);
  }
}

TEST(Indexer, AnUnsupportedExpressionFailsTheLoadNamingTheParameter) {
  testing::TempDir dir("indexer-defs");
  auto path = dir.path() / "search-parameters.json";
  std::ofstream(path)
      << R"json({"resourceType":"Bundle","entry":[{"resource":{"resourceType":"SearchParameter",
    "id":"Patient-odd","code":"odd","type":"string","base":["Patient"],
    "expression":"Patient.name.descendants()"}}]})json";
  try {
    Indexer::load(path);
    FAIL() << "loaded";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("Patient-odd"), std::string::npos) << what;
    EXPECT_NE(what.find("descendants"), std::string::npos) << what;
  }
}

// Replaces, with probability 1/8 per node, a value by an odd one: a string, a number, null, an
// empty object, a nested array, a wrong-typed array.
void mutate(nlohmann::json& j, std::mt19937_64& rng) {
  auto odd = [&]() -> nlohmann::json {
    switch (rng() % 7) {
      case 0:
        return "odd";
      case 1:
        return 42.5;
      case 2:
        return nullptr;
      case 3:
        return nlohmann::json::object();
      case 4:
        return nlohmann::json::array({nlohmann::json::array({1, 2})});
      case 5:
        return nlohmann::json::array({"a", nullptr, true});
      default:
        return true;
    }
  };
  if (j.is_object()) {
    for (auto& [k, v] : j.items()) {
      if (k == "resourceType") continue;
      if (rng() % 8 == 0)
        v = odd();
      else
        mutate(v, rng);
    }
  } else if (j.is_array()) {
    for (auto& v : j) {
      if (rng() % 8 == 0)
        v = odd();
      else
        mutate(v, rng);
    }
  }
}

TEST(Indexer, MutatedResourcesNeverThrowAndCountTheirProblems) {
  corpus::Generator gen(11);
  std::mt19937_64 rng(11);
  IndexStats stats;
  size_t indexed = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string type(gen.random_type());
    auto j = nlohmann::json::parse(gen.resource(type, "m" + std::to_string(i)));
    mutate(j, rng);
    SearchIndex idx;
    ASSERT_NO_THROW(idx = indexer().index(type, j.dump(), &stats)) << j.dump();
    if (!idx.empty()) ++indexed;
    for (const auto& e : idx) EXPECT_FALSE(e.values.empty());
  }
  EXPECT_GT(stats.evaluation_errors, 1000);  // odd values are met and counted
  EXPECT_GT(indexed, 1900u);                 // the rest of each resource still indexes
}

// index() is called from many migrator threads at once.
TEST(Indexer, ConcurrentCallsGiveTheSameIndexAsOneThread) {
  corpus::Generator gen(5);
  std::vector<std::pair<std::string, std::string>> docs;
  for (int i = 0; i < 300; ++i) {
    std::string type(gen.random_type());
    docs.emplace_back(type, gen.resource(type, "t" + std::to_string(i)));
  }
  std::vector<SearchIndex> expected;
  for (const auto& [type, json] : docs) expected.push_back(indexer().index(type, json));
  std::vector<std::thread> threads;
  std::atomic<int> differences{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < docs.size(); ++i) {
        size_t k = (i * 7 + static_cast<size_t>(t) * 13) % docs.size();
        if (indexer().index(docs[k].first, docs[k].second) != expected[k]) ++differences;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(differences.load(), 0);
}

}  // namespace
}  // namespace fhirshift::index

// Differential test: fhirshift's FHIRPath engine against HL7's fhirpath.js (node, pinned in
// tools/npm) on the raw results of every applicable SearchParameter expression, over a generated
// corpus of every corpus type plus hand-written edge cases.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "corpus/generator.h"
#include "corpus/model_sample.h"
#include "fhirpath/expression.h"
#include "index/indexer.h"
#include "index/normalize.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift {
namespace {

// Resources that the generator does not produce, or shapes it produces rarely.
const char* kEdgeCases[] = {
    R"({"resourceType":"Patient","id":"e1","deceasedBoolean":false,"birthDate":"1970","_birthDate":{"extension":[{"url":"http://x.org/e","valueString":"approx"}]},
       "name":[{"family":"Ünal","given":["Ça\"ğ\\rı"]},{"family":"Ünal","given":["Ça\"ğ\\rı"]}],
       "telecom":[{"system":"email","value":"x@y.org"},{"system":"phone","value":"1"},{"system":"url","value":"http://x"}],
       "link":[{"other":{"reference":"Patient/2"},"type":"seealso"},{"other":{"reference":"RelatedPerson/3"},"type":"refer"}],
       "generalPractitioner":[{"reference":"#missing"},{"reference":"Practitioner/1/_history/3"},{"reference":"Foo/1"},{"reference":"/Practitioner"}]})",
    R"({"resourceType":"Patient","id":"e2","deceasedDateTime":"2020","active":false,"gender":"unknown"})",
    R"({"resourceType":"Observation","id":"e3","status":"final","code":{"text":"only text"},"valueSampledData":{"origin":{"value":0},"period":1.0,"dimensions":1,"data":"1 2"},
       "component":[{"code":{"coding":[{"code":"x"}]},"dataAbsentReason":{"text":"unknown"}},{"code":{"text":"y"},"valueString":"s"}],
       "effectiveTiming":{"event":["2020-01-01","2020-01-02T10:00:00Z"]},"subject":{"reference":"Group/1"},"hasMember":[{"reference":"MolecularSequence/1"}]})",
    R"({"resourceType":"Observation","id":"e4","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"1-1"}]},
       "valueRange":{"low":{"value":1.50,"unit":"mg"}},"effectiveInstant":"2020-01-01T00:00:00.000Z","focus":[{"reference":"Patient/1"}]})",
    R"({"resourceType":"Condition","id":"e5","subject":{"reference":"Patient/1"},"onsetString":"childhood","abatementAge":{"value":5,"unit":"a"},"code":{"coding":[{"system":"s","code":"c"}]}})",
    R"({"resourceType":"Bundle","id":"e6","type":"document","identifier":{"system":"urn:ietf:rfc:3986","value":"urn:uuid:1"},"timestamp":"2020-01-01T00:00:00Z",
       "entry":[{"fullUrl":"urn:uuid:c","resource":{"resourceType":"Composition","id":"c","status":"final","type":{"text":"t"},"date":"2020","title":"T","author":[{"reference":"Practitioner/1"}]}},
                {"resource":{"resourceType":"Patient","id":"p"}}]})",
    R"({"resourceType":"Bundle","id":"e7","type":"message","entry":[{"resource":{"resourceType":"MessageHeader","id":"m","eventCoding":{"code":"x"},"source":{"endpoint":"http://x"}}}]})",
    R"({"resourceType":"Goal","id":"e8","lifecycleStatus":"active","description":{"text":"d"},"subject":{"reference":"Patient/1"},"startCodeableConcept":{"text":"later"},
       "target":[{"dueDate":"2021-01-01"},{"dueDuration":{"value":3,"unit":"d"}}]})",
    R"({"resourceType":"Group","id":"e9","type":"person","actual":true,"characteristic":[{"code":{"text":"c"},"valueBoolean":true,"exclude":false},{"code":{"text":"d"},"valueReference":{"reference":"Patient/1"},"exclude":true}]})",
    R"({"resourceType":"MedicationRequest","id":"e10","status":"active","intent":"order","subject":{"reference":"Patient/1"},
       "contained":[{"resourceType":"Medication","id":"m1","code":{"text":"aspirin"}}],"medicationReference":{"reference":"#m1"}})",
    R"({"resourceType":"ActivityDefinition","id":"e11","status":"active","url":"http://x.org/ad","relatedArtifact":[{"type":"composed-of","resource":"http://x.org/Library/a|1"},{"type":"depends-on","resource":"http://x.org/Library/b"}],
       "useContext":[{"code":{"code":"age"},"valueRange":{"low":{"value":1}}},{"code":{"code":"focus"},"valueCodeableConcept":{"text":"x"}},{"code":{"code":"q"},"valueQuantity":{"value":2}}]})",
    R"({"resourceType":"ConceptMap","id":"e12","status":"active","sourceUri":"http://x.org/vs1","targetCanonical":"http://x.org/vs2|3","group":[{"source":"http://s","element":[{"code":"a","target":[{"code":"b","equivalence":"equal"}]}]}]})",
    R"({"resourceType":"Composition","id":"e13","status":"final","type":{"text":"t"},"date":"2020","title":"T","author":[{"reference":"Practitioner/1"}],
       "relatesTo":[{"code":"replaces","targetIdentifier":{"value":"1"}},{"code":"appends","targetReference":{"reference":"Composition/2"}}]})",
    R"({"resourceType":"DeviceRequest","id":"e14","status":"active","intent":"order","subject":{"reference":"Patient/1"},"codeReference":{"reference":"Device/1"},"occurrencePeriod":{"start":"2020"}})",
    R"({"resourceType":"Person","id":"e15","link":[{"target":{"reference":"Patient/1"}},{"target":{"reference":"Practitioner/2"}},{"target":{"reference":"RelatedPerson/3"}}]})",
    R"({"resourceType":"AuditEvent","id":"e16","type":{"code":"rest"},"recorded":"2020-01-01T00:00:00Z","agent":[{"who":{"reference":"Patient/1"},"requestor":true}],"source":{"observer":{"reference":"Device/1"}},
       "entity":[{"what":{"reference":"Patient/1"}},{"what":{"reference":"Observation/1"}}]})",
    R"({"resourceType":"Substance","id":"e17","code":{"text":"s"},"ingredient":[{"substanceReference":{"reference":"Substance/2"}},{"substanceCodeableConcept":{"text":"water"}}]})",
    R"({"resourceType":"Appointment","id":"e18","status":"booked","participant":[{"actor":{"reference":"Patient/1"},"status":"accepted"},{"actor":{"reference":"Location/2"},"status":"accepted"},{"actor":{"display":"x"},"status":"accepted"}]})",
    R"({"resourceType":"Observation","id":"e19","status":"final","code":{"text":"n"},"valueQuantity":{"value":1e2,"unit":"mg"},"valueString":"both choice variants"})",
};

struct Case {
  std::string type, json;
};

TEST(IndexDifferential, RawResultsAgreeWithFhirpathJsOnCorpusAndEdgeCases) {
  auto indexer = index::Indexer::load(FHIRSHIFT_SEARCH_PARAMETERS);
  std::vector<Case> cases;
  corpus::Generator gen(20240601);
  for (const auto& type : corpus::Generator::types())
    for (int i = 0; i < 20; ++i)
      cases.push_back({type, gen.resource(type, "c" + std::to_string(i))});
  for (int i = 0; i < 1500; ++i) {
    std::string type(gen.random_type());
    cases.push_back({type, gen.resource(type, "r" + std::to_string(i))});
  }
  // Every resource type with parameters, synthesised with every element present.
  for (const auto& type : fhirpath::Model::r4().resource_types())
    for (size_t variant = 0; variant < 3; ++variant)
      cases.push_back({type, corpus::model_sample(type, "m" + std::to_string(variant), variant)});
  for (const char* edge : kEdgeCases) {
    auto j = nlohmann::json::parse(edge);
    cases.push_back({j["resourceType"], edge});
  }

  // The expressions: every applicable, indexed parameter of each type in the cases.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>>
      params;  // type -> (code, expr)
  for (const auto& c : cases) {
    if (params.count(c.type)) continue;
    auto& list = params[c.type];
    for (const auto* p : indexer->params(c.type))
      if (p->type != index::ParamType::kComposite && p->type != index::ParamType::kSpecial &&
          !p->expression.empty())
        list.emplace_back(p->code, p->expression);
  }
  EXPECT_GE(params.size(), 30u);

  testing::TempDir dir("fhirpath-diff");
  auto job_path = dir.path() / "job.jsonl";
  auto out_path = dir.path() / "out.jsonl";
  {
    nlohmann::json header;
    for (const auto& [type, list] : params)
      for (const auto& [code, expr] : list) header["params"][type].push_back(expr);
    std::ofstream job(job_path);
    job << header.dump() << "\n";
    for (const auto& c : cases)
      job << nlohmann::json{{"type", c.type}, {"json", c.json}}.dump() << "\n";
  }
  auto run = testing::run_command(
      {FHIRSHIFT_NODE, std::string(FHIRSHIFT_SOURCE_DIR) + "/tools/npm/fhirpath-oracle.js", "eval",
       job_path.string(), out_path.string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;

  std::map<std::string, std::map<std::string, std::shared_ptr<const fhirpath::Expression>>>
      compiled;
  for (const auto& [type, list] : params)
    for (const auto& [code, expr] : list)
      compiled[type][expr] = fhirpath::Expression::compile(expr, type);

  std::ifstream out(out_path);
  std::string line;
  simdjson::dom::parser parser;
  size_t comparisons = 0, nonempty = 0, mismatches = 0, oracle_errors = 0;
  for (const auto& c : cases) {
    ASSERT_TRUE(std::getline(out, line)) << "oracle output ends early";
    auto theirs = nlohmann::json::parse(line);
    simdjson::dom::element doc = parser.parse(c.json);
    const auto& list = params[c.type];
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& [code, expr] = list[i];
      if (theirs["errors"].contains(std::to_string(i))) {
        // fhirpath.js cannot compare Quantities with a comparator ("<5 mg"), so a union that
        // deduplicates them throws there; fhirshift compares them as JSON. Nothing to compare.
        std::string error = theirs["errors"][std::to_string(i)];
        ++oracle_errors;
        if (error.find("Quantity that has a comparator") == std::string::npos)
          ADD_FAILURE() << "fhirpath.js failed on " << c.type << " " << code << " '" << expr
                        << "': " << error;
        continue;
      }
      nlohmann::json mine = nlohmann::json::array();
      fhirpath::EvalState state;
      try {
        for (const auto& v : compiled[c.type][expr]->evaluate(doc, state))
          mine.push_back(nlohmann::json::parse(fhirpath::to_json(v)));
      } catch (const std::exception& e) {
        mine = std::string("error: ") + e.what();
      }
      ++comparisons;
      if (!theirs["results"][i].empty()) ++nonempty;
      if (mine != theirs["results"][i]) {
        if (++mismatches <= 30)
          ADD_FAILURE() << c.type << " " << code << " '" << expr
                        << "'\n  fhirshift:   " << mine.dump()
                        << "\n  fhirpath.js: " << theirs["results"][i].dump()
                        << "\n  resource: " << c.json;
      }
    }
  }
  std::cout << cases.size() << " resources of " << params.size() << " types, " << comparisons
            << " comparisons (" << nonempty << " non-empty), " << mismatches << " mismatches, "
            << oracle_errors << " oracle errors\n";
  EXPECT_EQ(mismatches, 0u);
  EXPECT_LT(oracle_errors * 100, comparisons);
  EXPECT_GT(comparisons, 20000u);
  EXPECT_GT(nonempty, comparisons / 5);
}

// Every string of a JSON value, recursively.
void collect_strings(simdjson::dom::element e, std::set<std::string>& out) {
  switch (e.type()) {
    case simdjson::dom::element_type::STRING:
      out.insert(std::string(std::string_view(e)));
      break;
    case simdjson::dom::element_type::ARRAY:
      for (auto item : simdjson::dom::array(e)) collect_strings(item, out);
      break;
    case simdjson::dom::element_type::OBJECT:
      for (auto field : simdjson::dom::object(e)) collect_strings(field.value, out);
      break;
    default:
      break;
  }
}

// Only Latin-1, Latin Extended-A, Greek and Cyrillic text without a capital sigma: fhirshift
// lower-cases those only, JavaScript every script, and Σ at a word's end to ς.
bool comparable_case(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0xC0 && (c < 0xC2 || c > 0xD1 || (c >= 0xC6 && c <= 0xC9))) return false;
  }
  return s.find("\xCE\xA3") == std::string_view::npos;  // Σ
}

// The string and date normalisations of the index against an independent JavaScript rendition
// (Unicode NFD decomposition, Date arithmetic) on every string of the corpus plus tricky cases.
TEST(IndexDifferential, StringAndDateNormalisationsAgreeWithJavaScript) {
  std::set<std::string> strings{"Müller ",
                                "  José\tMaría  NÚÑEZ\n",
                                "Łukasiewicz Søren Æbelø Straße",
                                "İstanbul ŒUVRE Ŀa",
                                "\u00a0nbsp\u00a0",
                                "ÿŸ",
                                "Ωμέγα ΆΈΉΊΌΎΏ Ϊ Ϋ ΐ ΰ ΟΔΟΣ",
                                "Иванов ЁЛКА Ђ Љ йод Ўсць Їжак Ѓ Ќ",
                                "tab\tand\nnewline"};
  std::set<std::string> dates{"2020",
                              "2020-02",
                              "2021-02",
                              "2024-02-29",
                              "2023-02-29",
                              "1900-02",
                              "2000-02",
                              "0001",
                              "9999-12-31",
                              "2020-03-15T10:20:30.123+02:00",
                              "2020-03-15T00:20:30-05:30",
                              "2020-12-31T23:59:59.9999Z",
                              "2020-03-15T10:20",
                              "2020-03-15T10:20:30.5Z",
                              "2020-03-15T10:20:30.05Z",
                              "2020-01-01T00:00:00+14:00",
                              "2020-01-01T00:00:00-12:00",
                              "2020-01-01T10:00:00",
                              "2020-13",
                              "2020-00",
                              "2020-02-30",
                              "2020-01-01T24:00:00Z",
                              "2020-01-01T10:00:00+15:00",
                              "20200101"};
  corpus::Generator gen(77);
  simdjson::dom::parser parser;
  for (int i = 0; i < 1500; ++i) {
    std::string type(gen.random_type());
    std::string json = gen.resource(type, "n" + std::to_string(i));
    std::set<std::string> all;
    collect_strings(parser.parse(json), all);
    for (const auto& s : all) {
      if (!s.empty() && std::isdigit(static_cast<unsigned char>(s[0])) && s.size() >= 4)
        dates.insert(s);
      else
        strings.insert(s);
    }
  }
  std::vector<std::string> strs(strings.begin(), strings.end()), dts(dates.begin(), dates.end());
  testing::TempDir dir("normalize-diff");
  auto in = dir.path() / "in.json", out = dir.path() / "out.json";
  std::ofstream(in) << nlohmann::json{{"strings", strs}, {"dates", dts}}.dump();
  auto run = testing::run_command(
      {FHIRSHIFT_NODE, std::string(FHIRSHIFT_SOURCE_DIR) + "/tools/npm/fhirpath-oracle.js",
       "normalize", in.string(), out.string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::ifstream result_file(out);
  auto theirs = nlohmann::json::parse(result_file);
  size_t mismatches = 0, parsed = 0;
  for (size_t i = 0; i < strs.size(); ++i) {
    if (index::normalize_string(strs[i]) != theirs["strings"][i].get<std::string>() &&
        ++mismatches < 20)
      ADD_FAILURE() << "normalize_string('" << strs[i] << "') = '"
                    << index::normalize_string(strs[i]) << "', JavaScript: '"
                    << theirs["strings"][i].get<std::string>() << "'";
    if (comparable_case(strs[i]) &&
        index::lower_case(strs[i]) != theirs["lower"][i].get<std::string>() && ++mismatches < 20)
      ADD_FAILURE() << "lower_case('" << strs[i] << "') = '" << index::lower_case(strs[i])
                    << "', JavaScript: '" << theirs["lower"][i].get<std::string>() << "'";
  }
  for (size_t i = 0; i < dts.size(); ++i) {
    auto mine = index::parse_date_range(dts[i]);
    nlohmann::json m = mine ? nlohmann::json{mine->lo_ms, mine->hi_ms} : nlohmann::json(nullptr);
    if (mine) ++parsed;
    if (m != theirs["dates"][i] && ++mismatches < 20)
      ADD_FAILURE() << "parse_date_range('" << dts[i] << "') = " << m.dump()
                    << ", JavaScript: " << theirs["dates"][i].dump();
  }
  std::cout << strs.size() << " strings, " << dts.size() << " dates (" << parsed << " valid), "
            << mismatches << " mismatches\n";
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(strs.size(), 1000u);
  EXPECT_GT(parsed, 1000u);
}

}  // namespace
}  // namespace fhirshift

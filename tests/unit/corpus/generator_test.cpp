#include "corpus/generator.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <map>
#include <regex>
#include <set>
#include <string>

namespace fhirshift::corpus {
namespace {

TEST(CorpusGenerator, SameSeedSameBytesDifferentSeedDifferentBytes) {
  Generator a(42), b(42), c(43);
  for (int i = 0; i < 50; ++i) {
    std::string type(a.random_type());
    EXPECT_EQ(type, b.random_type());
    std::string id = "r" + std::to_string(i);
    EXPECT_EQ(a.resource(type, id), b.resource(type, id));
  }
  EXPECT_NE(Generator(42).resource("Patient", "p1"), c.resource("Patient", "p1"));
}

TEST(CorpusGenerator, AtLeastThirtyTypesEachValidJsonWithTypeAndIdFirst) {
  const auto& types = Generator::types();
  EXPECT_GE(types.size(), 30u);
  Generator gen(7);
  simdjson::dom::parser parser;
  for (const auto& type : types) {
    for (int i = 0; i < 20; ++i) {
      std::string id = "id-" + std::to_string(i);
      std::string json = gen.resource(type, id);
      simdjson::dom::element doc;
      ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
      simdjson::dom::object obj;
      ASSERT_EQ(doc.get(obj), simdjson::SUCCESS);
      auto it = obj.begin();
      EXPECT_EQ(it.key(), "resourceType");
      EXPECT_EQ(std::string_view(it.value()), type);
      ++it;
      EXPECT_EQ(it.key(), "id");
      EXPECT_EQ(std::string_view(it.value()), id);
      EXPECT_GT(obj.size(), 3u) << type << " has no content: " << json;
    }
  }
  EXPECT_THROW(gen.resource("NoSuchType", "x"), std::invalid_argument);
}

TEST(CorpusGenerator, RandomTypeIsWeightedAndCoversTypes) {
  Generator gen(1);
  std::map<std::string, int> counts;
  for (int i = 0; i < 20000; ++i) counts[std::string(gen.random_type())]++;
  EXPECT_EQ(counts.size(), Generator::types().size());
  EXPECT_GT(counts["Observation"], counts["Patient"]);
  EXPECT_GT(counts["Patient"], counts["Endpoint"]);
}

// The realism the differential test and the migration rely on: every date precision, zones,
// choice types, contained resources and references, extensions, decimals with trailing zeros.
TEST(CorpusGenerator, CorpusHasTheHardCases) {
  Generator gen(2024);
  std::string all;
  for (int i = 0; i < 3000; ++i) {
    std::string type(gen.random_type());
    all += gen.resource(type, "x" + std::to_string(i));
    all += '\n';
  }
  auto has = [&](const char* pattern) { return std::regex_search(all, std::regex(pattern)); };
  EXPECT_TRUE(has(R"("effectiveDateTime":"\d{4}")"));           // year
  EXPECT_TRUE(has(R"("effectiveDateTime":"\d{4}-\d{2}")"));     // year-month
  EXPECT_TRUE(has(R"("birthDate":"\d{4}-\d{2}-\d{2}")"));       // date
  EXPECT_TRUE(has(R"(T\d{2}:\d{2}:\d{2}\.\d{3}Z")"));           // millis, Z
  EXPECT_TRUE(has(R"(T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")"));    // offset
  EXPECT_TRUE(has(R"(T\d{2}:\d{2}:\d{2}")"));                   // no zone
  EXPECT_TRUE(has(R"("valueQuantity":\{"value":\d+\.\d*0,)"));  // 1.50-like decimal
  EXPECT_TRUE(has(R"("valueCodeableConcept")"));
  EXPECT_TRUE(has(R"("valueString")"));
  EXPECT_TRUE(has(R"("onsetAge")"));
  EXPECT_TRUE(has(R"("onsetPeriod")"));
  EXPECT_TRUE(has(R"("effectivePeriod")"));
  EXPECT_TRUE(has(R"("contained":\[)"));
  EXPECT_TRUE(has(R"("reference":"#)"));
  EXPECT_TRUE(has(R"("reference":"https://)"));
  EXPECT_TRUE(has(R"(/_history/)"));
  EXPECT_TRUE(has(R"("extension":\[\{"url":"[^"]+","extension")"));  // nested extension
  EXPECT_TRUE(has(R"(Müller|Núñez|Schäfer)"));
  EXPECT_TRUE(has(R"("resourceType":"Bundle".*"entry":\[)"));
}

}  // namespace
}  // namespace fhirshift::corpus

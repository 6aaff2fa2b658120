#include <gtest/gtest.h>

#include "schema/entry.h"

namespace fhirshift::schema {
namespace {

using mongo::Bson;

constexpr const char* kId = "65a1b2c3d4e5f60718293a4b";

std::string legacy_json(const std::string& overrides_removed = "", const std::string& extra = "") {
  std::string fields =
      std::string(R"("_id":{"$oid":")") + kId + R"("},"im":"Fhir4.0","type":"Patient","res_id":"p1",)"
      R"("v":"2","lu":{"$date":"2024-01-02T03:04:05.678Z"},"cur":true,"change":"u","cnt":false,)"
      R"("json":"{\"resourceType\":\"Patient\",\"id\":\"p1\",\"x\":1.50}","ix":{"junk":1})";
  if (!overrides_removed.empty()) {
    auto pos = fields.find("\"" + overrides_removed + "\":");
    auto end = fields.find(",\"", pos + 1);
    fields.erase(pos, end == std::string::npos ? std::string::npos : end - pos + 1);
    if (!fields.empty() && fields.back() == ',') fields.pop_back();
  }
  return "{" + fields + extra + "}";
}

TEST(DecodeEntry, ReadsEveryCommonFieldAndIgnoresUnknownOnes) {
  Bson doc = Bson::from_json(legacy_json());
  Entry e = decode_entry(doc.get());
  EXPECT_EQ(e.id_string(), kId);
  EXPECT_EQ(e.im, "Fhir4.0");
  EXPECT_EQ(e.type, "Patient");
  EXPECT_EQ(e.res_id, "p1");
  EXPECT_EQ(e.v, "2");
  EXPECT_EQ(e.lu_ms, 1704164645678);
  EXPECT_TRUE(e.cur);
  EXPECT_EQ(e.change, Change::kUpdated);
  EXPECT_FALSE(e.cnt);
  EXPECT_FALSE(e.container.has_value());
  EXPECT_EQ(*e.json, R"({"resourceType":"Patient","id":"p1","x":1.50})");
}

TEST(DecodeEntry, ErrorsNameTheEntryTheFieldAndWhatWasExpected) {
  struct Case {
    std::string json;
    std::string field;
    std::string fragment;
  } cases[] = {
      {legacy_json("res_id"), "res_id", "expected a string, got nothing (field absent)"},
      {legacy_json("lu"), "lu", "expected a Date"},
      {legacy_json("cur"), "cur", "expected a bool"},
      {legacy_json("json"), "json", "expected a string"},
  };
  for (const auto& c : cases) {
    Bson doc = Bson::from_json(c.json);
    try {
      decode_entry(doc.get());
      FAIL() << "no error for missing " << c.field;
    } catch (const EntryError& e) {
      EXPECT_EQ(e.entry_id(), kId);
      EXPECT_EQ(e.field(), c.field);
      EXPECT_NE(std::string(e.what()).find(c.fragment), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(kId), std::string::npos) << e.what();
    }
  }
}

TEST(DecodeEntry, RejectsValuesOutsideTheSchema) {
  auto expect_field_error = [](const std::string& json, const std::string& field) {
    Bson doc = Bson::from_json(json);
    try {
      decode_entry(doc.get());
      ADD_FAILURE() << "accepted " << json;
    } catch (const EntryError& e) {
      EXPECT_EQ(e.field(), field) << e.what();
    }
  };
  std::string base = legacy_json();
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = base;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  expect_field_error(with(R"("res_id":"p1")", R"("res_id":"has space")"), "res_id");
  expect_field_error(with(R"("im":"Fhir4.0")", R"("im":"Fhir5.0")"), "im");
  expect_field_error(with(R"("change":"u")", R"("change":"x")"), "change");
  expect_field_error(with(R"("cnt":false)", R"("cnt":true)"), "container");
  expect_field_error(with(R"("_id":{"$oid":"65a1b2c3d4e5f60718293a4b"})", R"("_id":"text")"), "_id");
  expect_field_error(with(R"("change":"u")", R"("change":"d")"), "json");
}

TEST(DecodeEntry, TombstonesHaveNoBodyAndContainedEntriesNameTheirContainer) {
  std::string t = legacy_json("json");
  t.replace(t.find(R"("change":"u")"), 12, R"("change":"d")");
  Entry e = decode_entry(Bson::from_json(t).get());
  EXPECT_TRUE(e.is_tombstone());
  EXPECT_FALSE(e.json.has_value());

  std::string c = legacy_json("", R"(,"container":{"$oid":"65a1b2c3d4e5f60718293a4c"})");
  c.replace(c.find(R"("cnt":false)"), 11, R"("cnt":true)");
  Entry contained = decode_entry(Bson::from_json(c).get());
  EXPECT_TRUE(contained.cnt);
  EXPECT_EQ(mongo::oid_to_string(*contained.container), "65a1b2c3d4e5f60718293a4c");
}

TEST(DecodeEntry, MissingCntMeansNotContained) {
  Entry e = decode_entry(Bson::from_json(legacy_json("cnt")).get());
  EXPECT_FALSE(e.cnt);
}

TEST(SystemDocuments, AreRecognisedByTheMissingTypeField) {
  EXPECT_TRUE(is_system_document(Bson::from_json(R"({"_id":"system","schemaVersion":1})").get()));
  EXPECT_FALSE(is_system_document(Bson::from_json(legacy_json()).get()));
}

TEST(EncodeCurrent, WritesTheSpecFieldsInOrderWithTheIndex) {
  CurrentEntry e;
  e.id = *mongo::oid_from_string(kId);
  e.im = kInfoModelR4;
  e.type = "Observation";
  e.res_id = "o1";
  e.v = "1";
  e.lu_ms = 0;
  e.cur = true;
  e.change = Change::kCreated;
  e.json = R"({"resourceType":"Observation","valueQuantity":{"value":1.50}})";
  e.idx = index::SearchIndex{
      {"code", {index::Token{"http://loinc.org", "1234-5", std::nullopt},
                index::Token{std::nullopt, std::nullopt, "glucose"}}},
      {"date", {index::DateRange{0, 999}}},
      {"value-quantity", {index::Quantity{1.5, "mg", std::nullopt}}},
      {"subject", {std::string("Patient/p1")}},
      {"probability", {0.25}},
  };
  EXPECT_EQ(encode_current(e).to_json(),
            std::string(R"({ "_id" : { "$oid" : ")") + kId +
                R"(" }, "im" : "Fhir4.0", "type" : "Observation", "res_id" : "o1", "v" : "1", )"
                R"("lu" : { "$date" : "1970-01-01T00:00:00Z" }, "cur" : true, "change" : "c", "cnt" : false, )"
                R"("json" : "{\"resourceType\":\"Observation\",\"valueQuantity\":{\"value\":1.50}}", )"
                R"("idx" : { "code" : [ { "s" : "http://loinc.org", "c" : "1234-5" }, { "s" : null, "t" : "glucose" } ], )"
                R"("date" : [ { "lo" : { "$date" : "1970-01-01T00:00:00Z" }, "hi" : { "$date" : "1970-01-01T00:00:00.999Z" } } ], )"
                R"("value-quantity" : [ { "v" : 1.5, "u" : "mg", "s" : null } ], )"
                R"("subject" : [ "Patient/p1" ], "probability" : [ 0.25 ] } })");
}

TEST(EncodeLegacy, RoundTripsThroughDecode) {
  Entry e = decode_entry(Bson::from_json(legacy_json()).get());
  Entry again = decode_entry(encode_legacy(e).get());
  EXPECT_EQ(again.id_string(), e.id_string());
  EXPECT_EQ(again.json, e.json);
  EXPECT_EQ(again.lu_ms, e.lu_ms);
  EXPECT_EQ(again.change, e.change);
  EXPECT_FALSE(mongo::View(encode_legacy(e).get()).has("idx"));
}

TEST(FhirId, FollowsTheFhirIdRule) {
  EXPECT_TRUE(is_valid_fhir_id("abc-DEF.123"));
  EXPECT_TRUE(is_valid_fhir_id(std::string(64, 'a')));
  EXPECT_FALSE(is_valid_fhir_id(std::string(65, 'a')));
  EXPECT_FALSE(is_valid_fhir_id(""));
  EXPECT_FALSE(is_valid_fhir_id("a_b"));
}

}  // namespace
}  // namespace fhirshift::schema

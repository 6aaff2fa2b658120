#include "schema/shard_key.h"
#include "schema/layout.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace fhirshift::schema {
namespace {

Entry patient() {
  Entry e;
  bson_oid_init_from_string(&e.id, "65a1b2c3d4e5f60718293a4b");
  e.im = kInfoModelR4;
  e.type = "Patient";
  e.res_id = "p1";
  e.v = "2";
  e.cur = true;
  e.change = Change::kUpdated;
  return e;
}

TEST(ShardKey, TheFullFilterNamesTheIdAndEveryShardKeyFieldAsTheEntryIsNow) {
  mongo::Bson f = ShardKey::of(patient()).filter(KeyFilter::kFullKey);
  EXPECT_EQ(f.to_json(),
            R"({ "_id" : { "$oid" : "65a1b2c3d4e5f60718293a4b" }, "type" : "Patient", "im" : "Fhir4.0", )"
            R"("cur" : true, "cnt" : false, "change" : "u", "res_id" : "p1" })");
  // Every field of the shard key (layout.h) is in it.
  mongo::View filter(f.get());
  bson_iter_t it;
  mongo::Bson key = shard_key();
  ASSERT_TRUE(bson_iter_init(&it, key.get()));
  while (bson_iter_next(&it)) EXPECT_TRUE(filter.has(bson_iter_key(&it))) << bson_iter_key(&it);
}

TEST(ShardKey, FerretDbGetsTheIdAloneUnlessTheFullKeyIsAskedFor) {
  EXPECT_EQ(ShardKey::of(patient()).filter(KeyFilter::kIdOnly).to_json(),
            R"({ "_id" : { "$oid" : "65a1b2c3d4e5f60718293a4b" } })");
  ::unsetenv("FHIRSHIFT_SHARD_KEY_FILTER");
  EXPECT_EQ(key_filter_for(true), KeyFilter::kIdOnly);
  EXPECT_EQ(key_filter_for(false), KeyFilter::kFullKey);
  ::setenv("FHIRSHIFT_SHARD_KEY_FILTER", "full", 1);
  EXPECT_EQ(key_filter_for(true), KeyFilter::kFullKey);
  ::unsetenv("FHIRSHIFT_SHARD_KEY_FILTER");
}

TEST(ShardKey, ReadsTheKeyOfAStoredDocumentAndMatchesAMissingCntAsNull) {
  mongo::Bson doc = mongo::Bson::from_json(
      R"({"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "im": "Fhir4.0", "type": "Observation",
          "res_id": "o1", "cur": false, "change": "d"})");
  auto k = ShardKey::read(doc.get());
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->type, "Observation");
  EXPECT_FALSE(k->cur);
  EXPECT_EQ(k->change, Change::kDeleted);
  EXPECT_FALSE(k->cnt.has_value());
  EXPECT_NE(k->filter(KeyFilter::kFullKey).to_json().find(R"("cnt" : null)"), std::string::npos);
}

TEST(ShardKey, ADocumentWithoutTheKeyFieldsHasNoKey) {
  EXPECT_FALSE(ShardKey::read(mongo::Bson::from_json(R"({"_id": "system", "schemaVersion": 2})").get()));
  EXPECT_FALSE(ShardKey::read(
      mongo::Bson::from_json(R"({"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "im": "Fhir4.0", "type": "Patient",
                                 "res_id": "p", "cur": true, "change": "x"})")
          .get()));
}

TEST(ShardKey, TheProjectionAsksForTheIdAndTheKeyFields) {
  mongo::Builder p;
  ShardKey::project(p);
  EXPECT_EQ(p.extract().to_json(),
            R"({ "_id" : 1, "type" : 1, "im" : 1, "cur" : 1, "cnt" : 1, "change" : 1, "res_id" : 1 })");
}

}  // namespace
}  // namespace fhirshift::schema

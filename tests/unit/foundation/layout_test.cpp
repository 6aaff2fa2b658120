#include <gtest/gtest.h>

#include "schema/layout.h"

namespace fhirshift::schema {
namespace {

TEST(Layout, IndexesAreTheSpecsOnes) {
  auto specs = current_schema_indexes();
  ASSERT_EQ(specs.size(), 9u);
  EXPECT_EQ(specs[0].keys.to_json(), R"({ "im" : 1, "type" : 1, "res_id" : 1, "v" : 1, "container" : 1 })");
  EXPECT_TRUE(specs[0].unique);
  EXPECT_EQ(specs[1].keys.to_json(), R"({ "im" : 1, "type" : 1, "res_id" : 1, "cur" : 1 })");
  EXPECT_EQ(specs[2].keys.to_json(), R"({ "type" : 1, "cur" : 1, "lu" : 1 })");
  std::vector<std::string> search;
  for (size_t i = 3; i < specs.size(); ++i) search.push_back(specs[i].keys.to_json());
  EXPECT_EQ(search, (std::vector<std::string>{
                        R"({ "idx.identifier" : 1 })", R"({ "idx.subject" : 1 })", R"({ "idx.patient" : 1 })",
                        R"({ "idx.code" : 1 })", R"({ "idx.name" : 1 })", R"({ "idx.date" : 1 })"}));
}

TEST(Layout, ShardedClustersGetANonUniqueVersionIndex) {
  EXPECT_FALSE(current_schema_indexes(true)[0].unique);
}

TEST(Layout, ShardKeyAndSystemDocuments) {
  EXPECT_EQ(shard_key().to_json(),
            R"({ "type" : 1, "im" : 1, "cur" : 1, "cnt" : 1, "change" : 1, "res_id" : "hashed" })");
  EXPECT_EQ(legacy_system_document().to_json(), R"({ "_id" : "system", "schemaVersion" : 1 })");
  mongo::Builder from;
  from.append("tool", "t");
  EXPECT_EQ(current_system_document(0, from.extract()).to_json(),
            R"({ "_id" : "system", "schemaVersion" : 2, "provisionedAt" : { "$date" : "1970-01-01T00:00:00Z" }, )"
            R"("migratedFrom" : { "tool" : "t" } })");
  EXPECT_EQ(quarantine_collection("vonkentries"), "vonkentries_quarantine");
}

}  // namespace
}  // namespace fhirshift::schema

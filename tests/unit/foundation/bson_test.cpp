#include <gtest/gtest.h>

#include "mongo/bson.h"

namespace fhirshift::mongo {
namespace {

TEST(Bson, BuilderWritesNestedDocumentsAndArraysInOrder) {
  Builder b;
  b.append("s", "text").append("i", int32_t{7}).append("l", int64_t{1} << 40).append("d", 1.5);
  b.append("b", true).append_null("n").append_date("t", 1700000000123);
  b.document("doc", [](Builder& d) { d.append("x", int32_t{1}); });
  b.array("arr", [](ArrayBuilder& a) {
    a.append(std::string("a")).append(int32_t{2}).document([](Builder& d) { d.append("y", false); });
  });
  Bson doc = b.extract();
  EXPECT_EQ(doc.to_json(),
            R"({ "s" : "text", "i" : 7, "l" : 1099511627776, "d" : 1.5, "b" : true, "n" : null, )"
            R"("t" : { "$date" : "2023-11-14T22:13:20.123Z" }, "doc" : { "x" : 1 }, )"
            R"("arr" : [ "a", 2, { "y" : false } ] })");
}

TEST(Bson, ExtractLeavesTheBuilderEmptyAndReusable) {
  Builder b;
  b.append("a", int32_t{1});
  Bson first = b.extract();
  b.append("b", int32_t{2});
  EXPECT_EQ(first.to_json(), R"({ "a" : 1 })");
  EXPECT_EQ(b.extract().to_json(), R"({ "b" : 2 })");
}

TEST(Bson, FromJsonRejectsInvalidInputWithTheParserMessage) {
  EXPECT_THROW(Bson::from_json("{not json"), std::invalid_argument);
  EXPECT_EQ(Bson::from_json(R"({"a": {"$numberLong": "5"}})").to_json(), R"({ "a" : 5 })");
}

TEST(View, TypedGettersReturnNulloptForAbsentOrOtherTypes) {
  Bson doc = Bson::from_json(
      R"({"s":"x","b":true,"i":{"$numberInt":"3"},"l":{"$numberLong":"4"},"d":2.0,"f":2.5,)"
      R"("t":{"$date":{"$numberLong":"42"}},"o":{"$oid":"65a1b2c3d4e5f60718293a4b"},)"
      R"("sub":{"k":"v"},"arr":[1,2]})");
  View v(doc.get());
  EXPECT_EQ(v.string("s"), "x");
  EXPECT_EQ(v.string("b"), std::nullopt);
  EXPECT_EQ(v.string("missing"), std::nullopt);
  EXPECT_EQ(v.boolean("b"), true);
  EXPECT_EQ(v.integer("i"), 3);
  EXPECT_EQ(v.integer("l"), 4);
  EXPECT_EQ(v.integer("d"), 2);
  EXPECT_EQ(v.integer("f"), std::nullopt);
  EXPECT_EQ(v.number("f"), 2.5);
  EXPECT_EQ(v.date("t"), 42);
  EXPECT_EQ(oid_to_string(*v.oid("o")), "65a1b2c3d4e5f60718293a4b");
  EXPECT_EQ(v.type_of("missing"), BSON_TYPE_EOD);
  EXPECT_TRUE(v.has("arr"));
  ASSERT_TRUE(v.document("sub"));
  EXPECT_EQ(v.document("sub")->string("k"), "v");
  EXPECT_EQ(v.document("arr"), std::nullopt);
  EXPECT_TRUE(v.array("arr").has_value());
}

TEST(View, CopiesOfEmbeddedViewsStayValid) {
  Bson doc = Bson::from_json(R"({"sub":{"k":"v"}})");
  std::optional<View> copy;
  {
    View outer(doc.get());
    std::optional<View> sub = outer.document("sub");
    copy = *sub;  // the copy must not point into `sub`'s storage
  }
  EXPECT_EQ(copy->string("k"), "v");
  View assigned(doc.get());
  assigned = *copy;
  EXPECT_EQ(assigned.string("k"), "v");
}

TEST(ObjectId, ParsesOnlyTwentyFourHexDigits) {
  EXPECT_TRUE(oid_from_string("65a1b2c3d4e5f60718293a4b").has_value());
  EXPECT_FALSE(oid_from_string("65a1b2c3d4e5f60718293a4").has_value());
  EXPECT_FALSE(oid_from_string("zza1b2c3d4e5f60718293a4b").has_value());
}

}  // namespace
}  // namespace fhirshift::mongo

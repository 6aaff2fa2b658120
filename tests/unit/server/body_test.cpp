#include "server/body.h"

#include <gtest/gtest.h>

namespace fhirshift::server {
namespace {

BodyTarget put_target(std::string_view id = "p1") {
  return BodyTarget{"Patient", id, true, "3", "2024-05-01T12:00:00.000Z"};
}

TEST(PrepareBody, SetsIdAndMetaAndKeepsEveryOtherValueAsWritten) {
  auto out = prepare_body(R"({ "resourceType" : "Patient", "id":"p1", "x": {"v": 1.50, "w": [1e2, -0.0 ]},
                               "meta": {"versionId":"9","tag":[{"code":"a"}],"lastUpdated":"2000"}, "active": true })",
                          put_target());
  EXPECT_EQ(out.json,
            R"({"resourceType":"Patient","id":"p1","meta":{"tag":[{"code":"a"}],"versionId":"3",)"
            R"("lastUpdated":"2024-05-01T12:00:00.000Z"},"x":{"v": 1.50, "w": [1e2, -0.0 ]},"active":true})");
  EXPECT_TRUE(out.contained.empty());
}

TEST(PrepareBody, CreateReplacesOrAddsTheId) {
  BodyTarget t{"Patient", "new-id", false, "1", "2024-05-01T12:00:00.000Z"};
  EXPECT_EQ(prepare_body(R"({"resourceType":"Patient","id":"client","active":false})", t).json,
            R"({"resourceType":"Patient","id":"new-id","meta":{"versionId":"1","lastUpdated":"2024-05-01T12:00:00.000Z"},"active":false})");
  EXPECT_EQ(prepare_body(R"({"resourceType":"Patient"})", t).json,
            R"({"resourceType":"Patient","id":"new-id","meta":{"versionId":"1","lastUpdated":"2024-05-01T12:00:00.000Z"}})");
}

TEST(PrepareBody, ContainedResourcesComeBackAsTheirOwnText) {
  auto out = prepare_body(
      R"({"resourceType":"Patient","id":"p1","contained":[ {"resourceType":"Organization","id":"o1","name":"A \"quoted\" name"},{"resourceType":"Device","id":"d","x":1.0} ]})",
      put_target());
  ASSERT_EQ(out.contained.size(), 2u);
  EXPECT_EQ(out.contained[0].type, "Organization");
  EXPECT_EQ(out.contained[0].id, "o1");
  EXPECT_EQ(out.contained[0].json, R"({"resourceType":"Organization","id":"o1","name":"A \"quoted\" name"})");
  EXPECT_EQ(out.contained[1].json, R"({"resourceType":"Device","id":"d","x":1.0})");
}

TEST(PrepareBody, RefusesWhatIsNotAResourceOfTheUrl) {
  auto status = [](std::string_view text, const BodyTarget& t) {
    try {
      prepare_body(text, t);
      return 0;
    } catch (const BodyError& e) {
      EXPECT_FALSE(std::string(e.what()).empty());
      return e.status();
    }
  };
  EXPECT_EQ(status("{", put_target()), 400);
  EXPECT_EQ(status("", put_target()), 400);
  EXPECT_EQ(status("null", put_target()), 400);
  EXPECT_EQ(status(R"({"resourceType":"Observation","id":"p1"})", put_target()), 400);
  EXPECT_EQ(status(R"({"resourceType":"Patient","id":"p2"})", put_target()), 400);
  EXPECT_EQ(status(R"({"resourceType":"Patient"})", put_target()), 400);
  EXPECT_EQ(status(R"({"resourceType":"Patient","id":7})", put_target()), 400);
  EXPECT_EQ(status(R"({"resourceType":"Patient","id":"p1","meta":"x"})", put_target()), 400);
  EXPECT_EQ(status(R"({"resourceType":"Patient","id":"p1","contained":{}})", put_target()), 400);
  EXPECT_EQ(status(R"({"resourceType":"Patient","id":"p1","contained":[{"id":"a"}]})", put_target()), 400);
  EXPECT_EQ(status(R"({"resourceType":"Patient","id":"p1","contained":[{"resourceType":"Device","id":"a b"}]})", put_target()), 400);
  EXPECT_EQ(status(R"({"resourceType":"Patient","id":"p1","\u0061":1})", put_target()), 400);
  EXPECT_EQ(status(R"({"resourceType":"Patient","id":"p1"} trailing)", put_target()), 400);
  EXPECT_EQ(status(R"({"resourceType":"Patient","id":"p1"})", put_target()), 0);
}

}  // namespace
}  // namespace fhirshift::server

#include "server/fhir.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "schema/entry.h"
#include "server/resource_types.h"

namespace fhirshift::server {
namespace {

TEST(Fhir, Instants) {
  EXPECT_EQ(format_instant(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_instant(1714564800123), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(format_http_date(1714564800123), "Wed, 01 May 2024 12:00:00 GMT");
}

TEST(Fhir, ETags) {
  EXPECT_EQ(etag("3"), "W/\"3\"");
  EXPECT_EQ(version_from_etag("W/\"3\""), "3");
  EXPECT_EQ(version_from_etag("\"12\""), "12");
  EXPECT_EQ(version_from_etag(" 7 "), "7");
  EXPECT_EQ(version_from_etag(""), std::nullopt);
  EXPECT_EQ(version_from_etag("W/\"\""), std::nullopt);
  EXPECT_EQ(version_from_etag("W/\"a\"b\""), std::nullopt);
  EXPECT_EQ(version_from_etag("W/\"v-2.a\""), "v-2.a");
  // Malformed: bare text is no ETag (it used to be taken as version "not-an-etag", a 412).
  EXPECT_EQ(version_from_etag("not-an-etag"), std::nullopt);
  EXPECT_EQ(version_from_etag("W/3"), std::nullopt);
  EXPECT_EQ(version_from_etag("*"), std::nullopt);
  EXPECT_EQ(version_from_etag("\"a b\""), std::nullopt);
  EXPECT_EQ(version_from_etag("W/\"" + std::string(65, '1') + "\""), std::nullopt);
  EXPECT_EQ(version_from_etag("W/\"1\", W/\"2\""), std::nullopt);
}

TEST(Fhir, ContentLengths) {
  EXPECT_TRUE(is_valid_content_length("0"));
  EXPECT_TRUE(is_valid_content_length("15728640"));
  EXPECT_TRUE(is_valid_content_length("18446744073709551615"));
  EXPECT_FALSE(is_valid_content_length(""));
  EXPECT_FALSE(is_valid_content_length("-1"));
  EXPECT_FALSE(is_valid_content_length("+1"));
  EXPECT_FALSE(is_valid_content_length("1x"));
  EXPECT_FALSE(is_valid_content_length("abc"));
  EXPECT_FALSE(is_valid_content_length(" 5"));
  EXPECT_FALSE(is_valid_content_length("18446744073709551616"));  // beyond 64 bits
}

TEST(Fhir, OperationOutcome) {
  auto j = nlohmann::json::parse(operation_outcome("error", "invalid", "bad \"thing\""));
  EXPECT_EQ(j["resourceType"], "OperationOutcome");
  EXPECT_EQ(j["issue"][0]["severity"], "error");
  EXPECT_EQ(j["issue"][0]["code"], "invalid");
  EXPECT_EQ(j["issue"][0]["diagnostics"], "bad \"thing\"");
}

TEST(Fhir, NewIdsAreValidAndDistinct) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = new_resource_id();
    EXPECT_TRUE(schema::is_valid_fhir_id(id)) << id;
    EXPECT_EQ(id[14], '4');
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(Fhir, ResourceTypes) {
  EXPECT_EQ(r4_resource_types().size(), 145u);
  EXPECT_TRUE(is_r4_resource_type("Patient"));
  EXPECT_TRUE(is_r4_resource_type("VisionPrescription"));
  EXPECT_FALSE(is_r4_resource_type("Parameters"));
  EXPECT_FALSE(is_r4_resource_type("patient"));
  EXPECT_FALSE(is_r4_resource_type("Resource"));
}

}  // namespace
}  // namespace fhirshift::server

#include <gtest/gtest.h>

#include "mongo/client.h"

namespace fhirshift::mongo {
namespace {

TEST(Uri, DatabaseComesFromThePathWithTheLegacyDefault) {
  EXPECT_EQ(Uri::parse("mongodb://localhost:27017/clinic").database(), "clinic");
  EXPECT_EQ(Uri::parse("mongodb://localhost:27017/").database(), "vonkdata");
  EXPECT_EQ(Uri::parse("mongodb://localhost").database(), "vonkdata");
}

TEST(Uri, AcceptsTheDocumentedConnectionStringForms) {
  Uri u = Uri::parse("mongodb://user:secret@h1:27017,h2:27018/fhir?replicaSet=rs0&tls=true&authSource=admin");
  EXPECT_EQ(u.hosts(), "h1:27017,h2:27018");
  EXPECT_EQ(u.database(), "fhir");
  EXPECT_STREQ(mongoc_uri_get_replica_set(u.get()), "rs0");
  EXPECT_TRUE(mongoc_uri_get_tls(u.get()));
}

TEST(Uri, RedactsThePassword) {
  Uri u = Uri::parse("mongodb://user:secret@h1:27017/fhir");
  EXPECT_EQ(u.redacted(), "mongodb://user:****@h1:27017/fhir");
  EXPECT_EQ(Uri::parse("mongodb://h1/fhir").redacted(), "mongodb://h1/fhir");
}

TEST(Uri, RejectsMalformedStringsWithTheDriverReason) {
  try {
    Uri::parse("http://not-mongo");
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("invalid MongoDB connection string"), std::string::npos);
  }
}

TEST(Uri, DefaultsToAShortServerSelectionTimeoutButKeepsAnExplicitOne) {
  EXPECT_EQ(mongoc_uri_get_option_as_int32(Uri::parse("mongodb://h").get(),
                                           MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0), 10000);
  EXPECT_EQ(mongoc_uri_get_option_as_int32(Uri::parse("mongodb://h/?serverSelectionTimeoutMS=1234").get(),
                                           MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0), 1234);
}

TEST(Uri, CopiesAreIndependent) {
  Uri a = Uri::parse("mongodb://h1/db1");
  Uri b = a;
  EXPECT_EQ(b.database(), "db1");
  EXPECT_NE(a.get(), b.get());
}

}  // namespace
}  // namespace fhirshift::mongo

namespace fhirshift::mongo {
namespace {

TEST(Uri, DefaultsToMajorityJournaledWritesAndMajorityReads) {
  Uri u = Uri::parse("mongodb://h1,h2/fhir?replicaSet=rs0");
  EXPECT_EQ(u.write_concern_json(), R"({"w": "majority", "j": true})");
  EXPECT_EQ(u.read_concern_level(), "majority");
  EXPECT_TRUE(u.retry_writes());
}

TEST(Uri, KeepsTheConnectionStringsOwnDurability) {
  Uri w1 = Uri::parse("mongodb://h/fhir?w=1&readConcernLevel=local");
  EXPECT_EQ(w1.write_concern_json(), R"({"w": 1})");
  EXPECT_EQ(w1.read_concern_level(), "local");
  Uri journal_only = Uri::parse("mongodb://h/fhir?journal=false");
  EXPECT_EQ(journal_only.write_concern_json(), R"({"w": "default", "j": false})");
  Uri timeout = Uri::parse("mongodb://h/fhir?wtimeoutMS=5000");
  EXPECT_EQ(timeout.write_concern_json(), R"({"w": "majority", "j": true, "wtimeout": 5000})");
  EXPECT_FALSE(Uri::parse("mongodb://h/fhir?retryWrites=false").retry_writes());
}

}  // namespace
}  // namespace fhirshift::mongo

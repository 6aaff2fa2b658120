// Progress documents, time stamps, URLs and redaction: the small parsers under the cut-over.
#include <gtest/gtest.h>

#include "cutover/adapters.h"
#include "cutover/http_client.h"
#include "cutover/ports.h"

namespace fhirshift::cutover {
namespace {

TEST(Progress, ParsesTheMigratorsDocument) {
  Progress p = parse_progress(
      R"({"mode":"Continuous","phase":"tailing","caughtUp":true,"lagSeconds":0.4,"entriesRead":120,)"
      R"("entriesWritten":118,"quarantined":1,"conflicts":0,"errors":0,)"
      R"("lastPollAt":"2024-05-01T12:00:00.250Z","sourceHighWaterId":"66320a1b2c3d4e5f60718293"})");
  EXPECT_TRUE(p.caught_up);
  EXPECT_DOUBLE_EQ(p.lag_seconds, 0.4);
  EXPECT_EQ(p.entries_written, 118);
  EXPECT_EQ(p.quarantined, 1);
  ASSERT_TRUE(p.last_poll_at.has_value());
  EXPECT_EQ(format_iso8601(*p.last_poll_at), "2024-05-01T12:00:00.250Z");
  EXPECT_FALSE(p.paused);
  EXPECT_FALSE(p.polls_started.has_value());  // a migrator that does not number its polls
  Progress numbered = parse_progress(
      R"({"caughtUp":false,"paused":true,"pollsStarted":41,"pollsDone":40})");
  EXPECT_TRUE(numbered.paused);
  EXPECT_EQ(numbered.polls_started, std::optional<int64_t>(41));
  EXPECT_EQ(numbered.polls_done, std::optional<int64_t>(40));
  EXPECT_THROW(parse_progress(R"({"mode":"AdHoc"})"), std::runtime_error);
  EXPECT_THROW(parse_progress("not json"), std::runtime_error);
}

TEST(Time, Iso8601RoundTripAndOffsets) {
  auto t = parse_iso8601("2024-02-29T23:59:59.999Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(format_iso8601(*t), "2024-02-29T23:59:59.999Z");
  EXPECT_EQ(format_iso8601(*parse_iso8601("2024-03-01T01:00:00+01:00")), "2024-03-01T00:00:00.000Z");
  EXPECT_EQ(format_iso8601(*parse_iso8601("2024-03-01T00:00:00.5")), "2024-03-01T00:00:00.500Z");
  EXPECT_FALSE(parse_iso8601("yesterday").has_value());
}

TEST(Http, UrlsAndEncoding) {
  EXPECT_EQ(HttpUrl::parse("http://127.0.0.1:8080/").str(), "http://127.0.0.1:8080");
  EXPECT_EQ(HttpUrl::parse("http://h:1/p/").prefix, "/p");
  EXPECT_THROW(HttpUrl::parse("https://h:1"), std::invalid_argument);
  EXPECT_THROW(HttpUrl::parse("h:1"), std::invalid_argument);
  EXPECT_EQ(url_encode("http://h:1/a b"), "http%3A%2F%2Fh%3A1%2Fa%20b");
}

TEST(Redaction, HidesPasswords) {
  EXPECT_EQ(redact_connection_string("mongodb://u:secret@h1:27017,h2/db?replicaSet=rs0"),
            "mongodb://u:****@h1:27017,h2/db?replicaSet=rs0");
  EXPECT_EQ(redact_connection_string("mongodb://h1:27017/db"), "mongodb://h1:27017/db");
  EXPECT_EQ(redact_connection_string("--mode"), "--mode");
}

}  // namespace
}  // namespace fhirshift::cutover

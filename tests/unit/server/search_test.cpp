#include "server/search.h"

#include <gtest/gtest.h>

namespace fhirshift::server {
namespace {

const index::Indexer& indexer() {
  static const auto kIndexer = index::Indexer::load(index::Indexer::default_definitions_path());
  return *kIndexer;
}

void expect_refused(const std::vector<std::pair<std::string, std::string>>& params) {
  try {
    build_search(Schema::kCurrent, "Patient", params, &indexer());
    FAIL() << "accepted";
  } catch (const SearchError& e) {
    EXPECT_EQ(e.code(), "value");
    EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
  }
}

// Found by fuzz/fuzz_search_values: `gender=female%FF` (any value with bytes that are not UTF-8)
// made the JSON of the query throw, and the server answered 500.
TEST(Search, AValueOrNameThatIsNotUtf8IsABadRequest) {
  expect_refused({{"identifier", "urn:s|V"}, {"gender", "female\xff\xff\x02"}});
  expect_refused({{"_id", "x1,\xc3"}});
  expect_refused({{"name\xff", "x"}});
  expect_refused({{"name", std::string("a\0b", 3)}});
  EXPECT_NO_THROW(build_search(Schema::kCurrent, "Patient", {{"name", "Müller"}}, &indexer()));
}

}  // namespace
}  // namespace fhirshift::server

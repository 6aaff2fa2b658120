// libFuzzer target: the search-parameter value parsers, on both sides of the index: the
// normalisations the indexer stores (strings, dates), the indexer's extraction of token, quantity,
// reference, date, number and uri values from a resource, and the FHIR server's parsing of search
// arguments (prefixes, modifiers, system|code, Type/id, number precision) into a query.
//
// Input: one byte choosing the parser, then its input:
//   'd' a date/dateTime/instant (parse_date_range, parse_search_date, parse_iso8601)
//   's' a string (normalize_string, lower_case)
//   'q' "Type?name=value&name:modifier=value..." (build_search, then the query's post-filter on a
//       stored Patient and Observation)
//   'i' "Type\n{resource JSON}" (Indexer::index)
// any other byte picks one of them by its value. Accepted outcomes: nullopt or SearchError for a
// bad value; results must be well-formed (a date range's low end not after its high end, strings
// valid UTF-8 when their input is).
#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/iso8601.h"
#include "index/indexer.h"
#include "index/normalize.h"
#include "schema/entry.h"
#include "server/resource_types.h"
#include "server/search.h"

namespace {

using namespace fhirshift;

std::shared_ptr<const index::Indexer> indexer;
std::vector<mongo::Bson> stored;  // current-schema documents the post-filters are run on

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_search_values: %s\n", what.c_str());
  std::abort();
}

bool valid_utf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

void store(std::string_view type, std::string_view json) {
  schema::CurrentEntry e;
  bson_oid_init(&e.id, nullptr);
  e.im = schema::kInfoModelR4;
  e.type = type;
  e.res_id = "x1";
  e.v = "1";
  e.cur = true;
  e.json = std::string(json);
  e.idx = indexer->index(type, json);
  stored.push_back(schema::encode_current(e));
}

void dates(std::string_view text) {
  if (auto r = index::parse_date_range(text); r && r->lo_ms > r->hi_ms)
    fail("parse_date_range(\"" + std::string(text) + "\"): low end after high end");
  try {
    auto r = server::parse_search_date(text);
    if (r.lo_ms > r.hi_ms) fail("parse_search_date: low end after high end");
  } catch (const server::SearchError&) {
  }
  if (auto ms = parse_iso8601(std::string(text))) (void)format_iso8601(*ms);
}

void strings(std::string_view text) {
  std::string n = index::normalize_string(text), l = index::lower_case(text);
  if (valid_utf8(text) && (!valid_utf8(n) || !valid_utf8(l)))
    fail("normalising valid UTF-8 gave invalid UTF-8");
}

void search(std::string_view text) {
  size_t q = text.find('?');
  std::string type(text.substr(0, q));
  if (!server::is_r4_resource_type(type)) type = "Patient";
  std::vector<std::pair<std::string, std::string>> params;
  std::string_view query = q == std::string_view::npos ? std::string_view() : text.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    params.emplace_back(std::string(pair.substr(0, eq)),
                        eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1)));
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
  }
  try {
    server::SearchQuery sq = build_search(server::Schema::kCurrent, type, params, indexer.get());
    if (sq.post_filter)
      for (const auto& doc : stored) (void)sq.post_filter(mongo::View(doc.get()));
  } catch (const server::SearchError&) {
  }
}

void index_resource(std::string_view text) {
  size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return;
  std::string type(text.substr(0, nl));
  if (!server::is_r4_resource_type(type)) return;
  index::IndexStats stats;
  index::SearchIndex idx = indexer->index(type, text.substr(nl + 1), &stats);
  (void)schema::encode_search_index(idx);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  try {
    indexer = index::Indexer::load(index::Indexer::default_definitions_path());
    store("Patient", R"({"resourceType":"Patient","id":"x1","identifier":[{"system":"urn:s","value":"V"}],)"
                     R"("name":[{"family":"Müller"}],"birthDate":"1970-03-04","gender":"female",)"
                     R"("generalPractitioner":[{"reference":"Practitioner/p9"}]})");
    store("Observation",
          R"({"resourceType":"Observation","id":"x1","status":"final","code":{"coding":[{"system":"http://loinc.org",)"
          R"("code":"8867-4"}],"text":"Heart rate"},"subject":{"reference":"Patient/x1"},)"
          R"("effectiveDateTime":"2020-03-15T10:20:30Z","valueQuantity":{"value":72.0,"unit":"/min",)"
          R"("system":"http://unitsofmeasure.org","code":"/min"}})");
  } catch (const std::exception& e) {
    fail(e.what());
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  char mode = static_cast<char>(data[0]);
  if (mode != 'd' && mode != 's' && mode != 'q' && mode != 'i') mode = "dsqi"[data[0] % 4];
  switch (mode) {
    case 'd': dates(text); break;
    case 's': strings(text); break;
    case 'q': search(text); break;
    case 'i': index_resource(text); break;
  }
  return 0;
}

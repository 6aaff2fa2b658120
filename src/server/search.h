// FHIR search (GET /Type?param=value) translated to one MongoDB query over the current schema's
// `idx` (docs/schema.md). The legacy schema has no search index: there only `_id`,
// `_lastUpdated` and the result parameters work (docs/serve.md).
//
// Supported: string (default starts-with, :exact, :contains), token (system|code, code, |code,
// system|, :text), reference (Type/id, id, absolute URL, :Type modifier), date and _lastUpdated
// (eq, ne, lt, le, gt, ge, sa, eb; with the value's precision), number and quantity (the same
// prefixes; eq honours the value's precision), uri (exact, :below), :missing on every parameter;
// comma = OR, a repeated parameter = AND. Result parameters: _count (default 20, at most 1000),
// _offset (paging; the `next` link carries it), _sort=_lastUpdated|-_lastUpdated|_id,
// _total=accurate, _contained=false|true|both (R4: the search runs over contained resources too,
// and a match that is contained is answered with its container).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "index/indexer.h"
#include "mongo/bson.h"
#include "server/store.h"

namespace fhirshift::server {

// A search the server cannot run: 400 with an OperationOutcome (`code` is the issue code).
class SearchError : public std::runtime_error {
 public:
  SearchError(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// Which entries `_contained` lets a search match: resources (false, the default), contained
// resources (true), or both. A contained match is answered with its container.
enum class ContainedScope { kResources, kContained, kBoth };

inline constexpr int64_t kDefaultPageSize = 20;
inline constexpr int64_t kMaxPageSize = 1000;

struct SearchQuery {
  mongo::Bson filter;
  mongo::Bson sort;
  int64_t count = kDefaultPageSize;
  int64_t offset = 0;
  bool total_accurate = false;
  ContainedScope contained = ContainedScope::kResources;
  // When set, the filter is a superset: a candidate is a match only if this holds (the exact
  // test of conditions that must hold on one index value, e.g. a token's system and code).
  std::function<bool(const mongo::View&)> post_filter;
  // The parameters as understood, for the Bundle's self/next links (in request order).
  std::vector<std::pair<std::string, std::string>> link_params;
};

// `params`: the query string's name/value pairs (URL-decoded), in order. `indexer` may be null
// on the legacy schema. Throws SearchError.
SearchQuery build_search(Schema schema, const std::string& type,
                         const std::vector<std::pair<std::string, std::string>>& params,
                         const index::Indexer* indexer);

// A FHIR date/dateTime/instant as the inclusive range its precision covers (index::parse_date_range);
// throws SearchError on a malformed value.
index::DateRange parse_search_date(std::string_view value);

}  // namespace fhirshift::server

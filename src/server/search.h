// FHIR search (GET /Type?param=value) translated to one MongoDB query over the current schema's
// `idx` (shared/spec/schema.md). The legacy schema has no search index: there only `_id`,
// `_lastUpdated` and the result parameters work (docs/serve.md).
//
// Supported: string (default starts-with, :exact, :contains), token (system|code, code, |code,
// system|, :text), reference (Type/id, id, absolute URL, :Type modifier), date and _lastUpdated
// (eq, ne, lt, le, gt, ge, sa, eb; with the value's precision), number and quantity (the same
// prefixes; eq honours the value's precision), uri (exact, :below), :missing on every parameter;
// comma = OR, a repeated parameter = AND. Result parameters: _count (default 20, at most 1000),
// _offset (paging; the `next` link carries it), _sort=_lastUpdated|-_lastUpdated|_id, _total=accurate.
#pragma once

#include <cstdint>
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

inline constexpr int64_t kDefaultPageSize = 20;
inline constexpr int64_t kMaxPageSize = 1000;

struct SearchQuery {
  mongo::Bson filter;
  mongo::Bson sort;
  int64_t count = kDefaultPageSize;
  int64_t offset = 0;
  bool total_accurate = false;
  // The parameters as understood, for the Bundle's self/next links (in request order).
  std::vector<std::pair<std::string, std::string>> link_params;
};

// `params`: the query string's name/value pairs (URL-decoded), in order. `indexer` may be null
// on the legacy schema. Throws SearchError.
SearchQuery build_search(Schema schema, const std::string& type,
                         const std::vector<std::pair<std::string, std::string>>& params,
                         const index::Indexer* indexer);

// The string normalisation of the index: lower case, Latin diacritics removed, inner whitespace
// collapsed, trimmed ("Müller " -> "muller").
std::string normalize_string(std::string_view s);

// A FHIR date/dateTime/instant as the inclusive millisecond range its precision covers
// ("2020" -> 2020-01-01T00:00:00.000Z .. 2020-12-31T23:59:59.999Z). Times without a zone are UTC.
// Throws SearchError on a malformed value.
index::DateRange parse_date_range(std::string_view value);

}  // namespace fhirshift::server

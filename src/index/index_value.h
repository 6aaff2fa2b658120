// Search index values as the current schema stores them (docs/schema.md, field `idx`).
//
// This header is the contract between the indexer (which computes values from FHIR JSON) and the
// storage layer (src/schema, which encodes them as BSON). It has no dependency on either side.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace fhirshift::index {

// A token: `{s, c}` for a coding-like value, or `{s: null, t}` for CodeableConcept.text.
// Exactly one of `code` and `text` is meaningful: `text` set means the `{s: null, t}` form.
struct Token {
  std::optional<std::string> system;
  std::optional<std::string> code;
  std::optional<std::string> text;
  bool operator==(const Token&) const = default;
};

// An inclusive instant range in milliseconds since the Unix epoch, UTC.
struct DateRange {
  int64_t lo_ms = 0;
  int64_t hi_ms = 0;
  bool operator==(const DateRange&) const = default;
};

// `{v, u, s}`: u is the code, else the unit, else null.
struct Quantity {
  double value = 0;
  std::optional<std::string> unit;
  std::optional<std::string> system;
  bool operator==(const Quantity&) const = default;
};

// string, reference and uri parameters are std::string; number is double.
using IndexValue = std::variant<std::string, Token, DateRange, double, Quantity>;

// One search parameter's values (never empty: a parameter that yields nothing has no entry).
struct IndexEntry {
  std::string code;
  std::vector<IndexValue> values;
  bool operator==(const IndexEntry&) const = default;
};

// The whole `idx` object: entries sorted by code, values in evaluation order with exact
// duplicates removed, so that the same resource always yields the same bytes.
using SearchIndex = std::vector<IndexEntry>;

}  // namespace fhirshift::index

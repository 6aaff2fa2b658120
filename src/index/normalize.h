// The value normalisations of the search index (docs/schema.md, `idx`), public so that the
// FHIR server normalises search arguments exactly as the indexer normalised the stored values.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "index/index_value.h"

namespace fhirshift::index {

// A string parameter's value: lower-cased, diacritics removed, whitespace runs collapsed to one
// space, trimmed ("  Müller\tSchäfer " -> "muller schafer"). Letters of Latin-1 and Latin
// Extended-A lose their marks (also ø->o, ł->l, æ->ae, ß->ss), Greek and Cyrillic letters are
// lower-cased and lose theirs (ά->α, ё->е, й->и, ς->σ), as Unicode decomposition would have it;
// combining marks are dropped; other scripts pass through unchanged.
std::string normalize_string(std::string_view s);

// A CodeableConcept text for a token's `t`: lower-cased (ASCII, Latin-1, Latin Extended-A, Greek,
// Cyrillic), marks kept.
std::string lower_case(std::string_view s);

// The inclusive UTC range covered by a FHIR date, dateTime or instant at its precision
// ("2020" -> 2020-01-01T00:00:00.000Z .. 2020-12-31T23:59:59.999Z; "2020-03-01T10:00:00+02:00"
// -> 08:00:00.000Z .. 08:00:00.999Z). A value without zone is taken as UTC. nullopt when `s` is
// not such a value.
std::optional<DateRange> parse_date_range(std::string_view s);

// The open ends of a Period: 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
inline constexpr int64_t kMinDateMs = -62135596800000;
inline constexpr int64_t kMaxDateMs = 253402300799999;

}  // namespace fhirshift::index

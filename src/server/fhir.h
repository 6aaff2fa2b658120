// Small FHIR R4 REST building blocks shared by the server and the load generator: instants,
// ETags, OperationOutcome bodies and server-assigned ids.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fhirshift::server {

inline constexpr const char* kFhirJson = "application/fhir+json; charset=utf-8";

// "2024-05-01T12:00:00.123Z" (FHIR instant, millisecond precision, UTC).
std::string format_instant(int64_t ms_since_epoch);
// "Wed, 01 May 2024 12:00:00 GMT" (RFC 7231 HTTP-date, for Last-Modified).
std::string format_http_date(int64_t ms_since_epoch);

// W/"3"
std::string etag(std::string_view version);
// The version id inside an If-Match / ETag value: W/"3", "3" or a bare number 3; nullopt when
// malformed (empty, unquoted text, W/ without quotes, a version id that is not a FHIR id).
std::optional<std::string> version_from_etag(std::string_view value);

// True when `value` is a Content-Length (RFC 9110: digits only) that fits 64 bits.
bool is_valid_content_length(std::string_view value);

// {"resourceType":"OperationOutcome","issue":[{"severity":..,"code":..,"diagnostics":..}]}.
// `code` is an IssueType code: invalid, structure, required, value, not-found, deleted, conflict,
// not-supported, too-long, transient, exception, processing, informational.
std::string operation_outcome(std::string_view severity, std::string_view code,
                              std::string_view diagnostics);

// A fresh random id for POST (a UUID v4: valid as a FHIR id, unguessable, no coordination).
std::string new_resource_id();

}  // namespace fhirshift::server

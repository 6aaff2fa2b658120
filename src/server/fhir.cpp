#include "server/fhir.h"

#include <charconv>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>

namespace fhirshift::server {

namespace {
std::tm utc(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}
}  // namespace

std::string format_instant(int64_t ms) {
  std::tm tm = utc(ms);
  int millis = static_cast<int>(((ms % 1000) + 1000) % 1000);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::string format_http_date(int64_t ms) {
  std::tm tm = utc(ms);
  char buf[40];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string etag(std::string_view version) { return "W/\"" + std::string(version) + "\""; }

std::optional<std::string> version_from_etag(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  const bool weak = value.substr(0, 2) == "W/";
  if (weak) value.remove_prefix(2);
  const bool quoted = value.size() >= 2 && value.front() == '"' && value.back() == '"';
  if (quoted) value = value.substr(1, value.size() - 2);
  else if (weak) return std::nullopt;  // W/ without the quotes of an entity tag
  // A version id is a FHIR id (meta.versionId): 1-64 of [A-Za-z0-9-.]. Unquoted, only a number
  // is taken (`If-Match: 3`, a common shorthand): any other bare text (`not-an-etag`) is a
  // malformed header, not a version that fails to match.
  if (value.empty() || value.size() > 64) return std::nullopt;
  for (char c : value) {
    const bool digit = c >= '0' && c <= '9';
    const bool id_char = digit || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '.';
    if (quoted ? !id_char : !digit) return std::nullopt;
  }
  return std::string(value);
}

bool is_valid_content_length(std::string_view value) {
  // from_chars of an unsigned type takes digits only (no sign, no space) and fails on overflow.
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  return !value.empty() && ec == std::errc() && end == value.data() + value.size();
}

std::string operation_outcome(std::string_view severity, std::string_view code,
                              std::string_view diagnostics) {
  nlohmann::json issue{{"severity", severity}, {"code", code}};
  if (!diagnostics.empty()) issue["diagnostics"] = diagnostics;
  nlohmann::json oo{{"resourceType", "OperationOutcome"}, {"issue", nlohmann::json::array({issue})}};
  return oo.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string new_resource_id() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (static_cast<uint64_t>(std::random_device{}()) << 32)};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  char buf[64];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

}  // namespace fhirshift::server

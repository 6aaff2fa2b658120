#include "server/search.h"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "schema/entry.h"

namespace fhirshift::server {
namespace {

using nlohmann::json;
using index::ParamType;

// --- strings ------------------------------------------------------------------------------------

// U+00C0..U+017F: the base letter of a character that decomposes (NFD) into a letter and
// combining marks, '.' for one that does not (it is only lower-cased).
constexpr std::string_view kLatinBase =
    "aaaaaa.ceeeeiiii.nooooo..uuuuy..aaaaaa.ceeeeiiii.nooooo..uuuuy.y"
    "aaaaaaccccccccdd..eeeeeeeeeegggggggghh..iiiiiiiii...jjkk.llllll....nnnnnn...oooooo..rrrrrrsss"
    "sssssstttt..uuuuuuuuuuuuwwyyyzzzzzz.";

uint32_t lower_no_decomposition(uint32_t cp) {
  switch (cp) {
    case 0xC6: case 0xD0: case 0xD8: case 0xDE: return cp + 0x20;
    case 0x110: case 0x126: case 0x132: case 0x13F: case 0x141: case 0x14A: case 0x152:
    case 0x166: return cp + 1;
    default: return cp;
  }
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string regex_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == ' ' || static_cast<unsigned char>(c) >= 0x80;
    if (!plain) out += '\\';
    out += c;
  }
  return out;
}

json regex(const std::string& pattern) {
  return json{{"$regularExpression", {{"pattern", pattern}, {"options", ""}}}};
}

json date_value(int64_t ms) { return json{{"$date", {{"$numberLong", std::to_string(ms)}}}}; }

std::vector<std::string> split(std::string_view s, char sep) {
  // FHIR escapes a literal separator as "\,"/"\|"/"\$"; "\\" is a backslash.
  std::vector<std::string> out(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out.back() += s[++i];
    } else if (s[i] == sep) {
      out.emplace_back();
    } else {
      out.back() += s[i];
    }
  }
  return out;
}

// --- dates and numbers ---------------------------------------------------------------------------

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
unsigned days_in_month(int64_t y, unsigned m) {
  static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

[[noreturn]] void bad_date(std::string_view v) {
  throw SearchError("value", "\"" + std::string(v) +
                                 "\" is not a FHIR date/dateTime (YYYY, YYYY-MM, YYYY-MM-DD, "
                                 "YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm])");
}

int read_int(std::string_view v, size_t pos, size_t len, std::string_view whole) {
  if (pos + len > v.size()) bad_date(whole);
  int out = 0;
  for (size_t i = pos; i < pos + len; ++i) {
    if (v[i] < '0' || v[i] > '9') bad_date(whole);
    out = out * 10 + (v[i] - '0');
  }
  return out;
}

struct PrefixedValue {
  std::string prefix = "eq";
  std::string value;
};

PrefixedValue split_prefix(std::string_view v) {
  static const char* kPrefixes[] = {"eq", "ne", "lt", "le", "gt", "ge", "sa", "eb", "ap"};
  if (v.size() > 2)
    for (const char* p : kPrefixes)
      if (v.substr(0, 2) == p && (std::isdigit(static_cast<unsigned char>(v[2])) || v[2] == '-' ||
                                  v[2] == '.' || v[2] == '+'))
        return {p, std::string(v.substr(2))};
  return {"eq", std::string(v)};
}

struct NumberRange {
  double value = 0;
  double lo = 0;  // inclusive
  double hi = 0;  // exclusive
};

NumberRange parse_number(std::string_view s) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty())
    throw SearchError("value", "\"" + std::string(s) + "\" is not a number");
  // eq honours the precision of the value: "100" matches [99.5, 100.5), "1.50" [1.495, 1.505).
  int decimals = 0;
  if (auto dot = s.find('.'); dot != std::string_view::npos && s.find_first_of("eE") == s.npos)
    decimals = static_cast<int>(s.size() - dot - 1);
  double half = 0.5 * std::pow(10.0, -decimals);
  if (s.find_first_of("eE") != s.npos) half = 0;
  return {v, v - half, half == 0 ? std::nextafter(v, INFINITY) : v + half};
}

// Conditions on a range [lo, hi] stored in a document (fields "lo"/"hi") for a date prefix.
json date_condition(const std::string& prefix, const index::DateRange& q, std::string_view raw) {
  if (prefix == "eq" || prefix == "ap")
    return {{"lo", {{"$gte", date_value(q.lo_ms)}}}, {"hi", {{"$lte", date_value(q.hi_ms)}}}};
  if (prefix == "lt") return {{"lo", {{"$lt", date_value(q.lo_ms)}}}};
  if (prefix == "le") return {{"lo", {{"$lte", date_value(q.hi_ms)}}}};
  if (prefix == "gt") return {{"hi", {{"$gt", date_value(q.hi_ms)}}}};
  if (prefix == "ge") return {{"hi", {{"$gte", date_value(q.lo_ms)}}}};
  if (prefix == "sa") return {{"lo", {{"$gt", date_value(q.hi_ms)}}}};
  if (prefix == "eb") return {{"hi", {{"$lt", date_value(q.lo_ms)}}}};
  throw SearchError("not-supported", "prefix " + prefix + " is not supported for dates (" +
                                         std::string(raw) + ")");
}

json number_condition(const std::string& prefix, const NumberRange& n) {
  if (prefix == "eq" || prefix == "ap") return {{"$gte", n.lo}, {"$lt", n.hi}};
  if (prefix == "lt") return {{"$lt", n.value}};
  if (prefix == "le") return {{"$lte", n.value}};
  if (prefix == "gt" || prefix == "sa") return {{"$gt", n.value}};
  if (prefix == "ge") return {{"$gte", n.value}};
  if (prefix == "eb") return {{"$lt", n.value}};
  throw SearchError("not-supported", "prefix " + prefix + " is not supported for numbers");
}

// Wraps "not equal": none of the stored values matches.
json negate(json clause) { return json{{"$nor", json::array({std::move(clause)})}}; }

// --- one parameter -------------------------------------------------------------------------------

json any_of(std::vector<json> clauses) {
  if (clauses.size() == 1) return std::move(clauses.front());
  return json{{"$or", std::move(clauses)}};
}

json value_clause(const std::string& field, ParamType type, const std::string& modifier,
                  const std::string& value, const std::string& code) {
  switch (type) {
    case ParamType::kString: {
      std::string n = normalize_string(value);
      if (modifier == "exact") return {{field, n}};
      if (modifier == "contains") return {{field, regex(regex_escape(n))}};
      if (!modifier.empty()) break;
      return {{field, regex("^" + regex_escape(n))}};
    }
    case ParamType::kToken: {
      if (modifier == "text")
        return {{field, {{"$elemMatch", {{"t", regex("^" + regex_escape(normalize_string(value)))}}}}}};
      if (!modifier.empty()) break;
      auto bar = value.find('|');
      json m = json::object();
      if (bar == std::string::npos) {
        m["c"] = value;
      } else {
        std::string system = value.substr(0, bar), c = value.substr(bar + 1);
        m["s"] = system.empty() ? json(nullptr) : json(system);
        if (!c.empty()) m["c"] = c;
        if (system.empty() && c.empty())
          throw SearchError("value", code + "=|: a token needs a system or a code");
      }
      return {{field, {{"$elemMatch", m}}}};
    }
    case ParamType::kReference: {
      if (!modifier.empty()) {
        // :Type — the id in that resource type.
        if (modifier.empty() || modifier[0] < 'A' || modifier[0] > 'Z') break;
        return {{field, modifier + "/" + value}};
      }
      if (value.find('/') == std::string::npos)
        return {{field, regex("(^|/)" + regex_escape(value) + "$")}};
      if (value.find("://") != std::string::npos) {
        // An absolute URL matches as stored, and as Type/id when it names one.
        auto parts = split(value, '/');
        std::vector<json> alts{json{{field, value}}};
        if (parts.size() >= 2)
          alts.push_back({{field, parts[parts.size() - 2] + "/" + parts.back()}});
        return any_of(std::move(alts));
      }
      return {{field, value}};
    }
    case ParamType::kDate: {
      if (!modifier.empty()) break;
      PrefixedValue pv = split_prefix(value);
      index::DateRange q = parse_date_range(pv.value);
      if (pv.prefix == "ne") return negate({{field, {{"$elemMatch", date_condition("eq", q, value)}}}});
      return {{field, {{"$elemMatch", date_condition(pv.prefix, q, value)}}}};
    }
    case ParamType::kNumber: {
      if (!modifier.empty()) break;
      PrefixedValue pv = split_prefix(value);
      NumberRange n = parse_number(pv.value);
      if (pv.prefix == "ne") return negate({{field, {{"$elemMatch", number_condition("eq", n)}}}});
      return {{field, {{"$elemMatch", number_condition(pv.prefix, n)}}}};
    }
    case ParamType::kQuantity: {
      if (!modifier.empty()) break;
      auto parts = split(value, '|');
      if (parts.size() != 1 && parts.size() != 3)
        throw SearchError("value", code + "=" + value + ": expected [prefix]number[|system|code]");
      PrefixedValue pv = split_prefix(parts[0]);
      NumberRange n = parse_number(pv.value);
      json m{{"v", number_condition(pv.prefix == "ne" ? "eq" : pv.prefix, n)}};
      if (parts.size() == 3) {
        if (!parts[1].empty()) m["s"] = parts[1];
        if (!parts[2].empty()) m["u"] = parts[2];
      }
      json c{{field, {{"$elemMatch", m}}}};
      return pv.prefix == "ne" ? negate(std::move(c)) : c;
    }
    case ParamType::kUri: {
      if (modifier == "below") return {{field, regex("^" + regex_escape(value))}};
      if (!modifier.empty()) break;
      return {{field, value}};
    }
    case ParamType::kComposite:
    case ParamType::kSpecial:
      throw SearchError("not-supported", "search parameter " + code +
                                             " is composite or special: not indexed, not searchable");
  }
  throw SearchError("not-supported", "modifier :" + modifier + " is not supported on " + code);
}

json last_updated_clause(const std::string& value) {
  PrefixedValue pv = split_prefix(value);
  index::DateRange q = parse_date_range(pv.value);
  auto cmp = [](const char* op, int64_t ms) { return json{{"lu", {{op, date_value(ms)}}}}; };
  if (pv.prefix == "eq" || pv.prefix == "ap")
    return {{"lu", {{"$gte", date_value(q.lo_ms)}, {"$lte", date_value(q.hi_ms)}}}};
  if (pv.prefix == "ne")
    return {{"$or", json::array({cmp("$lt", q.lo_ms), cmp("$gt", q.hi_ms)})}};
  if (pv.prefix == "lt" || pv.prefix == "eb") return cmp("$lt", q.lo_ms);
  if (pv.prefix == "le") return cmp("$lte", q.hi_ms);
  if (pv.prefix == "gt" || pv.prefix == "sa") return cmp("$gt", q.hi_ms);
  return cmp("$gte", q.lo_ms);  // ge
}

int64_t parse_count(const std::string& name, const std::string& v, int64_t max) {
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || ptr != v.data() + v.size() || n < 0)
    throw SearchError("value", name + "=" + v + ": expected a non-negative integer");
  return std::min(n, max);
}

}  // namespace

std::string normalize_string(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp = c;
    size_t len = 1;
    if (c >= 0xF0 && i + 3 < s.size() + 0) {
      cp = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) |
           (s[i + 3] & 0x3Fu);
      len = 4;
    } else if (c >= 0xE0 && i + 2 < s.size()) {
      cp = ((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
      len = 3;
    } else if (c >= 0xC0 && i + 1 < s.size()) {
      cp = ((c & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
      len = 2;
    }
    i += len;
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v') {
      pending_space = !out.empty();
      continue;
    }
    if (cp >= 0x300 && cp <= 0x36F) continue;  // combining diacritical marks
    if (pending_space) {
      out += ' ';
      pending_space = false;
    }
    if (cp >= 'A' && cp <= 'Z') {
      out += static_cast<char>(cp + 32);
    } else if (cp >= 0xC0 && cp <= 0x17F && kLatinBase[cp - 0xC0] != '.') {
      out += kLatinBase[cp - 0xC0];
    } else if (cp >= 0xC0 && cp <= 0x17F) {
      append_utf8(out, lower_no_decomposition(cp));
    } else {
      append_utf8(out, cp);
    }
  }
  return out;
}

index::DateRange parse_date_range(std::string_view v) {
  const std::string_view whole = v;
  int year = read_int(v, 0, 4, whole);
  unsigned month = 1, day = 1;
  int hour = 0, minute = 0, second = 0, millis = 0;
  int64_t span_ms;  // length of the period the precision covers
  enum { kYear, kMonth, kDay, kMinute, kSecond } precision = kYear;
  size_t pos = 4;
  if (v.size() > pos) {
    if (v[pos] != '-') bad_date(whole);
    month = static_cast<unsigned>(read_int(v, pos + 1, 2, whole));
    precision = kMonth;
    pos += 3;
  }
  if (v.size() > pos) {
    if (v[pos] != '-') bad_date(whole);
    day = static_cast<unsigned>(read_int(v, pos + 1, 2, whole));
    precision = kDay;
    pos += 3;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)) bad_date(whole);
  int64_t fraction_unit = 1000;
  int64_t offset_min = 0;
  if (v.size() > pos) {
    if (v[pos] != 'T') bad_date(whole);
    hour = read_int(v, pos + 1, 2, whole);
    if (v.size() < pos + 6 || v[pos + 3] != ':') bad_date(whole);
    minute = read_int(v, pos + 4, 2, whole);
    precision = kMinute;
    pos += 6;
    if (v.size() > pos && v[pos] == ':') {
      second = read_int(v, pos + 1, 2, whole);
      precision = kSecond;
      pos += 3;
      if (v.size() > pos && v[pos] == '.') {
        size_t start = ++pos;
        while (pos < v.size() && v[pos] >= '0' && v[pos] <= '9') ++pos;
        size_t digits = pos - start;
        if (digits == 0) bad_date(whole);
        int64_t scale = 1000;
        for (size_t k = 0; k < digits && k < 3; ++k) {
          scale /= 10;
          millis += (v[start + k] - '0') * static_cast<int>(scale);
        }
        fraction_unit = digits >= 3 ? 1 : scale;
      }
    }
    if (v.size() > pos) {
      if (v[pos] == 'Z' && v.size() == pos + 1) {
      } else if ((v[pos] == '+' || v[pos] == '-') && v.size() == pos + 6 && v[pos + 3] == ':') {
        offset_min = read_int(v, pos + 1, 2, whole) * 60 + read_int(v, pos + 4, 2, whole);
        if (v[pos] == '-') offset_min = -offset_min;
      } else {
        bad_date(whole);
      }
    }
    if (hour > 23 || minute > 59 || second > 59) bad_date(whole);
  }
  int64_t lo = (days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second) *
                   1000 + millis - offset_min * 60000;
  switch (precision) {
    case kYear: span_ms = (days_from_civil(year + 1, 1, 1) - days_from_civil(year, 1, 1)) * 86400000; break;
    case kMonth: span_ms = int64_t{days_in_month(year, month)} * 86400000; break;
    case kDay: span_ms = 86400000; break;
    case kMinute: span_ms = 60000; break;
    case kSecond: span_ms = fraction_unit == 1000 && millis == 0 ? 1000 : fraction_unit; break;
  }
  return {lo, lo + span_ms - 1};
}

SearchQuery build_search(Schema schema, const std::string& type,
                         const std::vector<std::pair<std::string, std::string>>& params,
                         const index::Indexer* indexer) {
  SearchQuery q;
  json filter{{"im", schema::kInfoModelR4}, {"type", type}, {"cur", true},
              {"change", {{"$ne", "d"}}}};
  if (schema == Schema::kCurrent) filter["cnt"] = false;
  else filter["cnt"] = {{"$ne", true}};
  json sort{{"_id", 1}};
  std::vector<json> clauses;
  for (const auto& [raw_name, value] : params) {
    std::string name = raw_name, modifier;
    if (auto colon = raw_name.find(':'); colon != std::string::npos) {
      name = raw_name.substr(0, colon);
      modifier = raw_name.substr(colon + 1);
    }
    if (name == "_format" || name == "_pretty") continue;
    if (name == "_count") {
      q.count = parse_count("_count", value, kMaxPageSize);
      continue;  // the links set it themselves
    }
    if (name == "_offset") {
      q.offset = parse_count("_offset", value, INT64_MAX);
      continue;
    }
    q.link_params.emplace_back(raw_name, value);
    if (name == "_total") {
      if (value != "accurate" && value != "none" && value != "estimate")
        throw SearchError("value", "_total must be none, estimate or accurate");
      q.total_accurate = value == "accurate";
      continue;
    }
    if (name == "_sort") {
      if (value == "_lastUpdated") sort = json{{"lu", 1}, {"_id", 1}};
      else if (value == "-_lastUpdated") sort = json{{"lu", -1}, {"_id", -1}};
      else if (value == "_id") sort = json{{"res_id", 1}};
      else if (value == "-_id") sort = json{{"res_id", -1}};
      else
        throw SearchError("not-supported", "_sort=" + value +
                                               ": only _lastUpdated, -_lastUpdated, _id, -_id");
      continue;
    }
    if (name == "_id") {
      if (modifier == "missing") {
        if (value == "true") clauses.push_back({{"_id", {{"$exists", false}}}});
        continue;
      }
      if (!modifier.empty()) throw SearchError("not-supported", "_id:" + modifier);
      json ids = json::array();
      for (const auto& id : split(value, ',')) ids.push_back(id);
      clauses.push_back({{"res_id", {{"$in", ids}}}});
      continue;
    }
    if (name == "_lastUpdated") {
      std::vector<json> alts;
      for (const auto& v : split(value, ',')) alts.push_back(last_updated_clause(v));
      clauses.push_back(any_of(std::move(alts)));
      continue;
    }
    if (!name.empty() && name[0] == '_' && name != "_profile" && name != "_tag" &&
        name != "_security" && name != "_source")
      throw SearchError("not-supported", "result/control parameter " + name + " is not supported");
    if (name.find('.') != std::string::npos)
      throw SearchError("not-supported", raw_name + ": chained parameters are not supported");
    if (schema == Schema::kLegacy)
      throw SearchError("not-supported",
                        name + ": the legacy schema has no search index; it answers _id and "
                               "_lastUpdated only (serve the current schema to search)");
    const index::ParamInfo* info = indexer ? indexer->param(type, name) : nullptr;
    if (!info)
      throw SearchError("not-supported",
                        "unknown search parameter " + name + " for " + type);
    const std::string field = "idx." + name;
    if (modifier == "missing") {
      if (value != "true" && value != "false")
        throw SearchError("value", raw_name + " must be true or false");
      clauses.push_back({{field, {{"$exists", value == "false"}}}});
      continue;
    }
    std::vector<json> alts;
    for (const auto& v : split(value, ',')) {
      if (v.empty()) throw SearchError("value", raw_name + " has an empty value");
      alts.push_back(value_clause(field, info->type, modifier, v, name));
    }
    clauses.push_back(any_of(std::move(alts)));
  }
  if (!clauses.empty()) filter["$and"] = std::move(clauses);
  q.filter = mongo::Bson::from_json(filter.dump());
  q.sort = mongo::Bson::from_json(sort.dump());
  return q;
}

}  // namespace fhirshift::server

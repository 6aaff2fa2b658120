#include "server/search.h"

#include <charconv>
#include <cmath>
#include <functional>
#include <memory>
#include <variant>
#include <nlohmann/json.hpp>

#include "index/normalize.h"
#include "schema/entry.h"

namespace fhirshift::server {
namespace {

using nlohmann::json;
using index::ParamType;

// --- strings ------------------------------------------------------------------------------------

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

// --- conditions on index values ------------------------------------------------------------------
// A parameter value becomes conditions on the parts of one index value (`c` and `s` of a token,
// `lo`/`hi` of a date range, the number itself, ...). MongoDB's $elemMatch would express "one
// array element satisfies all of them", but FerretDB does not support it on documents, so the
// database gets the dotted-path conditions (a superset: they may be met by different elements)
// and the server checks the exact ones on each candidate (`post_filter`).

struct Cond {
  enum class Op { kEq, kIsNull, kPrefix, kLt, kLte, kGt, kGte };
  std::string sub;  // "" = the value itself; else a field of it ("s", "c", "t", "lo", "hi", "v", "u")
  Op op = Op::kEq;
  std::variant<std::string, double, int64_t> value;  // int64_t: a date in ms
};

// Some value of idx.<code> meets every condition (or, negated, none does).
struct ElementTest {
  std::string code;
  std::vector<Cond> conds;
  bool negate = false;
  bool exact_in_database() const { return !negate && conds.size() <= 1; }
};

json cond_value(const Cond& c) {
  if (auto* s = std::get_if<std::string>(&c.value)) return *s;
  if (auto* d = std::get_if<double>(&c.value)) return *d;
  return date_value(std::get<int64_t>(c.value));
}

// The dotted-path query for a test (a superset of its matches when !exact_in_database()).
json database_clause(const ElementTest& t) {
  json out = json::object();
  if (t.negate) return out;  // "no element" cannot be narrowed by the database: all candidates
  for (const auto& c : t.conds) {
    std::string path = "idx." + t.code + (c.sub.empty() ? "" : "." + c.sub);
    switch (c.op) {
      case Cond::Op::kEq: out[path] = cond_value(c); break;
      case Cond::Op::kIsNull: out[path] = nullptr; break;
      case Cond::Op::kPrefix: out[path] = regex("^" + regex_escape(std::get<std::string>(c.value))); break;
      case Cond::Op::kLt: out[path]["$lt"] = cond_value(c); break;
      case Cond::Op::kLte: out[path]["$lte"] = cond_value(c); break;
      case Cond::Op::kGt: out[path]["$gt"] = cond_value(c); break;
      case Cond::Op::kGte: out[path]["$gte"] = cond_value(c); break;
    }
  }
  return out;
}

bool cond_holds(const Cond& c, const bson_iter_t* target) {
  if (c.op == Cond::Op::kIsNull) return !target || bson_iter_type(target) == BSON_TYPE_NULL;
  if (!target) return false;
  if (auto* s = std::get_if<std::string>(&c.value)) {
    if (bson_iter_type(target) != BSON_TYPE_UTF8) return false;
    uint32_t len = 0;
    const char* str = bson_iter_utf8(target, &len);
    std::string_view v(str, len);
    if (c.op == Cond::Op::kEq) return v == *s;
    if (c.op == Cond::Op::kPrefix) return v.substr(0, s->size()) == *s;
    return false;
  }
  double have = 0, want = 0;
  if (auto* d = std::get_if<double>(&c.value)) {
    if (!BSON_ITER_HOLDS_NUMBER(target)) return false;
    have = bson_iter_as_double(target);
    want = *d;
  } else {
    if (bson_iter_type(target) != BSON_TYPE_DATE_TIME) return false;
    have = static_cast<double>(bson_iter_date_time(target));
    want = static_cast<double>(std::get<int64_t>(c.value));
  }
  switch (c.op) {
    case Cond::Op::kEq: return have == want;
    case Cond::Op::kLt: return have < want;
    case Cond::Op::kLte: return have <= want;
    case Cond::Op::kGt: return have > want;
    case Cond::Op::kGte: return have >= want;
    default: return false;
  }
}

bool element_meets(const bson_iter_t& element, const std::vector<Cond>& conds) {
  for (const auto& c : conds) {
    if (c.sub.empty()) {
      if (!cond_holds(c, &element)) return false;
      continue;
    }
    bson_iter_t sub;
    bool found = BSON_ITER_HOLDS_DOCUMENT(&element) && bson_iter_recurse(&element, &sub) &&
                 bson_iter_find(&sub, c.sub.c_str());
    if (!cond_holds(c, found ? &sub : nullptr)) return false;
  }
  return true;
}

bool test_holds(const ElementTest& t, const bson_t* doc) {
  bson_iter_t it, values;
  bool any = false;
  std::string path = "idx." + t.code;
  if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path.c_str(), &values) &&
      BSON_ITER_HOLDS_ARRAY(&values)) {
    bson_iter_t element;
    bson_iter_recurse(&values, &element);
    while (!any && bson_iter_next(&element)) any = element_meets(element, t.conds);
  }
  return t.negate ? !any : any;
}

Cond cond(std::string sub, Cond::Op op, std::variant<std::string, double, int64_t> v) {
  return Cond{std::move(sub), op, std::move(v)};
}

// Conditions on a date range value {lo, hi} for a prefix (FHIR R4 search, "date").
std::vector<Cond> date_conds(const std::string& prefix, const index::DateRange& q) {
  using Op = Cond::Op;
  if (prefix == "eq" || prefix == "ap" || prefix == "ne")
    return {cond("lo", Op::kGte, q.lo_ms), cond("hi", Op::kLte, q.hi_ms)};
  if (prefix == "lt") return {cond("lo", Op::kLt, q.lo_ms)};
  if (prefix == "le") return {cond("lo", Op::kLte, q.hi_ms)};
  if (prefix == "gt") return {cond("hi", Op::kGt, q.hi_ms)};
  if (prefix == "ge") return {cond("hi", Op::kGte, q.lo_ms)};
  if (prefix == "sa") return {cond("lo", Op::kGt, q.hi_ms)};
  return {cond("hi", Op::kLt, q.lo_ms)};  // eb
}

std::vector<Cond> number_conds(const std::string& sub, const std::string& prefix,
                               const NumberRange& n) {
  using Op = Cond::Op;
  if (prefix == "eq" || prefix == "ap" || prefix == "ne")
    return {cond(sub, Op::kGte, n.lo), cond(sub, Op::kLt, n.hi)};
  if (prefix == "lt" || prefix == "eb") return {cond(sub, Op::kLt, n.value)};
  if (prefix == "le") return {cond(sub, Op::kLte, n.value)};
  if (prefix == "gt" || prefix == "sa") return {cond(sub, Op::kGt, n.value)};
  return {cond(sub, Op::kGte, n.value)};  // ge
}

// --- one parameter value -------------------------------------------------------------------------

// A value of a parameter as a database clause, plus the exact test when the clause is a superset.
struct Alternative {
  json db;
  std::optional<ElementTest> test;  // token, date, number and quantity values
  bool needs_check() const { return test && !test->exact_in_database(); }
};

Alternative from_test(ElementTest t) { return {database_clause(t), std::move(t)}; }

json any_of(std::vector<json> clauses) {
  if (clauses.size() == 1) return std::move(clauses.front());
  return json{{"$or", std::move(clauses)}};
}

Alternative value_clause(const std::string& code, ParamType type, const std::string& modifier,
                         const std::string& value) {
  using Op = Cond::Op;
  const std::string field = "idx." + code;
  switch (type) {
    case ParamType::kString: {
      std::string n = index::normalize_string(value);
      if (modifier == "exact") return {{{field, n}}, std::nullopt};
      if (modifier == "contains") return {{{field, regex(regex_escape(n))}}, std::nullopt};
      if (!modifier.empty()) break;
      return {{{field, regex("^" + regex_escape(n))}}, std::nullopt};
    }
    case ParamType::kToken: {
      if (modifier == "text") return from_test({code, {cond("t", Op::kPrefix, index::lower_case(value))}});
      if (!modifier.empty()) break;
      auto bar = value.find('|');
      if (bar == std::string::npos) return from_test({code, {cond("c", Op::kEq, value)}});
      std::string system = value.substr(0, bar), c = value.substr(bar + 1);
      if (system.empty() && c.empty())
        throw SearchError("value", code + "=|: a token needs a system or a code");
      ElementTest t{code, {}};
      t.conds.push_back(system.empty() ? cond("s", Op::kIsNull, std::string())
                                       : cond("s", Op::kEq, system));
      if (!c.empty()) t.conds.push_back(cond("c", Op::kEq, c));
      return from_test(std::move(t));
    }
    case ParamType::kReference: {
      if (!modifier.empty()) {
        if (modifier[0] < 'A' || modifier[0] > 'Z') break;  // :Type: the id in that type
        return {{{field, modifier + "/" + value}}, std::nullopt};
      }
      if (value.find('/') == std::string::npos)
        return {{{field, regex("(^|/)" + regex_escape(value) + "$")}}, std::nullopt};
      if (value.find("://") != std::string::npos) {
        // An absolute URL matches as stored, and as Type/id when it names one.
        auto parts = split(value, '/');
        json ors = json::array({json{{field, value}}});
        if (parts.size() >= 2) ors.push_back({{field, parts[parts.size() - 2] + "/" + parts.back()}});
        return {{{"$or", ors}}, std::nullopt};
      }
      return {{{field, value}}, std::nullopt};
    }
    case ParamType::kDate: {
      if (!modifier.empty()) break;
      PrefixedValue pv = split_prefix(value);
      ElementTest t{code, date_conds(pv.prefix, parse_search_date(pv.value)), pv.prefix == "ne"};
      return from_test(std::move(t));
    }
    case ParamType::kNumber: {
      if (!modifier.empty()) break;
      PrefixedValue pv = split_prefix(value);
      return from_test({code, number_conds("", pv.prefix, parse_number(pv.value)), pv.prefix == "ne"});
    }
    case ParamType::kQuantity: {
      if (!modifier.empty()) break;
      auto parts = split(value, '|');
      if (parts.size() != 1 && parts.size() != 3)
        throw SearchError("value", code + "=" + value + ": expected [prefix]number[|system|code]");
      PrefixedValue pv = split_prefix(parts[0]);
      ElementTest t{code, number_conds("v", pv.prefix, parse_number(pv.value)), pv.prefix == "ne"};
      if (parts.size() == 3) {
        if (!parts[1].empty()) t.conds.push_back(cond("s", Op::kEq, parts[1]));
        if (!parts[2].empty()) t.conds.push_back(cond("u", Op::kEq, parts[2]));
      }
      return from_test(std::move(t));
    }
    case ParamType::kUri: {
      if (modifier == "below") return {{{field, regex("^" + regex_escape(value))}}, std::nullopt};
      if (!modifier.empty()) break;
      return {{{field, value}}, std::nullopt};
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
  index::DateRange q = parse_search_date(pv.value);
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

index::DateRange parse_search_date(std::string_view v) {
  auto r = index::parse_date_range(v);
  if (!r)
    throw SearchError("value", "\"" + std::string(v) +
                                   "\" is not a FHIR date/dateTime (YYYY, YYYY-MM, YYYY-MM-DD, "
                                   "YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm))");
  return *r;
}

SearchQuery build_search(Schema schema, const std::string& type,
                         const std::vector<std::pair<std::string, std::string>>& params,
                         const index::Indexer* indexer) {
  SearchQuery q;
  json filter{{"im", schema::kInfoModelR4}, {"type", type}, {"cur", true},
              {"change", {{"$ne", "d"}}}};
  json sort{{"_id", 1}};
  std::vector<json> clauses;
  std::vector<std::function<bool(const mongo::View&)>> post_checks;
  for (const auto& [raw_name, value] : params) {
    // The query is built as JSON text, which must be UTF-8 (a "%FF" in the URL would otherwise end
    // as a 500), and as BSON, whose keys cannot hold a NUL. The message cannot quote the bytes: the
    // OperationOutcome is JSON too.
    if (!bson_utf8_validate(raw_name.data(), raw_name.size(), false))
      throw SearchError("value", "a search parameter name is not UTF-8 text without NUL characters "
                                 "(percent-encode the UTF-8 bytes of the text)");
    if (!bson_utf8_validate(value.data(), value.size(), false))
      throw SearchError("value", "the value of search parameter " + raw_name +
                                     " is not UTF-8 text without NUL characters (percent-encode the "
                                     "UTF-8 bytes of the text)");
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
    if (name == "_contained") {
      if (value == "false")
        q.contained = ContainedScope::kResources;
      else if (value == "true")
        q.contained = ContainedScope::kContained;
      else if (value == "both")
        q.contained = ContainedScope::kBoth;
      else
        throw SearchError("value", "_contained must be false, true or both");
      continue;
    }
    if (name == "_containedType") {
      if (value != "container")
        throw SearchError(
            "not-supported",
            "_containedType=" + value +
                ": only container (a contained match is answered with its container)");
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
    if (modifier == "missing") {
      if (value != "true" && value != "false")
        throw SearchError("value", raw_name + " must be true or false");
      clauses.push_back({{"idx." + name, {{"$exists", value == "false"}}}});
      continue;
    }
    // Comma-separated values: any of them. When one needs the exact check, the server checks
    // all of this parameter's alternatives (they are all of one type, so all have a test).
    std::vector<Alternative> alts;
    bool needs_exact = false;
    for (const auto& v : split(value, ',')) {
      if (v.empty()) throw SearchError("value", raw_name + " has an empty value");
      alts.push_back(value_clause(name, info->type, modifier, v));
      needs_exact |= alts.back().needs_check();
    }
    if (!needs_exact) {
      std::vector<json> dbs;
      for (auto& a : alts) dbs.push_back(std::move(a.db));
      clauses.push_back(any_of(std::move(dbs)));
      continue;
    }
    // The database narrows by the alternatives whose clause is not "anything" (a negation).
    std::vector<json> dbs;
    bool unbounded = false;
    std::vector<ElementTest> tests;
    for (auto& a : alts) {
      unbounded |= a.db.empty();
      dbs.push_back(std::move(a.db));
      tests.push_back(std::move(*a.test));
    }
    if (!unbounded) clauses.push_back(any_of(std::move(dbs)));
    post_checks.push_back([tests = std::move(tests)](const mongo::View& doc) {
      for (const auto& t : tests)
        if (test_holds(t, doc.get())) return true;
      return false;
    });
  }
  // `cnt` is false or absent on a resource (legacy writers sometimes left it out); the current
  // schema always writes it.
  if (q.contained == ContainedScope::kContained)
    filter["cnt"] = true;
  else if (q.contained == ContainedScope::kResources) {
    if (schema == Schema::kCurrent)
      filter["cnt"] = false;
    else
      filter["cnt"] = {{"$ne", true}};
  }
  if (!clauses.empty()) filter["$and"] = std::move(clauses);
  if (!post_checks.empty())
    q.post_filter = [post_checks = std::move(post_checks)](const mongo::View& doc) {
      for (const auto& c : post_checks)
        if (!c(doc)) return false;
      return true;
    };
  q.filter = mongo::Bson::from_json(filter.dump());
  q.sort = mongo::Bson::from_json(sort.dump());
  return q;
}

}  // namespace fhirshift::server

// The search indexer: every R4 SearchParameter compiled once per resource type into a plan of
// FHIRPath expressions; index() evaluates a type's plan over the simdjson-parsed body and converts
// the results to the encodings of docs/schema.md.
#include "index/indexer.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_map>

#include "fhirpath/expression.h"
#include "index/normalize.h"

namespace fhirshift::index {
namespace {

namespace fp = fhirshift::fhirpath;
using simdjson::dom::element;
using simdjson::dom::element_type;

ParamType parse_type(const std::string& t) {
  static const std::map<std::string, ParamType> kTypes{{"string", ParamType::kString},
                                                       {"token", ParamType::kToken},
                                                       {"reference", ParamType::kReference},
                                                       {"date", ParamType::kDate},
                                                       {"number", ParamType::kNumber},
                                                       {"quantity", ParamType::kQuantity},
                                                       {"uri", ParamType::kUri},
                                                       {"composite", ParamType::kComposite},
                                                       {"special", ParamType::kSpecial}};
  auto it = kTypes.find(t);
  if (it == kTypes.end()) throw std::runtime_error("unknown SearchParameter type '" + t + "'");
  return it->second;
}

// A value that cannot be converted to its parameter's encoding although its type says it should
// (a malformed dateTime, a Quantity whose value is a string). Counted like an evaluation error.
class ConversionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::optional<std::string_view> str(element obj, const char* key) {
  std::string_view v;
  if (obj[key].get(v)) return std::nullopt;
  return v;
}
std::optional<std::string> opt_string(element obj, const char* key) {
  auto v = str(obj, key);
  if (!v) return std::nullopt;
  return std::string(*v);
}

std::optional<double> number(element e) {
  switch (e.type()) {
    case element_type::INT64:
      return static_cast<double>(int64_t(e));
    case element_type::UINT64:
      return static_cast<double>(uint64_t(e));
    case element_type::DOUBLE:
      return double(e);
    default:
      return std::nullopt;
  }
}

// Appends every string of `obj[key]` (a string or an array of strings).
template <class F>
void each_string(element obj, const char* key, F&& f) {
  element e;
  if (obj[key].get(e)) return;
  if (e.type() == element_type::STRING) {
    f(std::string_view(e));
  } else if (e.type() == element_type::ARRAY) {
    for (auto item : simdjson::dom::array(e))
      if (item.type() == element_type::STRING) f(std::string_view(item));
  }
}

class Converter {
 public:
  explicit Converter(std::vector<IndexValue>& out) : out_(out) {}

  void convert(ParamType type, const fp::Value& v) {
    switch (type) {
      case ParamType::kString:
        return to_string(v);
      case ParamType::kToken:
        return to_token(v);
      case ParamType::kReference:
        return to_reference(v);
      case ParamType::kDate:
        return to_date(v);
      case ParamType::kNumber:
        return to_number(v);
      case ParamType::kQuantity:
        return to_quantity(v);
      case ParamType::kUri:
        return to_uri(v);
      case ParamType::kComposite:
      case ParamType::kSpecial:
        return;
    }
  }

 private:
  // The text of a primitive item (a JSON string, or a computed string).
  static std::optional<std::string_view> text(const fp::Value& v) {
    if (v.kind == fp::Value::Kind::kString) return v.text;
    if (v.kind == fp::Value::Kind::kJson && v.json.type() == element_type::STRING)
      return std::string_view(v.json);
    return std::nullopt;
  }
  static bool is_object(const fp::Value& v) {
    return v.kind == fp::Value::Kind::kJson && v.json.type() == element_type::OBJECT;
  }

  void add_string(std::string_view s) {
    std::string n = normalize_string(s);
    if (!n.empty()) out_.emplace_back(std::move(n));
  }
  void add_token(std::optional<std::string> system, std::optional<std::string> code) {
    if (!system && !code) return;
    out_.emplace_back(Token{std::move(system), std::move(code), std::nullopt});
  }

  void to_string(const fp::Value& v) {
    if (auto t = text(v)) return add_string(*t);
    if (!is_object(v)) return;
    std::string_view type = v.type_name();
    static const char* kNameParts[] = {"text", "family", "given", "prefix", "suffix"};
    static const char* kAddressParts[] = {"text",  "line",       "city",   "district",
                                          "state", "postalCode", "country"};
    if (type == "HumanName") {
      for (const char* part : kNameParts)
        each_string(v.json, part, [&](std::string_view s) { add_string(s); });
    } else if (type == "Address") {
      for (const char* part : kAddressParts)
        each_string(v.json, part, [&](std::string_view s) { add_string(s); });
    }
  }

  void coding(element c) { add_token(opt_string(c, "system"), opt_string(c, "code")); }

  void to_token(const fp::Value& v) {
    if (v.kind == fp::Value::Kind::kBool)
      return add_token(std::nullopt, v.boolean ? "true" : "false");
    if (v.kind == fp::Value::Kind::kString) return add_token(std::nullopt, std::string(v.text));
    if (v.kind != fp::Value::Kind::kJson) return;
    switch (v.json.type()) {
      case element_type::STRING:
        return add_token(std::nullopt, std::string(std::string_view(v.json)));
      case element_type::BOOL:
        return add_token(std::nullopt, bool(v.json) ? "true" : "false");
      case element_type::INT64:
      case element_type::UINT64:
      case element_type::DOUBLE:
        return add_token(std::nullopt, simdjson::minify(v.json));
      case element_type::OBJECT:
        break;
      default:
        return;
    }
    std::string_view type = v.type_name();
    if (type == "CodeableConcept") {
      simdjson::dom::array codings;
      if (!v.json["coding"].get(codings))
        for (auto c : codings)
          if (c.type() == element_type::OBJECT) coding(c);
      if (auto t = str(v.json, "text"))
        out_.emplace_back(Token{std::nullopt, std::nullopt, lower_case(*t)});
    } else if (type == "Coding") {
      coding(v.json);
    } else if (type == "Identifier") {
      add_token(opt_string(v.json, "system"), opt_string(v.json, "value"));
    } else if (type == "ContactPoint") {
      add_token(std::nullopt, opt_string(v.json, "value"));
    }
  }

  void to_reference(const fp::Value& v) {
    if (auto t = text(v)) {  // canonical, uri
      std::string_view s = *t;
      if (v.type_name() == "canonical") s = s.substr(0, s.find('|'));
      if (!s.empty()) out_.emplace_back(std::string(s));
      return;
    }
    if (!is_object(v)) return;
    if (auto ref = str(v.json, "reference")) {
      if (!ref->empty() && (*ref)[0] != '#') out_.emplace_back(std::string(*ref));
      return;
    }
    // A resource (Bundle.entry[0].resource): its relative reference.
    auto rt = str(v.json, "resourceType");
    auto id = str(v.json, "id");
    if (rt && id) out_.emplace_back(std::string(*rt) + "/" + std::string(*id));
  }

  void date_text(std::string_view s, bool must_parse) {
    if (auto r = parse_date_range(s)) {
      out_.emplace_back(*r);
    } else if (must_parse) {
      throw ConversionError("malformed date '" + std::string(s) + "'");
    }
  }
  void period(element p) {
    auto start = str(p, "start");
    auto end = str(p, "end");
    if (!start && !end) return;
    DateRange r{kMinDateMs, kMaxDateMs};
    if (start) {
      auto s = parse_date_range(*start);
      if (!s) throw ConversionError("malformed Period.start '" + std::string(*start) + "'");
      r.lo_ms = s->lo_ms;
    }
    if (end) {
      auto e = parse_date_range(*end);
      if (!e) throw ConversionError("malformed Period.end '" + std::string(*end) + "'");
      r.hi_ms = e->hi_ms;
    }
    out_.emplace_back(r);
  }

  void to_date(const fp::Value& v) {
    std::string_view type = v.type_name();
    bool date_type = type == "date" || type == "dateTime" || type == "instant";
    if (auto t = text(v)) return date_text(*t, date_type);
    if (!is_object(v)) return;
    if (type == "Period") return period(v.json);
    if (type == "Timing") {
      each_string(v.json, "event", [&](std::string_view s) { date_text(s, true); });
      element bounds;
      if (!v.json.at_pointer("/repeat/boundsPeriod").get(bounds) &&
          bounds.type() == element_type::OBJECT)
        period(bounds);
    }
  }

  void to_number(const fp::Value& v) {
    if (v.kind == fp::Value::Kind::kNumber) return out_.emplace_back(v.number), void();
    if (v.kind != fp::Value::Kind::kJson) return;
    if (auto n = number(v.json)) return out_.emplace_back(*n), void();
    if (v.json.type() == element_type::STRING)
      throw ConversionError("number parameter holds the string '" +
                            std::string(std::string_view(v.json)) + "'");
  }

  void quantity(element q, bool money) {
    element value;
    if (q["value"].get(value)) return;
    auto n = number(value);
    if (!n) throw ConversionError("Quantity.value is not a number");
    Quantity out;
    out.value = *n;
    if (money) {
      out.unit = opt_string(q, "currency");
      if (out.unit) out.system = "urn:iso:std:iso:4217";
    } else {
      out.unit = opt_string(q, "code");
      if (!out.unit) out.unit = opt_string(q, "unit");
      out.system = opt_string(q, "system");
    }
    out_.emplace_back(std::move(out));
  }

  void to_quantity(const fp::Value& v) {
    if (!is_object(v)) return;
    static const fp::CtxId kQuantity = fp::Model::r4().type("Quantity");
    std::string_view type = v.type_name();
    if (type == "Money") return quantity(v.json, true);
    if (type == "Range") {
      for (const char* end : {"low", "high"}) {
        element q;
        if (!v.json[end].get(q) && q.type() == element_type::OBJECT) quantity(q, false);
      }
      return;
    }
    if (fp::Model::r4().is_a(v.ctx, kQuantity) || v.ctx < 0) quantity(v.json, false);
  }

  void to_uri(const fp::Value& v) {
    if (auto t = text(v); t && !t->empty()) out_.emplace_back(std::string(*t));
  }

  std::vector<IndexValue>& out_;
};

struct CompiledParam {
  ParamInfo info;
  std::shared_ptr<const fp::Expression>
      expr;  // null: not indexed (composite, special, no expression)
};

struct Hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct TypePlan {
  std::vector<CompiledParam> params;  // sorted by code
  int64_t skipped = 0;
  // Which parameters read which key of the root object; `always` are those the compiler cannot
  // tell (or that yield something without data, like `deceased.exists() and ...`).
  std::unordered_map<std::string, std::vector<uint32_t>, Hash, std::equal_to<>> by_root_key;
  std::vector<uint32_t> always;
};

struct Definition {
  std::string id, code, expression;
  ParamType type;
  std::vector<std::string> base;
};

class FhirPathIndexer final : public Indexer {
 public:
  explicit FhirPathIndexer(const std::filesystem::path& path) {
    std::vector<Definition> defs = read_definitions(path);
    const fp::Model& model = fp::Model::r4();
    std::vector<std::string> types = model.resource_types();
    types.push_back("Resource");  // the plan for types the R4 model does not know
    for (const auto& type : types) {
      TypePlan& plan = plans_[type];
      fp::CtxId ctx = model.type(type);
      for (const auto& d : defs) {
        bool applies = false;
        for (const auto& b : d.base)
          applies = applies || b == type || model.is_a(ctx, model.type(b));
        if (!applies) continue;
        CompiledParam p;
        p.info.code = d.code;
        p.info.type = d.type;
        p.info.expression = part_for(d, type);
        bool indexed = d.type != ParamType::kComposite && d.type != ParamType::kSpecial &&
                       !p.info.expression.empty();
        if (indexed) {
          try {
            p.expr = fp::Expression::compile(p.info.expression, type);
          } catch (const std::exception& e) {
            throw std::runtime_error("SearchParameter " + d.id + " (" + d.code + ") for " + type +
                                     ": cannot compile '" + p.info.expression + "': " + e.what());
          }
        } else {
          ++plan.skipped;
        }
        plan.params.push_back(std::move(p));
      }
      std::sort(
          plan.params.begin(), plan.params.end(),
          [](const CompiledParam& a, const CompiledParam& b) { return a.info.code < b.info.code; });
      for (uint32_t i = 0; i < plan.params.size(); ++i) {
        const auto& expr = plan.params[i].expr;
        if (!expr) continue;
        if (!expr->root_keys()) {
          plan.always.push_back(i);
          continue;
        }
        for (const auto& key : *expr->root_keys()) {
          auto& list = plan.by_root_key[key];
          if (list.empty() || list.back() != i) list.push_back(i);
        }
      }
    }
  }

  SearchIndex index(std::string_view resource_type, std::string_view json,
                    IndexStats* stats) const override {
    const TypePlan& plan = plan_for(resource_type);
    thread_local simdjson::dom::parser parser;
    thread_local fp::EvalState state;
    thread_local std::vector<fp::Value> results;
    element doc;
    if (parser.parse(json.data(), json.size()).get(doc) || doc.type() != element_type::OBJECT)
      return {};
    if (stats) stats->skipped_params += plan.skipped;
    // Only the parameters that read a key the root has (or that the compiler cannot tell) are
    // evaluated: the others yield nothing. A body of another type than the plan's (which the
    // caller's checks normally rule out) is evaluated in full.
    thread_local std::vector<uint8_t> active;
    std::string_view rt;
    bool own_type = !doc["resourceType"].get(rt) && rt == resource_type;
    active.assign(plan.params.size(), own_type ? 0 : 1);
    if (own_type) {
      for (uint32_t i : plan.always) active[i] = 1;
      for (auto field : simdjson::dom::object(doc)) {
        auto it = plan.by_root_key.find(field.key);
        if (it != plan.by_root_key.end())
          for (uint32_t i : it->second) active[i] = 1;
      }
    }
    SearchIndex idx;
    idx.reserve(24);
    std::vector<IndexValue> values;
    for (uint32_t pi = 0; pi < plan.params.size(); ++pi) {
      const auto& p = plan.params[pi];
      if (!p.expr || !active[pi]) continue;
      results.clear();
      values.clear();
      if (!state.strings.empty()) state.strings.clear();
      try {
        p.expr->evaluate(doc, state, results);
        Converter conv(values);
        for (const auto& r : results) conv.convert(p.info.type, r);
      } catch (const std::exception&) {  // fhirpath::EvaluationError, ConversionError
        if (stats) ++stats->evaluation_errors;
        continue;
      }
      if (values.empty()) continue;
      IndexEntry entry{p.info.code, {}};
      entry.values.reserve(values.size());
      for (auto& v : values)
        if (std::find(entry.values.begin(), entry.values.end(), v) == entry.values.end())
          entry.values.push_back(std::move(v));
      idx.push_back(std::move(entry));
    }
    return idx;
  }

  const ParamInfo* param(std::string_view type, std::string_view code) const override {
    for (const auto& p : plan_for(type).params)
      if (p.info.code == code) return &p.info;
    return nullptr;
  }

  std::vector<const ParamInfo*> params(std::string_view type) const override {
    std::vector<const ParamInfo*> out;
    for (const auto& p : plan_for(type).params) out.push_back(&p.info);
    return out;
  }

 private:
  const TypePlan& plan_for(std::string_view type) const {
    auto it = plans_.find(type);
    return it != plans_.end() ? it->second : plans_.at("Resource");
  }

  // The parts of a (union) expression that apply to `type`: those starting from the type itself
  // or from a base type (Resource.id), or from no type at all.
  static std::string part_for(const Definition& d, const std::string& type) {
    if (d.expression.empty()) return {};
    const fp::Model& model = fp::Model::r4();
    std::string out;
    for (const auto& part : fp::union_parts(d.expression)) {
      std::string root = fp::root_type_name(part);
      fp::CtxId root_ctx = model.type(root);
      bool keep = root_ctx < 0 || !std::isupper(static_cast<unsigned char>(root[0])) ||
                  model.is_a(model.type(type), root_ctx);
      if (!keep) continue;
      if (!out.empty()) out += " | ";
      out += part;
    }
    return out;
  }

  static std::vector<Definition> read_definitions(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in)
      throw std::runtime_error("cannot read FHIR search parameter definitions at " + path.string() +
                               " (fix: run scripts/setup.sh, or set FHIRSHIFT_SEARCH_PARAMETERS)");
    std::vector<Definition> out;
    try {
      nlohmann::json bundle = nlohmann::json::parse(in);
      for (const auto& e : bundle.at("entry")) {
        const auto& sp = e.at("resource");
        Definition d{sp.at("id").get<std::string>(),
                     sp.at("code").get<std::string>(),
                     sp.value("expression", ""),
                     parse_type(sp.at("type")),
                     {}};
        for (const auto& b : sp.at("base")) d.base.push_back(b.get<std::string>());
        out.push_back(std::move(d));
      }
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error("bad FHIR search parameter definitions in " + path.string() + ": " +
                               e.what());
    }
    return out;
  }

  std::unordered_map<std::string, TypePlan, Hash, std::equal_to<>> plans_;
};

}  // namespace

std::filesystem::path Indexer::default_definitions_path() {
  if (const char* env = std::getenv("FHIRSHIFT_SEARCH_PARAMETERS"); env && *env) return env;
  return FHIRSHIFT_DEFAULT_SEARCH_PARAMETERS;
}

std::shared_ptr<const Indexer> Indexer::load(const std::filesystem::path& path) {
  return std::make_shared<FhirPathIndexer>(path);
}

}  // namespace fhirshift::index

// INTERIM implementation (replaced by the FHIRPath-based indexer of issue 4): loads the parameter
// table from the definitions and indexes `_id` only, so that callers can be built against the API.
#include "index/indexer.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <simdjson.h>
#include <stdexcept>

namespace fhirshift::index {
namespace {

ParamType parse_type(const std::string& t) {
  static const std::map<std::string, ParamType> kTypes{
      {"string", ParamType::kString},       {"token", ParamType::kToken},
      {"reference", ParamType::kReference}, {"date", ParamType::kDate},
      {"number", ParamType::kNumber},       {"quantity", ParamType::kQuantity},
      {"uri", ParamType::kUri},             {"composite", ParamType::kComposite},
      {"special", ParamType::kSpecial}};
  auto it = kTypes.find(t);
  if (it == kTypes.end()) throw std::runtime_error("unknown SearchParameter type '" + t + "'");
  return it->second;
}

class TableIndexer final : public Indexer {
 public:
  explicit TableIndexer(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in)
      throw std::runtime_error("cannot read FHIR search parameter definitions at " + path.string() +
                               " (fix: run scripts/setup.sh, or set FHIRSHIFT_SEARCH_PARAMETERS)");
    nlohmann::json bundle = nlohmann::json::parse(in);
    for (const auto& e : bundle.at("entry")) {
      const auto& sp = e.at("resource");
      for (const auto& base : sp.at("base")) {
        ParamInfo info{sp.at("code").get<std::string>(), parse_type(sp.at("type")),
                       sp.value("expression", "")};
        by_type_[base.get<std::string>()][info.code] = std::move(info);
      }
    }
  }

  SearchIndex index(std::string_view, std::string_view json, IndexStats*) const override {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(json.data(), json.size()).get(doc)) return {};
    std::string_view id;
    if (doc["id"].get(id)) return {};
    return {IndexEntry{"_id", {Token{std::nullopt, std::string(id), std::nullopt}}}};
  }

  const ParamInfo* param(std::string_view type, std::string_view code) const override {
    for (std::string_view t : {type, std::string_view("Resource"), std::string_view("DomainResource")}) {
      auto it = by_type_.find(std::string(t));
      if (it == by_type_.end()) continue;
      auto p = it->second.find(std::string(code));
      if (p != it->second.end()) return &p->second;
    }
    return nullptr;
  }

  std::vector<const ParamInfo*> params(std::string_view type) const override {
    std::vector<const ParamInfo*> out;
    for (std::string_view t : {type, std::string_view("Resource"), std::string_view("DomainResource")}) {
      auto it = by_type_.find(std::string(t));
      if (it == by_type_.end()) continue;
      for (const auto& [code, info] : it->second) out.push_back(&info);
    }
    return out;
  }

 private:
  std::map<std::string, std::map<std::string, ParamInfo>> by_type_;
};

}  // namespace

std::filesystem::path Indexer::default_definitions_path() {
  if (const char* env = std::getenv("FHIRSHIFT_SEARCH_PARAMETERS"); env && *env) return env;
  return FHIRSHIFT_DEFAULT_SEARCH_PARAMETERS;
}

std::shared_ptr<const Indexer> Indexer::load(const std::filesystem::path& path) {
  return std::make_shared<TableIndexer>(path);
}

}  // namespace fhirshift::index

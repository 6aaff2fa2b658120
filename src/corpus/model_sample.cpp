#include "corpus/model_sample.h"

#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "fhirpath/model.h"

namespace fhirshift::corpus {
namespace {

using fhirpath::CtxId;
using fhirpath::Model;

nlohmann::json primitive(std::string_view type) {
  if (type == "boolean") return true;
  if (type == "integer" || type == "positiveInt" || type == "unsignedInt") return 2;
  if (type == "decimal") return 1.5;
  if (type == "date") return "2020-02-03";
  if (type == "dateTime" || type == "instant") return "2020-02-03T04:05:06Z";
  if (type == "time") return "04:05:06";
  if (type == "uri" || type == "url" || type == "canonical") return "http://example.org/x|1";
  return "text";
}

nlohmann::json synthesize(CtxId ctx, int depth, size_t variant) {
  const Model& m = Model::r4();
  const auto& c = m.ctx(ctx);
  if (c.primitive) return primitive(m.ctx(c.type).name);
  if (c.name == "Reference") return {{"reference", "Patient/1"}, {"display", "P"}};
  if (c.resource && depth < 3) return {{"resourceType", "Patient"}, {"id", "c1"}};
  nlohmann::json obj = nlohmann::json::object();
  if (depth <= 0) return obj;
  // The model also lists each choice variant (valueQuantity, ...) as an element of its own: keep
  // only the variant chosen through the choice element, as valid FHIR has one.
  std::set<std::string> variant_keys;
  for (CtxId base = ctx; base >= 0; base = m.ctx(base).parent)
    m.for_each_member(base, [&](const std::string&, const fhirpath::Member& mem) {
      if (mem.choice)
        for (const auto& v : mem.variants) variant_keys.insert(v.key);
    });
  for (CtxId base = ctx; base >= 0; base = m.ctx(base).parent) {
    m.for_each_member(base, [&](const std::string& name, const fhirpath::Member& mem) {
      if (name == "extension" || name == "modifierExtension" || name == "contained") return;
      if (!mem.choice && variant_keys.count(name)) return;
      const auto& v = mem.variants[variant % mem.variants.size()];
      if (v.ctx == ctx) return;  // recursive element (Questionnaire.item.item)
      obj[v.key] = synthesize(v.ctx, depth - 1, variant);
    });
  }
  return obj;
}

}  // namespace

std::string model_sample(std::string_view type, std::string_view id, size_t variant) {
  CtxId ctx = Model::r4().type(type);
  if (ctx < 0 || !Model::r4().ctx(ctx).resource)
    throw std::invalid_argument("model_sample: '" + std::string(type) +
                                "' is not an R4 resource type");
  nlohmann::json j = synthesize(ctx, 4, variant);
  j["resourceType"] = type;
  j["id"] = id;
  return j.dump();
}

}  // namespace fhirshift::corpus

// Every FHIRPath expression of the official R4 SearchParameters compiles for each of its base
// types and evaluates without error on a resource of that type: a generated corpus resource where
// the corpus has the type, else a resource synthesised from the model with every element present.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "corpus/generator.h"
#include "corpus/model_sample.h"
#include "fhirpath/expression.h"

namespace fhirshift::fhirpath {
namespace {

struct Param {
  std::string id, type, expression;
  std::vector<std::string> base;
};

std::vector<Param> load_params() {
  std::ifstream in(FHIRSHIFT_SEARCH_PARAMETERS);
  auto bundle = nlohmann::json::parse(in);
  std::vector<Param> out;
  for (const auto& e : bundle.at("entry")) {
    const auto& r = e.at("resource");
    Param p{r.at("id"), r.at("type"), r.value("expression", ""), {}};
    for (const auto& b : r.at("base")) p.base.push_back(b);
    out.push_back(std::move(p));
  }
  return out;
}

TEST(FhirPathDefinitions, All1331ExpressionsCompileAndEvaluateOnTheirBaseTypes) {
  auto params = load_params();
  ASSERT_EQ(params.size(), 1378u);
  std::set<std::string> corpus_types(corpus::Generator::types().begin(),
                                     corpus::Generator::types().end());
  corpus::Generator gen(99);
  simdjson::dom::parser parser;
  size_t indexed = 0, evaluations = 0, nonempty = 0, with_root_keys = 0;
  std::vector<std::string> without_expression;
  for (const auto& p : params) {
    if (p.type == "composite" || p.type == "special") continue;
    ++indexed;
    if (p.expression.empty()) {
      without_expression.push_back(p.id);
      continue;
    }
    for (const auto& base : p.base) {
      // "Resource" and "DomainResource" parameters apply to every resource type: try a few.
      std::vector<std::string> types{base};
      if (base == "Resource" || base == "DomainResource")
        types = {"Patient", "Observation", "Bundle"};
      for (const auto& type : types) {
        std::shared_ptr<const Expression> expr;
        ASSERT_NO_THROW(expr = Expression::compile(p.expression, type))
            << p.id << " on " << type << ": " << p.expression;
        for (size_t variant = 0; variant < 3; ++variant) {
          std::string json = corpus_types.count(type)
                                 ? gen.resource(type, "r" + std::to_string(variant))
                                 : corpus::model_sample(type, "r1", variant);
          simdjson::dom::element doc;
          ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS);
          EvalState state;
          std::vector<Value> out;
          try {
            expr->evaluate(doc, state, out);
          } catch (const std::exception& e) {
            ADD_FAILURE() << p.id << " on " << type << ": " << p.expression << ": " << e.what()
                          << "\n"
                          << json;
          }
          ++evaluations;
          if (!out.empty()) ++nonempty;
          // root_keys() is sound: without those keys the expression yields nothing.
          if (expr->root_keys()) {
            ++with_root_keys;
            auto stripped = nlohmann::json::parse(json);
            for (const auto& k : *expr->root_keys()) stripped.erase(k);
            std::string text = stripped.dump();
            simdjson::dom::parser p2;
            EvalState s2;
            EXPECT_TRUE(expr->evaluate(p2.parse(text), s2).empty())
                << p.id << " on " << type << " without its root keys: " << text;
          }
        }
      }
    }
  }
  EXPECT_EQ(indexed, 1331u);
  EXPECT_EQ(without_expression, (std::vector<std::string>{"DomainResource-text", "Resource-content",
                                                          "Resource-query"}));
  // The synthesised resources have every element: most expressions must find something.
  EXPECT_GT(nonempty * 10, evaluations * 7) << nonempty << " of " << evaluations << " non-empty";
  EXPECT_GT(with_root_keys * 10, evaluations * 9);  // nearly every expression is a path
  std::cout << evaluations << " evaluations, " << nonempty << " non-empty, " << with_root_keys
            << " with root keys\n";
}

TEST(FhirPathDefinitions, UnionPartsAndRootTypes) {
  EXPECT_EQ(union_parts("Patient.name | Practitioner.name | (Observation.value as Quantity)"),
            (std::vector<std::string>{"Patient.name", "Practitioner.name",
                                      "(Observation.value as Quantity)"}));
  EXPECT_EQ(root_type_name("(Observation.value as Quantity)"), "Observation");
  EXPECT_EQ(root_type_name("Patient.deceased.exists() and Patient.deceased != false"), "Patient");
  EXPECT_EQ(root_type_name("Bundle.entry[0].resource"), "Bundle");
}

}  // namespace
}  // namespace fhirshift::fhirpath

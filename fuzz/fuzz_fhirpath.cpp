// libFuzzer target: the FHIRPath parser and compiler, and the evaluation of what compiles.
//
// Input: the expression on the first line; the rest, if any, is the resource to evaluate it over
// (else a small Patient with a contained Organization). The root type is the one the expression
// starts from when it names one ("Observation.code"), else Patient. Accepted outcomes: a
// CompileError (the indexer refuses the definition with its name), an EvaluationError (the
// indexer counts it and skips the parameter) or a result.
#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "fhirpath/expression.h"
#include "fhirpath/model.h"

namespace {
constexpr std::string_view kDefaultResource = R"({"resourceType":"Patient","id":"p1",
 "contained":[{"resourceType":"Organization","id":"o1","name":"Acme"}],
 "identifier":[{"system":"urn:x","value":"42"}],"active":true,
 "name":[{"family":"Müller","given":["Anna","B"]}],"birthDate":"1970-01-02",
 "managingOrganization":{"reference":"#o1"},"generalPractitioner":[{"reference":"Practitioner/9"}],
 "extension":[{"url":"http://x","valueDecimal":1.50}]})";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fhirshift::fhirpath;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nl = input.find('\n');
  std::string_view text = input.substr(0, nl);
  std::string_view resource = nl == std::string_view::npos ? kDefaultResource : input.substr(nl + 1);

  std::shared_ptr<const Expression> expr;
  try {
    (void)union_parts(text);
    std::string root = root_type_name(text);
    if (root.empty() || Model::r4().type(root) < 0) root = "Patient";
    expr = Expression::compile(text, root);
  } catch (const CompileError&) {
    return 0;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(resource.data(), resource.size()).get(doc)) return 0;
  try {
    EvalState state;
    for (const Value& v : expr->evaluate(doc, state)) {
      (void)v.type_name();
      (void)to_json(v);
    }
  } catch (const EvaluationError&) {
  }
  return 0;
}

// A compiled FHIRPath expression, evaluated over a resource parsed with simdjson.
//
// Compilation resolves every path step against the FHIR R4 model once (choice types, element
// types), so evaluation is a walk over the JSON with no string building. Results keep their FHIR
// type, which the indexer needs (an Identifier and a ContactPoint look alike in JSON).
//
// resolve() does not fetch anything: a Reference resolves to the contained resource it points to
// ("#id"), or to a stand-in resource of the type named by its reference string ("Patient/1",
// "https://x.org/fhir/Patient/1/_history/2"), so that `where(resolve() is Patient)` selects
// references by their target type as search indexing needs. Other references resolve to nothing.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fhirpath/ast.h"
#include "fhirpath/model.h"

namespace fhirshift::fhirpath {

// Odd data met while evaluating (an object where a string was expected, nested arrays, more than
// one item where one is required). The caller decides what to do with the expression's result.
class EvaluationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One item of a result collection.
struct Value {
  enum class Kind : uint8_t { kJson, kBool, kNumber, kString, kStub };
  Kind kind = Kind::kJson;
  bool boolean = false;
  CtxId ctx = kUnknownCtx;  // FHIR type (or element path) of the item, if known
  double number = 0;
  std::string_view text;        // kString; kStub: the resource type
  simdjson::dom::element json;  // kJson

  // The FHIR type name ("Identifier", "dateTime", "BackboneElement"), or "" when unknown.
  std::string_view type_name() const;
};

// The state of one evaluation: holds strings computed while evaluating (results may point into
// it), so it must outlive the results.
struct EvalState {
  simdjson::dom::element root;  // %resource, used to resolve "#id" references
  std::deque<std::string> strings;
};

class Expression {
 public:
  // Compiles `text` for resources of type `root_type` (e.g. "Patient"). Throws CompileError naming
  // the unsupported construct.
  static std::shared_ptr<const Expression> compile(std::string_view text,
                                                   std::string_view root_type);

  // Evaluates over `resource` (the root, a JSON object). Thread-safe. Throws EvaluationError.
  // Results point into the parsed document, into `state` and into this expression (string
  // literals): all three must outlive them.
  void evaluate(simdjson::dom::element resource, EvalState& state, std::vector<Value>& out) const;
  std::vector<Value> evaluate(simdjson::dom::element resource, EvalState& state) const {
    std::vector<Value> out;
    evaluate(resource, state, out);
    return out;
  }

  const std::string& text() const { return text_; }
  // The keys of the root object without all of which the expression yields nothing, when the
  // compiler can tell (paths, filters, unions of them); nullopt otherwise. Lets a caller skip the
  // expressions a resource has no data for.
  const std::optional<std::vector<std::string>>& root_keys() const { return root_keys_; }
  ~Expression();

  struct Op;  // the compiled plan (expression.cpp)

 private:
  Expression() = default;
  std::string text_;
  std::unique_ptr<Op> root_;
  CtxId root_ctx_ = kUnknownCtx;
  std::optional<std::vector<std::string>> root_keys_;
};

// The top-level operands of a union `a | b | c` (one part if it is not a union), as source text.
// The indexer keeps the parts that apply to a resource type.
std::vector<std::string> union_parts(std::string_view text);

// The type name an expression part starts from ("Patient" for "Patient.name.where(...)",
// "Observation" for "(Observation.value as Quantity)"), or "" if it starts otherwise.
std::string root_type_name(std::string_view text);

// A value as JSON text, as fhirpath.js would return it (for differential tests).
std::string to_json(const Value& v);

}  // namespace fhirshift::fhirpath

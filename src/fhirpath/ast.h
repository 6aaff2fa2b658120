// The syntax tree of a FHIRPath expression (http://hl7.org/fhirpath/N1/), as parsed; the
// compiler in expression.cpp turns it into an evaluation plan.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fhirshift::fhirpath {

// A syntax or semantic problem in an expression; the message quotes the expression and the
// position.
class CompileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Ast {
  enum class Kind {
    kIdentifier,  // name (a member of the focus, or a type name at the start of a path)
    kFunction,    // name(args...), invoked on kids[0] when `invoked`, else on the focus
    kMember,      // kids[0].name
    kIndex,       // kids[0][kids[1]]
    kBinary,      // kids[0] op kids[1]; op in `name`
    kUnary,       // op kids[0]
    kTypeOp,      // kids[0] is/as name
    kString,      // 'text' (unescaped in `name`)
    kNumber,      // digits (text in `name`)
    kBoolean,     // true/false
    kEmpty,       // {}
    kDateTime,    // @2020-01-01... (text after @ in `name`)
    kThis,        // $this
    kIndexVar,    // $index
    kExternal,    // %name
  };
  Kind kind;
  std::string name;
  std::vector<std::unique_ptr<Ast>> kids;  // for kFunction: kids[0] is the target or null
  size_t begin = 0, end = 0;               // source span
};

// Parses `text`; throws CompileError.
std::unique_ptr<Ast> parse(std::string_view text);

}  // namespace fhirshift::fhirpath

// The FHIR R4 type model the FHIRPath engine navigates with: element types, choice types
// (value[x]) and type inheritance, from fhirpath.js's R4 model (so that both engines agree).
//
// A *context* is what a node's members are looked up in: a type name ("CodeableConcept",
// "Patient") or, for an inline BackboneElement, its element path ("Observation.component").
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fhirshift::fhirpath {

using CtxId = int;
inline constexpr CtxId kUnknownCtx = -1;

struct Context {
  std::string name;            // "Quantity", "Observation.component", "string", "System.String"
  CtxId type = kUnknownCtx;    // its type: itself, or BackboneElement/Element for a path context
  CtxId parent = kUnknownCtx;  // base type (Age -> Quantity -> Element), for is/ofType/as
  bool primitive = false;      // a JSON string/number/boolean, not an object
  bool abstract_resource = false;  // Resource/DomainResource: the real type is `resourceType`
  bool resource = false;           // a resource type (Patient, Resource, ...)
};

// One way an element appears in JSON: its key and the context of its value.
struct Variant {
  std::string key;  // "code", or "valueQuantity" for a choice element
  CtxId ctx = kUnknownCtx;
};

struct Member {
  bool choice = false;
  std::vector<Variant> variants;  // one unless choice
};

class Model {
 public:
  static const Model& r4();

  // The context of a type name ("Patient", "FHIR.Patient", "string", "System.String"), or
  // kUnknownCtx.
  CtxId type(std::string_view name) const;
  const Context& ctx(CtxId id) const { return contexts_[static_cast<size_t>(id)]; }
  // Member `name` of context `owner`, or nullptr when the model does not know it.
  const Member* member(CtxId owner, std::string_view name) const;
  // True when a node of context `ctx` is of type `type` or derives from it.
  bool is_a(CtxId ctx, CtxId type) const;
  // Every member of context `owner` (not of its base types), by element name.
  template <class F>
  void for_each_member(CtxId owner, F&& f) const {
    for (const auto& [name, m] : members_[static_cast<size_t>(owner)]) f(name, m);
  }
  // Every resource type name (Patient, Observation, ...; not Resource/DomainResource).
  const std::vector<std::string>& resource_types() const { return resource_types_; }

 private:
  Model();
  CtxId intern(std::string_view name);

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, Member, Hash, std::equal_to<>>;

  std::vector<Context> contexts_;
  std::unordered_map<std::string, CtxId, Hash, std::equal_to<>> ids_;
  std::vector<Map> members_;  // by owner context
  std::vector<std::string> resource_types_;
};

}  // namespace fhirshift::fhirpath

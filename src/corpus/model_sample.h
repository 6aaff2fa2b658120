// Resources of any R4 type with (nearly) every element present, synthesised from the FHIR R4 model:
// the widest inputs for the FHIRPath tests (every path of every SearchParameter finds data).
// Unrealistic on purpose: every element at once, one value of each, choice elements taking the
// variant `variant` (modulo their count), References to Patient/1, resources nested as stand-ins.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace fhirshift::corpus {

// JSON text of a `type` resource with id `id`. Throws std::invalid_argument for an unknown type.
std::string model_sample(std::string_view type, std::string_view id, size_t variant);

}  // namespace fhirshift::corpus

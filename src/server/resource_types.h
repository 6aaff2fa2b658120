// The FHIR R4 (4.0.1) resource types a server can store: every concrete resource type of the
// specification except Parameters (an operation payload, never persisted).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fhirshift::server {

bool is_r4_resource_type(std::string_view type);
// Sorted by name.
const std::vector<std::string>& r4_resource_types();

}  // namespace fhirshift::server

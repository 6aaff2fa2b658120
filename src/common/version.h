#pragma once

namespace fhirshift {
inline constexpr const char* kVersion = "0.1.0";
}

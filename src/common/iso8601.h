// ISO-8601 UTC timestamps with milliseconds, as the migrator, verify and the cut-over print and read
// them (the FHIR instant format).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace fhirshift {

// "2024-05-01T12:00:00.000Z" for milliseconds since the epoch.
std::string format_iso8601(int64_t ms);
// Accepts what format_iso8601 prints, plain dates and offsets; nullopt when unparsable.
std::optional<int64_t> parse_iso8601(const std::string& text);

}  // namespace fhirshift

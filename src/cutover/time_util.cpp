#include "common/iso8601.h"
#include "cutover/ports.h"

namespace fhirshift::cutover {

std::string format_iso8601(WallTime t) {
  return fhirshift::format_iso8601(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

std::optional<WallTime> parse_iso8601(const std::string& text) {
  auto ms = fhirshift::parse_iso8601(text);
  if (!ms) return std::nullopt;
  return WallTime(std::chrono::milliseconds(*ms));
}

}  // namespace fhirshift::cutover

#include <algorithm>
#include <cctype>

#include "commands.h"

namespace fhirshift::cli {

bool parse_bool_flag(const std::string& value, const std::string& option_name) {
  std::string v = value;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "true" || v == "yes" || v == "1" || v == "on") return true;
  if (v == "false" || v == "no" || v == "0" || v == "off") return false;
  throw CLI::ValidationError(option_name, "expected true or false, got '" + value + "'");
}

}  // namespace fhirshift::cli

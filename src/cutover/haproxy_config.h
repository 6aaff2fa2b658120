// Renders tools/haproxy/fhirshift.cfg.in (the tests use it; scripts/lib/haproxy.sh does the same
// with sed).
#pragma once

#include <map>
#include <string>

namespace fhirshift::cutover {

// Replaces every @NAME@ with vars["NAME"]; throws std::invalid_argument naming the first
// placeholder that has no value, so a half-rendered configuration never reaches HAProxy.
std::string render_template(const std::string& text, const std::map<std::string, std::string>& vars);

// Reads the template file and renders it.
std::string render_template_file(const std::string& path,
                                 const std::map<std::string, std::string>& vars);

}  // namespace fhirshift::cutover
